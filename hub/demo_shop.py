"""A reference web shop for the demo brand lotus ("Lotus & Linen"), served next to the demo hub
(`kiosk hub --demo`, `kiosk demo`, the browser tests) on its own loopback port. It is a client of
the hub like any brand's shop, through the hub's public APIs only:

    the brand API (the demo brand key)   GET /v1/brand/products (the catalog), POST/GET
                                         /v1/brand/clients (it registers itself as an OAuth client
                                         with redirect URI http://localhost:PORT/callback)
    OAuth 2.0 (RFC 6749, 7636, 7009, 8414) authorization code + PKCE S256 through Authlib's client,
                                         `state` checked; refresh with the refresh token when the
                                         access token has expired; sign-out revokes the refresh token
    the channel API (the access token)   GET /v1/channel/wishlist (If-None-Match), POST .../items,
                                         .../remove (observed remove: the tags shown), .../merge

Pages (server rendered, plain forms, no script; en/vi/ru/th through the hub's gettext catalogs):

    GET  /                 the products, a "Save to wishlist" button on each
    POST /save             signed out: into the guest list; signed in: an add (event id in the form)
    POST /remove           signed out: out of the guest list; signed in: the observed remove
    GET  /wishlist         the wishlist as the brand may see it (or the guest list)
    GET  /sign-in          to the hub's authorization endpoint (PKCE S256, state)
    GET  /callback         code -> tokens, then the guest list merged (one idempotent call)
    POST /sign-out         the refresh token revoked at the hub, the session ended

The guest list lives in the shop's own server-side session: a random cookie id (`shop_session`,
HttpOnly, SameSite=Lax so it comes back with the hub's redirect to /callback) -> a dict in this
process's memory. That is enough for a demo shop (one process, lost at a restart); a real shop
keeps it in its own database. Each guest item gets its event id (uuid4) when it is saved, fixed
from then on: the merge at sign-in sends those ids, so a retried merge adds nothing twice.

    shop = DemoShop("http://localhost:8080").start()   # registers itself with the demo brand key
    print(shop.url)                                     # http://localhost:PORT
    shop.stop()
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from authlib.integrations.base_client import OAuthError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hub import i18n
from hub.server import InThread
from hub.i18n import LANG_NAMES, LANGUAGES, N_
from hub.web import SECURITY_HEADERS, Refused, Web, pick_language

log = logging.getLogger(__name__)
BRAND = "lotus"
SHOP_NAME = "Lotus & Linen"
CLIENT_NAME = "Lotus & Linen web shop"  # how the consent screen and the Sharing page name this client
SCOPES = "wishlist wishlist.other_brands"
COOKIE = "shop_session"  # never the hub's names: cookies do not tell ports apart (localhost:A, localhost:B)
LANG_COOKIE = "shop_lang"
SESSION_S = 8 * 3600
MAX_SESSIONS = 10_000
HTTP_TIMEOUT_S = 10.0
CSS = Path(__file__).resolve().parent / "static" / "shop.css"

SIGNED_OUT = N_("You are signed out.")
ENDED = N_("The shop can no longer reach your wishlist: the access was taken back or has ended. Sign in again "
           "to save items to your profile.")
REFUSED = N_("You did not allow the shop to use your wishlist. Your saved items stay in this shop's guest list.")
HUB_DOWN = N_("The shopper profile service cannot be reached right now. Try again in a minute.")
CHANNELS = {"web": N_("saved on a web shop"), "app": N_("saved in an app"), "kiosk": N_("saved at a store kiosk")}
BAD_STATE = N_("This sign-in could not be finished (it expired or was not started here). Sign in again.")


class Ended(Exception):
    """The hub refused the shop's token and its refresh token: the shopper must sign in again."""


@dataclass
class ShopSession:
    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created_at: float = field(default_factory=time.time)
    guest: list = field(default_factory=list)  # [{"event_id": uuid4, "gtin": ...}] in the order saved
    token: dict | None = None  # access_token, refresh_token, expires_at
    pending: dict | None = None  # {"state", "code_verifier"} of a sign-in under way
    etag: str = ""
    wishlist: dict | None = None  # the last body read (for If-None-Match)
    notice: str = ""
    last_merge: list = field(default_factory=list)  # what was merged at sign-in (the tests replay it)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


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


class DemoShop(InThread):
    """The shop's app on its own loopback port (like hub.server.EmbeddedHub)."""

    name = "demo web shop"

    def __init__(self, hub_url: str, port: int = 0, host: str = "127.0.0.1", client_id: str = "",
                 brand_key: str = "") -> None:
        from hub import demo
        from hub.server import free_port

        self.hub_url = hub_url.rstrip("/")
        self.host = host
        self.port = port or free_port(host)
        self.client_id = client_id
        self.brand_key = brand_key or demo.brand_key(BRAND)
        self.redirect_uri = f"{self.url}/callback"
        self.web = ShopWeb()
        self.http = requests.Session()
        self.sessions: dict[str, ShopSession] = {}
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._products: list[dict] | None = None
        self._products_at = 0.0
        self.app = self._create_app()
        self.serve_in_thread(self.app, host, self.port)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self, timeout: float = 10.0) -> "DemoShop":
        """Serve, then register with the hub (when it answers already; else at the first page
        that needs it: `kiosk hub --demo` starts the shop before the hub is up)."""
        super().start(timeout)
        try:
            self.ensure_client()
        except (requests.RequestException, RuntimeError) as exc:
            log.info("the demo web shop will register with the hub later: %s", exc)
        return self

    def stop(self) -> None:
        super().stop()
        self.http.close()

    # -- the hub: brand API ------------------------------------------------------------
    def _brand(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, self.hub_url + path, timeout=HTTP_TIMEOUT_S,
                                 headers={"Authorization": f"Bearer {self.brand_key}"}, **kw)

    def ensure_client(self) -> str:
        """This shop's OAuth client id: the one given, else one the brand registered earlier for
        this exact redirect URI, else a new registration (POST /v1/brand/clients)."""
        with self._lock:
            if self.client_id:
                return self.client_id
            listed = self._brand("GET", "/v1/brand/clients")
            if listed.status_code == 200:
                for client in listed.json().get("clients", []):
                    if (client.get("name") == CLIENT_NAME and self.redirect_uri in (client.get("redirect_uris") or [])
                            and not client.get("revoked_at") and not client.get("revoked")):
                        self.client_id = client.get("client_id") or client.get("id")
                        return self.client_id
            answer = self._brand("POST", "/v1/brand/clients",
                                 json={"name": CLIENT_NAME, "redirect_uris": [self.redirect_uri], "kind": "web"})
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"the hub refused the shop's client registration ({answer.status_code}: "
                                   f"{answer.text[:200]})")
            body = answer.json()
            self.client_id = body.get("client_id") or body.get("id") or ""
            if not self.client_id:
                raise RuntimeError("the hub's answer to the client registration names no client_id")
            log.info("the demo web shop is OAuth client %s of the hub %s", self.client_id, self.hub_url)
            return self.client_id

    def products(self) -> list[dict]:
        """Lotus's live products (the brand API, every page of it), kept for a minute."""
        with self._lock:
            if self._products is not None and time.monotonic() - self._products_at < 60:
                return self._products
        items, after = [], ""
        while True:
            answer = self._brand("GET", "/v1/brand/products", params={"after": after, "limit": 500})
            answer.raise_for_status()
            body = answer.json()
            items += [p for p in body.get("products", []) if not p.get("deleted")]
            after = body.get("next") or ""
            if not after:
                break
        with self._lock:
            self._products, self._products_at = items, time.monotonic()
        return items

    # -- the hub: OAuth ----------------------------------------------------------------
    def metadata(self) -> dict:
        """RFC 8414: the endpoints, read once from the hub."""
        if self._metadata is None:
            answer = self.http.get(self.hub_url + "/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT_S)
            answer.raise_for_status()
            self._metadata = answer.json()
        return self._metadata

    def oauth(self, token: dict | None = None):
        from authlib.integrations.requests_client import OAuth2Session

        return OAuth2Session(client_id=self.ensure_client(), redirect_uri=self.redirect_uri, scope=SCOPES,
                             code_challenge_method="S256", token=token, token_endpoint_auth_method="none")

    def authorize_url(self, session: ShopSession, lang: str) -> str:
        from authlib.common.security import generate_token

        verifier, state = generate_token(64), secrets.token_urlsafe(24)
        url, _state = self.oauth().create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                            code_verifier=verifier, ui_locales=lang)
        session.pending = {"state": state, "code_verifier": verifier, "at": time.time()}
        return url

    def finish_sign_in(self, session: ShopSession, code: str, state: str) -> None:
        pending, session.pending = session.pending, None
        if (not pending or not state or time.time() - pending["at"] > 600
                or not secrets.compare_digest(pending["state"].encode(), state.encode("utf-8", "replace"))):
            raise Refused(400, BAD_STATE)
        with self.oauth() as client:
            token = client.fetch_token(self.metadata()["token_endpoint"], grant_type="authorization_code", code=code,
                                       code_verifier=pending["code_verifier"], redirect_uri=self.redirect_uri)
        session.token = dict(token)
        session.etag, session.wishlist = "", None

    def _refresh(self, session: ShopSession) -> None:
        token = session.token or {}
        if not token.get("refresh_token"):
            raise Ended()
        try:
            with self.oauth(token) as client:
                fresh = client.refresh_token(self.metadata()["token_endpoint"],
                                             refresh_token=token["refresh_token"])
        except OAuthError as exc:  # invalid_grant: revoked, rotated away or expired
            log.info("the hub refused the shop's refresh token: %s", exc.error)
            raise Ended() from None
        session.token = dict(fresh)

    def revoke(self, session: ShopSession) -> None:
        token = session.token or {}
        if not token.get("refresh_token"):
            return
        endpoint = self.metadata().get("revocation_endpoint")
        if endpoint:
            with self.oauth(token) as client:
                client.revoke_token(endpoint, token=token["refresh_token"], token_type_hint="refresh_token")

    # -- the hub: channel API ----------------------------------------------------------
    def channel(self, session: ShopSession, method: str, path: str, *, json_body=None,
                headers: dict | None = None, params: dict | None = None) -> requests.Response:
        """One call with the access token: refreshed first when it has expired, refreshed once
        more on a 401; a refresh the hub refuses ends the shop's hold (Ended)."""
        if session.token is None:
            raise Ended()
        for attempt in (0, 1):
            token = session.token
            expires_at = token.get("expires_at")
            if attempt or (isinstance(expires_at, (int, float)) and expires_at - 10 < time.time()):
                self._refresh(session)
                token = session.token
            answer = self.http.request(method, self.hub_url + path, json=json_body, params=params,
                                       timeout=HTTP_TIMEOUT_S,
                                       headers={"Authorization": f"Bearer {token['access_token']}", **(headers or {})})
            if answer.status_code != 401:
                return answer
        session.token = None
        raise Ended()

    def merge_guest_list(self, session: ShopSession) -> None:
        """The guest list into the profile: one call, a union by GTIN, its event ids fixed per item
        (a retry adds nothing twice). The guest list is emptied only once the hub said yes."""
        if not session.guest:
            return
        items = [dict(i) for i in session.guest]
        answer = self.channel(session, "POST", "/v1/channel/wishlist/merge", json_body={"items": items})
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"the hub refused the merge ({answer.status_code}: {answer.text[:200]})")
        session.last_merge = items
        session.guest = []
        session.etag, session.wishlist = "", None

    def read_wishlist(self, session: ShopSession, lang: str) -> dict:
        headers = {"If-None-Match": session.etag} if session.etag and session.wishlist is not None else {}
        answer = self.channel(session, "GET", "/v1/channel/wishlist", headers=headers, params={"lang": lang})
        if answer.status_code == 304 and session.wishlist is not None:
            return session.wishlist
        answer.raise_for_status()
        session.wishlist, session.etag = answer.json(), answer.headers.get("ETag", "")
        session.wishlist["_lang"] = lang
        return session.wishlist

    # -- sessions ----------------------------------------------------------------------
    def session(self, request: Request, create: bool = False) -> ShopSession | None:
        sid = request.cookies.get(COOKIE, "")
        now = time.time()
        with self._lock:
            found = self.sessions.get(hashlib.sha256(sid.encode()).hexdigest()) if 20 <= len(sid) <= 100 else None
            if found is not None and now - found.created_at > SESSION_S:
                self.sessions.pop(found.id, None)
                found = None
            if found is None and create:
                if len(self.sessions) >= MAX_SESSIONS:  # the oldest go first
                    for key in sorted(self.sessions, key=lambda k: self.sessions[k].created_at)[:MAX_SESSIONS // 10]:
                        self.sessions.pop(key, None)
                sid = secrets.token_urlsafe(32)
                found = ShopSession(hashlib.sha256(sid.encode()).hexdigest())
                found.cookie = sid  # type: ignore[attr-defined]  (set on the response once)
                self.sessions[found.id] = found
            return found

    def _with_cookie(self, request: Request, response: Response, session: ShopSession | None) -> Response:
        sid = getattr(session, "cookie", "") if session else ""
        if sid:
            response.set_cookie(COOKIE, sid, max_age=SESSION_S, path="/", httponly=True, samesite="lax",
                                secure=request.url.scheme == "https")
            del session.cookie  # type: ignore[attr-defined]
        return response

    # -- the pages ---------------------------------------------------------------------
    def _create_app(self) -> FastAPI:
        app = FastAPI(title="Lotus & Linen (demo web shop)", docs_url=None, redoc_url=None, openapi_url=None)
        web, shop = self.web, self

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
            return shop._with_cookie(request, response, session)

        def redirect(request: Request, session: ShopSession | None, url: str) -> Response:
            return shop._with_cookie(request, web.redirect(url), session)

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
                    for p in shop.products()]

        def saved_gtins(session: ShopSession | None, lang: str) -> set[str]:
            if session is None:
                return set()
            if session.token is None:
                return {i["gtin"] for i in session.guest}
            try:
                return {i.get("gtin") for i in shop.read_wishlist(session, lang).get("items", [])
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
                if gtin not in {p["gtin"] for p in shop.products()}:
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
                        answer = shop.channel(session, "POST", "/v1/channel/wishlist/items",
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
                        answer = shop.channel(session, "POST", "/v1/channel/wishlist/remove",
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
                titles = {p["gtin"]: title_of(p, lang) for p in shop.products()}
                with session.lock:
                    if session.token is None:
                        items = [{"gtin": i["gtin"], "title": titles.get(i["gtin"], i["gtin"]), "brand_name": SHOP_NAME,
                                  "stock": [], "channel": ""} for i in session.guest]
                        return page(request, session, "shop_wishlist.html", items=items, guest=True, ended=False,
                                    section="wishlist")
                    try:
                        if session.guest:  # a merge that failed at sign-in: retried (the same event ids)
                            shop.merge_guest_list(session)
                        body = shop.read_wishlist(session, lang)
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
                    return redirect(request, session, shop.authorize_url(session, web.language(request)))
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
                    shop.finish_sign_in(session, query.get("code", ""), query.get("state", ""))
                    try:
                        shop.merge_guest_list(session)
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
                        shop.revoke(session)
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

