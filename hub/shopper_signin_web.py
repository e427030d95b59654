"""The doors of the shopper's page (hub/shopper_web.py): the card's URL, which says only whether
the card is set up; claiming an unclaimed card with its first passkey; signing in with a
discoverable passkey (to the profile, or back to the authorization request that sent the
shopper here); signing out. Claims and sign-ins are rate limited per address.
"""
from __future__ import annotations

import logging
import secrets
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hub import passkeys, ratelimit, shopper
from hub.i18n import N_
from hub.passkeys import PasskeyRefused
from hub.shopper_pages import (CLAIM_LIMIT, COOKIE, SIGNIN_LIMIT, WINDOW_S, ShopperPages, current, next_step,
                               shopper_language, valid_token)
from hub.web import SECURITY_HEADERS

log = logging.getLogger(__name__)


def add_routes(app: FastAPI, pages: ShopperPages) -> None:
    store, web, rp, language, _ = pages.store, pages.web, pages.rp, shopper_language, pages.web.gettext
    page, problem_json, json_body, limited = pages.page, pages.problem_json, pages.json_body, pages.limited
    guarded, json_guarded, signed_in, signed_out = pages.guarded, pages.json_guarded, pages.signed_in, pages.signed_out
    wrong_host = pages.wrong_host

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
