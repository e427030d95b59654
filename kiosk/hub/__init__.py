"""The reference central profile service (hub API v1, DESIGN section 5).

A separate service: it shares only the API contract (`kiosk.api`) with the kiosk.
`create_app(settings)` builds the FastAPI app; `kiosk hub` runs it with uvicorn.
"""
