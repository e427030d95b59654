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

The shop's parts: hub/demo_shop_client.py (the hub's APIs, the session a shopper has here)
and hub/demo_shop_pages.py (the pages); this module serves them and keeps the sessions.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time

import requests
from fastapi import Request
from fastapi.responses import Response

from hub.demo_shop_client import BRAND, HubClient, ShopSession
from hub.demo_shop_pages import create_app
from hub.server import InThread, free_port

log = logging.getLogger(__name__)
COOKIE = "shop_session"  # never the hub's names: cookies do not tell ports apart (localhost:A, localhost:B)
SESSION_S = 8 * 3600
MAX_SESSIONS = 10_000


class DemoShop(InThread):
    """The shop's app on its own loopback port (like hub.server.EmbeddedHub)."""

    name = "demo web shop"

    def __init__(self, hub_url: str, port: int = 0, host: str = "127.0.0.1", client_id: str = "",
                 brand_key: str = "") -> None:
        from hub import demo

        self.host = host
        self.port = port or free_port(host)
        self.hub = HubClient(hub_url, f"{self.url}/callback", client_id, brand_key or demo.brand_key(BRAND))
        self.sessions: dict[str, ShopSession] = {}
        self._lock = threading.Lock()
        self.app = create_app(self)
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
            self.hub.ensure_client()
        except (requests.RequestException, RuntimeError) as exc:
            log.info("the demo web shop will register with the hub later: %s", exc)
        return self

    def stop(self) -> None:
        super().stop()
        self.hub.close()

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

    def with_cookie(self, request: Request, response: Response, session: ShopSession | None) -> Response:
        sid = getattr(session, "cookie", "") if session else ""
        if sid:
            response.set_cookie(COOKIE, sid, max_age=SESSION_S, path="/", httponly=True, samesite="lax",
                                secure=request.url.scheme == "https")
            del session.cookie  # type: ignore[attr-defined]
        return response
