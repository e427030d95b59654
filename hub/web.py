"""The hub's web pages, server rendered (Jinja2, autoescaped), plain HTML forms, no script.

First the brand's fleet page, for a technician on a laptop:

    GET  /brand/sign-in                  the form (a brand key in a password field)
    POST /brand/sign-in                  key checked -> a web session (cookie), or the form again
    GET  /brand/devices                  the brand's kiosks with their last heartbeat
    GET  /brand/devices/{id}/revoke      the confirm step
    POST /brand/devices/{id}/revoke      (CSRF token) the kiosk's token is refused at once
    POST /brand/sign-out                 (CSRF token) the session ends

The same stack serves the shopper's page later (issue 11): `Web` holds the templates, the
languages, the security headers, the sessions and the form checks; a part adds its routes
with `web.page(...)`, `web.open_session(...)`, `web.form(...)`.

Sessions live in the hub's database (`web_sessions`), never in one process: the cookie holds
a random id (32 bytes), the table only its SHA-256, with the CSRF token, the subject (the
brand id), the brand key it was opened with and an absolute expiry (8 h). A brand session is
valid only while its key is: every request joins `brand_keys` and a revoked key ends it at
once (revoking a key also deletes its sessions). The cookie is `__Host-hub_session` (Secure)
over https, `hub_session` over plain http (loopback, tests); HttpOnly, SameSite=Strict,
Path=/. The key itself is never stored, logged or shown again.

Every state-changing form carries the session's CSRF token (compared with
hmac.compare_digest) and is refused when the browser says it came from another site
(`Sec-Fetch-Site`), or its Origin (or Referer) names another host. Note: with
`Referrer-Policy: no-referrer`, Chromium sends `Origin: null` on the page's own form posts,
so `null` counts as "no Origin"; Sec-Fetch-Site (sent to https and localhost) still says
`same-origin` then.

Every page: Content-Security-Policy (default-src 'self', no inline script, form-action
'self', frame-ancestors 'none'), nosniff, no-referrer, no-store. Errors are a plain page
(never a stack trace, never the framework's). Languages: en, vi, ru, th, gettext catalogs with
English msgids (hub/i18n.py, hub/locale/), picked by `?lang=` (remembered in a cookie), else
Accept-Language. Templates call `_("...")` and `ngettext(...)`, Python `web.gettext(lang, ...)`;
a refusal's message is a msgid marked `N_("...")`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub import brands, i18n, ratelimit
from hub.i18n import LANG_NAMES, LANGUAGES, N_
from hub.store import HubFailure, HubStore

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
DEFAULT_LANGUAGE = i18n.DEFAULT_LANGUAGE
LANG_COOKIE = "hub_lang"
SESSION_S = 8 * 3600
MAX_FORM_BYTES = 16 * 1024
SIGNIN_LIMIT, SIGNIN_WINDOW_S = 10, 600  # sign-in attempts per address per 10 minutes (every process counted)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".png": "image/png",
                ".svg": "image/svg+xml"}


def pick_language(query_lang: str, cookie_lang: str, accept: str) -> str:
    """`?lang=` first, then the remembered choice, then Accept-Language (q-values honoured)."""
    for chosen in (query_lang, cookie_lang):
        if chosen in LANGUAGES:
            return chosen
    ranked = []
    for n, part in enumerate((accept or "")[:500].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, n, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def lang_href(request: Request, code: str) -> str:
    """This page in another language: the same path and query (an authorization request's
    parameters included), `lang` replaced."""
    from urllib.parse import urlencode
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"][:30]
    return request.url.path + "?" + urlencode([*query, ("lang", code)])


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


BAD_ORIGIN = N_("This form was sent from another site, so it was refused. Open the page on the hub and try again.")


class Refused(Exception):
    """A request the pages answer with a plain error page (status, message: an English msgid
    marked N_("..."), its values)."""

    def __init__(self, status: int, message: str, **values) -> None:
        super().__init__(message)
        self.status, self.message, self.values = status, message, values


class Web:
    """Templates, languages, headers, sessions and form checks shared by the hub's pages."""

    def __init__(self, store: HubStore, settings=None) -> None:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        self.store, self.settings = store, settings
        i18n.load_all()
        self.env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                               autoescape=select_autoescape(default=True, default_for_string=True))

    # -- language and text ------------------------------------------------------------
    def language(self, request: Request) -> str:
        return pick_language(request.query_params.get("lang", ""), request.cookies.get(LANG_COOKIE, ""),
                             request.headers.get("accept-language", ""))

    @staticmethod
    def gettext(lang: str, msgid: str, /, **values) -> str:
        """`msgid` in `lang`, then str.format(**values) (hub/i18n.py)."""
        return i18n.gettext(lang, msgid, **values)

    @staticmethod
    def ngettext(lang: str, singular: str, plural: str, n: int, /, **values) -> str:
        """The plural form for n in `lang`, then str.format(n=n, **values)."""
        return i18n.ngettext(lang, singular, plural, n, **values)

    def ago(self, lang: str, then: float | None, now: float) -> str:
        if not then:
            return self.gettext(lang, "never")
        age = now - then
        if age < 0:
            return self.gettext(lang, "in the future (clock?)")
        if age < 10:
            return self.gettext(lang, "just now")
        if age < 60:
            return self.gettext(lang, "{n} s ago", n=int(age))
        if age < 3600:
            return self.gettext(lang, "{n} min ago", n=int(age // 60))
        if age < 86400 * 2:
            return self.gettext(lang, "{n} h ago", n=int(age // 3600))
        return self.ngettext(lang, "{n} day ago", "{n} days ago", int(age // 86400))

    @staticmethod
    def utc(then: float | None) -> str:
        if not then:
            return ""
        try:
            return dt.datetime.fromtimestamp(then, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (OverflowError, OSError, ValueError):
            return ""

    # -- responses --------------------------------------------------------------------
    def page(self, request: Request, template: str, status: int = 200, lang: str | None = None,
             headers: dict | None = None, **context) -> HTMLResponse:
        lang = lang or self.language(request)
        body = self.env.get_template(template).render(
            lang=lang, languages=LANGUAGES, lang_names=LANG_NAMES,
            _=lambda msgid, /, **v: i18n.gettext(lang, msgid, **v),
            ngettext=lambda singular, plural, n, /, **v: i18n.ngettext(lang, singular, plural, n, **v),
            path=request.url.path, lang_href=lambda code: lang_href(request, code), **context)
        response = HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
        response.headers["Content-Language"] = lang
        chosen = request.query_params.get("lang", "")
        if chosen in LANGUAGES:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, path="/", httponly=True, samesite="lax",
                                secure=self.https(request))
        return response

    def error(self, request: Request, status: int, message: str, /, **values) -> HTMLResponse:
        lang = self.language(request)
        return self.page(request, "error.html", status=status, lang=lang, message=self.gettext(lang, message, **values),
                         signed_in=False)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers=dict(SECURITY_HEADERS))

    # -- sessions ---------------------------------------------------------------------
    @staticmethod
    def https(request: Request) -> bool:
        return request.url.scheme == "https"

    def cookie_name(self, request: Request, base: str = "hub_session") -> str:
        return ("__Host-" + base) if self.https(request) else base

    def open_session(self, kind: str, subject: str, key_id: str = "") -> tuple[str, str]:
        """A new session: (the id for the cookie, the CSRF token). Only the id's hash is kept."""
        session_id, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        if secrets.randbelow(20) == 0:
            self.store.conn.execute("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
        self.store.conn.execute("INSERT INTO web_sessions(id_hash, kind, subject, key_id, csrf, created_at, expires_at) "
                                "VALUES (?,?,?,?,?,?,?)",
                                (session_hash(session_id), kind, subject, key_id, csrf, now, now + SESSION_S))
        return session_id, csrf

    def set_session_cookie(self, request: Request, response: Response, session_id: str, base: str = "hub_session") -> None:
        response.set_cookie(self.cookie_name(request, base), session_id, max_age=SESSION_S, path="/", httponly=True,
                            samesite="strict", secure=self.https(request))

    def clear_session_cookie(self, request: Request, response: Response, base: str = "hub_session") -> None:
        response.delete_cookie(self.cookie_name(request, base), path="/", httponly=True, samesite="strict",
                               secure=self.https(request))

    def session_id(self, request: Request, base: str = "hub_session") -> str:
        value = request.cookies.get(self.cookie_name(request, base), "")
        return value if 20 <= len(value) <= 100 and value.isascii() else ""

    def end_session(self, session_id: str) -> None:
        if session_id:
            self.store.conn.execute("DELETE FROM web_sessions WHERE id_hash=?", (session_hash(session_id),))

    # -- forms ------------------------------------------------------------------------
    async def form(self, request: Request) -> dict[str, str]:
        """An urlencoded form (at most MAX_FORM_BYTES, 20 fields), first value of each field."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(415, N_("The form could not be read. Open the page again and retry."))
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, N_("The form is too large."))
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, N_("The form could not be read. Open the page again and retry.")) from None
        return {k: v[0] for k, v in fields.items()}

    def check_origin(self, request: Request) -> None:
        """Refuse a form sent from another site: a browser's `Sec-Fetch-Site` other than
        same-origin, or an Origin (or, without one, a Referer) that is not this hub.
        `Origin: null` counts as absent: it is what Chromium sends for this hub's own forms
        under `Referrer-Policy: no-referrer` (Sec-Fetch-Site still says same-origin then)."""
        site = request.headers.get("sec-fetch-site", "").strip().lower()
        if site and site not in ("same-origin", "none"):
            raise Refused(403, BAD_ORIGIN)
        here = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        origin = request.headers.get("origin", "").strip().lower()
        if origin and origin != "null":
            if origin != here:
                raise Refused(403, BAD_ORIGIN)
            return
        referer = request.headers.get("referer", "").strip()
        if referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}".lower() != here:
                raise Refused(403, BAD_ORIGIN)

    @staticmethod
    def check_csrf(expected: str, given: str) -> None:
        if not given or not expected or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise Refused(403, N_("This form has expired or did not come from this page, so nothing was "
                                  "changed. Open the page again and retry."))


# -- the brand's fleet page -----------------------------------------------------------
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


def add_routes(app: FastAPI, store: HubStore, settings=None) -> Web:
    """The brand's fleet page (and the static files every page uses) on `app`."""
    web = Web(store, settings)
    app.state.web = web

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

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            return Response("not found", status_code=404, media_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"})
        return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    @app.api_route("/brand/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @guarded
    async def not_found(request: Request, rest: str):
        return web.error(request, 404, N_("There is no such page."))

    return web
