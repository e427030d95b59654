"""The brand's fleet page, for a technician on a laptop, on the pages' stack (hub/web.py):

    GET  /brand/sign-in                  the form (a brand key in a password field)
    POST /brand/sign-in                  key checked -> a web session (cookie), or the form again
    GET  /brand/devices                  the brand's kiosks with their last heartbeat
    GET  /brand/devices/{id}/revoke      the confirm step
    POST /brand/devices/{id}/revoke      (CSRF token) the kiosk's token is refused at once
    POST /brand/sign-out                 (CSRF token) the session ends

A brand session's subject is the brand id and its key the brand key it was opened with. It
is valid only while that key is: every request joins `brand_keys` and a revoked key ends it at
once (revoking a key also deletes its sessions). The key itself is never stored, logged or
shown again.
"""
from __future__ import annotations

import logging
import time
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub import brands, ratelimit
from hub.i18n import N_
from hub.store import HubFailure, HubStore
from hub.web import Refused, Web, session_hash

log = logging.getLogger(__name__)
SIGNIN_LIMIT, SIGNIN_WINDOW_S = 10, 600  # sign-in attempts per address per 10 minutes (every process counted)


class BrandSession:
    def __init__(self, session_id: str, brand_id: str, key_id: str, csrf: str, expires_at: float) -> None:
        self.session_id, self.brand_id, self.key_id, self.csrf, self.expires_at = session_id, brand_id, key_id, csrf, expires_at


def brand_session(web: Web, request: Request) -> BrandSession | None:
    """The signed-in brand, or None: the session must exist, be unexpired and its key active."""
    session_id = web.session_id(request)
    if not session_id:
        return None
    row = web.store.one("SELECT s.subject, s.key_id, s.csrf, s.expires_at FROM web_sessions s "
                        "JOIN brand_keys k ON k.id = s.key_id AND k.brand_id = s.subject "
                        "WHERE s.id_hash=? AND s.kind='brand' AND s.expires_at > ? AND k.revoked_at IS NULL",
                        (session_hash(session_id), time.time()))
    return BrandSession(session_id, *row) if row else None


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def device_rows(web: Web, lang: str, devices: list[dict], store_names: dict[str, str], now: float) -> list[dict]:
    """The devices as the table shows them: every value already a short text, with a level
    ("ok", "warn", "bad") where a technician should look."""
    rows = []
    for d in devices:
        skew = _number(d.get("clock_skew_s"))
        last_sync = _number(d.get("last_sync"))
        if last_sync and skew is not None:
            last_sync -= skew  # the kiosk's clock, on the hub's
        disk = _number(d.get("free_disk_mb"))
        outbox, parked = _number(d.get("outbox_depth")), _number(d.get("parked"))
        status = "removed" if d.get("revoked") else ("online" if d.get("online") else "offline")
        sync_age = (now - last_sync) if last_sync else None
        rows.append({
            "id": d["id"], "name": d.get("name") or d["id"], "status": status,
            "store_code": d.get("store_code") or "", "store_name": store_names.get(d.get("store_code") or "", ""),
            "version": d.get("version") or "",
            "status_text": web.gettext(lang, STATUS_TEXTS[status]),
            "reader": web.gettext(lang, READER_STATES[d["reader_state"]]) if d.get("reader_state") in READER_STATES
            else (d.get("reader_state") or "—"),
            "reader_level": "ok" if d.get("reader_state") == "connected" else ("bad" if d.get("reader_state") else ""),
            "outbox": "—" if outbox is None else f"{int(outbox):,}",
            "outbox_level": "warn" if outbox and outbox >= 100 else "",
            "parked": "—" if parked is None else f"{int(parked):,}",
            "parked_level": "bad" if parked else "",
            "last_sync": web.ago(lang, last_sync, now) if d.get("last_sync") is not None else "—",
            "last_sync_utc": web.utc(last_sync),
            "sync_level": "warn" if sync_age is not None and sync_age > 3600 and status == "online" else "",
            "skew": "—" if skew is None else (f"+{skew:g} s" if skew > 0 else f"{skew:g} s").replace("-", "−"),
            "skew_level": "warn" if skew is not None and abs(skew) >= 60 else "",
            "disk": "—" if disk is None else (web.gettext(lang, "{n} GB", n=format(disk / 1024, ".1f")) if disk >= 1024
                                             else web.gettext(lang, "{n} MB", n=int(disk))),
            "disk_level": "bad" if disk is not None and disk < 200 else ("warn" if disk is not None and disk < 1024 else ""),
            "last_seen": web.ago(lang, d.get("last_seen"), now), "last_seen_utc": web.utc(d.get("last_seen")),
            "revoked": bool(d.get("revoked")),
        })
    order = {"offline": 0, "online": 1, "removed": 2}
    rows.sort(key=lambda r: (order[r["status"]], r["store_code"], r["name"].casefold(), r["id"]))
    return rows


READER_STATES = {"starting": N_("starting"), "connected": N_("connected"), "disconnected": N_("disconnected"),
                 "stopped": N_("stopped")}
STATUS_TEXTS = {"online": N_("online"), "offline": N_("offline"), "removed": N_("removed")}


NO_KIOSK = N_("There is no such kiosk in your fleet.")



def add_routes(app: FastAPI, store: HubStore, web: Web) -> None:
    """The brand's fleet page on `app`, and a plain 404 page for any other /brand path."""

    def guarded(handler):
        """Every page: a refusal or a failure is a plain page, never a stack trace."""
        import functools

        @functools.wraps(handler)
        async def run(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except Refused as refusal:
                return await run_in_threadpool(web.error, request, refusal.status, refusal.message, **refusal.values)
            except HubFailure as failure:
                if failure.status == 404:
                    return web.error(request, 404, NO_KIOSK)
                return web.error(request, failure.status if 400 <= failure.status < 600 else 400,
                                 N_("The hub refused this: {detail}"), detail=failure.detail)
            except Exception as exc:  # noqa: BLE001 - a page never shows a trace
                from sqlalchemy.exc import DBAPIError, TimeoutError as SATimeout
                if isinstance(exc, (DBAPIError, SATimeout)):
                    log.warning("a web page could not reach the database: %s", type(exc).__name__)
                    return web.error(request, 503, N_("The hub is busy or cannot reach its database. Try again in "
                                                      "a minute."))
                log.exception("a web page failed")
                return web.error(request, 500, N_("The hub could not show this page. Try again; if it keeps "
                                                  "happening, tell the hub's operator."))
        return run

    def signed_in_context(session: BrandSession) -> dict:
        row = store.one("SELECT name FROM brands WHERE id=?", (session.brand_id,))
        return {"signed_in": True, "brand_name": row[0] if row else session.brand_id, "brand_id": session.brand_id,
                "key_id": session.key_id, "csrf": session.csrf}

    @app.get("/brand", include_in_schema=False)
    @guarded
    async def brand_home(request: Request):
        return web.redirect("/brand/devices")

    @app.get("/brand/sign-in", include_in_schema=False)
    @guarded
    async def sign_in_form(request: Request):
        def show():
            if brand_session(web, request) is not None:
                return web.redirect("/brand/devices")
            notice = {"out": N_("You are signed out."), "ended": N_("Your session has ended. Sign in again.")
                      }.get(request.query_params.get("m", ""), "")
            return web.page(request, "sign_in.html", signed_in=False, error="",
                            notice=web.gettext(web.language(request), notice) if notice else "")
        return await run_in_threadpool(show)

    @app.post("/brand/sign-in", include_in_schema=False)
    @guarded
    async def sign_in(request: Request):
        web.check_origin(request)
        fields = await web.form(request)
        key = fields.get("key", "").strip()

        def attempt():
            client = request.client.host if request.client else "unknown"
            if not ratelimit.allow(store, f"web:brand-sign-in:{client}", SIGNIN_LIMIT, SIGNIN_WINDOW_S):
                wait = ratelimit.retry_in(SIGNIN_WINDOW_S)
                return web.page(request, "sign_in.html", status=429, signed_in=False, notice="",
                                error=web.gettext(web.language(request), "Too many sign-in attempts from this address. "
                                                  "Try again in {minutes} min.", minutes=max(1, round(wait / 60))),
                                headers={"Retry-After": str(wait)})
            try:
                who = brands.authenticate(store, key)
            except HubFailure:
                log.info("a brand sign-in on the web was refused")
                return web.page(request, "sign_in.html", status=401, signed_in=False, notice="",
                                error=web.gettext(web.language(request), "That key is not valid: it is unknown or has "
                                                  "been revoked. Check it and try again."))
            web.end_session(web.session_id(request))  # a new id at every sign-in (no fixation)
            session_id, _csrf = web.open_session("brand", who.brand_id, who.id)
            response = web.redirect("/brand/devices")
            web.set_session_cookie(request, response, session_id)
            log.info("brand %s signed in on the web with key %s", who.brand_id, who.id)
            return response
        return await run_in_threadpool(attempt)

    @app.post("/brand/sign-out", include_in_schema=False)
    @guarded
    async def sign_out(request: Request):
        web.check_origin(request)
        fields = await web.form(request)

        def leave():
            session = brand_session(web, request)
            if session is None:
                response = web.redirect("/brand/sign-in?m=ended")
                web.clear_session_cookie(request, response)
                return response
            web.check_csrf(session.csrf, fields.get("csrf", ""))
            web.end_session(session.session_id)
            response = web.redirect("/brand/sign-in?m=out")
            web.clear_session_cookie(request, response)
            return response
        return await run_in_threadpool(leave)

    def signed_out(request: Request) -> Response:
        response = web.redirect("/brand/sign-in?m=ended" if web.session_id(request) else "/brand/sign-in")
        if web.session_id(request):
            web.clear_session_cookie(request, response)
        return response

    @app.get("/brand/devices", include_in_schema=False)
    @guarded
    async def devices_page(request: Request):
        def show():
            session = brand_session(web, request)
            if session is None:
                return signed_out(request)
            lang, now = web.language(request), time.time()
            devices = brands.list_devices(store, session.brand_id)
            names = dict(store.all("SELECT code, name FROM stores WHERE brand_id=?", (session.brand_id,)))
            rows = device_rows(web, lang, devices, names, now)
            done = request.query_params.get("removed", "")
            done_name = next((r["name"] for r in rows if r["id"] == done and r["revoked"]), "")
            counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("online", "offline", "removed")}
            return web.page(request, "devices.html", lang=lang, rows=rows, counts=counts, total=len(rows),
                            done_name=done_name, shown_at=web.utc(now), **signed_in_context(session))
        return await run_in_threadpool(show)

    @app.get("/brand/devices/{device_id}/revoke", include_in_schema=False)
    @guarded
    async def confirm_revoke(request: Request, device_id: str):
        def show():
            session = brand_session(web, request)
            if session is None:
                return signed_out(request)
            lang = web.language(request)
            found = [d for d in brands.list_devices(store, session.brand_id) if d["id"] == device_id]
            if not found:
                raise Refused(404, NO_KIOSK)
            names = dict(store.all("SELECT code, name FROM stores WHERE brand_id=?", (session.brand_id,)))
            row = device_rows(web, lang, found, names, time.time())[0]
            if row["revoked"]:
                return web.redirect(f"/brand/devices?removed={quote(device_id)}")
            return web.page(request, "confirm_revoke.html", lang=lang, device=row, **signed_in_context(session))
        return await run_in_threadpool(show)

    @app.post("/brand/devices/{device_id}/revoke", include_in_schema=False)
    @guarded
    async def revoke(request: Request, device_id: str):
        web.check_origin(request)
        fields = await web.form(request)

        def act():
            session = brand_session(web, request)
            if session is None:
                return signed_out(request)
            web.check_csrf(session.csrf, fields.get("csrf", ""))
            if fields.get("confirm") != "yes":
                return web.redirect(f"/brand/devices/{quote(device_id)}/revoke")
            brands.revoke_device(store, session.brand_id, device_id)
            log.info("brand %s removed kiosk %s from its fleet on the web (key %s)", session.brand_id, device_id,
                     session.key_id)
            return web.redirect(f"/brand/devices?removed={quote(device_id)}")
        return await run_in_threadpool(act)

    @app.api_route("/brand/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @guarded
    async def not_found(request: Request, rest: str):
        return web.error(request, 404, N_("There is no such page."))
