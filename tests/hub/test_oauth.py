"""Sign in with the shopper profile (hub/oauth.py, hub/oauth_web.py), attacked over HTTP against
the real hub on a loopback port (SQLite and PostgreSQL), the shopper signed in with a software
passkey (softauthn.py): a wrong redirect URI or unknown client (an error page, never a redirect),
PKCE missing, wrong or "plain", a reused code (and the tokens it gave revoked), brand X's token
against brand Y, refresh rotation and a stolen rotated refresh token (the grant revoked), a grant
revoked on the shopper's page (refused at once), CSRF and cross-site posts on the consent form,
the state round trip, the ledger written by the consent screen. Every refusal is checked for
what it must not have done: no code, no token, no grant, the ledger unchanged."""
from __future__ import annotations

import base64
import hashlib
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_shopper_attacks import COOKIE, EMMA, JAMES, claim, hub, one, post_form, shopper_id  # noqa: E402,F401

from hub import demo, oauth, shopper  # noqa: E402
from hub.store import HubFailure  # noqa: E402

SHOP = "https://shop.example/callback"
OTHER = "https://evil.example/callback"


# -- helpers ----------------------------------------------------------------------------
def brand_call(hub, brand: str, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, hub.base + path, json=body, timeout=20,
                            headers={"Authorization": "Bearer " + demo.brand_key(brand)})


def new_client(hub, brand: str = "lotus", uris=(SHOP,), kind: str = "web") -> str:
    r = brand_call(hub, brand, "POST", "/v1/brand/clients", {"name": f"{brand} shop", "redirect_uris": list(uris),
                                                             "kind": kind})
    assert r.status_code == 201, r.text
    return r.json()["client_id"]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(client_id: str, challenge: str | None, *, redirect_uri: str = SHOP, scope: str = "wishlist",
                  state: str = "st-123", method: str | None = "S256", **extra) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": state, **extra}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    return "/oauth/authorize?" + urlencode(params)


def consent_form(s, hub, url: str) -> dict:
    r = s.get(hub.base + url, timeout=20, allow_redirects=False)
    assert r.status_code == 200, r.text[:500]
    import re
    fields = dict(re.findall(r'<input type="hidden" name="(csrf|request)" value="([^"]*)"', r.text))
    import html
    return {k: html.unescape(v) for k, v in fields.items()} | {"_page": r.text}


def decide(s, hub, form: dict, scopes=("wishlist",), decision: str = "allow", **kw) -> requests.Response:
    fields = {"csrf": form["csrf"], "request": form["request"], "decision": decision}
    fields.update({"scope_" + name: "yes" for name in scopes})
    return post_form(s, hub, "/oauth/authorize", fields, **kw)


def redirected(r: requests.Response) -> dict:
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["Location"]
    assert location.startswith(SHOP), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(s, hub, client_id: str, scopes=("wishlist",), scope: str | None = None) -> tuple[str, str]:
    verifier, challenge = pkce()
    form = consent_form(s, hub, authorize_url(client_id, challenge, scope=scope or " ".join(scopes)))
    answer = redirected(decide(s, hub, form, scopes))
    assert answer["state"] == "st-123"
    return answer["code"], verifier


def token_call(hub, fields: dict, **kw) -> requests.Response:
    return requests.post(hub.base + "/oauth/token", data=fields, timeout=20, **kw)


def exchange(hub, client_id: str, code: str, verifier: str | None, redirect_uri: str = SHOP) -> requests.Response:
    fields = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect_uri}
    if verifier is not None:
        fields["code_verifier"] = verifier
    return token_call(hub, fields)


def tokens(hub, s, client_id: str, scopes=("wishlist",)) -> dict:
    code, verifier = get_code(s, hub, client_id, scopes)
    r = exchange(hub, client_id, code, verifier)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()


def refresh(hub, client_id: str, refresh_token: str, **extra) -> requests.Response:
    return token_call(hub, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
                            **extra})


def error_of(r: requests.Response, status: int = 400) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()["error"]


def access(hub, token: str) -> oauth.Access:
    return oauth.authenticate(hub.store, "Bearer " + token)


def refused(hub, token: str) -> None:
    with pytest.raises(HubFailure) as caught:
        access(hub, token)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def count(hub, table: str) -> int:
    return one(hub, f"SELECT COUNT(*) FROM {table}")


def ledger(hub, i: int, brand: str):
    row = hub.store.one("SELECT state, via FROM consents WHERE shopper_id=? AND from_brand='*' AND to_brand=?",
                        (shopper_id(i), brand))
    return tuple(row) if row else None


@pytest.fixture
def signed_in(hub):
    s, _device = claim(hub, EMMA)
    return s


# -- the happy path, metadata, registration ------------------------------------------------
def test_metadata_is_rfc8414(hub):
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
    r = requests.get(hub.base + "/.well-known/oauth-authorization-server", timeout=20)
    assert r.status_code == 200
    meta = AuthorizationServerMetadata(r.json())
    meta.validate()
    assert meta["issuer"] == hub.base and meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert set(meta["scopes_supported"]) == {"wishlist", "wishlist.other_brands", "scans"}


def test_code_flow_with_pkce_and_state(hub, signed_in):
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    assert t["token_type"] == "Bearer" and t["expires_in"] == 600 and t["scope"] == "wishlist"
    got = access(hub, t["access_token"])
    assert (got.brand_id, got.shopper_id, got.scopes, got.channel) == ("lotus", shopper_id(EMMA),
                                                                       frozenset({"wishlist"}), "web")
    # only hashes are stored
    assert one(hub, "SELECT COUNT(*) FROM oauth_tokens WHERE access_hash=? OR refresh_hash=?",
               (t["access_token"], t["refresh_token"])) == 0
    grants = oauth.grants_of(hub.store, shopper_id(EMMA))
    assert [(g["client_name"], g["brand_name"], g["scopes"]) for g in grants] == [("lotus shop", "Lotus & Linen",
                                                                                   ["wishlist"])]


def test_consent_page_names_brand_and_scopes_in_the_shoppers_language(hub, signed_in):
    client_id = new_client(hub)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge, scope="wishlist wishlist.other_brands scans")
    page = consent_form(signed_in, hub, url)["_page"]
    assert "Lotus &amp; Linen" in page and "lotus shop" in page
    for name in ("wishlist", "wishlist.other_brands", "scans"):
        assert f'id="scope-{name}" checked' in page
    vi = signed_in.get(hub.base + url + "&lang=vi", timeout=20)
    assert vi.status_code == 200 and vi.headers["Content-Language"] == "vi"


def test_client_registration_refuses_bad_redirect_uris(hub):
    for uris, kind in (([], "web"), (["http://shop.example/cb"], "web"), (["https://shop.example/cb#x"], "web"),
                       (["com.example.app:/cb"], "web"), (["javascript:alert(1)"], "app"), (["https://a/\u202e"], "web"),
                       ([SHOP] * 6, "web")):
        r = brand_call(hub, "lotus", "POST", "/v1/brand/clients", {"name": "x", "redirect_uris": uris, "kind": kind})
        assert r.status_code == 422, (uris, r.text)
    assert count(hub, "oauth_clients") == 0
    assert new_client(hub, uris=["com.example.app:/cb", "http://127.0.0.1:7000/cb"], kind="app").startswith("cl_")
    r = requests.post(hub.base + "/v1/brand/clients", json={"name": "x", "redirect_uris": [SHOP]}, timeout=20)
    assert r.status_code == 401
    listed = brand_call(hub, "sever", "GET", "/v1/brand/clients").json()["clients"]
    assert listed == []  # another brand's clients are not shown


# -- the authorization endpoint ---------------------------------------------------------
def test_not_signed_in_goes_to_sign_in_with_next(hub):
    client_id = new_client(hub)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge)
    r = requests.get(hub.base + url, timeout=20, allow_redirects=False)
    assert r.status_code == 303
    location = r.headers["Location"]
    assert location.startswith("/me/sign-in?next=")
    assert parse_qs(urlsplit(location).query)["next"] == [url]


@pytest.mark.parametrize("case", ["wrong_redirect", "unknown_client", "no_client", "no_redirect"])
def test_wrong_redirect_uri_or_client_is_an_error_page_never_a_redirect(hub, signed_in, case):
    client_id = new_client(hub)
    _, challenge = pkce()
    url = {"wrong_redirect": authorize_url(client_id, challenge, redirect_uri=OTHER),
           "unknown_client": authorize_url("cl_nope", challenge),
           "no_client": authorize_url("", challenge),
           "no_redirect": authorize_url(client_id, challenge, redirect_uri="")}[case]
    r = signed_in.get(hub.base + url, timeout=20, allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "evil.example" not in r.headers.get("Location", "")
    assert ("invalid_client" if case in ("unknown_client", "no_client") else "invalid_request") in r.text
    assert 'id="error"' in r.text


@pytest.mark.parametrize("case,error", [("no_pkce", "invalid_request"), ("plain", "invalid_request"),
                                        ("no_method", "invalid_request"), ("bad_scope", "invalid_scope"),
                                        ("token_type", "unsupported_response_type")])
def test_bad_authorization_requests_go_back_with_an_error(hub, signed_in, case, error):
    client_id = new_client(hub)
    verifier, challenge = pkce()
    url = {"no_pkce": authorize_url(client_id, None, method=None),
           "plain": authorize_url(client_id, verifier, method="plain"),
           "no_method": authorize_url(client_id, challenge, method=None),
           "bad_scope": authorize_url(client_id, challenge, scope="wishlist admin"),
           "token_type": authorize_url(client_id, challenge, response_type="token")}[case]
    r = signed_in.get(hub.base + url, timeout=20, allow_redirects=False)
    answer = redirected(r)
    assert answer["error"] == error and answer["state"] == "st-123"
    assert count(hub, "oauth_codes") == 0


def test_refusing_everything_is_access_denied(hub, signed_in):
    client_id = new_client(hub)
    _, challenge = pkce()
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge))
    answer = redirected(decide(signed_in, hub, form, decision="deny"))
    assert (answer["error"], answer["state"]) == ("access_denied", "st-123") and "code" not in answer
    assert redirected(decide(signed_in, hub, form, scopes=()))["error"] == "access_denied"
    assert count(hub, "oauth_codes") == 0 and count(hub, "oauth_grants") == 0


def test_consent_form_needs_csrf_and_same_origin(hub, signed_in):
    client_id = new_client(hub)
    _, challenge = pkce()
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge))
    for r in (decide(signed_in, hub, {**form, "csrf": "forged"}),
              decide(signed_in, hub, {**form, "csrf": ""}),
              decide(signed_in, hub, form, site="cross-site", origin="https://evil.example"),
              decide(requests.Session(), hub, form)):  # no session: to the sign-in page, nothing granted
        assert r.status_code in (303, 403), r.status_code
        assert not r.headers.get("Location", "").startswith(SHOP)
    assert count(hub, "oauth_codes") == 0 and count(hub, "oauth_grants") == 0


def test_a_forged_request_field_cannot_swap_the_redirect_uri(hub, signed_in):
    client_id = new_client(hub)
    _, challenge = pkce()
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge))
    forged = {**form, "request": form["request"].replace("shop.example", "evil.example")}
    r = decide(signed_in, hub, forged)
    assert r.status_code == 400 and "Location" not in r.headers
    assert count(hub, "oauth_codes") == 0


def test_partial_consent_and_the_ledger(hub, signed_in):
    client_id = new_client(hub)
    before = ledger(hub, EMMA, "lotus")
    t = tokens(hub, signed_in, client_id, scopes=("wishlist",))  # asked for other brands? no: ledger untouched
    assert ledger(hub, EMMA, "lotus") == before
    verifier, challenge = pkce()
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge, scope="wishlist wishlist.other_brands"))
    code = redirected(decide(signed_in, hub, form, scopes=("wishlist",)))["code"]  # other brands refused
    assert ledger(hub, EMMA, "lotus") == ("refused", "web")
    t2 = exchange(hub, client_id, code, verifier).json()
    assert t2["scope"] == "wishlist"
    verifier, challenge = pkce()
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge, scope="wishlist wishlist.other_brands"))
    code = redirected(decide(signed_in, hub, form, scopes=("wishlist", "wishlist.other_brands")))["code"]
    assert ledger(hub, EMMA, "lotus") == ("granted", "web")
    t3 = exchange(hub, client_id, code, verifier).json()
    assert access(hub, t3["access_token"]).scopes == {"wishlist", "wishlist.other_brands"}
    assert len(oauth.grants_of(hub.store, shopper_id(EMMA))) == 1  # one live grant per shopper and client
    assert access(hub, t["access_token"]).grant_id == access(hub, t3["access_token"]).grant_id


def test_an_app_client_writes_the_ledger_via_app_for_a_brand_not_met_yet(hub, signed_in):
    from hub import brands
    brand = "zeta"
    brands.create_brand(hub.store, brand, "Zeta", "en", key=demo.brand_key(brand))  # a brand Emma never met
    assert brand not in {b["brand_id"] for b in shopper.profile(hub.store, shopper_id(EMMA), "en")["brands"]}
    client_id = new_client(hub, brand, uris=["com.example.app:/cb"], kind="app")
    _, challenge = pkce()
    url = authorize_url(client_id, challenge, redirect_uri="com.example.app:/cb", scope="wishlist.other_brands")
    r = decide(signed_in, hub, consent_form(signed_in, hub, url), scopes=("wishlist.other_brands",))
    assert r.status_code == 303 and r.headers["Location"].startswith("com.example.app:/cb?code=")
    assert ledger(hub, EMMA, brand) == ("granted", "app")
    assert brand in {b["brand_id"] for b in shopper.profile(hub.store, shopper_id(EMMA), "en")["brands"]}


# -- the token endpoint -----------------------------------------------------------------
def test_wrong_or_missing_pkce_verifier_is_refused_and_the_code_still_unused(hub, signed_in):
    client_id = new_client(hub)
    code, verifier = get_code(signed_in, hub, client_id)
    assert error_of(exchange(hub, client_id, code, None)) == "invalid_request"
    assert error_of(exchange(hub, client_id, code, pkce()[0])) == "invalid_grant"
    assert error_of(exchange(hub, client_id, code, "short")) == "invalid_request"
    assert count(hub, "oauth_tokens") == 0
    assert exchange(hub, client_id, code, verifier).status_code == 200  # the real client still can


def test_token_request_bad_inputs(hub, signed_in):
    client_id = new_client(hub)
    other = new_client(hub)
    code, verifier = get_code(signed_in, hub, client_id)
    base = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": SHOP,
            "code_verifier": verifier}
    assert error_of(token_call(hub, {**base, "redirect_uri": OTHER})) == "invalid_grant"
    assert error_of(token_call(hub, {**base, "client_id": other})) == "invalid_grant"  # a code is bound to its client
    assert error_of(token_call(hub, {**base, "client_id": "cl_nope"}), 400) == "invalid_client"
    assert error_of(token_call(hub, {k: v for k, v in base.items() if k != "client_id"})) == "invalid_client"
    assert error_of(token_call(hub, {**base, "client_secret": "x"})) == "invalid_client"
    assert error_of(token_call(hub, {**base, "grant_type": "password"})) == "unsupported_grant_type"
    assert error_of(token_call(hub, {**base, "grant_type": "client_credentials"})) == "unsupported_grant_type"
    assert error_of(token_call(hub, {k: v for k, v in base.items() if k != "code"})) == "invalid_request"
    assert error_of(token_call(hub, {**base, "code": "made-up"})) == "invalid_grant"
    assert error_of(token_call(hub, "grant_type=authorization_code&grant_type=refresh_token&" + urlencode(base),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})) == "invalid_request"
    r = requests.post(hub.base + "/oauth/token", json=base, timeout=20)
    assert error_of(r) == "invalid_request"
    assert count(hub, "oauth_tokens") == 0
    assert token_call(hub, base).status_code == 200


def test_reused_code_is_refused_and_its_tokens_revoked(hub, signed_in):
    client_id = new_client(hub)
    code, verifier = get_code(signed_in, hub, client_id)
    first = exchange(hub, client_id, code, verifier).json()
    access(hub, first["access_token"])
    assert error_of(exchange(hub, client_id, code, verifier)) == "invalid_grant"
    refused(hub, first["access_token"])
    assert error_of(refresh(hub, client_id, first["refresh_token"])) == "invalid_grant"
    assert oauth.grants_of(hub.store, shopper_id(EMMA)) == []


def test_unauthorized_client_after_its_brand_revokes_it(hub, signed_in):
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    assert brand_call(hub, "sever", "DELETE", f"/v1/brand/clients/{client_id}").status_code == 404  # not sever's
    access(hub, t["access_token"])
    assert brand_call(hub, "lotus", "DELETE", f"/v1/brand/clients/{client_id}").status_code == 204
    refused(hub, t["access_token"])
    assert error_of(refresh(hub, client_id, t["refresh_token"])) == "invalid_client"


def test_refresh_rotates_and_a_stolen_old_refresh_token_revokes_the_grant(hub, signed_in):
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    r = refresh(hub, client_id, t["refresh_token"])
    assert r.status_code == 200, r.text
    t2 = r.json()
    assert t2["refresh_token"] != t["refresh_token"] and t2["access_token"] != t["access_token"]
    access(hub, t2["access_token"])
    # the thief replays the rotated refresh token: refused, and the whole grant ends
    assert error_of(refresh(hub, client_id, t["refresh_token"])) == "invalid_grant"
    refused(hub, t2["access_token"])
    refused(hub, t["access_token"])
    assert error_of(refresh(hub, client_id, t2["refresh_token"])) == "invalid_grant"
    assert oauth.grants_of(hub.store, shopper_id(EMMA)) == []


def test_refresh_bad_inputs(hub, signed_in):
    client_id = new_client(hub)
    other = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    assert error_of(refresh(hub, other, t["refresh_token"])) == "invalid_grant"  # not issued to that client
    assert error_of(refresh(hub, client_id, t["refresh_token"], scope="wishlist scans")) == "invalid_scope"
    assert error_of(token_call(hub, {"grant_type": "refresh_token", "client_id": client_id})) == "invalid_request"
    assert error_of(refresh(hub, client_id, "rt_made_up")) == "invalid_grant"
    assert error_of(refresh(hub, client_id, t["access_token"])) == "invalid_grant"  # an access token is not one
    assert refresh(hub, client_id, t["refresh_token"]).status_code == 200  # nothing above spent it


def test_token_of_brand_x_is_not_a_token_of_brand_y(hub, signed_in):
    lotus, sever = new_client(hub, "lotus"), new_client(hub, "sever")
    t = tokens(hub, signed_in, lotus)
    got = access(hub, t["access_token"])
    assert got.brand_id == "lotus" and got.client_id == lotus
    # brand Y's client cannot use, refresh or revoke brand X's tokens
    assert error_of(refresh(hub, sever, t["refresh_token"])) == "invalid_grant"
    r = requests.post(hub.base + "/oauth/revoke", data={"token": t["access_token"], "client_id": sever}, timeout=20)
    assert error_of(r) == "invalid_grant"
    access(hub, t["access_token"])


def test_revocation_endpoint(hub, signed_in):
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    r = requests.post(hub.base + "/oauth/revoke", data={"token": t["access_token"], "client_id": client_id}, timeout=20)
    assert r.status_code == 200
    refused(hub, t["access_token"])
    assert error_of(refresh(hub, client_id, t["refresh_token"])) == "invalid_grant"
    r = requests.post(hub.base + "/oauth/revoke", data={"token": "unknown", "client_id": client_id}, timeout=20)
    assert r.status_code == 200  # RFC 7009 §2.2: an unknown token is not an error
    r = requests.post(hub.base + "/oauth/revoke", data={"client_id": client_id}, timeout=20)
    assert error_of(r) == "invalid_request"


def test_revoked_grant_is_refused_at_once(hub, signed_in):
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    grant = oauth.grants_of(hub.store, shopper_id(EMMA))[0]
    with pytest.raises(HubFailure) as caught:
        oauth.revoke_grant(hub.store, shopper_id(JAMES), grant["id"])  # not James's grant
    assert caught.value.status == 404
    access(hub, t["access_token"])
    oauth.revoke_grant(hub.store, shopper_id(EMMA), grant["id"])
    refused(hub, t["access_token"])
    assert error_of(refresh(hub, client_id, t["refresh_token"])) == "invalid_grant"
    assert oauth.grants_of(hub.store, shopper_id(EMMA)) == []


def test_a_code_given_before_the_grant_was_revoked_is_worthless(hub, signed_in):
    client_id = new_client(hub)
    code, verifier = get_code(signed_in, hub, client_id)
    oauth.revoke_grant(hub.store, shopper_id(EMMA), oauth.grants_of(hub.store, shopper_id(EMMA))[0]["id"])
    assert error_of(exchange(hub, client_id, code, verifier)) == "invalid_grant"
    assert count(hub, "oauth_tokens") == 0


def test_bearer_header_forms(hub):
    for header in ("", "Basic abc", "Bearer", "Bearer " + "x" * 300, "Bearer at_unknown"):
        with pytest.raises(HubFailure) as caught:
            oauth.authenticate(hub.store, header)
        assert caught.value.status == 401 and caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_channel_and_oauth_paths_need_no_device_token(hub):
    from hub.app import _needs_device
    assert not _needs_device("/v1/channel/wishlist") and not _needs_device("/oauth/token")
    assert _needs_device("/v1/checkin")


def test_cli_client_create(hub, tmp_path, capsys):
    from hub import brandcli
    key = tmp_path / "lotus.key"
    key.write_text(demo.brand_key("lotus"))
    assert brandcli.main(["client", "create", "--hub", hub.base, "--key-file", str(key), "--name", "Web shop",
                          "--redirect-uri", SHOP]) == 0
    out = capsys.readouterr().out
    assert out.startswith("client_id: cl_")
    assert brandcli.main(["client", "create", "--hub", hub.base, "--key-file", str(key), "--name", "App", "--app",
                          "--redirect-uri", "com.example.app:/cb", "--json"]) == 0
    import json
    made = json.loads(capsys.readouterr().out)
    assert made["kind"] == "app" and made["client_id"].startswith("cl_")
    assert brandcli.main(["client", "create", "--hub", hub.base, "--key-file", str(key), "--name", "Bad",
                          "--redirect-uri", "http://shop.example/cb"]) == 1
