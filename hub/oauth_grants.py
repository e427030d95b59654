"""Sign in with the shopper profile, the parts the rest of the hub calls: the scopes (and what
the consent screen says of each), a brand's clients, and the grants and access tokens as the
channel API and the shopper's page see them. hub/oauth.py runs the protocol itself on Authlib;
every name here is read from there too.

    access = authenticate(store, request.headers["authorization"])
    require_scope(access, "wishlist")
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.util import scope_to_list

from kiosk import api
from hub import inputs, shopper
from hub.store import HubFailure, HubStore, token_hash


def N_(msgid: str) -> str:
    return msgid


# The scopes (the API's names) and what the consent screen says for each (msgids).
SCOPES = {
    "wishlist": N_("Save items to your wishlist"),
    "wishlist.other_brands": N_("See the items you saved at other brands"),
    "scans": N_("See your in-store scans"),
}
OTHER_BRANDS = "wishlist.other_brands"
DEFAULT_SCOPE = "wishlist"
KINDS = ("web", "app")
MAX_URIS, MAX_URI = 5, 512
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _now() -> float:
    return time.time()


def _scopes(text: str | None) -> list[str]:
    return [s for s in SCOPES if s in set(scope_to_list(text or "") or [])]


# -- the brand's clients ---------------------------------------------------------------------
def check_redirect_uri(uri: str, kind: str) -> str:
    """A redirect URI a client may register (RFC 6749 §3.1.2, RFC 8252): https with a host;
    http only to the loopback (development, a native app's loopback listener); for an app also
    a private-use scheme in reverse-domain form (com.example.app:/cb). No fragment."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI or not uri.isascii() or not uri.isprintable() \
            or " " in uri or not inputs.safe(uri):
        raise ValueError("a redirect URI must be printable ASCII, at most 512 characters")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError("a redirect URI may not have a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return uri
    if kind == "app" and "." in parts.scheme and not parts.netloc and parts.path.startswith("/"):
        return uri
    raise ValueError("a redirect URI must be https (http only to localhost; an app may use "
                     "com.example.app:/path)")


def register_client(store: HubStore, brand_id: str, name: str, redirect_uris: list[str], kind: str = "web") -> dict:
    """A new public client of `brand_id` (its web shop or app). ValueError: what is wrong."""
    if kind not in KINDS:
        raise ValueError("kind must be web or app")
    name = inputs.text(name, "name", 80).strip()
    if not name:
        raise ValueError("a client needs a name")
    if not isinstance(redirect_uris, list) or not 1 <= len(redirect_uris) <= MAX_URIS:
        raise ValueError(f"give 1 to {MAX_URIS} redirect URIs")
    uris = list(dict.fromkeys(check_redirect_uri(u, kind) for u in redirect_uris))
    client = {"client_id": "cl_" + secrets.token_urlsafe(16), "brand_id": brand_id, "name": name, "kind": kind,
              "redirect_uris": uris, "created_at": _now(), "revoked_at": None}
    store.conn.execute("INSERT INTO oauth_clients(id, brand_id, name, kind, redirect_uris, created_at) "
                       "VALUES (?,?,?,?,?,?)", (client["client_id"], brand_id, name, kind, json.dumps(uris),
                                                client["created_at"]))
    return client


def clients_of(store: HubStore, brand_id: str) -> list[dict]:
    rows = store.all("SELECT id, name, kind, redirect_uris, created_at, revoked_at FROM oauth_clients "
                     "WHERE brand_id=? ORDER BY created_at, id", (brand_id,))
    return [{"client_id": i, "brand_id": brand_id, "name": n, "kind": k, "redirect_uris": json.loads(u),
             "created_at": c, "revoked_at": r} for i, n, k, u, c, r in rows]


def revoke_client(store: HubStore, brand_id: str, client_id: str) -> None:
    """The client is refused from its next call: its tokens and grants die with it."""
    with store.transaction() as conn:
        done = conn.execute("UPDATE oauth_clients SET revoked_at=? WHERE id=? AND brand_id=? AND revoked_at IS NULL",
                            (_now(), client_id, brand_id)).rowcount
        if not done and not conn.execute("SELECT 1 FROM oauth_clients WHERE id=? AND brand_id=?",
                                         (client_id, brand_id)).fetchone():
            raise HubFailure(api.P_NOT_FOUND, "no such client in this brand", 404)
        conn.execute("UPDATE oauth_tokens SET revoked_at=? WHERE client_id=? AND revoked_at IS NULL", (_now(), client_id))

# -- what the channel API and the shopper's page call ------------------------------------------------
@dataclass(frozen=True)
class Access:
    grant_id: str
    client_id: str
    brand_id: str
    shopper_id: str
    scopes: frozenset
    channel: str  # web | app
    client_name: str = ""


def refused(detail: str) -> HubFailure:
    return HubFailure(api.P_UNAUTHORIZED, detail, 401, headers=dict(UNAUTHORIZED))


def authenticate(store: HubStore, authorization_header: str) -> Access:
    """The access token of `Authorization: Bearer ...` (RFC 6750): live, its grant and client
    live, its shopper not erased. Its scopes are the token's as far as the grant still allows."""
    scheme, _, value = (authorization_header or "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 256 or not value.isascii():
        raise HubFailure(api.P_UNAUTHORIZED, "a Bearer access token is required", 401,
                         headers={"WWW-Authenticate": 'Bearer realm="hub"'})
    row = store.one(
        "SELECT t.grant_id, t.client_id, t.brand_id, t.shopper_id, t.scope, g.scope, c.kind, c.name FROM oauth_tokens t "
        "JOIN oauth_grants g ON g.id = t.grant_id AND g.revoked_at IS NULL "
        "JOIN oauth_clients c ON c.id = t.client_id AND c.revoked_at IS NULL "
        "JOIN shoppers s ON s.id = t.shopper_id AND s.erased = 0 "
        "WHERE t.access_hash=? AND t.revoked_at IS NULL AND t.access_expires_at > ?", (token_hash(value), _now()))
    if row is None:
        raise refused("the access token is unknown, expired or revoked")
    grant_id, client_id, brand_id, shopper_id, scope, granted, kind, name = row
    return Access(grant_id, client_id, brand_id, shopper_id, frozenset(_scopes(scope)) & frozenset(_scopes(granted)),
                  kind, name)


def require_scope(access: Access, scope: str) -> None:
    """403 insufficient_scope (RFC 6750 §3.1) unless the token carries `scope`."""
    if scope not in access.scopes:
        raise HubFailure(api.PROBLEM_BASE + "insufficient-scope", f"this call needs the scope {scope}", 403,
                         headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})


def grants_of(store: HubStore, shopper_id: str) -> list[dict]:
    """The shopper's live grants, newest first: which web shop or app of which brand may do
    what (scopes, with the consent screen's msgids), since when, last used."""
    rows = store.all(
        "SELECT g.id, c.name, c.kind, g.brand_id, b.name, g.scope, g.created_at, g.updated_at, "
        "(SELECT MAX(t.issued_at) FROM oauth_tokens t WHERE t.grant_id = g.id) "
        "FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id AND c.revoked_at IS NULL "
        "JOIN brands b ON b.id = g.brand_id WHERE g.shopper_id=? AND g.revoked_at IS NULL "
        "ORDER BY g.updated_at DESC, g.id", (shopper_id,))
    out = []
    for gid, cname, kind, bid, bname, scope, created, updated, used in rows:
        # what the grant does today: the other brands' items only while the ledger says so
        scopes = [sc for sc in _scopes(scope) if sc != OTHER_BRANDS or ledger_granted(store, shopper_id, bid)]
        out.append({"id": gid, "client_name": cname, "kind": kind, "brand_id": bid, "brand_name": bname,
                    "scopes": scopes, "scope_texts": [SCOPES[sc] for sc in scopes], "created_at": created,
                    "updated_at": updated, "last_used_at": used})
    return out


def ledger_state(store: HubStore, shopper_id: str, brand_id: str) -> str:
    """The sharing ledger's answer for `brand_id` seeing the items saved at other brands (the
    kiosk's question, the shopper's page, the consent screen: one choice): granted, refused
    or undecided."""
    row = store.one("SELECT state FROM consents WHERE shopper_id=? AND from_brand='*' AND to_brand=?",
                    (shopper_id, brand_id))
    return row[0] if row else api.UNDECIDED


def ledger_granted(store: HubStore, shopper_id: str, brand_id: str) -> bool:
    return ledger_state(store, shopper_id, brand_id) == api.GRANTED


def revoke_grant(store: HubStore, shopper_id: str, grant_id: str) -> None:
    """The shopper takes a grant back: its tokens are refused from the next call. (The sharing
    choice for the brand is the shopper's page's own switch and stays as it is.) 404 when the
    grant is not this shopper's."""
    now = _now()
    with store.transaction() as conn:
        owned = conn.execute("SELECT revoked_at FROM oauth_grants WHERE id=? AND shopper_id=?",
                             (grant_id, shopper_id)).fetchone() if isinstance(grant_id, str) else None
        if owned is None:
            raise shopper.not_yours("no such grant for this shopper")
        conn.execute("UPDATE oauth_grants SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (now, grant_id))
        conn.execute("UPDATE oauth_tokens SET revoked_at=? WHERE grant_id=? AND revoked_at IS NULL", (now, grant_id))
