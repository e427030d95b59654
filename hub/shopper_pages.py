"""What every route of the shopper's page (hub/shopper_web.py) is written with: who is signed
in (a live session, the shopper not erased, its passkey still there), the shopper's language,
a page and its refusals (a plain page saying what to do next, never a trace), the JSON body
and answers of the passkey steps, rate limits per address, and the decorators of a
signed-in page and form.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import time

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from kiosk import api
from hub import inputs, ratelimit
from hub.i18n import N_
from hub.passkeys import PasskeyRefused, RelyingParty
from hub.store import HubFailure, HubStore
from hub.web import LANG_COOKIE, LANGUAGES, SECURITY_HEADERS, Refused, Web, pick_language, session_hash

log = logging.getLogger(__name__)

COOKIE = "hub_me"
CLAIM_LIMIT, SIGNIN_LIMIT, WINDOW_S = 10, 20, 600  # per address and 10 minutes, every process counted
MAX_JSON_BYTES = 20 * 1024


class ShopperSession:
    def __init__(self, session_id: str, shopper_id: str, passkey_id: str, csrf: str, locale: str) -> None:
        self.session_id, self.shopper_id, self.passkey_id, self.csrf, self.locale = (session_id, shopper_id,
                                                                                     passkey_id, csrf, locale)


def current(web: Web, request: Request) -> ShopperSession | None:
    """The signed-in shopper: a live session, the shopper not erased, its passkey still there."""
    session_id = web.session_id(request, COOKIE)
    if not session_id:
        return None
    row = web.store.one("SELECT s.subject, s.key_id, s.csrf, sh.locale FROM web_sessions s "
                        "JOIN shoppers sh ON sh.id = s.subject AND sh.erased = 0 "
                        "JOIN passkeys p ON p.id = s.key_id AND p.shopper_id = s.subject "
                        "WHERE s.id_hash=? AND s.kind='shopper' AND s.expires_at > ?",
                        (session_hash(session_id), time.time()))
    return ShopperSession(session_id, *row) if row else None


def when_text(lang: str, then: float | None) -> str:
    """A moment as the shopper's language writes its date ("Dec 4, 2026 20:02 UTC", "4 thg 12,
    2026 20:02 UTC"), in UTC and saying so; no moment, no text."""
    import datetime as dt
    from babel.dates import format_date
    if not then:
        return ""
    try:
        moment = dt.datetime.fromtimestamp(float(then), dt.timezone.utc)
        return f"{format_date(moment, 'medium', locale=lang)} {moment:%H:%M} UTC"
    except (ValueError, OverflowError, OSError, TypeError):
        return ""


def shopper_language(request: Request, session: ShopperSession | None = None) -> str:
    """?lang=, then the remembered choice, then the shopper's own locale, then the browser's
    (every page a shopper sees: their profile, the consent screen)."""
    chosen = request.query_params.get("lang", "")
    if chosen in LANGUAGES or request.cookies.get(LANG_COOKIE, "") in LANGUAGES:
        return pick_language(chosen, request.cookies.get(LANG_COOKIE, ""), "")
    if session and session.locale in LANGUAGES:
        return session.locale
    return pick_language("", "", request.headers.get("accept-language", ""))


def next_step(request: Request) -> str:
    """Where a sign-in goes on to: the profile, or an authorization request that sent the
    shopper here (a relative /oauth/authorize URL only: never another site)."""
    wanted = request.query_params.get("next", "")
    if wanted.startswith("/oauth/authorize?") and len(wanted) <= 4000 and "\\" not in wanted and inputs.safe(wanted):
        return wanted
    return "/me"


def valid_token(token: str) -> bool:
    return bool(api.TOKEN_RE.fullmatch(token or ""))


class ShopperPages:
    """One hub's shopper pages: its database, its web (templates, sessions, forms) and its
    passkey relying party (the public URL's origin), with the helpers every route uses."""

    def __init__(self, store: HubStore, web: Web, public_url: str) -> None:
        self.store, self.web = store, web
        self.rp = RelyingParty.from_url(public_url)

    def page(self, request: Request, template: str, session: ShopperSession | None = None, status: int = 200,
             **context):
        lang = shopper_language(request, session)
        if session and request.query_params.get("lang", "") in LANGUAGES and session.locale != lang:
            self.store.conn.execute("UPDATE shoppers SET locale=? WHERE id=?", (lang, session.shopper_id))
        context.setdefault("when", lambda then: when_text(lang, then))
        context.setdefault("notice", "")
        context.setdefault("section", "")
        context.setdefault("finish", "")
        return self.web.page(request, template, status=status, lang=lang, signed_in=session is not None,
                             csrf=session.csrf if session else "", **context)

    def error_page(self, request: Request, status: int, message: str, *, action: str = "", href: str = "",
                   session: ShopperSession | None = None) -> Response:
        lang = shopper_language(request, session)
        return self.page(request, "shopper_error.html", session=session, status=status,
                         message=self.web.gettext(lang, message),
                         action=self.web.gettext(lang, action) if action else "", href=href)

    def problem_json(self, request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
        lang = shopper_language(request)
        return JSONResponse({"error": self.web.gettext(lang, message)}, status_code=status,
                            headers={**SECURITY_HEADERS, **(headers or {})})

    def guarded(self, handler):
        """A refusal is a plain page saying what to do next; a failure never shows a trace."""
        error_page = self.error_page

        @functools.wraps(handler)
        async def run(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except Refused as refusal:
                return await run_in_threadpool(error_page, request, refusal.status, REFUSALS.get(refusal.message,
                                               refusal.message), action=N_("Back to my profile"), href="/me")
            except HubFailure as failure:
                status = failure.status if 400 <= failure.status < 600 else 400
                message = (N_("This was not found on your profile.") if status == 404 else
                           N_("That could not be done; nothing was changed."))
                return await run_in_threadpool(error_page, request, status, message, action=N_("Back to my profile"),
                                               href="/me")
            except Exception as exc:  # noqa: BLE001 - a page never shows a trace
                from sqlalchemy.exc import DBAPIError, TimeoutError as SATimeout
                if isinstance(exc, (DBAPIError, SATimeout)):
                    log.warning("a shopper page could not reach the database: %s", type(exc).__name__)
                    return error_page(request, 503, N_("The service is busy. Please try again in a minute; nothing "
                                      "was changed."), action=N_("Try again"), href=str(request.url.path))
                log.error("a shopper page failed: %s", type(exc).__name__)
                return error_page(request, 500, N_("Something went wrong on our side; nothing was changed."),
                                  action=N_("Back to my profile"), href="/me")
        return run

    def json_guarded(self, handler):
        problem_json = self.problem_json

        @functools.wraps(handler)
        async def run(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except Refused as refusal:
                return problem_json(request, refusal.status, REFUSALS.get(refusal.message, refusal.message))
            except PasskeyRefused:
                return problem_json(request, 400, N_("The passkey could not be verified. Please try again."))
            except HubFailure as failure:
                status = failure.status if 400 <= failure.status < 600 else 400
                return problem_json(request, status, N_("That could not be done; nothing was changed."))
            except Exception as exc:  # noqa: BLE001
                log.error("a passkey step failed: %s", type(exc).__name__)
                return problem_json(request, 500, N_("Something went wrong on our side; nothing was changed."))
        return run

    async def json_body(self, request: Request) -> dict:
        self.web.check_origin(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Refused(415, "bad_form")
        body = await request.body()
        if len(body) > MAX_JSON_BYTES:
            raise Refused(413, "too_large")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... nested deep
            raise Refused(400, "bad_form") from None
        if not isinstance(data, dict):
            raise Refused(400, "bad_form")
        return data

    def limited(self, request: Request, what: str, limit: int) -> bool:
        client = request.client.host if request.client else "unknown"
        return not ratelimit.allow(self.store, f"web:{what}:{client}", limit, WINDOW_S)

    def signed_in(self, request: Request, response: Response, shopper_id: str, passkey_id: str) -> Response:
        web = self.web
        web.end_session(web.session_id(request, COOKIE))  # a new id at every sign-in (no fixation)
        session_id, _csrf = web.open_session("shopper", shopper_id, passkey_id)
        web.set_session_cookie(request, response, session_id, COOKIE)
        return response

    def signed_out(self, request: Request) -> Response:
        web = self.web
        had = bool(web.session_id(request, COOKIE))
        response = web.redirect("/me/sign-in?m=ended" if had else "/me/sign-in")
        if had:
            web.clear_session_cookie(request, response, COOKIE)
        return response

    def wrong_host(self, request: Request) -> bool:
        host = request.headers.get("host", "").lower()
        return host != self.rp.origin.split("://", 1)[1]

    def signed_page(self, handler):
        """GET: the page for the signed-in shopper, or the sign-in page."""
        web, signed_out = self.web, self.signed_out

        async def run(request: Request, *args, **kwargs):
            def show():
                session = current(web, request)
                if session is None:
                    return signed_out(request)
                return handler(request, session, *args, **kwargs)
            return await run_in_threadpool(show)
        return self.guarded(endpoint(run, handler, drop=("session",)))

    def signed_form(self, handler):
        """POST: same origin, the session's CSRF token, then the change; an ended session
        changes nothing and says so."""
        web, error_page = self.web, self.error_page

        async def run(request: Request, *args, **kwargs):
            web.check_origin(request)
            fields = await web.form(request)

            def act():
                session = current(web, request)
                if session is None:
                    response = error_page(request, 401, N_("Your session has ended, so nothing was changed. Please "
                                          "sign in again and repeat the change."), action=N_("Sign in"), href="/me/sign-in")
                    if web.session_id(request, COOKIE):
                        web.clear_session_cookie(request, response, COOKIE)
                    return response
                web.check_csrf(session.csrf, fields.get("csrf", ""))
                return handler(request, session, fields, *args, **kwargs)
            return await run_in_threadpool(act)
        return self.guarded(endpoint(run, handler, drop=("session", "fields")))

    def json_session(self, request: Request, data: dict) -> ShopperSession | None:
        """The signed-in shopper of a JSON call, its CSRF token checked (in the body)."""
        session = current(self.web, request)
        if session is not None:
            self.web.check_csrf(session.csrf, data.get("csrf") if isinstance(data.get("csrf"), str) else "")
        return session


def endpoint(run, handler, drop: tuple[str, ...]):
    """`run` as FastAPI must see it: the handler's name and parameters (the request and its
    path parameters) without the ones `run` fills in itself (the session, the form)."""
    signature = inspect.signature(handler)
    run.__name__, run.__doc__ = handler.__name__, handler.__doc__
    run.__signature__ = signature.replace(parameters=[p for name, p in signature.parameters.items()
                                                      if name not in drop])
    return run


# What hub/web.py's refusal keys say on the shopper's page.
REFUSALS = {
    "bad_form": N_("The form could not be read. Please go back and try again; nothing was changed."),
    "too_large": N_("The form was too large. Please go back and try again; nothing was changed."),
    "bad_origin": N_("This request came from another site, so it was refused and nothing was changed."),
    "bad_csrf": N_("This form has expired or came from somewhere else, so nothing was changed. Please open the page "
                "again and repeat the change."),
    "not_found": N_("This page does not exist."),
}
