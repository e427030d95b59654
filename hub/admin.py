"""Admin clients: a shopper app's back end or a brand's tooling, each with its own secret and
only the scopes it needs ("phone-keys": register and revoke phone keys; "cards": register and
revoke secure cards).

    secret = admin.add_client(store, "shopper-app", ["phone-keys"])   # shown once, never stored
    client = admin.authenticate(store, "Bearer " + secret, "phone-keys", legacy_token="")

The hub keeps a SHA-256 of each secret (a 32-byte `secrets.token_urlsafe`: high entropy, so a
plain hash suffices); a request's secret is found by that hash (a unique index) and compared
again with `hmac.compare_digest`. Unknown and revoked secrets are 401, a secret without the
scope is 403. The transitional single admin token (KIOSK_HUB_ADMIN_TOKEN or
`--admin-token-file`, never argv) is a client named LEGACY_CLIENT with the "phone-keys" scope
only, compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from fastapi import Depends, Response
from pydantic import BaseModel, Field

from kiosk import api
from hub import credentials
from hub.store import HubFailure, HubStore

PHONE_KEYS, CARDS = "phone-keys", "cards"
SCOPES = (PHONE_KEYS, CARDS)
LEGACY_CLIENT = "admin-token"  # the transitional KIOSK_HUB_ADMIN_TOKEN
LEGACY_SCOPES = frozenset({PHONE_KEYS})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Client:
    id: str
    scopes: frozenset[str]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == LEGACY_CLIENT:
        raise ValueError("a client name is 1-64 letters, digits, '.', '_' or '-' (and not 'admin-token')")
    return name


def check_scopes(scopes) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}" + (f" (not {', '.join(unknown)})" if unknown else ""))
    return scopes


def add_client(store: HubStore, name: str, scopes) -> str:
    """Create a client; returns its secret (the hub keeps only its hash). A name in use: ValueError."""
    name, scopes = check_name(name), check_scopes(scopes)
    secret = secrets.token_urlsafe(32)
    row = store.conn.execute("INSERT INTO admin_clients(id, secret_hash, scopes, created_at) VALUES (?,?,?,?) "
                             "ON CONFLICT(id) DO NOTHING RETURNING id",
                             (name, secret_hash(secret), ",".join(scopes), time.time())).fetchone()
    if row is None:
        raise ValueError(f"an admin client named {name!r} exists already (revoke it and pick another name)")
    return secret


def list_clients(store: HubStore) -> list[dict]:
    return [{"id": i, "scopes": s.split(","), "created_at": c, "revoked": bool(r)}
            for i, s, c, r in store.all("SELECT id, scopes, created_at, revoked FROM admin_clients ORDER BY id")]


def revoke_client(store: HubStore, name: str) -> bool:
    """Revoke for good; False if there is no such client."""
    if not store.one("SELECT 1 FROM admin_clients WHERE id=?", (name,)):
        return False
    store.conn.execute("UPDATE admin_clients SET revoked=1 WHERE id=?", (name,))
    return True


def unauthorized() -> HubFailure:
    return HubFailure(api.P_UNAUTHORIZED, "a valid admin client secret is required", 401,
                      headers={"WWW-Authenticate": "Bearer"})


def authenticate(store: HubStore, authorization: str, scope: str, legacy_token: str = "") -> Client:
    """The admin client behind an `Authorization: Bearer <secret>` header, if it holds `scope`."""
    assert scope in SCOPES
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret or len(secret) > 256:
        raise unauthorized()
    client = None
    if legacy_token and hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), legacy_token.encode()):
        client = Client(LEGACY_CLIENT, LEGACY_SCOPES)
    else:
        digest = secret_hash(secret)
        row = store.one("SELECT id, secret_hash, scopes FROM admin_clients WHERE secret_hash=? AND revoked=0",
                        (digest,))
        if row and hmac.compare_digest(row[1], digest):
            client = Client(row[0], frozenset(row[2].split(",")))
    if client is None:
        raise unauthorized()
    if scope not in client.scopes:
        raise HubFailure(api.P_FORBIDDEN, f"this admin client lacks the {scope!r} scope", 403)
    return client


class SunCardBody(BaseModel):
    """POST /v1/shoppers/{id}/sun-cards (scope "cards")."""

    uid: str = Field(min_length=14, max_length=14, description="the card's 7-byte UID, hex")
    file_key: str = Field(min_length=32, max_length=32, description="SDM file read key (AES-128), hex")


class CardRevokeBody(BaseModel):
    """POST /v1/cards:revoke (scope "cards"): a token or UID card, by its token or UID."""

    kind: str = Field(pattern="^(token|uid)$")
    value: str = Field(min_length=1, max_length=256, pattern="^[0-9A-Za-z_-]+$")


def add_routes(app, store: HubStore, admin) -> None:
    """The admin-only routes beside phone key registration; `admin(scope)` is the app's dependency."""

    @app.delete("/v1/shoppers/{shopper_id}/phone-keys/{credential_id}", status_code=204,
                dependencies=[Depends(admin(PHONE_KEYS))])
    def revoke_phone_key(shopper_id: str, credential_id: str) -> Response:
        """Revoke a phone key for good (answered like an unknown phone; kiosks forget its shopper)."""
        credentials.revoke_phone(store, shopper_id, credential_id)
        return Response(status_code=204)

    @app.post("/v1/shoppers/{shopper_id}/sun-cards", status_code=204, dependencies=[Depends(admin(CARDS))])
    def register_sun_card(shopper_id: str, body: SunCardBody) -> Response:
        """204 when bound (or bound already, identically); 409 if the UID is bound otherwise or
        revoked: cards never move; 404 for an unknown shopper. The key is sealed at rest."""
        credentials.register_sun_card(store, shopper_id, _hex(body.uid, "uid", 7), _hex(body.file_key, "file_key", 16))
        return Response(status_code=204)

    @app.post("/v1/cards:revoke", status_code=204, dependencies=[Depends(admin(CARDS))])
    def revoke_card(body: CardRevokeBody) -> Response:
        """Revoke a token or UID card for good (in the body: a card's token is a secret, never
        in a URL); kiosks forget its shopper within one sync."""
        credentials.revoke_card(store, body.kind, body.value)
        return Response(status_code=204)

    @app.delete("/v1/sun-cards/{uid}", status_code=204, dependencies=[Depends(admin(CARDS))])
    def revoke_sun_card(uid: str) -> Response:
        """Revoke a card for good: answered like an unknown card; kiosks forget its shopper."""
        credentials.revoke_sun_card(store, _hex(uid, "uid", 7))
        return Response(status_code=204)


def _hex(text: str, what: str, nbytes: int) -> bytes:
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * nbytes and text.isascii() and text.isalnum() else b""
    except ValueError:
        raw = b""
    if len(raw) != nbytes:
        raise HubFailure(api.P_INVALID, f"{what} must be {2 * nbytes} hex digits", 422)
    return raw
