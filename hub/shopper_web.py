"""The shopper's own page, served by the hub (issue 11): server-rendered HTML that works on a
phone, every form plain HTML; one script (static/passkey.js) only for passkeys, which need it.

Who may use what, and what proves it:

    GET  /s/{token}                    anyone holding the card (its NDEF URI): says whether the
                                       card is set up; never shows personal data
    POST /s/{token}/claim/options|claim  anyone holding an unclaimed card: the first passkey
                                       claims it (WebAuthn, user verification), once
    GET  /me/sign-in, POST /me/sign-in/options|/me/sign-in
                                       anyone: a discoverable passkey signs its shopper in
    GET  /me, /me/sharing, /me/access, /me/cards, /me/data, /me/export.json, /me/wishlist.csv
    POST /me/wishlist/remove, /me/sharing, /me/cards/..., /me/phones/..., /me/passkeys/...,
         /me/erase, /me/sign-out       the signed-in shopper only (session cookie + CSRF token)

The card's token is never enough to change anything (the claim needs a new passkey; an
unclaimed card's page offers only the claim) and is never logged: uvicorn's access log is off
in every way the hub runs (hub/server.py), and these handlers log no path. A shopper
session is a `web_sessions` row of kind 'shopper' (hub/web.py: the cookie holds a random id,
the table its hash), valid while the shopper is not erased and the passkey it was opened
with still exists. JSON calls (the passkey steps) must be same-origin `application/json`
(a cross-site form cannot send that without a CORS preflight this hub never answers).
Claims and sign-ins are rate limited per address in the database (every process counted).
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import secrets
import time
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from kiosk import api
from hub import inputs, oauth, passkeys, ratelimit, shelf, shopper
from hub.passkeys import PasskeyRefused, RelyingParty
from hub.store import HubFailure, HubStore
from hub.web import LANG_COOKIE, LANGUAGES, SECURITY_HEADERS, Refused, Web, pick_language, session_hash

log = logging.getLogger(__name__)


def N_(msgid: str) -> str:
    """Marks a message for the catalogs (hub/babel.cfg); translated where it is shown."""
    return msgid


COOKIE = "hub_me"
CLAIM_LIMIT, SIGNIN_LIMIT, WINDOW_S = 10, 20, 600  # per address and 10 minutes, every process counted
MAX_JSON_BYTES = 20 * 1024
NAME_MAX = 40


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


CARD_PATH = re.compile(r"/s/[^/?#\s\"]+")


class CardPathFilter(logging.Filter):
    """Rewrites a card URL's token out of uvicorn's access log lines, should an operator turn
    that log on (`--log-config`): the hub runs with it off, and this keeps it safe when on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(CARD_PATH.sub("/s/<card>", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "/s/" in record.msg:
            record.msg = CARD_PATH.sub("/s/<card>", record.msg)
        return True


def hide_card_paths() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, CardPathFilter) for f in access.filters):
        access.addFilter(CardPathFilter())


def add_routes(app: FastAPI, store: HubStore, web: Web, public_url: str) -> None:
    rp = RelyingParty.from_url(public_url)
    hide_card_paths()

    language = shopper_language

    def _(lang: str, msgid: str, **values) -> str:
        return web.gettext(lang, msgid, **values)

    def page(request: Request, template: str, session: ShopperSession | None = None, status: int = 200, **context):
        lang = language(request, session)
        if session and request.query_params.get("lang", "") in LANGUAGES and session.locale != lang:
            store.conn.execute("UPDATE shoppers SET locale=? WHERE id=?", (lang, session.shopper_id))
        context.setdefault("when", lambda then: when_text(lang, then))
        context.setdefault("notice", "")
        context.setdefault("section", "")
        context.setdefault("finish", "")
        return web.page(request, template, status=status, lang=lang, signed_in=session is not None,
                        csrf=session.csrf if session else "", **context)

    def error_page(request: Request, status: int, message: str, *, action: str = "", href: str = "",
                   session: ShopperSession | None = None) -> Response:
        lang = language(request, session)
        return page(request, "shopper_error.html", session=session, status=status, message=_(lang, message),
                    action=_(lang, action) if action else "", href=href)

    def problem_json(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
        lang = language(request)
        return JSONResponse({"error": _(lang, message)}, status_code=status,
                            headers={**SECURITY_HEADERS, **(headers or {})})

    def guarded(handler):
        """A refusal is a plain page saying what to do next; a failure never shows a trace."""
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

    def json_guarded(handler):
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

    async def json_body(request: Request) -> dict:
        web.check_origin(request)
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

    def limited(request: Request, what: str, limit: int) -> bool:
        client = request.client.host if request.client else "unknown"
        return not ratelimit.allow(store, f"web:{what}:{client}", limit, WINDOW_S)

    def signed_in(request: Request, response: Response, shopper_id: str, passkey_id: str) -> Response:
        web.end_session(web.session_id(request, COOKIE))  # a new id at every sign-in (no fixation)
        session_id, _csrf = web.open_session("shopper", shopper_id, passkey_id)
        web.set_session_cookie(request, response, session_id, COOKIE)
        return response

    def signed_out(request: Request) -> Response:
        had = bool(web.session_id(request, COOKIE))
        response = web.redirect("/me/sign-in?m=ended" if had else "/me/sign-in")
        if had:
            web.clear_session_cookie(request, response, COOKIE)
        return response

    def wrong_host(request: Request) -> bool:
        host = request.headers.get("host", "").lower()
        return host != rp.origin.split("://", 1)[1]

    # -- the card's URL ---------------------------------------------------------------
    @app.get("/s/{token}", include_in_schema=False)
    @guarded
    async def card(request: Request, token: str):
        def show():
            if wrong_host(request):  # passkeys belong to the public origin: go there first
                return web.redirect(f"{rp.origin}/s/{token}" if valid_token(token) else f"{rp.origin}/me/sign-in")
            session = current(web, request)
            state, owner = shopper.card_state(store, token) if valid_token(token) else (shopper.REVOKED, None)
            if session and owner == session.shopper_id:
                return web.redirect("/me")
            return page(request, "shopper_card.html", session=session, state=state, token=token,
                        status=404 if state == shopper.REVOKED else 200)
        return await run_in_threadpool(show)

    @app.post("/s/{token}/claim/options", include_in_schema=False)
    @json_guarded
    async def claim_options(request: Request, token: str):
        await json_body(request)

        def start():
            if limited(request, "claim", CLAIM_LIMIT):
                return problem_json(request, 429, N_("Too many attempts. Please wait a few minutes and try again."),
                                    headers={"Retry-After": str(ratelimit.retry_in(WINDOW_S))})
            state, owner = shopper.card_state(store, token) if valid_token(token) else (shopper.REVOKED, None)
            if state not in (shopper.CLAIM_NEW, shopper.UNCLAIMED):
                return problem_json(request, 409, N_("This card is already set up. Sign in with your passkey."))
            handle = shopper.webauthn_user(store, owner) if owner else secrets.token_bytes(32)
            subject = f"{store.credential_hash('token:' + token)}|{handle.hex()}"
            ceremony, options = passkeys.registration_options(
                store, rp, passkeys.CLAIM, subject, handle, _(language(request), "My shopper profile"))
            return JSONResponse({"ceremony": ceremony, "options": options}, headers=SECURITY_HEADERS)
        return await run_in_threadpool(start)

    @app.post("/s/{token}/claim", include_in_schema=False)
    @json_guarded
    async def claim(request: Request, token: str):
        data = await json_body(request)

        def finish():
            if limited(request, "claim", CLAIM_LIMIT):
                return problem_json(request, 429, N_("Too many attempts. Please wait a few minutes and try again."))
            if not valid_token(token):
                return problem_json(request, 404, N_("This card no longer works."))
            ceremony = data.get("ceremony")
            row = store.one("SELECT subject FROM webauthn_challenges WHERE id_hash=? AND purpose=?",
                            (passkeys._hash(ceremony) if isinstance(ceremony, str) else "", passkeys.CLAIM))
            card_hash = store.credential_hash("token:" + token)
            if not row or not row[0].startswith(card_hash + "|"):
                raise PasskeyRefused("no such ceremony for this card")
            handle = bytes.fromhex(row[0].split("|", 1)[1])
            key = passkeys.finish_registration(store, rp, passkeys.CLAIM, row[0], ceremony, data.get("credential"))
            shopper_id = shopper.claim(store, token, key, language(request), user_handle=handle)
            log.info("a card was claimed with a new passkey")
            return signed_in(request, JSONResponse({"next": "/me?m=claimed"}, headers=SECURITY_HEADERS),
                             shopper_id, key["id"])
        return await run_in_threadpool(finish)

    # -- signing in ---------------------------------------------------------------------
    @app.get("/me/sign-in", include_in_schema=False)
    @guarded
    async def sign_in_page(request: Request):
        def show():
            if wrong_host(request):
                return web.redirect(f"{rp.origin}/me/sign-in")
            if current(web, request):
                return web.redirect(next_step(request))
            notice = {"out": N_("You are signed out."), "ended": N_("Your session has ended. Please sign in again."),
                      "erased": N_("Your profile is erased.")}.get(request.query_params.get("m", ""), "")
            after = next_step(request)
            return page(request, "shopper_sign_in.html", notice=notice,
                        finish="/me/sign-in" + (f"?next={quote(after, safe='')}" if after != "/me" else ""))
        return await run_in_threadpool(show)

    @app.post("/me/sign-in/options", include_in_schema=False)
    @json_guarded
    async def sign_in_options(request: Request):
        await json_body(request)

        def start():
            if limited(request, "shopper-sign-in", SIGNIN_LIMIT):
                return problem_json(request, 429, N_("Too many attempts. Please wait a few minutes and try again."),
                                    headers={"Retry-After": str(ratelimit.retry_in(WINDOW_S))})
            ceremony, options = passkeys.authentication_options(store, rp)
            return JSONResponse({"ceremony": ceremony, "options": options}, headers=SECURITY_HEADERS)
        return await run_in_threadpool(start)

    @app.post("/me/sign-in", include_in_schema=False)
    @json_guarded
    async def sign_in(request: Request):
        data = await json_body(request)

        def finish():
            if limited(request, "shopper-sign-in", SIGNIN_LIMIT):
                return problem_json(request, 429, N_("Too many attempts. Please wait a few minutes and try again."))
            answer = data.get("credential")
            credential_id = passkeys.answer_credential_id(answer)
            key = shopper.passkey_for_sign_in(store, credential_id)
            handle = shopper.webauthn_user(store, key["shopper_id"]) if key else None
            count = passkeys.finish_authentication(store, rp, data.get("ceremony"), answer, key, handle)
            shopper.passkey_used(store, credential_id, count)
            log.info("a shopper signed in with a passkey")
            return signed_in(request, JSONResponse({"next": next_step(request)}, headers=SECURITY_HEADERS),
                             key["shopper_id"], credential_id)
        return await run_in_threadpool(finish)

    @app.post("/me/sign-out", include_in_schema=False)
    @guarded
    async def sign_out(request: Request):
        web.check_origin(request)
        fields = await web.form(request)

        def leave():
            session = current(web, request)
            if session is None:
                return signed_out(request)
            web.check_csrf(session.csrf, fields.get("csrf", ""))
            web.end_session(session.session_id)
            response = web.redirect("/me/sign-in?m=out")
            web.clear_session_cookie(request, response, COOKIE)
            return response
        return await run_in_threadpool(leave)

    # -- the signed-in pages ------------------------------------------------------------
    def signed_page(handler):
        """GET: the page for the signed-in shopper, or the sign-in page."""
        async def run(request: Request, *args, **kwargs):
            def show():
                session = current(web, request)
                if session is None:
                    return signed_out(request)
                return handler(request, session, *args, **kwargs)
            return await run_in_threadpool(show)
        return guarded(endpoint(run, handler, drop=("session",)))

    def signed_form(handler):
        """POST: same origin, the session's CSRF token, then the change; an ended session
        changes nothing and says so."""
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
        return guarded(endpoint(run, handler, drop=("session", "fields")))

    @app.get("/me", include_in_schema=False)
    @signed_page
    def me(request: Request, session: ShopperSession):
        lang = language(request, session)
        data = shopper.profile(store, session.shopper_id, lang)
        notice = {"claimed": N_("Your card is set up. Welcome to your profile."),
                  "removed": N_("The item was removed from your wishlist."),
                  "watched": N_("Saved. Your next tap at that store's kiosk shows it first once it is on the shelf."),
                  "unwatched": N_("You will not be told about that item any more.")
                  }.get(request.query_params.get("m", ""), "")
        return page(request, "shopper_profile.html", session=session, section="wishlist", profile=data,
                    notice=notice, watches=shelf.watches_of(store, session.shopper_id, lang),
                    choices=shelf.watch_choices(store, session.shopper_id, lang))

    @app.post("/me/wishlist/remove", include_in_schema=False)
    @signed_form
    def remove(request: Request, session: ShopperSession, fields: dict):
        tags = [t for t in fields.get("tags", "").split(",") if t][:shopper.MAX_TAGS]
        shopper.remove_items(store, session.shopper_id, tags)
        return web.redirect("/me?m=removed")

    @app.get("/me/sharing", include_in_schema=False)
    @signed_page
    def sharing(request: Request, session: ShopperSession):
        data = shopper.profile(store, session.shopper_id, language(request, session))
        done = request.query_params.get("m", "")
        notice = {"shared": N_("Saved. The change applies at that brand's kiosks from the next tap."),
                  "stopped": N_("Saved. That brand's kiosks stop showing those items from the next tap, and forget them "
                             "at their next sync.")}.get(done, "")
        notice = notice or {"grant_revoked": N_("Saved. That web shop or app can no longer use your profile.")
                            }.get(done, "")
        return page(request, "shopper_sharing.html", session=session, section="sharing", profile=data, notice=notice,
                    grants=oauth.grants_of(store, session.shopper_id))

    @app.post("/me/grants/{grant_id}/revoke", include_in_schema=False)
    @signed_form
    def revoke_grant(request: Request, session: ShopperSession, fields: dict, grant_id: str):
        """A web shop's or app's access taken back: its tokens are refused at once."""
        oauth.revoke_grant(store, session.shopper_id, grant_id)
        log.info("a shopper took back a web shop's or app's access on their page")
        return web.redirect("/me/sharing?m=grant_revoked#grants")

    @app.post("/me/shelf-watches", include_in_schema=False)
    @signed_form
    def shelf_watch(request: Request, session: ShopperSession, fields: dict):
        """"Tell me when it is on the shelf here": add (or stop) one item's watch at one store."""
        gtin, store_id = fields.get("gtin", ""), fields.get("store", "")
        if fields.get("stop") == "yes":
            shelf.remove_watch(store, session.shopper_id, gtin, store_id)
            return web.redirect("/me?m=unwatched#watches")
        shelf.add_watch(store, session.shopper_id, gtin, store_id, via="page")
        return web.redirect("/me?m=watched#watches")

    @app.post("/me/sharing", include_in_schema=False)
    @signed_form
    def change_sharing(request: Request, session: ShopperSession, fields: dict):
        brand_id, what, allow = fields.get("brand", ""), fields.get("what", ""), fields.get("allow", "")
        if what not in ("others", "staff") or allow not in ("yes", "no") or not brand_id or len(brand_id) > 64:
            raise Refused(400, "bad_form")
        if what == "others":
            shopper.set_sharing(store, session.shopper_id, brand_id, allow == "yes", via="page")
        else:
            shopper.set_staff_search(store, session.shopper_id, brand_id, allow == "yes", via="page")
        return web.redirect("/me/sharing?m=" + ("shared" if allow == "yes" else "stopped") + f"#brand-{brand_id}")

    @app.get("/me/access", include_in_schema=False)
    @signed_page
    def access(request: Request, session: ShopperSession):
        rows = shopper.access_log(store, session.shopper_id)
        return page(request, "shopper_access.html", session=session, section="access", rows=rows,
                    retention_days=shopper.ACCESS_RETENTION_DAYS)

    @app.get("/me/cards", include_in_schema=False)
    @signed_page
    def cards(request: Request, session: ShopperSession):
        data = shopper.profile(store, session.shopper_id, language(request, session))
        notice = {"renamed": N_("The name is saved."), "revoked": N_("Revoked. It is an unknown card at every kiosk now."),
                  "phone": N_("The phone is added. Tap it at a kiosk to check in."),
                  "passkey": N_("The passkey is added."), "passkey_removed": N_("The passkey is removed.")
                  }.get(request.query_params.get("m", ""), "")
        return page(request, "shopper_cards.html", session=session, section="cards", profile=data, notice=notice,
                    current_passkey=session.passkey_id)

    @app.post("/me/cards/{card_id}/rename", include_in_schema=False)
    @signed_form
    def rename_card(request: Request, session: ShopperSession, fields: dict, card_id: str):
        shopper.rename_card(store, session.shopper_id, card_id, fields.get("name", ""))
        return web.redirect("/me/cards?m=renamed")

    @app.post("/me/phones/{phone_id:path}/rename", include_in_schema=False)
    @signed_form
    def rename_phone(request: Request, session: ShopperSession, fields: dict, phone_id: str):
        shopper.rename_phone(store, session.shopper_id, phone_id, fields.get("name", ""))
        return web.redirect("/me/cards?m=renamed")

    @app.get("/me/{kind}/{item_id:path}/revoke", include_in_schema=False)
    @signed_page
    def confirm_revoke(request: Request, session: ShopperSession, kind: str, item_id: str):
        if kind not in ("cards", "phones"):
            raise Refused(404, "not_found")
        data = shopper.profile(store, session.shopper_id, language(request, session))
        found = [c for c in data[kind] if c["id"] == item_id and not c["revoked"]]
        if not found:
            raise HubFailure(api.P_NOT_FOUND, "not this shopper's", 404)
        return page(request, "shopper_revoke.html", session=session, section="cards", kind=kind, item=found[0])

    @app.post("/me/{kind}/{item_id:path}/revoke", include_in_schema=False)
    @signed_form
    def revoke(request: Request, session: ShopperSession, fields: dict, kind: str, item_id: str):
        if kind not in ("cards", "phones"):
            raise Refused(404, "not_found")
        if fields.get("confirm") != "yes":
            return web.redirect(f"/me/{kind}/{item_id}/revoke")
        (shopper.revoke_card if kind == "cards" else shopper.revoke_phone)(store, session.shopper_id, item_id)
        log.info("a shopper revoked one of their %s on their page", kind)
        return web.redirect("/me/cards?m=revoked")

    @app.post("/me/phones/add", include_in_schema=False)
    @signed_form
    def add_phone(request: Request, session: ShopperSession, fields: dict):
        code = fields.get("pairing", "").strip()
        credential_id, _sep, key_hex = code.rpartition(":")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            key = b""
        if not credential_id or len(key) != 32:
            return error_page(request, 422, N_("That pairing code is not right. Copy it again from the app: it looks "
                              "like phone-id:64 letters and digits."), action=N_("Back to cards and phones"),
                              href="/me/cards", session=session)
        shopper.add_phone(store, session.shopper_id, credential_id, key)
        return web.redirect("/me/cards?m=phone")

    def json_session(request: Request, data: dict) -> ShopperSession | None:
        """The signed-in shopper of a JSON call, its CSRF token checked (in the body)."""
        session = current(web, request)
        if session is not None:
            web.check_csrf(session.csrf, data.get("csrf") if isinstance(data.get("csrf"), str) else "")
        return session

    @app.post("/me/passkeys/options", include_in_schema=False)
    @json_guarded
    async def passkey_options(request: Request):
        data = await json_body(request)

        def start():
            session = json_session(request, data)
            if session is None:
                return problem_json(request, 401, N_("Your session has ended. Please sign in again."))
            existing = [p["id"] for p in shopper.passkeys(store, session.shopper_id)]
            ceremony, options = passkeys.registration_options(
                store, rp, passkeys.ADD, session.shopper_id, shopper.webauthn_user(store, session.shopper_id),
                _(language(request, session), "My shopper profile"), exclude=existing)
            return JSONResponse({"ceremony": ceremony, "options": options}, headers=SECURITY_HEADERS)
        return await run_in_threadpool(start)

    @app.post("/me/passkeys", include_in_schema=False)
    @json_guarded
    async def add_passkey(request: Request):
        data = await json_body(request)

        def finish():
            session = json_session(request, data)
            if session is None:
                return problem_json(request, 401, N_("Your session has ended. Please sign in again."))
            key = passkeys.finish_registration(store, rp, passkeys.ADD, session.shopper_id, data.get("ceremony"),
                                               data.get("credential"))
            shopper.add_passkey(store, session.shopper_id, key)
            return JSONResponse({"next": "/me/cards?m=passkey"}, headers=SECURITY_HEADERS)
        return await run_in_threadpool(finish)

    @app.post("/me/passkeys/{passkey_id}/remove", include_in_schema=False)
    @signed_form
    def remove_passkey(request: Request, session: ShopperSession, fields: dict, passkey_id: str):
        shopper.remove_passkey(store, session.shopper_id, passkey_id)
        if passkey_id == session.passkey_id:  # the passkey this session was opened with: signed out
            response = web.redirect("/me/sign-in?m=out")
            web.clear_session_cookie(request, response, COOKIE)
            return response
        return web.redirect("/me/cards?m=passkey_removed")

    @app.get("/me/data", include_in_schema=False)
    @signed_page
    def my_data(request: Request, session: ShopperSession):
        return page(request, "shopper_data.html", session=session, section="data",
                    retention_days=shopper.ACCESS_RETENTION_DAYS, scan_days=shopper.SCAN_DAYS)

    @app.get("/me/export.json", include_in_schema=False)
    @signed_page
    def export_json(request: Request, session: ShopperSession):
        body = json.dumps(shopper.export(store, session.shopper_id), ensure_ascii=False, indent=2)
        return Response(body, media_type="application/json; charset=utf-8", headers={
            **SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="my-shopper-profile.json"'})

    @app.get("/me/wishlist.csv", include_in_schema=False)
    @signed_page
    def export_csv(request: Request, session: ShopperSession):
        body = shopper.wishlist_csv(store, session.shopper_id, language(request, session))
        return Response("\ufeff" + body, media_type="text/csv; charset=utf-8", headers={
            **SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="my-wishlist.csv"'})

    @app.get("/me/erase", include_in_schema=False)
    @signed_page
    def confirm_erase(request: Request, session: ShopperSession):
        return page(request, "shopper_erase.html", session=session, section="data")

    @app.post("/me/erase", include_in_schema=False)
    @signed_form
    def erase(request: Request, session: ShopperSession, fields: dict):
        if fields.get("confirm") != "yes":
            return web.redirect("/me/erase")
        shopper.erase(store, session.shopper_id)
        log.info("a shopper erased their profile on their page")
        response = web.redirect("/me/sign-in?m=erased")
        web.clear_session_cookie(request, response, COOKIE)
        return response

    @app.api_route("/me/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    @guarded
    async def not_found(request: Request, rest: str):
        return error_page(request, 404, N_("This page does not exist."), action=N_("Back to my profile"), href="/me")


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
