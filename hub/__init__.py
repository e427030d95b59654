"""The reference central profile service (hub API v1, DESIGN section 5).

A separate service, installable on its own (`pip install ".[hub]"`: no Kivy, no reader
libraries). It shares only the API contract with the kiosk: `kiosk.api` (wire models, problem
types, tag formats), `kiosk.errors` and `kiosk.pins` (the PIN hash format), all pure Python.
`create_app(settings)` builds the FastAPI app; `python -m hub` (or `kiosk hub`) runs it.
"""
