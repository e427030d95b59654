"""The kiosk's calls (API v1): every one needs `Authorization: Bearer <device token>` but
enrollment, and the token scopes it to one brand and one store.

    POST /v1/devices/enroll               a brand's enrollment code -> the kiosk's id and token
    POST /v1/checkins                     a credential -> the shopper's view and a session
    GET  /v1/session/view                 the checked-in shopper's view again (session header)
    POST /v1/events:batch                 the kiosk's outbox, idempotent per event (hub/events.py)
    GET  /v1/stores/{store_id}/inventory  stock rows changed since a cursor
    GET  /v1/offers                       offers changed since a cursor
    GET  /v1/revocations                  shoppers this kiosk must forget, since a cursor
    POST /v1/devices/{device_id}/heartbeat
    GET  /v1/images/{gtin}.png

hub/app.py authenticates the kiosk (the `device` dependency) and mounts these with the rest.
"""
from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kiosk import api
from hub import credentials, event_rules, events, inputs, profile, ratelimit, revocations, shopper
from hub.intake import problem
from hub.metrics import Metrics
from hub.store import Device, HubFailure, HubStore


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
    checkin_id: str | None = Field(default=None, pattern=event_rules.UUID_RE.pattern)


class EventsBody(BaseModel):
    events: list[dict[str, Any]] = Field(max_length=event_rules.MAX_BATCH)


def add_routes(app: FastAPI, store: HubStore, settings, metrics: Metrics, device) -> None:
    """The kiosk's routes on `app`; `device` is the dependency that names the calling kiosk."""

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
