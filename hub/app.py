"""The hub's HTTP API (FastAPI), assembled from explicit parts by `create_app`: the intake in
front of it all (hub/intake.py), the answers to failures, the gates that check a kiosk's token
or a brand's key before a body is read, then every part's routes (the kiosk's in
hub/kiosk_api.py, staff, admin, the brand and channel APIs, the pages).

Every kiosk call needs `Authorization: Bearer <device token>`; the token scopes it to one
brand and one store. Errors are `application/problem+json` (RFC 9457). OpenAPI is served
at `/openapi.json`.

    app = create_app(HubSettings(db_path=Path("hub.db"), demo=True))
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosk import __version__, api
from hub import brand_api, brands, credentials, kiosk_api, ratelimit
from hub import staff as staff_routes
from hub.intake import Intake, problem
from hub.metrics import Metrics
from hub.store import Device, HubFailure, HubStore

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024
BRAND_PREFIX = "/v1/brand"
CHANNEL_PREFIX = "/v1/channel"  # a web shop's or app's calls: an OAuth access token (hub/oauth.py), not a device's
SEEN_EVERY_S = 60.0  # a kiosk's last-seen time is written at most this often per process
REVOKED = HubFailure(api.P_DEVICE_REVOKED, "this kiosk was removed from the fleet: enroll it again", 401,
                     headers={"Connection": "close"})


@dataclass(frozen=True)
class HubSettings:
    db_path: Path | str  # a SQLite file, or a database URL (postgresql://user@host:port/db)
    demo: bool = False
    admin_token: str = ""  # transitional single admin token: an admin client with the phone-keys scope only
    migrate: bool = True  # False: refuse a database whose schema is behind (`kiosk hub migrate`)
    pool_size: int = 10  # also the number of worker threads
    pool_overflow: int = 10
    pool_timeout_s: float = 5.0
    max_in_flight: int = 200  # requests at once in one process before it sheds (503 busy)
    batch_lanes: int = 2  # event batches applied at once in one process
    batch_queue: int = 100  # batches waiting for a lane before more are shed (503 busy)
    device_rate: float = 10.0  # requests a second one kiosk may make to one process (0: no limit)
    device_burst: float = 40.0  # (a request costs one more for every 32 KiB of its body)
    enroll_per_client: int = 10  # enrollment attempts a minute from one address
    enroll_hub_wide: int = 600  # and from everyone, every process counted (high: a few addresses must not lock out real enrollments)
    brand_rate: float = 50.0  # requests a second one brand key may make to one process (0: no limit)
    brand_burst: float = 200.0
    fetch_private_images: bool = False  # image_url may name a loopback/private address (tests, an on-site image server)
    public_url: str = ""  # where shoppers reach the hub (their page, passkeys' relying party): KIOSK_HUB_PUBLIC_URL

    @classmethod
    def from_env(cls, environ=os.environ, **overrides) -> "HubSettings":
        """KIOSK_HUB_DB (required unless given), KIOSK_HUB_DEMO, KIOSK_HUB_ADMIN_TOKEN."""
        db = overrides.pop("db_path", None) or environ.get("KIOSK_HUB_DB")
        if not db:
            raise RuntimeError("KIOSK_HUB_DB is not set: where should the hub keep its database?")
        return cls(db_path=db if "://" in str(db) else Path(db), demo=overrides.pop("demo", environ.get("KIOSK_HUB_DEMO") == "1"),
                   admin_token=overrides.pop("admin_token", environ.get("KIOSK_HUB_ADMIN_TOKEN", "")),
                   migrate=environ.get("KIOSK_HUB_MIGRATE", "1") == "1",
                   pool_size=int(environ.get("KIOSK_HUB_POOL_SIZE", "10")),
                   pool_overflow=int(environ.get("KIOSK_HUB_POOL_OVERFLOW", "10")),
                   pool_timeout_s=float(environ.get("KIOSK_HUB_POOL_TIMEOUT_S", "5")),
                   max_in_flight=int(environ.get("KIOSK_HUB_MAX_IN_FLIGHT", "200")),
                   batch_lanes=int(environ.get("KIOSK_HUB_BATCH_LANES", "2")),
                   batch_queue=int(environ.get("KIOSK_HUB_BATCH_QUEUE", "100")),
                   device_rate=float(environ.get("KIOSK_HUB_DEVICE_RATE", "10")),
                   device_burst=float(environ.get("KIOSK_HUB_DEVICE_BURST", "40")),
                   enroll_per_client=int(environ.get("KIOSK_HUB_ENROLL_PER_CLIENT", "10")),
                   enroll_hub_wide=int(environ.get("KIOSK_HUB_ENROLL_HUB_WIDE", "600")),
                   brand_rate=float(environ.get("KIOSK_HUB_BRAND_RATE", "50")),
                   brand_burst=float(environ.get("KIOSK_HUB_BRAND_BURST", "200")),
                   fetch_private_images=environ.get("KIOSK_HUB_FETCH_PRIVATE_IMAGES") == "1",
                   public_url=overrides.pop("public_url", environ.get("KIOSK_HUB_PUBLIC_URL", "")))


class PhoneKeyBody(BaseModel):
    credential_id: str = Field(min_length=1, max_length=64)
    public_key: str = Field(min_length=64, max_length=64, description="Ed25519 public key, hex")


def create_app(settings: HubSettings, store: HubStore | None = None) -> FastAPI:
    store = store or HubStore(settings.db_path, migrate=settings.migrate, pool_size=settings.pool_size,
                              max_overflow=settings.pool_overflow, pool_timeout_s=settings.pool_timeout_s)
    if settings.demo:
        from hub import demo
        demo.seed(store)
    metrics = Metrics()
    app = FastAPI(title="NFC kiosk hub", version=__version__,
                  description="Central shopper-owned profile service for NFC check-in kiosks (API v1).")
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings

    @app.exception_handler(HubFailure)
    async def on_failure(request: Request, exc: HubFailure):
        return problem(exc.status, exc.kind, exc.detail, headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        return problem(422, api.P_INVALID, "invalid request", str(exc.errors()[:3])[:500])

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        kind = api.P_NOT_FOUND if exc.status_code == 404 else api.PROBLEM_BASE + f"http-{exc.status_code}"
        return problem(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(DBAPIError)
    async def on_database(request: Request, exc: DBAPIError):
        if isinstance(exc, DataError):  # input the database will not take (a NUL, a number out of range)
            log.warning("hub refused input the database would not take: %s", type(exc.orig).__name__)
            return problem(422, api.P_INVALID, "invalid request", "a value in the request is not acceptable")
        if not exc.connection_invalidated and not isinstance(exc, (OperationalError, InterfaceError)):
            log.error("hub database error: %s", type(exc.orig).__name__)
            return problem(500, api.PROBLEM_BASE + "internal", "the hub failed; try again")
        log.warning("hub database unavailable: %s", type(exc.orig).__name__)
        return problem(503, api.PROBLEM_BASE + "unavailable", "the hub's database is unavailable; try again",
                       headers={"Retry-After": "2"})

    @app.exception_handler(SATimeout)
    async def on_pool_timeout(request: Request, exc: SATimeout):
        return problem(503, api.PROBLEM_BASE + "busy", "the hub is busy; try again", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception):
        log.exception("hub request failed")
        return problem(500, api.PROBLEM_BASE + "internal", "the hub failed; try again")

    flood = ratelimit.Buckets(settings.device_rate, settings.device_burst)

    def too_fast(device_id: str, cost: float = 1.0):
        wait = flood.take(device_id, cost)
        if not wait:
            return None
        metrics.inc("hub_device_rate_limited_total")
        return HubFailure(ratelimit.P_RATE_LIMITED, "this kiosk sends too many requests; slow down", 429,
                          headers={"Retry-After": str(max(1, round(wait)))})

    strangers = ratelimit.Buckets(settings.device_rate, settings.device_burst)  # refused tokens, per address
    seen: dict[str, float] = {}
    from concurrent.futures import ThreadPoolExecutor
    toucher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="last-seen")
    unauthorized = {"Connection": "close"}

    def as_response(failure: HubFailure) -> JSONResponse:
        return problem(failure.status, failure.kind, failure.detail, headers=failure.headers, extra=failure.extra)

    async def gate(scope) -> tuple[JSONResponse, bool] | None:
        """Every call that needs a device token is authenticated and rate-checked here, before
        its body is read or parsed: a request without a valid token is answered 401 at once
        (and an address that keeps sending them, 429), a kiosk past its rate 429. The device
        found is handed to the `device` dependency. (response, hold it first) or None."""
        path = scope.get("path") or ""
        raw = [v for k, v in scope.get("headers") or () if k == b"authorization"]
        if len(raw) > 1:
            return problem(400, api.P_INVALID, "one Authorization header, please", headers=unauthorized), False
        if path.startswith(BRAND_PREFIX):
            return await brand_gate(scope, raw)
        if not _needs_device(path):
            return None
        scheme, _, token = (raw[0] if raw else b"").decode("latin-1").partition(" ")
        found = None
        if store.epoch_due():  # a kiosk revoked in another process: forget cached devices
            await run_in_threadpool(store.check_epoch)
        if scheme.lower() == "bearer" and token and len(token) <= 256 and token.isascii():
            found = store.cached_device(token) or await run_in_threadpool(store.device_by_token, token)
        if found is not None and found.revoked:
            return as_response(REVOKED), False
        if found is None:
            client = (scope.get("client") or ("unknown",))[0]
            if strangers.take(client):
                metrics.inc("hub_device_rate_limited_total")
                return as_response(HubFailure(ratelimit.P_RATE_LIMITED, "too many requests without a valid device "
                                              "token", 429, headers={"Retry-After": "5", **unauthorized})), True
            return as_response(HubFailure(api.P_UNAUTHORIZED, "a valid device token is required", 401,
                                          headers=unauthorized)), False
        headers = dict(scope.get("headers") or ())
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        refusal = too_fast(found.id, ratelimit.cost_of(headers.get(b"content-length"), chunked, MAX_BODY_BYTES))
        if refusal:
            return as_response(refusal), True
        scope.setdefault("state", {})["device"] = found
        if seen.get(found.id, 0) < time.monotonic() - SEEN_EVERY_S:  # the fleet's "last seen", cheaply
            seen[found.id] = time.monotonic()
            if len(seen) > 50_000:
                seen.clear()
            toucher.submit(_quietly, store.seen, found)  # never waited on: a busy database must not hold the call
        return None

    brand_flood = ratelimit.Buckets(settings.brand_rate, settings.brand_burst)

    async def brand_gate(scope, raw: list[bytes]) -> tuple[JSONResponse, bool] | None:
        """A brand call: its key checked (and its rate) before the body, up to 16 MiB, is read."""
        header = (raw[0] if raw else b"").decode("latin-1")
        try:
            who = await run_in_threadpool(brands.authenticate, store, header)
        except HubFailure as failure:
            client = (scope.get("client") or ("unknown",))[0]
            if strangers.take("brand:" + client):
                return as_response(HubFailure(ratelimit.P_RATE_LIMITED, "too many requests without a valid brand key",
                                              429, headers={"Retry-After": "5", **unauthorized})), True
            return as_response(HubFailure(failure.kind, failure.detail, 401, headers=unauthorized)), False
        wait = brand_flood.take(who.id)
        if wait:
            return as_response(HubFailure(ratelimit.P_RATE_LIMITED, "this brand key sends too many requests; slow down",
                                          429, headers={"Retry-After": str(max(1, round(wait)))})), True
        scope.setdefault("state", {})["brand"] = who
        return None

    app.add_middleware(Intake, limit=MAX_BODY_BYTES, threads=settings.pool_size,
                       max_in_flight=settings.max_in_flight, metrics=metrics, gate=gate,
                       limits={"/v1/devices/enroll": 4096, BRAND_PREFIX + "*": brand_api.MAX_BODY_BYTES,
                               CHANNEL_PREFIX + "*": 256 * 1024})

    async def device(request: Request, authorization: str = Header(default="")) -> Device:
        """The calling kiosk, from its bearer token: from the process's short cache of tokens
        seen (no thread hop, no query), else looked up in a worker thread."""
        found = request.scope.get("state", {}).get("device")  # the gate authenticated the call
        if found is not None:
            return found
        # A route outside `_needs_device` that asks for a device: looked up (and charged) here.
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > 256 or not token.isascii():
            raise HubFailure(api.P_UNAUTHORIZED, "a valid device token is required", 401)
        found = store.cached_device(token) or await run_in_threadpool(store.device_by_token, token)
        if found is None:
            raise HubFailure(api.P_UNAUTHORIZED, "a valid device token is required", 401)
        if found.revoked:
            raise REVOKED
        refusal = too_fast(found.id, ratelimit.cost_of(request.headers.get("content-length", "").encode(), False,
                                                       MAX_BODY_BYTES))
        if refusal:
            raise refusal
        return found

    def admin(scope: str):
        """A dependency: the calling admin client (hub/admin.py), which must hold `scope`."""
        from hub import admin as hub_admin

        def check(authorization: str = Header(default="")):
            return hub_admin.authenticate(store, authorization, scope, legacy_token=settings.admin_token)
        return check

    @app.get("/v1/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/ready")
    def ready() -> Response:
        """For a load balancer: 200 only while the database answers and its schema is this hub's."""
        from hub import migrations
        try:
            current = migrations.current(store.engine)
        except (DBAPIError, SATimeout):
            return problem(503, api.PROBLEM_BASE + "unavailable", "the hub's database is unavailable")
        if current != migrations.head():
            return problem(503, api.PROBLEM_BASE + "unavailable",
                           f"the database schema is {current}, this hub needs {migrations.head()}")
        return JSONResponse({"status": "ready", "schema": current})

    @app.get("/metrics", response_class=PlainTextResponse)
    def get_metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    kiosk_api.add_routes(app, store, settings, metrics, device)  # enroll, check-ins, events, sync pulls

    @app.post("/v1/shoppers/{shopper_id}/phone-keys", status_code=204, dependencies=[Depends(admin("phone-keys"))])
    def register_phone_key(shopper_id: str, body: PhoneKeyBody) -> Response:
        """204 when bound (or bound already, identically); 409 if the credential id is bound
        otherwise or revoked: keys never move; 404 for an unknown shopper."""
        try:
            key = bytes.fromhex(body.public_key)
        except ValueError:
            raise HubFailure(api.P_INVALID, "public_key must be hex", 422) from None
        credentials.register_phone(store, shopper_id, body.credential_id, key)
        return Response(status_code=204)

    from hub import admin as hub_admin
    hub_admin.add_routes(app, store, admin)  # revoke phone keys; register and revoke secure cards

    staff_routes.add_routes(app, store, device)  # badge + PIN unlock, staff search and lookup
    brand_api.add_routes(app, store, settings)  # a brand's catalog, stores, stock, offers and fleet
    from hub import channel_api
    channel_api.add_routes(app, store)  # a web shop's or app's wishlist calls (OAuth access tokens)
    from hub import fleet_web, web
    pages = web.add_routes(app, store, settings)  # what every page shares, and the static files
    fleet_web.add_routes(app, store, pages)  # the brand's fleet page (server rendered)
    from hub import shopper_web
    shopper_web.add_routes(app, store, pages, settings.public_url or "http://localhost:8080")  # the shopper's own page
    from hub import oauth_web
    oauth_web.add_routes(app, store, pages, settings.public_url)  # sign in with the shopper profile (OAuth 2.0)
    return app


# Calls a kiosk makes with its device token; everything else under /v1 is open (health,
# readiness, enrollment) or an admin client's (phone keys, cards).
_OPEN = ("/v1/health", "/v1/ready", "/v1/devices/enroll")
_ADMIN = ("/v1/shoppers/", "/v1/sun-cards", "/v1/cards:")


def _quietly(work, *args) -> None:
    try:
        work(*args)
    except Exception as exc:  # noqa: BLE001 - a missed last-seen time is harmless; the next call writes it
        log.info("last-seen not written: %s", type(exc).__name__)


def _needs_device(path: str) -> bool:
    return (path.startswith("/v1/") and path not in _OPEN and not path.startswith(_ADMIN)
            and not path.startswith((BRAND_PREFIX, CHANNEL_PREFIX)))  # the channel API checks OAuth tokens itself
