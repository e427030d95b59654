"""The demo web shop (hub/demo_shop.py) as a client of the hub, through its public APIs only:
the brand API with the demo brand's key (the shop's own OAuth client registration, the
catalog), OAuth 2.0 through Authlib's client (code + PKCE S256, `state` checked, refresh,
the refresh token revoked at sign-out) and the channel API with the shopper's access token
(ETag, adds, observed removes, the guest list merged).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import requests
from authlib.integrations.base_client import OAuthError

from hub.i18n import N_
from hub.web import Refused

log = logging.getLogger(__name__)
BRAND = "lotus"
CLIENT_NAME = "Lotus & Linen web shop"  # how the consent screen and the Sharing page name this client
SCOPES = "wishlist wishlist.other_brands"
HTTP_TIMEOUT_S = 10.0

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


class HubClient:
    """The hub at `hub_url` as this shop reaches it; its registration and catalog kept here."""

    def __init__(self, hub_url: str, redirect_uri: str, client_id: str, brand_key: str) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.redirect_uri = redirect_uri
        self.client_id = client_id
        self.brand_key = brand_key
        self.http = requests.Session()
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._products: list[dict] | None = None
        self._products_at = 0.0

    def close(self) -> None:
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
