"""Sign in with the shopper profile (issue 12): the hub as an OAuth 2.0 authorization server
for brands' web shops and apps, on Authlib's core (authlib.oauth2.rfc6749, rfc7636, rfc7009),
adapted here to the hub's store; hub/oauth_web.py puts it on HTTP.

Who may use which door, and what proves it:

    register_client / clients_of / revoke_client
        a brand, through its brand API key (hub/brand_api.py): its own clients only.
    the authorization endpoint (GET/POST /oauth/authorize)
        the signed-in shopper (session cookie, CSRF token on the consent form): a client known
        here, a redirect URI registered for it byte for byte (else an error page, never a
        redirect), a PKCE S256 challenge, the scopes the shopper ticked.
    the token endpoint (POST /oauth/token), revocation (POST /oauth/revoke)
        a public client (no secret: token_endpoint_auth_method "none"): the code together with
        the PKCE verifier, or a refresh token issued to that client.
    authenticate(store, "Bearer ...")
        the channel API (hub/channel_api.py): a live access token of a live grant and client.
    grants_of / revoke_grant
        the shopper's page: the signed-in shopper's own grants only.

Tokens are random (secrets), opaque, and only their SHA-256 is stored. Access tokens last
10 minutes, refresh tokens 30 days and rotate on every use; a rotated refresh token used again,
or an authorization code used twice (RFC 6749 §4.1.2, §10.4), revokes the grant and every
token of it. A token's scopes are read against its grant's current scopes (a narrower consent
given later narrows tokens already out). The `wishlist.other_brands` scope is also the
shopper's per-brand sharing choice (hub/shopper.py's ledger `consents`): granting or refusing
it at the consent screen writes that ledger, and reads check the ledger live.

Here: Authlib's models over the hub's rows, the grants (code with PKCE, refresh with
rotation), revocation, the server, what a replayed code or refresh token does, and the consent
screen's answer for the ledger. The scopes, the brand's clients and what the channel API and
the shopper's page call are hub/oauth_grants.py's, read from here as well.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from hub import shopper
from hub.oauth_grants import DEFAULT_SCOPE, OTHER_BRANDS, SCOPES, _now, _scopes
from hub.store import HubStore, token_hash
# The hub-facing calls, read from here by the channel API, the brand API and the shopper's page:
from hub.oauth_grants import (N_, Access, authenticate, check_redirect_uri, clients_of, grants_of,  # noqa: F401
                              ledger_granted, ledger_state, refused, register_client, require_scope, revoke_client,
                              revoke_grant)

ACCESS_S, REFRESH_S, CODE_S = 600, 30 * 86400, 120


# -- Authlib's models over the hub's rows -----------------------------------------------------------
class Client(ClientMixin):
    def __init__(self, client_id: str, brand_id: str, brand_name: str, name: str, kind: str, uris: str) -> None:
        self.client_id, self.brand_id, self.brand_name, self.name, self.kind = client_id, brand_id, brand_name, name, kind
        self.redirect_uris = json.loads(uris)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # every request names its redirect URI

    def get_allowed_scope(self, scope):
        return " ".join(_scopes(scope)) if scope else DEFAULT_SCOPE

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris  # exact match only

    def check_client_secret(self, client_secret):
        return False  # public clients: no secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code(AuthorizationCodeMixin):
    code_hash: str
    client_id: str
    shopper_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    grant_id: str

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class Token(TokenMixin):
    id: str
    grant_id: str
    client_id: str
    shopper_id: str
    scope: str

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return ACCESS_S

    def is_expired(self):
        return False

    def is_revoked(self):
        return False

    def get_user(self):
        return self.shopper_id

    def get_client(self):
        return None


@dataclass
class Shopper:
    """The resource owner (Authlib's "user"): the signed-in shopper."""
    id: str

    def get_user_id(self):
        return self.id


class Payload:
    """Authlib's OAuth2Payload over already-read parameters: {name: [values]}."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.datalist = fields
        self.data = {k: v[0] for k, v in fields.items() if v}

    client_id = property(lambda self: self.data.get("client_id"))
    response_type = property(lambda self: self.data.get("response_type"))
    grant_type = property(lambda self: self.data.get("grant_type"))
    redirect_uri = property(lambda self: self.data.get("redirect_uri"))
    scope = property(lambda self: self.data.get("scope"))
    state = property(lambda self: self.data.get("state"))


class Incoming(OAuth2Request):
    """An HTTP request as Authlib sees it, made from parameters Starlette has read already
    (the query for the authorization endpoint, the form for the token and revocation ones)."""

    def __init__(self, method: str, uri: str, headers: dict, fields: dict[str, list[str]]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = Payload(fields)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return self.payload.data


# -- the grants ---------------------------------------------------------------------------------
class S256(CodeChallenge):
    """PKCE (RFC 7636), required of every client, S256 only ("plain" is refused)."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': only S256.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def save_authorization_code(self, code, request):
        store, client, shopper_id = self.server.store, request.client, request.user.id
        grant_id = _live_grant(store, shopper_id, client, request.scope)
        data, now = request.payload.data, _now()
        store.conn.execute("INSERT INTO oauth_codes(code_hash, client_id, shopper_id, redirect_uri, scope, code_challenge, "
                           "code_challenge_method, grant_id, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (token_hash(code), client.client_id, shopper_id, request.payload.redirect_uri, request.scope,
                            data["code_challenge"], data["code_challenge_method"], grant_id, now, now + CODE_S))

    def query_authorization_code(self, code, client):
        row = self.server.store.one(
            "SELECT code_hash, client_id, shopper_id, redirect_uri, scope, code_challenge, code_challenge_method, "
            "grant_id, expires_at, used_at FROM oauth_codes WHERE code_hash=? AND client_id=?",
            (token_hash(code), client.client_id)) if isinstance(code, str) and len(code) <= 256 else None
        if row is None:
            return None
        if row[9] is not None:  # used before: whoever holds it now, the grant is not safe
            compromised(self.server.store, row[7])
            return None
        return Code(*row[:8]) if row[8] > _now() else None

    def delete_authorization_code(self, authorization_code):
        used = self.server.store.conn.execute("UPDATE oauth_codes SET used_at=? WHERE code_hash=? AND used_at IS NULL",
                                              (_now(), authorization_code.code_hash)).rowcount
        if not used:  # redeemed twice at once: the other one won, and both are revoked
            compromised(self.server.store, authorization_code.grant_id)
            raise InvalidGrantError("Invalid 'code' in request.")

    def authenticate_user(self, authorization_code):
        return _grant_owner(self.server.store, authorization_code.grant_id)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh gives a new refresh token

    def authenticate_refresh_token(self, refresh_token):
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            return None
        row = self.server.store.one(
            "SELECT t.id, t.grant_id, t.client_id, t.shopper_id, t.scope, g.scope, t.refresh_expires_at, t.rotated_at, "
            "t.revoked_at, g.revoked_at FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id "
            "JOIN shoppers s ON s.id = t.shopper_id AND s.erased = 0 "  # an erased shopper's: invalid_grant
            "WHERE t.refresh_hash=?", (token_hash(refresh_token),))
        if row is None or row[8] is not None or row[9] is not None:
            return None
        if row[7] is not None:  # a rotated refresh token used again: stolen, or replayed
            compromised(self.server.store, row[1])
            return None
        if row[6] <= _now():
            return None
        live = " ".join(s for s in _scopes(row[4]) if s in _scopes(row[5]))
        return Token(row[0], row[1], row[2], row[3], live)

    def authenticate_user(self, refresh_token):
        return _grant_owner(self.server.store, refresh_token.grant_id)

    def revoke_old_credential(self, refresh_token):
        rotated = self.server.store.conn.execute("UPDATE oauth_tokens SET rotated_at=? WHERE id=? AND rotated_at IS NULL",
                                                 (_now(), refresh_token.id)).rowcount
        if not rotated:  # used twice at once
            compromised(self.server.store, refresh_token.grant_id)
            raise InvalidGrantError()


class Revocation(RevocationEndpoint):
    """RFC 7009: a client revokes its own access or refresh token (the pair goes together)."""
    CLIENT_AUTH_METHODS = ["none"]

    def query_token(self, token_string, token_type_hint):
        if not isinstance(token_string, str) or len(token_string) > 256:
            return None
        digest = token_hash(token_string)
        row = self.server.store.one("SELECT id, grant_id, client_id, shopper_id, scope FROM oauth_tokens "
                                    "WHERE access_hash=? OR refresh_hash=?", (digest, digest))
        return Token(*row) if row else None

    def revoke_token(self, token, request):
        """RFC 7009 §2.1: revoking a refresh token ends the access tokens of its grant too (those
        of earlier rotations included); revoking an access token ends that token."""
        store = self.server.store
        row = store.one("SELECT refresh_hash FROM oauth_tokens WHERE id=?", (token.id,))
        presented = token_hash(request.form.get("token", "")) if hasattr(request, "form") else ""
        if row and presented and presented == row[0]:
            store.conn.execute("UPDATE oauth_tokens SET revoked_at=? WHERE grant_id=? AND revoked_at IS NULL",
                               (_now(), token.grant_id))
            return
        store.conn.execute("UPDATE oauth_tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (_now(), token.id))


class Server(AuthorizationServer):
    """Authlib's authorization server on the hub's store. The HTTP side (hub/oauth_web.py)
    hands it `Incoming` requests and gets (status, body, headers) back through `respond`."""

    def __init__(self, store: HubStore, respond) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.store, self.respond = store, respond
        self.register_token_generator("default", self._tokens)
        self.register_grant(CodeGrant, [S256(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)

    def query_client(self, client_id):
        if not isinstance(client_id, str) or not client_id.startswith("cl_") or len(client_id) > 64:
            return None
        row = self.store.one("SELECT c.id, c.brand_id, b.name, c.name, c.kind, c.redirect_uris FROM oauth_clients c "
                             "JOIN brands b ON b.id = c.brand_id WHERE c.id=? AND c.revoked_at IS NULL", (client_id,))
        return Client(*row) if row else None

    @staticmethod
    def _tokens(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        token = {"token_type": "Bearer", "access_token": "at_" + secrets.token_urlsafe(32), "expires_in": ACCESS_S,
                 "scope": scope or ""}
        if include_refresh_token:
            token["refresh_token"] = "rt_" + secrets.token_urlsafe(32)
        return token

    def save_token(self, token, request):
        source = request.authorization_code or request.refresh_token
        client, now = request.client, _now()
        self.store.conn.execute(
            "INSERT INTO oauth_tokens(id, grant_id, client_id, shopper_id, brand_id, scope, access_hash, refresh_hash, "
            "issued_at, access_expires_at, refresh_expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ("tk_" + secrets.token_urlsafe(12), source.grant_id, client.client_id, request.user.id, client.brand_id,
             token["scope"], token_hash(token["access_token"]), token_hash(token["refresh_token"]), now,
             now + ACCESS_S, now + REFRESH_S))

    def handle_response(self, status, body, headers):
        return self.respond(status, body, headers)

    def send_signal(self, name, *args, **kwargs):
        pass


def _live_grant(store: HubStore, shopper_id: str, client: Client, scope: str) -> str:
    """The one live grant of (shopper, client), now with `scope`: made, or updated."""
    with store.transaction() as conn:
        # the shopper's row locked first: two "Allow" clicks at once make one grant, not a 500
        # on the unique index (PostgreSQL; SQLite writes one transaction at a time)
        conn.execute("UPDATE shoppers SET created_at=created_at WHERE id=?", (shopper_id,))
        row = conn.execute("SELECT id FROM oauth_grants WHERE shopper_id=? AND client_id=? AND revoked_at IS NULL",
                           (shopper_id, client.client_id)).fetchone()
        now = _now()
        if row:
            conn.execute("UPDATE oauth_grants SET scope=?, updated_at=? WHERE id=?", (scope, now, row[0]))
            return row[0]
        grant_id = "gr_" + secrets.token_urlsafe(12)
        conn.execute("INSERT INTO oauth_grants(id, shopper_id, brand_id, client_id, scope, created_at, updated_at) "
                     "VALUES (?,?,?,?,?,?,?)", (grant_id, shopper_id, client.brand_id, client.client_id, scope, now, now))
        return grant_id


def _grant_owner(store: HubStore, grant_id: str) -> Shopper | None:
    row = store.one("SELECT g.shopper_id FROM oauth_grants g JOIN shoppers s ON s.id = g.shopper_id AND s.erased = 0 "
                    "WHERE g.id=? AND g.revoked_at IS NULL", (grant_id,))
    return Shopper(row[0]) if row else None


def compromised(store: HubStore, grant_id: str) -> None:
    """A code or refresh token was replayed: the grant and every token of it end now."""
    now = _now()
    with store.transaction() as conn:
        conn.execute("UPDATE oauth_grants SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (now, grant_id))
        conn.execute("UPDATE oauth_tokens SET revoked_at=? WHERE grant_id=? AND revoked_at IS NULL", (now, grant_id))


def consent(store: HubStore, shopper_id: str, client: Client, requested: list[str], chosen: list[str]) -> None:
    """The consent screen's answer for the ledger: `wishlist.other_brands` asked for, and
    ticked or not, is the shopper's sharing choice for the client's brand (via web or app)."""
    if OTHER_BRANDS in requested:
        shopper.set_sharing(store, shopper_id, client.brand_id, OTHER_BRANDS in chosen, via=client.kind,
                            require_met=False)
