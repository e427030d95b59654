"""The hub's HTTP API (FastAPI), assembled from explicit parts by `create_app`.

Every kiosk call needs `Authorization: Bearer <device token>`; the token scopes it to one
brand and one store. Errors are `application/problem+json` (RFC 9457). OpenAPI is served
at `/openapi.json`.

    app = create_app(HubSettings(db_path=Path("hub.db"), demo=True))
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosk import __version__, api
from hub import brand_api, brands, credentials, events, inputs, profile, ratelimit, revocations, shopper
from hub import staff as staff_routes
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


class EnrollBody(BaseModel):
    code: str = Field(min_length=1, max_length=128)
    name: str = Field(default="kiosk", max_length=80)
    # a kiosk enrolling again after its brand revoked it: its old token (its queued events
    # that point at the old device's check-ins are then accepted from the new one)
    previous_token: str = Field(default="", max_length=256)


class CheckinBody(BaseModel):
    credential: dict[str, Any]
    # The kiosk's id for this visit: with it the hub records the check-in itself (the visit is
    # counted once however often the call is retried) and the visit's events point at it.
    checkin_id: str | None = Field(default=None, pattern=events.UUID_RE.pattern)


class EventsBody(BaseModel):
    events: list[dict[str, Any]] = Field(max_length=events.MAX_BATCH)


class PhoneKeyBody(BaseModel):
    credential_id: str = Field(min_length=1, max_length=64)
    public_key: str = Field(min_length=64, max_length=64, description="Ed25519 public key, hex")


def problem(status: int, ptype: str, title: str, detail: str = "", headers: dict | None = None,
            extra: dict | None = None) -> JSONResponse:
    """An RFC 9457 answer; `extra` adds extension members (never over the standard ones)."""
    body = {**(extra or {}), "type": ptype, "title": title, "status": status, "detail": detail or title}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


class Intake:
    """Every request passes here first (plain ASGI, in front of FastAPI):

    - a body over `limit` bytes is refused with 413 as it streams in (a missing or lying
      Content-Length, chunked encoding), before the app sees any of it; a body within the
      limit is read whole and handed on;
    - the app's blocking work runs on `threads` worker threads, as many as the connection
      pool holds: more threads would only queue for connections while fighting over the GIL;
    - a known kiosk past its request rate (`gate`) is answered 429 before its body is read,
      after a pause of HOLD_S (at most MAX_HELD held at once);
    - past `max_in_flight` requests at once the hub sheds: 503 `busy` with Retry-After, at
      once, instead of queueing work whose client will have given up (a kiosk keeps its events
      in its outbox and shows its cached view). Health and readiness are never shed.
    """

    ALWAYS = ("/v1/health", "/v1/ready", "/metrics")
    HOLD_S, MAX_HELD = 1.0, 1000  # a rate-limited request's pause, and how many are held at once

    def __init__(self, app, limit: int, threads: int, max_in_flight: int, metrics: Metrics | None = None,
                 gate=None, limits: dict | None = None) -> None:
        self.app, self.limit, self.threads, self.max_in_flight = app, limit, threads, max_in_flight
        self.metrics, self.gate, self.limits = metrics, gate, limits or {}
        self.in_flight, self.held, self._sized = 0, 0, False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._sized:  # the limiter belongs to the running event loop
            import anyio.to_thread
            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            self._sized = True
        if self.in_flight >= self.max_in_flight and scope.get("path") not in self.ALWAYS:
            if self.metrics:
                self.metrics.inc("hub_requests_shed_total")
            response = problem(503, api.PROBLEM_BASE + "busy", "the hub is busy; try again", headers={"Retry-After": "1"})
            return await response(scope, receive, send)
        refusal = await self.gate(scope) if self.gate else None
        if refusal is not None:  # refused before its body is read (no token, a kiosk past its rate)
            response, hold = refusal
            if hold and self.held < self.MAX_HELD:  # after a pause: a flooder that ignores
                self.held += 1                      # Retry-After is slowed to one request per
                try:                                # connection a second
                    await asyncio.sleep(self.HOLD_S)
                finally:
                    self.held -= 1
            return await response(scope, receive, send)
        self.in_flight += 1
        try:
            await self._admitted(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _admitted(self, scope, receive, send) -> None:
        path = scope.get("path") or ""
        limit = self.limits.get(path) or next((v for k, v in self.limits.items() if k.endswith("*")
                                               and path.startswith(k[:-1])), self.limit)
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await self._refuse(scope, receive, send, limit)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._refuse(scope, receive, send, limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        response = problem(413, api.P_INVALID, "request too large",
                           f"the body may be at most {limit} bytes", headers={"Connection": "close"})
        await response(scope, receive, send)


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

    @app.post("/v1/devices/enroll")
    def enroll(body: EnrollBody, request: Request) -> dict:
        """Anyone may try a code; codes are guessed at most `enroll_per_client` times a minute
        per client address and `enroll_hub_wide` times a minute in all (every process counted)."""
        inputs.text(body.code, "code", 128)
        inputs.text(body.name, "name", 80)
        client = request.client.host if request.client else "unknown"
        if not ratelimit.allow(store, f"enroll:client:{client}", settings.enroll_per_client, 60):
            raise ratelimit.refused(60, "too many enrollment attempts from this address")
        if not ratelimit.allow(store, "enroll:hub", settings.enroll_hub_wide, 60):
            raise ratelimit.refused(60, "too many enrollment attempts")
        result = store.enroll(body.code, body.name, body.previous_token)
        metrics.inc("hub_enrollments_total")
        return result

    @app.post("/v1/checkins")
    def checkin(body: CheckinBody, dev: Device = Depends(device)) -> dict:
        with store.reading():  # the whole check-in on one pooled connection
            try:
                shopper_id = credentials.resolve(store, dev, inputs.credential(body.credential))
                session, opening = store.session_statement(dev, shopper_id)
                # the shopper's access log ("who saw my data") in the same trip as the view
                access = shopper.record_access_statement(shopper_id, "checkin", dev, "kiosk", shopper.WHY_CHECKIN)
                also = (opening, access, *store.visit_statements(dev, shopper_id, body.checkin_id)) if body.checkin_id \
                    else (opening, access)
                answers: list = []
                view = profile.shopper_view(store, dev, shopper_id, also=also, answers=answers)
                if body.checkin_id:
                    store.check_visit(answers[-1], dev, shopper_id)
            except HubFailure as failure:
                metrics.inc("hub_checkins_refused_total")
                if failure.kind == api.P_UNKNOWN_CREDENTIAL and body.checkin_id:  # a guest: kept for the card's claim
                    shopper.record_guest_visit(store, dev, body.credential, body.checkin_id)
                raise
            metrics.inc("hub_checkins_total")
            return {**view, "session": session}

    @app.get("/v1/session/view")
    def session_view(kiosk_session: str = Header(default="", alias=api.SESSION_HEADER),
                     dev: Device = Depends(device)) -> dict:
        """The checked-in shopper's current view (after a consent change), for the kiosk that
        checked them in, while the session lasts. The token is a header, never in the URL."""
        return profile.shopper_view(store, dev, store.session_shopper(dev, kiosk_session))

    # Batches are bulk work no one waits on; check-ins have a shopper in front of the kiosk.
    # At most `batch_lanes` batches are applied at once per process, the rest wait here (on
    # no thread), so worker threads stay free for check-ins however many batches arrive.
    # Past `batch_queue` batches waiting for a lane, a batch is shed (503 busy, Retry-After):
    # the kiosk keeps it in its outbox and sends it again (idempotent by event id).
    lanes = asyncio.Semaphore(settings.batch_lanes)
    waiting = 0

    @app.post("/v1/events:batch", response_model=None)
    async def post_events(body: EventsBody, dev: Device = Depends(device)) -> dict | JSONResponse:
        nonlocal waiting
        if lanes.locked() and waiting >= settings.batch_queue:
            metrics.inc("hub_batches_shed_total")
            return problem(503, api.PROBLEM_BASE + "busy", "the hub is busy; send the batch again later",
                           headers={"Retry-After": "2"})
        waiting += 1
        try:
            await lanes.acquire()
        finally:
            waiting -= 1
        try:
            return {"results": await run_in_threadpool(events.ingest, store, dev, body.events, metrics)}
        finally:
            lanes.release()

    @app.get("/v1/stores/{store_id}/inventory")
    def inventory(store_id: str, since: str = Query(default="", max_length=18),
                  dev: Device = Depends(device)) -> dict:
        if store_id != dev.store_id:
            raise HubFailure(api.P_FORBIDDEN, "this kiosk belongs to another store", 403)
        items, cursor = store.inventory_delta(store_id, inputs.cursor(since))
        return {"inventory": items, "cursor": str(cursor)}

    @app.get("/v1/offers")
    def offers(since: str = Query(default="", max_length=18), dev: Device = Depends(device)) -> dict:
        items, cursor = store.offers_delta(dev.brand_id, dev.store_id, inputs.cursor(since))
        return {"offers": items, "cursor": str(cursor)}

    @app.get("/v1/revocations")
    def get_revocations(since: str = Query(default="", max_length=18), dev: Device = Depends(device)) -> dict:
        """What this kiosk must forget (consent revoked towards its brand, a credential revoked,
        a shopper erased), pulled with inventory; each kiosk purges the shoppers named."""
        items, cursor = revocations.delta(store, dev, inputs.cursor(since))
        return {"revocations": items, "cursor": str(cursor)}

    @app.post("/v1/devices/{device_id}/heartbeat", status_code=204)
    def heartbeat(device_id: str, payload: dict[str, Any], dev: Device = Depends(device)) -> Response:
        if device_id != dev.id:
            raise HubFailure(api.P_FORBIDDEN, "a device reports only for itself", 403)
        store.heartbeat(dev, payload)
        metrics.inc("hub_heartbeats_total")
        return Response(status_code=204)

    @app.get("/v1/images/{gtin}.png")
    def image(gtin: str, dev: Device = Depends(device)) -> Response:
        png = store.image(gtin)
        if png is None:
            raise HubFailure(api.P_NOT_FOUND, "no image for this product", 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

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
    from hub import web
    pages = web.add_routes(app, store, settings)  # the brand's fleet page (server rendered)
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
