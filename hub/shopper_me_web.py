"""The signed-in shopper's pages under /me (hub/shopper_web.py): the wishlist and shelf
watches, sharing per brand and the web shops and apps let in, who saw my data, cards, phones
and passkeys, the export, and erase. A GET needs the session; a POST also its CSRF token.
Every other /me path is a 404 page (registered last).
"""
from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from kiosk import api
from hub import oauth, passkeys, shelf, shopper
from hub.i18n import N_
from hub.shopper_pages import COOKIE, ShopperPages, ShopperSession, shopper_language
from hub.store import HubFailure
from hub.web import SECURITY_HEADERS, Refused

log = logging.getLogger(__name__)


def add_routes(app: FastAPI, pages: ShopperPages) -> None:
    store, web, rp, language, _ = pages.store, pages.web, pages.rp, shopper_language, pages.web.gettext
    page, error_page, problem_json, json_body = pages.page, pages.error_page, pages.problem_json, pages.json_body
    guarded, json_guarded, json_session = pages.guarded, pages.json_guarded, pages.json_session
    signed_page, signed_form = pages.signed_page, pages.signed_form

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
