"""The hub's web pages, server rendered (Jinja2, autoescaped), plain HTML forms, no script:
the stack they share. `Web` holds the templates, the languages, the security headers, the
sessions and the form checks; each part adds its routes with `web.page(...)`,
`web.open_session(...)`, `web.form(...)`: the brand's fleet page (hub/fleet_web.py), the
shopper's page (hub/shopper_web.py), sign-in with the shopper profile (hub/oauth_web.py).

Sessions live in the hub's database (`web_sessions`), never in one process: the cookie holds
a random id (32 bytes), the table only its SHA-256, with the CSRF token, the subject (a brand
id, a shopper id), the key it was opened with (a brand key's id, a passkey's) and an absolute
expiry (8 h). The cookie is `__Host-hub_session` (Secure) over https, `hub_session` over plain
http (loopback, tests); HttpOnly, SameSite=Strict, Path=/.

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
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub import i18n
from hub.i18n import LANG_NAMES, LANGUAGES, N_
from hub.store import HubStore

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
DEFAULT_LANGUAGE = i18n.DEFAULT_LANGUAGE
LANG_COOKIE = "hub_lang"
SESSION_S = 8 * 3600
MAX_FORM_BYTES = 16 * 1024
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


def add_routes(app: FastAPI, store: HubStore, settings=None) -> Web:
    """The pages' shared stack on `app` (app.state.web) and the static files every page uses;
    each part of the pages then adds its own routes on the `Web` this returns."""
    web = Web(store, settings)
    app.state.web = web

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            return Response("not found", status_code=404, media_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"})
        return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    return web
