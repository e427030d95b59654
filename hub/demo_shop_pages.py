"""The demo web shop's pages (hub/demo_shop.py): server rendered, plain forms, no script, in
en/vi/ru/th through the hub's templates and gettext catalogs. Signed out, saving and removing
change the shop's guest list; signed in, the profile's wishlist through the channel API.
"""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import requests
from authlib.integrations.base_client import OAuthError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hub import i18n
from hub.demo_shop_client import BAD_STATE, BRAND, Ended, ShopSession
from hub.i18n import LANG_NAMES, LANGUAGES, N_
from hub.web import SECURITY_HEADERS, Refused, Web, pick_language

log = logging.getLogger(__name__)
SHOP_NAME = "Lotus & Linen"
LANG_COOKIE = "shop_lang"
CSS = Path(__file__).resolve().parent / "static" / "shop.css"

SIGNED_OUT = N_("You are signed out.")
ENDED = N_("The shop can no longer reach your wishlist: the access was taken back or has ended. Sign in again "
           "to save items to your profile.")
REFUSED = N_("You did not allow the shop to use your wishlist. Your saved items stay in this shop's guest list.")
HUB_DOWN = N_("The shopper profile service cannot be reached right now. Try again in a minute.")
CHANNELS = {"web": N_("saved on a web shop"), "app": N_("saved in an app"), "kiosk": N_("saved at a store kiosk")}


class ShopWeb(Web):
    """The hub's templates, catalogs and security headers; the shop's own language cookie."""

    def __init__(self) -> None:
        super().__init__(store=None)

    def language(self, request: Request) -> str:
        return pick_language(request.query_params.get("lang", ""), request.cookies.get(LANG_COOKIE, ""),
                             request.headers.get("accept-language", ""))

    def page(self, request: Request, template: str, status: int = 200, lang: str | None = None,
             headers: dict | None = None, **context) -> HTMLResponse:
        lang = lang or self.language(request)
        body = self.env.get_template(template).render(
            lang=lang, languages=LANGUAGES, lang_names=LANG_NAMES,
            _=lambda msgid, /, **v: i18n.gettext(lang, msgid, **v),
            ngettext=lambda singular, plural, n, /, **v: i18n.ngettext(lang, singular, plural, n, **v),
            path=request.url.path, **context)
        response = HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
        response.headers["Content-Language"] = lang
        chosen = request.query_params.get("lang", "")
        if chosen in LANGUAGES:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, path="/", httponly=True, samesite="lax")
        return response


def price_text(price, currency: str) -> str:
    """The brand API's decimal string (or number) with its currency: "1.760.000 ₫", "19.99 GBP"."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(str(price))
    except (InvalidOperation, ValueError):
        return ""
    if not amount.is_finite():
        return ""
    if currency == "VND":
        return f"{int(amount):,} ₫".replace(",", ".")
    return f"{amount:,.2f} {currency}".strip()


def title_of(product: dict, lang: str) -> str:
    texts = product.get("texts") or {}
    own = texts.get(lang) if isinstance(texts, dict) else None
    if isinstance(own, dict) and own.get("title"):
        return own["title"]
    titles = product.get("titles")
    if isinstance(titles, dict) and titles.get(lang):
        return titles[lang]
    return product.get("title") or product.get("gtin", "")


def create_app(shop) -> FastAPI:
    """The shop's app: `shop` keeps the sessions (DemoShop.session, .with_cookie) and reaches the
    hub (its HubClient, shop.hub)."""
    app = FastAPI(title="Lotus & Linen (demo web shop)", docs_url=None, redoc_url=None, openapi_url=None)
    web, client = ShopWeb(), shop.hub

    def page(request: Request, session: ShopSession | None, template: str, status: int = 200, **context):
        lang = web.language(request)
        notice = session.notice if session else ""
        if session:
            session.notice = ""
        guest = session.guest if session else []
        context.setdefault("section", "")
        response = web.page(request, template, status=status, lang=lang, shop_name=SHOP_NAME,
                            signed_in=bool(session and session.token), csrf=session.csrf if session else "",
                            guest_count=len(guest), notice=notice, channel_names=CHANNELS,
                            **context)
        return shop.with_cookie(request, response, session)

    def redirect(request: Request, session: ShopSession | None, url: str) -> Response:
        return shop.with_cookie(request, web.redirect(url), session)

    def guarded(handler):
        import functools

        @functools.wraps(handler)
        async def run(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except Refused as refusal:
                return page(request, shop.session(request), "shop_error.html", status=refusal.status,
                            message=refusal.message, values=refusal.values)
            except OAuthError as exc:  # the hub's token endpoint said no (invalid_grant, ...)
                log.info("the hub refused the shop's OAuth request: %s", exc.error)
                return page(request, shop.session(request), "shop_error.html", status=400, message=BAD_STATE,
                            values={})
            except (requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
                log.warning("the demo web shop could not reach the hub: %s", exc)
                return page(request, shop.session(request), "shop_error.html", status=503, message=HUB_DOWN,
                            values={})
        return run

    async def form(request: Request, session: ShopSession | None) -> dict:
        web.check_origin(request)
        fields = await web.form(request)
        if session is None:
            raise Refused(403, N_("This form has expired or did not come from this page, so nothing was "
                                  "changed. Open the page again and retry."))
        web.check_csrf(session.csrf, fields.get("csrf", ""))
        return fields

    def product_rows(lang: str, saved: set[str]) -> list[dict]:
        return [{"gtin": p["gtin"], "title": title_of(p, lang), "price": price_text(p.get("price"), p.get("currency", "")),
                 "saved": p["gtin"] in saved, "event_id": str(uuid.uuid4()), "initials": _initials(p.get("title", ""))}
                for p in client.products()]

    def saved_gtins(session: ShopSession | None, lang: str) -> set[str]:
        if session is None:
            return set()
        if session.token is None:
            return {i["gtin"] for i in session.guest}
        try:
            return {i.get("gtin") for i in client.read_wishlist(session, lang).get("items", [])
                    if i.get("brand", BRAND) == BRAND}
        except Ended:
            session.notice = ENDED
            return set()

    @app.get("/", include_in_schema=False)
    @guarded
    async def home(request: Request):
        def show():
            session = shop.session(request, create=True)
            lang = web.language(request)
            with session.lock:
                saved = saved_gtins(session, lang)
                return page(request, session, "shop_products.html", products=product_rows(lang, saved),
                            section="products")
        return await run_in_threadpool(show)

    @app.post("/save", include_in_schema=False)
    @guarded
    async def save(request: Request):
        session = shop.session(request)
        fields = await form(request, session)
        gtin, event_id = fields.get("gtin", ""), fields.get("event_id", "")

        def act():
            if gtin not in {p["gtin"] for p in client.products()}:
                raise Refused(404, N_("There is no such product in this shop."))
            try:
                event = str(uuid.UUID(event_id))
            except ValueError:
                event = str(uuid.uuid4())
            with session.lock:
                if session.token is None:
                    if gtin not in {i["gtin"] for i in session.guest}:
                        session.guest.append({"event_id": event, "gtin": gtin})
                    session.notice = N_("Saved to this shop's guest list. Sign in to keep it in your profile.")
                    return redirect(request, session, "/")
                try:
                    answer = client.channel(session, "POST", "/v1/channel/wishlist/items",
                                            json_body={"event_id": event, "gtin": gtin})
                except Ended:
                    session.notice = ENDED
                    return redirect(request, session, "/wishlist")
                if answer.status_code not in (200, 201):
                    raise RuntimeError(f"the hub refused the add ({answer.status_code})")
                session.notice = N_("Saved to your wishlist.")
                return redirect(request, session, "/")
        return await run_in_threadpool(act)

    @app.post("/remove", include_in_schema=False)
    @guarded
    async def remove(request: Request):
        session = shop.session(request)
        fields = await form(request, session)
        gtin = fields.get("gtin", "")

        def act():
            with session.lock:
                if session.token is None:
                    session.guest = [i for i in session.guest if i["gtin"] != gtin]
                    session.notice = N_("Removed from the guest list.")
                    return redirect(request, session, "/wishlist")
                shown = [i for i in (session.wishlist or {}).get("items", []) if i.get("gtin") == gtin]
                tags = sorted({t for i in shown for t in (i.get("tags") or [])})
                if not tags:
                    return redirect(request, session, "/wishlist")
                try:
                    answer = client.channel(session, "POST", "/v1/channel/wishlist/remove",
                                            json_body={"event_id": str(uuid.uuid4()), "tags": tags})
                except Ended:
                    session.notice = ENDED
                    return redirect(request, session, "/wishlist")
                if answer.status_code not in (200, 201):
                    raise RuntimeError(f"the hub refused the remove ({answer.status_code})")
                session.notice = N_("Removed from your wishlist.")
                return redirect(request, session, "/wishlist")
        return await run_in_threadpool(act)

    @app.get("/wishlist", include_in_schema=False)
    @guarded
    async def wishlist(request: Request):
        def show():
            session = shop.session(request, create=True)
            lang = web.language(request)
            titles = {p["gtin"]: title_of(p, lang) for p in client.products()}
            with session.lock:
                if session.token is None:
                    items = [{"gtin": i["gtin"], "title": titles.get(i["gtin"], i["gtin"]), "brand_name": SHOP_NAME,
                              "stock": [], "channel": ""} for i in session.guest]
                    return page(request, session, "shop_wishlist.html", items=items, guest=True, ended=False,
                                section="wishlist")
                try:
                    if session.guest:  # a merge that failed at sign-in: retried (the same event ids)
                        client.merge_guest_list(session)
                    body = client.read_wishlist(session, lang)
                except Ended:
                    session.token, session.wishlist, session.etag = None, None, ""
                    session.notice = ENDED
                    return page(request, session, "shop_wishlist.html", status=401, items=[], guest=True,
                                ended=True, section="wishlist")
                items = [wishlist_row(i, titles) for i in body.get("items", [])]
                return page(request, session, "shop_wishlist.html", items=items, guest=False, ended=False,
                            section="wishlist")
        return await run_in_threadpool(show)

    @app.get("/sign-in", include_in_schema=False)
    @guarded
    async def sign_in(request: Request):
        def go():
            session = shop.session(request, create=True)
            with session.lock:
                return redirect(request, session, client.authorize_url(session, web.language(request)))
        return await run_in_threadpool(go)

    @app.get("/callback", include_in_schema=False)
    @guarded
    async def callback(request: Request):
        query = request.query_params

        def finish():
            session = shop.session(request, create=True)
            with session.lock:
                if query.get("error"):
                    session.pending = None
                    session.notice = REFUSED if query.get("error") == "access_denied" else BAD_STATE
                    return redirect(request, session, "/wishlist")
                client.finish_sign_in(session, query.get("code", ""), query.get("state", ""))
                try:
                    client.merge_guest_list(session)
                except (requests.RequestException, RuntimeError) as exc:  # kept; retried at the next page
                    log.warning("the guest list was not merged yet: %s", exc)
                session.notice = N_("You are signed in with your shopper profile.")
                return redirect(request, session, "/wishlist")
        return await run_in_threadpool(finish)

    @app.post("/sign-out", include_in_schema=False)
    @guarded
    async def sign_out(request: Request):
        session = shop.session(request)
        await form(request, session)

        def leave():
            with session.lock:
                try:
                    client.revoke(session)
                except Exception as exc:  # noqa: BLE001 - signed out here whatever the hub says
                    log.warning("the refresh token could not be revoked at the hub: %s", exc)
                session.token, session.wishlist, session.etag, session.guest = None, None, "", []
                session.notice = SIGNED_OUT
                return redirect(request, session, "/")
        return await run_in_threadpool(leave)

    @app.get("/static/shop.css", include_in_schema=False)
    async def css():
        return Response(CSS.read_bytes(), media_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    @app.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def not_found(request: Request, rest: str):
        return page(request, shop.session(request), "shop_error.html", status=404,
                    message=N_("There is no such page."), values={})

    return app


def wishlist_row(item: dict, titles: dict) -> dict:
    stock = item.get("stock") or []
    if isinstance(stock, dict):
        stock = [{"store": k, **(v if isinstance(v, dict) else {"quantity": v})} for k, v in stock.items()]
    rows = []
    for s in stock:
        if not isinstance(s, dict):
            continue
        rows.append({"store": s.get("store_name") or s.get("name") or s.get("store_code") or s.get("store") or "",
                     "quantity": s.get("quantity", 0) or 0})
    return {"gtin": item.get("gtin", ""), "title": item.get("title") or titles.get(item.get("gtin", ""), item.get("gtin", "")),
            "brand": item.get("brand", ""), "brand_name": item.get("brand_name") or item.get("brand", ""),
            "channel": item.get("channel", ""), "stock": rows, "own": item.get("brand", BRAND) == BRAND}


def _initials(title: str) -> str:
    words = [w for w in title.replace(",", " ").split() if w[:1].isalpha()]
    return "".join(w[0] for w in words[:2]).upper()
