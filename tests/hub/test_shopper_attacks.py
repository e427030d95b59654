"""The passkey doors of the shopper's page (hub/shopper_web.py, hub/passkeys.py), attacked over
HTTP against the real hub on a loopback port (SQLite and PostgreSQL), with a software WebAuthn
authenticator (softauthn.py): forged, replayed and misdirected answers, cross-site requests,
oversized and malformed bodies, an ended session mid-form, rate limits, the card token in logs,
erased shoppers and revoked cards. Every refusal is checked for what it must not have done:
no passkey row, no session cookie, the card still unclaimed, no personal data on the page."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from softauthn import UP, UV, AT, SoftAuthenticator, b64url, new_key  # noqa: E402

from hub import demo  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402

COOKIE = "hub_me"
EMMA, JAMES, OLIVIA = 0, 4, 8  # demo shoppers with unique (Latin) display names


@pytest.fixture
def hub(hub_db, card_key):
    running = EmbeddedHub(HubSettings(db_path=hub_db, demo=True))
    running.base = f"http://localhost:{running.port}"
    if not any(getattr(r, "path", None) == "/s/{token}" for r in running.app.routes):  # not wired in app.py yet
        from hub import shopper_web
        from hub.web import Web
        web = getattr(running.app.state, "web", None) or Web(running.store, running.settings)
        shopper_web.add_routes(running.app, running.store, web, running.base)
    with running:
        yield running


# -- helpers ----------------------------------------------------------------------------
def browser(hub) -> requests.Session:
    """A browser's HTTP side: same-origin fetches of JSON from the hub's own page."""
    s = requests.Session()
    s.base = hub.base
    return s


def headers(hub, site: str = "same-origin", origin: str | None = None, kind: str = "application/json") -> dict:
    return {"Content-Type": kind, "Sec-Fetch-Site": site, "Origin": origin or hub.base}


def post_json(s, hub, path: str, body, **kw) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return s.post(hub.base + path, data=data, headers=headers(hub, **kw), timeout=20, allow_redirects=False)


def post_form(s, hub, path: str, fields, site: str = "same-origin", origin: str | None = None) -> requests.Response:
    return s.post(hub.base + path, data=fields, timeout=20, allow_redirects=False,
                  headers={"Sec-Fetch-Site": site, "Origin": origin or hub.base})


def token(i: int) -> str:
    return demo.token_for(i)


def shopper_id(i: int) -> str:
    return f"shopper-{i:02d}"


def claim_options(s, hub, card: str, **kw) -> requests.Response:
    return post_json(s, hub, f"/s/{card}/claim/options", {"csrf": ""}, **kw)


def start_claim(s, hub, card: str) -> dict:
    r = claim_options(s, hub, card)
    assert r.status_code == 200, r.text
    start = r.json()
    assert set(start) >= {"ceremony", "options"}
    return start


def finish_claim(s, hub, card: str, start: dict, credential) -> requests.Response:
    return post_json(s, hub, f"/s/{card}/claim", {"ceremony": start["ceremony"], "csrf": "", "credential": credential})


def claim(hub, i: int, device: SoftAuthenticator | None = None) -> tuple[requests.Session, SoftAuthenticator]:
    """Claim demo card i with a new passkey: a signed-in browser and its authenticator."""
    s, device = browser(hub), device or SoftAuthenticator(hub.base)
    start = start_claim(s, hub, token(i))
    r = finish_claim(s, hub, token(i), start, device.register(start))
    assert r.status_code == 200, r.text
    assert r.json()["next"].startswith("/me")
    assert s.cookies.get(COOKIE)
    return s, device


def start_sign_in(s, hub) -> dict:
    r = post_json(s, hub, "/me/sign-in/options", {"csrf": ""})
    assert r.status_code == 200, r.text
    return r.json()


def finish_sign_in(s, hub, start: dict, credential) -> requests.Response:
    return post_json(s, hub, "/me/sign-in", {"ceremony": start["ceremony"], "csrf": "", "credential": credential})


def sign_in(hub, device: SoftAuthenticator, **tamper) -> tuple[requests.Session, requests.Response]:
    s = browser(hub)
    start = start_sign_in(s, hub)
    return s, finish_sign_in(s, hub, start, device.sign_in(start, **tamper))


def one(hub, sql: str, params: tuple = ()):
    row = hub.store.one(sql, params)
    return row[0] if row else None


def passkey_count(hub, i: int | None = None) -> int:
    if i is None:
        return one(hub, "SELECT COUNT(*) FROM passkeys")
    return one(hub, "SELECT COUNT(*) FROM passkeys WHERE shopper_id=?", (shopper_id(i),))


def shopper_sessions(hub) -> int:
    return one(hub, "SELECT COUNT(*) FROM web_sessions WHERE kind='shopper'")


def challenges(hub) -> int:
    return one(hub, "SELECT COUNT(*) FROM webauthn_challenges")


def claimed_at(hub, i: int):
    return one(hub, "SELECT claimed_at FROM shoppers WHERE id=?", (shopper_id(i),))


def assert_no_trace(r: requests.Response) -> None:
    assert "Traceback" not in r.text and 'File "' not in r.text, r.text[:2000]


def assert_json_error(r: requests.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert_no_trace(r)
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body


def assert_html_error(r: requests.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert_no_trace(r)
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert "<html" in r.text.lower()


def assert_no_session(s: requests.Session, r: requests.Response | None = None) -> None:
    assert not s.cookies.get(COOKIE)
    if r is not None:
        assert COOKIE + "=" not in r.headers.get("set-cookie", "") or 'hub_me=""' in r.headers.get("set-cookie", "")


def private_texts(hub, i: int) -> list[str]:
    """What card i's shopper would not want a finder of the card to see."""
    from hub import shopper
    name = one(hub, "SELECT display_name FROM shoppers WHERE id=?", (shopper_id(i),))
    titles = [item["title"] for item in shopper.profile(hub.store, shopper_id(i), "en")["wishlist"]]
    assert name and titles
    return [name, *titles]


def assert_card_page_private(hub, i: int, texts: list[str] | None = None, expect: str | None = None) -> requests.Response:
    """Card i's URL opened in a fresh browser: no personal data at all."""
    texts = texts or private_texts(hub, i)
    r = requests.get(f"{hub.base}/s/{token(i)}", timeout=20, allow_redirects=False)
    assert r.status_code in (200, 404), r.status_code
    assert_no_trace(r)
    for text in texts:
        assert text not in r.text, text
    if expect:
        assert f'id="card-{expect}"' in r.text
    return r


def assert_unclaimed(hub, i: int, passkeys_before: int = 0) -> None:
    assert claimed_at(hub, i) is None
    assert passkey_count(hub) == passkeys_before
    assert_card_page_private(hub, i, expect="unclaimed")


def csrf_of(s, hub, path: str = "/me/sharing") -> str:
    r = s.get(hub.base + path, timeout=20, allow_redirects=False)
    assert r.status_code == 200, r.text[:500]
    return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def sharing_rows(hub, i: int) -> list:
    return sorted(tuple(r) for r in hub.store.all(
        "SELECT from_brand, to_brand, state, changed_at, via FROM consents WHERE shopper_id=?", (shopper_id(i),)))


def a_brand(hub, i: int) -> str:
    from hub import shopper
    return shopper.profile(hub.store, shopper_id(i), "en")["brands"][0]["brand_id"]


def sharing_change(hub, i: int, csrf: str | None) -> dict:
    fields = {"brand": a_brand(hub, i), "what": "others", "allow": "no"}
    if csrf is not None:
        fields["csrf"] = csrf
    return fields


# -- the happy path -----------------------------------------------------------------------
def test_claim_then_sign_out_and_sign_in_again_with_the_same_passkey(hub):
    titles = private_texts(hub, EMMA)
    assert_card_page_private(hub, EMMA, titles, expect="unclaimed")
    s, device = claim(hub, EMMA)
    assert claimed_at(hub, EMMA) is not None and passkey_count(hub, EMMA) == 1
    stored = hub.store.one("SELECT id, sign_count FROM passkeys WHERE shopper_id=?", (shopper_id(EMMA),))
    assert stored[0] == device.credentials[-1].id_b64

    me = s.get(hub.base + "/me", timeout=20, allow_redirects=False)
    assert me.status_code == 200
    assert all(t in me.text for t in titles[1:]), "the wishlist is on the shopper's page"
    card = s.get(f"{hub.base}/s/{token(EMMA)}", timeout=20, allow_redirects=False)  # the owner: sent to /me
    assert card.status_code == 303 and card.headers["location"] == "/me"

    out = post_form(s, hub, "/me/sign-out", {"csrf": csrf_of(s, hub, "/me")})
    assert out.status_code == 303 and "/me/sign-in" in out.headers["location"]
    assert not s.cookies.get(COOKIE)
    assert s.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 303
    assert shopper_sessions(hub) == 0

    s2, r = sign_in(hub, device)
    assert r.status_code == 200, r.text
    assert r.json()["next"] == "/me" and s2.cookies.get(COOKIE)
    me = s2.get(hub.base + "/me", timeout=20, allow_redirects=False)
    assert me.status_code == 200 and titles[1] in me.text
    count, used = hub.store.one("SELECT sign_count, last_used_at FROM passkeys WHERE id=?", (stored[0],))
    assert count == device.credentials[-1].counter == stored[1] + 1 and used > 0  # the counter moved
    assert_card_page_private(hub, EMMA, titles, expect="claimed")  # still private to anyone else


def test_a_brand_new_card_is_claimed_and_its_passkey_signs_in_later(hub):
    """A card the hub never saw (no credentials row): the claim makes its profile; the passkey's
    user handle (chosen at claim/options) must be the shopper's, or the next sign-in fails."""
    fresh = "new-card-" + "k" * 20
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start = start_claim(s, hub, fresh)
    r = finish_claim(s, hub, fresh, start, device.register(start))
    assert r.status_code == 200, r.text
    sid = one(hub, "SELECT shopper_id FROM passkeys WHERE id=?", (device.credentials[-1].id_b64,))
    assert sid and one(hub, "SELECT claimed_at FROM shoppers WHERE id=?", (sid,)) is not None
    assert s.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 200
    s2, r = sign_in(hub, device)
    assert r.status_code == 200, r.text
    assert s2.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 200
    assert requests.get(f"{hub.base}/s/{fresh}", timeout=20).text.count('id="card-claimed"') == 1


# -- forged claims ------------------------------------------------------------------------
FORGED_CLAIMS = {
    "garbage": lambda d, start, hub: {"id": "x", "response": "garbage"},
    "not_an_object": lambda d, start, hub: "garbage",
    "bad_base64": lambda d, start, hub: {**d.register(start, keep=False), "response": {
        "clientDataJSON": "!!!", "attestationObject": "%%%"}},
    "wrong_challenge": lambda d, start, hub: d.register(start, challenge=b64url(b"\x01" * 32)),
    "other_origin": lambda d, start, hub: d.register(start, origin=f"http://evil.localhost:{hub.port}"),
    "cross_origin_frame": lambda d, start, hub: _cross_origin(d, start),
    "other_rp_id": lambda d, start, hub: d.register(start, rp_id="evil.localhost"),
    "no_user_verification": lambda d, start, hub: d.register(start, flags=UP | AT),
    "no_user_presence": lambda d, start, hub: d.register(start, flags=UV | AT),
    "a_sign_in_type": lambda d, start, hub: d.register(start, kind="webauthn.get"),
}


def _cross_origin(device, start):
    answer = device.register(start)
    client = json.loads(__import__("softauthn").unb64url(answer["response"]["clientDataJSON"]))
    client["origin"] = "http://evil.example"
    answer["response"]["clientDataJSON"] = b64url(json.dumps(client).encode())
    return answer


@pytest.mark.parametrize("forgery", sorted(FORGED_CLAIMS))
def test_forged_claim_answers_are_refused(hub, forgery):
    titles = private_texts(hub, EMMA)
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start = start_claim(s, hub, token(EMMA))
    r = finish_claim(s, hub, token(EMMA), start, FORGED_CLAIMS[forgery](device, start, hub))
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert shopper_sessions(hub) == 0 and challenges(hub) == 0  # the challenge is spent anyway
    assert_unclaimed(hub, EMMA)
    assert_card_page_private(hub, EMMA, titles)


def test_a_claim_for_card_a_posted_to_card_b_is_refused(hub):
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start_a = start_claim(s, hub, token(EMMA))
    answer = device.register(start_a)
    r = finish_claim(s, hub, token(JAMES), start_a, answer)
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert_unclaimed(hub, JAMES)
    assert_unclaimed(hub, EMMA)
    # B's own ceremony with A's answer (A's challenge): refused too
    start_b = start_claim(s, hub, token(JAMES))
    assert_json_error(finish_claim(s, hub, token(JAMES), start_b, answer), 400)
    assert_unclaimed(hub, JAMES)
    assert not s.cookies.get(COOKIE)


def test_a_sign_in_ceremony_does_not_claim_and_a_claim_ceremony_does_not_sign_in(hub):
    _s, device = claim(hub, EMMA)
    # a sign-in ceremony's id and challenge, answered as a registration, posted as a claim of James's card
    s = browser(hub)
    sign_start = start_sign_in(s, hub)
    fake_start = {"ceremony": sign_start["ceremony"], "options": {
        "challenge": sign_start["options"]["challenge"], "rp": {"id": "localhost"},
        "user": {"id": b64url(b"\x02" * 32)}}}
    r = finish_claim(s, hub, token(JAMES), fake_start, SoftAuthenticator(hub.base).register(fake_start))
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert_unclaimed(hub, JAMES, passkeys_before=1)
    # a claim ceremony's id and challenge, answered as an assertion by Emma's real passkey
    claim_start = start_claim(s, hub, token(JAMES))
    r = finish_sign_in(s, hub, claim_start, device.sign_in(claim_start))
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert shopper_sessions(hub) == 1  # only the claim's own
    assert_unclaimed(hub, JAMES, passkeys_before=1)


def test_an_expired_ceremony_is_refused(hub):
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start = start_claim(s, hub, token(EMMA))
    hub.store.conn.execute("UPDATE webauthn_challenges SET expires_at=?", (time.time() - 1,))
    r = finish_claim(s, hub, token(EMMA), start, device.register(start))
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert_unclaimed(hub, EMMA)
    # a sign-in ceremony past its time
    _s, device = claim(hub, JAMES)
    count = one(hub, "SELECT sign_count FROM passkeys")
    s = browser(hub)
    start = start_sign_in(s, hub)
    hub.store.conn.execute("UPDATE webauthn_challenges SET expires_at=?", (time.time() - 1,))
    r = finish_sign_in(s, hub, start, device.sign_in(start))
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert one(hub, "SELECT sign_count FROM passkeys") == count


# -- forged sign-ins ----------------------------------------------------------------------
FORGED_SIGN_INS = {
    "another_keys_signature": dict(sign_with=new_key()),
    "corrupted_signature": dict(corrupt_signature=True),
    "wrong_challenge": dict(challenge=b64url(b"\x03" * 32)),
    "other_origin": dict(origin="http://evil.localhost:{port}"),
    "other_rp_id": dict(rp_id="evil.localhost"),
    "no_user_verification": dict(flags=UP),
    "a_create_type": dict(kind="webauthn.create"),
    "another_user_handle": dict(user_handle=b"\x04" * 32),
}


@pytest.mark.parametrize("forgery", sorted(FORGED_SIGN_INS))
def test_forged_sign_in_answers_are_refused(hub, forgery):
    _s, device = claim(hub, EMMA)
    sessions, count = shopper_sessions(hub), one(hub, "SELECT sign_count FROM passkeys")
    tamper = {k: (v.format(port=hub.port) if isinstance(v, str) else v) for k, v in FORGED_SIGN_INS[forgery].items()}
    s, r = sign_in(hub, device, **tamper)
    assert_json_error(r, 400)
    assert_no_session(s, r)
    assert shopper_sessions(hub) == sessions
    assert one(hub, "SELECT sign_count FROM passkeys") == count
    assert s.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 303


def test_an_unknown_passkey_and_garbage_do_not_sign_in(hub):
    claim(hub, EMMA)
    stranger = SoftAuthenticator(hub.base)
    stranger.register({"options": {"challenge": b64url(b"\x05" * 32), "rp": {"id": "localhost"},
                                   "user": {"id": b64url(b"\x06" * 32)}}})
    s, r = sign_in(hub, stranger)
    assert_json_error(r, 400)
    assert_no_session(s, r)
    for garbage in ({"id": ""}, {"id": "a" * 5000}, "garbage", [], {"id": "abc", "response": "x"}, None):
        start = start_sign_in(s, hub)
        r = finish_sign_in(s, hub, start, garbage)
        assert_json_error(r, 400)
        assert_no_session(s, r)
    assert shopper_sessions(hub) == 1


# -- replays ------------------------------------------------------------------------------
def test_the_same_claim_answer_twice_is_refused_the_second_time(hub):
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start = start_claim(s, hub, token(EMMA))
    answer = device.register(start)
    assert finish_claim(s, hub, token(EMMA), start, answer).status_code == 200
    other = browser(hub)
    r = finish_claim(other, hub, token(EMMA), start, answer)
    assert r.status_code in (400, 409)
    assert_json_error(r, r.status_code)
    assert_no_session(other, r)
    assert passkey_count(hub) == 1 and shopper_sessions(hub) == 1


@pytest.mark.parametrize("counter", ["moving", "always_zero"])
def test_the_same_sign_in_assertion_twice_is_refused_the_second_time(hub, counter):
    """Refused by the spent challenge alone when the authenticator keeps no counter (many
    synced passkeys always say 0), and by both when it does."""
    _s, device = claim(hub, EMMA)
    s = browser(hub)
    start = start_sign_in(s, hub)
    answer = device.sign_in(start, counter=0 if counter == "always_zero" else None)
    assert finish_sign_in(s, hub, start, answer).status_code == 200
    sessions, count = shopper_sessions(hub), one(hub, "SELECT sign_count FROM passkeys")
    other = browser(hub)
    r = finish_sign_in(other, hub, start, answer)
    assert_json_error(r, 400)
    assert_no_session(other, r)
    # ... and under a fresh ceremony (the old challenge is signed, not the new one)
    r = finish_sign_in(other, hub, start_sign_in(other, hub), answer)
    assert_json_error(r, 400)
    assert_no_session(other, r)
    assert shopper_sessions(hub) == sessions and one(hub, "SELECT sign_count FROM passkeys") == count


def test_a_sign_in_whose_counter_went_backwards_is_refused(hub):
    _s, device = claim(hub, EMMA)
    s, r = sign_in(hub, device, counter=5)
    assert r.status_code == 200 and one(hub, "SELECT sign_count FROM passkeys") == 5
    sessions = shopper_sessions(hub)
    for counter in (3, 5):  # backwards, and standing still: a cloned authenticator
        s, r = sign_in(hub, device, counter=counter)
        assert_json_error(r, 400)
        assert_no_session(s, r)
    assert shopper_sessions(hub) == sessions and one(hub, "SELECT sign_count FROM passkeys") == 5
    s, r = sign_in(hub, device, counter=6)  # the real one, moving on
    assert r.status_code == 200


def test_two_racing_claims_of_one_card_one_wins(hub):
    import concurrent.futures
    pairs = []
    for _ in range(2):
        s, device = browser(hub), SoftAuthenticator(hub.base)
        start = start_claim(s, hub, token(EMMA))
        pairs.append((s, start, device.register(start)))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda p: finish_claim(p[0], hub, token(EMMA), p[1], p[2]), pairs))
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    assert passkey_count(hub) == 1 and shopper_sessions(hub) == 1
    loser = next(p[0] for p, r in zip(pairs, answers) if r.status_code == 409)
    assert not loser.cookies.get(COOKIE)


def test_adding_a_passkey_needs_the_session_and_its_csrf_token(hub):
    emma, _device = claim(hub, EMMA)
    james, _other = claim(hub, JAMES)
    csrf, james_csrf = csrf_of(emma, hub, "/me/cards"), csrf_of(james, hub, "/me/cards")
    for token_given in ("", "x" * 43, james_csrf):
        assert_json_error(post_json(emma, hub, "/me/passkeys/options", {"csrf": token_given}), 403)
    assert_json_error(post_json(browser(hub), hub, "/me/passkeys/options", {"csrf": csrf}), 401)
    assert challenges(hub) == 0
    r = post_json(emma, hub, "/me/passkeys/options", {"csrf": csrf})
    assert r.status_code == 200, r.text
    start, laptop = r.json(), SoftAuthenticator(hub.base)
    answer = laptop.register(start)
    body = {"ceremony": start["ceremony"], "credential": answer}
    assert_json_error(post_json(emma, hub, "/me/passkeys", {**body, "csrf": ""}), 403)
    assert_json_error(post_json(emma, hub, "/me/passkeys", {**body, "csrf": csrf}, site="cross-site"), 403)
    assert passkey_count(hub, EMMA) == 1
    # James, signed in, posting Emma's ceremony with his own token: not his ceremony
    assert_json_error(post_json(james, hub, "/me/passkeys", {**body, "csrf": james_csrf}), 400)
    assert passkey_count(hub, JAMES) == 1 and passkey_count(hub, EMMA) == 1
    # a claim ceremony is no add-passkey ceremony
    claim_start = start_claim(browser(hub), hub, token(OLIVIA))
    r = post_json(emma, hub, "/me/passkeys", {"ceremony": claim_start["ceremony"], "csrf": csrf,
                                              "credential": laptop.register(claim_start)})
    assert_json_error(r, 400)
    assert passkey_count(hub, EMMA) == 1 and claimed_at(hub, OLIVIA) is None
    # the real thing: added, and it signs in
    start = post_json(emma, hub, "/me/passkeys/options", {"csrf": csrf}).json()
    r = post_json(emma, hub, "/me/passkeys", {"ceremony": start["ceremony"], "csrf": csrf,
                                              "credential": laptop.register(start)})
    assert r.status_code == 200, r.text
    assert passkey_count(hub, EMMA) == 2
    s, r = sign_in(hub, laptop)
    assert r.status_code == 200, r.text


# -- a claimed card in someone else's hands ----------------------------------------------------
def test_a_claimed_cards_url_shows_only_the_sign_in_step(hub):
    titles = private_texts(hub, EMMA)
    claim(hub, EMMA)
    r = assert_card_page_private(hub, EMMA, titles, expect="claimed")
    assert r.status_code == 200 and 'data-passkey="get"' in r.text and 'data-passkey="create"' not in r.text
    assert r.headers.get("referrer-policy") == "no-referrer"
    finder, thief = browser(hub), SoftAuthenticator(hub.base)
    r = claim_options(finder, hub, token(EMMA))
    assert_json_error(r, 409)
    assert challenges(hub) == 0
    # a claim ceremony opened while the card was unclaimed, finished after it was claimed
    s2 = browser(hub)
    start = start_claim(s2, hub, token(JAMES))
    claim(hub, JAMES)
    r = finish_claim(s2, hub, token(JAMES), start, thief.register(start))
    assert_json_error(r, 409)
    assert_no_session(s2, r)
    assert passkey_count(hub, JAMES) == 1 and passkey_count(hub) == 2
    assert not finder.cookies.get(COOKIE)


# -- cross-site --------------------------------------------------------------------------
@pytest.mark.parametrize("where", [dict(site="cross-site"), dict(site="same-site"),
                                   dict(site="same-origin", origin="http://evil.example"),
                                   dict(site="same-origin", origin="http://localhost:1")])
def test_cross_site_claim_options_are_refused(hub, where):
    s = browser(hub)
    r = claim_options(s, hub, token(EMMA), **where)
    assert_json_error(r, 403)
    assert challenges(hub) == 0
    r = post_json(s, hub, "/me/sign-in/options", {}, **where)
    assert_json_error(r, 403)
    assert challenges(hub) == 0
    assert_no_session(s)


def test_a_cross_site_claim_finish_is_refused(hub):
    s, device = browser(hub), SoftAuthenticator(hub.base)
    start = start_claim(s, hub, token(EMMA))
    r = post_json(s, hub, f"/s/{token(EMMA)}/claim", {"ceremony": start["ceremony"], "credential": device.register(start)},
                  site="cross-site", origin="http://evil.example")
    assert_json_error(r, 403)
    assert_no_session(s, r)
    assert_unclaimed(hub, EMMA)


@pytest.mark.parametrize("attempt", ["no_csrf", "wrong_csrf", "cross_site", "evil_origin"])
def test_sharing_form_without_the_right_csrf_or_from_another_site_changes_nothing(hub, attempt):
    s, _device = claim(hub, EMMA)
    csrf = csrf_of(s, hub)
    before = sharing_rows(hub, EMMA)
    fields = sharing_change(hub, EMMA, {"no_csrf": None, "wrong_csrf": "x" * 43}.get(attempt, csrf))
    site = "cross-site" if attempt == "cross_site" else "same-origin"
    origin = "http://evil.example" if attempt == "evil_origin" else None
    r = post_form(s, hub, "/me/sharing", fields, site=site, origin=origin)
    assert_html_error(r, 403)
    assert sharing_rows(hub, EMMA) == before
    # the right token from the right page does change it (the test above is not vacuous)
    r = post_form(s, hub, "/me/sharing", sharing_change(hub, EMMA, csrf))
    assert r.status_code == 303, r.text[:500]
    assert sharing_rows(hub, EMMA) != before


JSON_ENDPOINTS = ["/s/{token}/claim/options", "/s/{token}/claim", "/me/sign-in/options", "/me/sign-in"]


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""])
def test_json_endpoints_refuse_other_bodies_with_415(hub, kind):
    s = browser(hub)
    for path in JSON_ENDPOINTS:
        r = s.post(hub.base + path.format(token=token(EMMA)), data=b'{"csrf": ""}', timeout=20, allow_redirects=False,
                   headers={"Content-Type": kind, "Sec-Fetch-Site": "same-origin", "Origin": hub.base})
        assert_json_error(r, 415)
    assert challenges(hub) == 0
    assert_no_session(s)
    assert_unclaimed(hub, EMMA)


# -- oversized and malformed -------------------------------------------------------------------
def test_oversized_and_malformed_json_is_a_clear_json_error(hub):
    s = browser(hub)
    big = json.dumps({"csrf": "", "pad": "x" * 200 * 1024})
    for path in JSON_ENDPOINTS:
        path = path.format(token=token(EMMA))
        assert_json_error(post_json(s, hub, path, big), 413)
        assert_json_error(post_json(s, hub, path, b'{"ceremony": '), 400)
        assert_json_error(post_json(s, hub, path, b"\xff\xfe{}"), 400)
        assert_json_error(post_json(s, hub, path, [1, 2, 3]), 400)
        assert_json_error(post_json(s, hub, path, "null"), 400)
    for body in ({"ceremony": 12, "credential": {}}, {"ceremony": ["x"]}, {"ceremony": "y" * 10_000},
                 {"ceremony": None, "credential": None}, {}):
        assert_json_error(post_json(s, hub, f"/s/{token(EMMA)}/claim", body), 400)
        assert_json_error(post_json(s, hub, "/me/sign-in", body), 400)
    assert challenges(hub) == 0
    assert_no_session(s)
    assert_unclaimed(hub, EMMA)


def test_deeply_nested_json_is_a_clear_400_not_a_failure(hub, caplog):
    s = browser(hub)
    for path in JSON_ENDPOINTS:
        for body in (b"[" * 10_000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
            assert_json_error(post_json(s, hub, path.format(token=token(EMMA)), body), 400)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a bad body is not a hub failure"
    assert challenges(hub) == 0
    assert_no_session(s)


def test_oversized_and_malformed_forms_are_a_clear_page(hub):
    s, _device = claim(hub, EMMA)
    csrf, before = csrf_of(s, hub), sharing_rows(hub, EMMA)
    change = sharing_change(hub, EMMA, csrf)
    big = {**change, "pad": "x" * 100 * 1024}
    assert_html_error(post_form(s, hub, "/me/sharing", big), 413)
    many = {**change, **{f"f{n}": "1" for n in range(500)}}
    assert_html_error(post_form(s, hub, "/me/sharing", many), 400)
    r = s.post(hub.base + "/me/sharing", data=b"csrf=" + csrf.encode() + b"&brand=\xff\xfe", timeout=20,
               allow_redirects=False, headers={"Content-Type": "application/x-www-form-urlencoded",
                                               "Sec-Fetch-Site": "same-origin", "Origin": hub.base})
    assert r.status_code in (400, 404), r.status_code  # unreadable, or not a brand of hers
    assert_html_error(r, r.status_code)
    r = s.post(hub.base + "/me/sharing", data=json.dumps(change), timeout=20, allow_redirects=False,
               headers={"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": hub.base})
    assert_html_error(r, 415)
    for bad in ({**change, "what": "everything"}, {**change, "allow": "maybe"}, {**change, "brand": ""},
                {**change, "brand": "b" * 65}, {**change, "brand": "no-such-brand"}):
        r = post_form(s, hub, "/me/sharing", bad)
        assert r.status_code in (400, 404), (bad, r.status_code)
        assert_html_error(r, r.status_code)
    assert sharing_rows(hub, EMMA) == before


# -- an ended session ---------------------------------------------------------------------
def test_a_session_that_ended_mid_form_changes_nothing_and_says_sign_in_again(hub):
    s, _device = claim(hub, EMMA)
    csrf, before = csrf_of(s, hub), sharing_rows(hub, EMMA)
    hub.store.conn.execute("UPDATE web_sessions SET expires_at=? WHERE kind='shopper'", (time.time() - 1,))
    r = post_form(s, hub, "/me/sharing", sharing_change(hub, EMMA, csrf))
    assert_html_error(r, 401)
    assert "sign in again" in r.text.lower() and 'href="/me/sign-in"' in r.text
    assert sharing_rows(hub, EMMA) == before
    assert s.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 303


# -- rate limits ----------------------------------------------------------------------------
def test_claim_options_past_the_limit_are_429_with_retry_after(hub):
    from hub import shopper_web
    s = browser(hub)
    for _ in range(shopper_web.CLAIM_LIMIT):
        assert claim_options(s, hub, token(EMMA)).status_code == 200
    made = challenges(hub)
    r = claim_options(s, hub, token(EMMA))
    assert_json_error(r, 429)
    assert int(r.headers["retry-after"]) > 0
    assert challenges(hub) == made  # no challenge for a refused call
    r = claim_options(s, hub, token(JAMES))  # another card from the same address: still refused
    assert r.status_code == 429
    assert_unclaimed(hub, EMMA)


# -- the card token is never logged -------------------------------------------------------------
class everything_logged:
    """Every logger at DEBUG into caplog, loggers that do not propagate too. uvicorn's access
    logger is left as the hub set it (no handler: uvicorn then writes no access log at all)
    unless `access_log`: then it gets a handler, as an operator's logging config would."""

    def __init__(self, caplog, access_log: bool = False) -> None:
        self.caplog, self.access_log, self.touched = caplog, access_log, []

    def __enter__(self):
        self.caplog.set_level(logging.DEBUG)
        for name in list(logging.root.manager.loggerDict):
            logger = logging.getLogger(name)
            if name == "uvicorn.access" and not self.access_log:
                continue
            self.touched.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            if not logger.propagate:
                logger.addHandler(self.caplog.handler)
        return self

    def __exit__(self, *exc):
        for logger, level, propagate in self.touched:
            logger.setLevel(level)
            if not propagate:
                logger.removeHandler(self.caplog.handler)


def card_flow(hub, secret: str) -> tuple[requests.Session, list[requests.Response]]:
    """Everything a card's token goes through: its page, refusals, the claim, the owner's visit,
    someone else's visit, a second claim."""
    s, device, responses = browser(hub), SoftAuthenticator(hub.base), []
    responses.append(s.get(f"{hub.base}/s/{secret}", timeout=20))
    start = start_claim(s, hub, secret)
    responses.append(finish_claim(s, hub, secret, start, device.register(start, flags=UP | AT)))  # refused
    responses.append(claim_options(s, hub, secret + "!"))  # malformed token
    responses.append(post_json(s, hub, f"/s/{secret}/claim", b"{bad json"))
    responses.append(post_json(s, hub, f"/s/{secret}/claim/options", {}, site="cross-site"))
    responses.append(requests.get(f"http://127.0.0.1:{hub.port}/s/{secret}", timeout=20, allow_redirects=False))
    start = start_claim(s, hub, secret)
    responses.append(finish_claim(s, hub, secret, start, device.register(start)))
    responses.append(s.get(f"{hub.base}/s/{secret}", timeout=20, allow_redirects=False))
    responses.append(s.get(hub.base + "/me", timeout=20))
    responses.append(requests.get(f"{hub.base}/s/{secret}", timeout=20))  # claimed, someone else
    responses.append(claim_options(requests.Session(), hub, secret))  # 409
    responses.append(s.get(f"{hub.base}/s/{secret}?lang=vi", timeout=20, allow_redirects=False))
    return s, responses


CLIENT_LOGGERS = ("urllib3", "requests", "charset_normalizer")


def assert_token_not_logged(caplog, secret: str) -> None:
    assert caplog.records, "nothing was captured: the capture is broken"
    for record in caplog.records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue  # the test's own HTTP client (same process), not the hub
        text = " ".join([record.getMessage(), str(record.args), record.exc_text or "", repr(record.__dict__)])
        assert secret not in text, f"{record.name}: {record.getMessage()}"


def test_the_card_token_is_never_logged_nor_echoed_in_a_header_or_cookie(hub, caplog):
    secret = token(EMMA)
    with everything_logged(caplog):
        s, responses = card_flow(hub, secret)
    assert claimed_at(hub, EMMA) is not None  # the flow really ran
    assert_token_not_logged(caplog, secret)
    hash_hex = hub.store.credential_hash("token:" + secret)
    for r in responses:
        for name, value in r.headers.items():
            if name.lower() == "location" and r.url.startswith("http://127.0.0.1"):
                continue  # the wrong host is sent to the public origin's own /s/<token>
            assert secret not in value and hash_hex not in value, (r.url, name, value)
        for cookie in r.cookies:
            assert secret not in (cookie.value or "") and secret not in cookie.name
        if r.request.method == "POST":
            assert secret not in r.text and hash_hex not in r.text
    for cookie in s.cookies:
        assert secret not in (cookie.value or "")


def test_an_access_log_turned_on_by_the_operator_still_never_has_the_card_token(hub, caplog):
    """hub/server.py turns uvicorn's access log off, but an operator's logging config (uvicorn
    --log-config, a handler on "uvicorn.access") turns it back on: the contract says the
    access log is filtered, so /s/<token> must be redacted there too."""
    secret = token(EMMA)
    with everything_logged(caplog, access_log=True):
        card_flow(hub, secret)
    assert any(r.name == "uvicorn.access" for r in caplog.records), "the access log was not on"
    assert_token_not_logged(caplog, secret)


# -- erased shoppers and revoked cards ---------------------------------------------------------
def test_an_erased_shoppers_passkey_no_longer_signs_in(hub):
    s, device = claim(hub, EMMA)
    csrf = csrf_of(s, hub, "/me/erase")
    r = post_form(s, hub, "/me/erase", {"csrf": csrf, "confirm": "yes"})
    assert r.status_code == 303, r.text[:500]
    assert one(hub, "SELECT erased FROM shoppers WHERE id=?", (shopper_id(EMMA),)) == 1
    assert s.get(hub.base + "/me", timeout=20, allow_redirects=False).status_code == 303
    s2, r = sign_in(hub, device)
    assert_json_error(r, 400)
    assert_no_session(s2, r)
    assert shopper_sessions(hub) == 0
    r = requests.get(f"{hub.base}/s/{token(EMMA)}", timeout=20)
    assert r.status_code == 404 and 'id="card-revoked"' in r.text
    assert "Emma" not in r.text
    assert_json_error(claim_options(browser(hub), hub, token(EMMA)), 409)
    assert challenges(hub) == 0


def test_a_revoked_cards_url_no_longer_works_and_cannot_be_claimed(hub):
    from hub import shopper
    s, _device = claim(hub, EMMA)
    card_id = shopper.profile(hub.store, shopper_id(EMMA), "en")["cards"][0]["id"]
    csrf = csrf_of(s, hub, f"/me/cards/{card_id}/revoke")
    r = post_form(s, hub, f"/me/cards/{card_id}/revoke", {"csrf": csrf, "confirm": "yes"})
    assert r.status_code == 303, r.text[:500]
    titles = private_texts(hub, EMMA)
    r = assert_card_page_private(hub, EMMA, titles, expect="revoked")
    assert r.status_code == 404 and "no longer works" in r.text
    thief = browser(hub)
    assert_json_error(claim_options(thief, hub, token(EMMA)), 409)
    assert challenges(hub) == 0
    # an unclaimed demo card revoked at the hub: the same, and no claim
    hub.store.conn.execute("UPDATE credentials SET revoked=1 WHERE hash=?",
                           (hub.store.credential_hash("token:" + token(JAMES)),))
    r = assert_card_page_private(hub, JAMES, expect="revoked")
    assert r.status_code == 404 and "no longer works" in r.text
    assert_json_error(claim_options(thief, hub, token(JAMES)), 409)
    assert challenges(hub) == 0 and passkey_count(hub) == 1 and claimed_at(hub, JAMES) is None
    assert_no_session(thief)


def test_over_https_the_session_cookie_is_host_prefixed_secure_httponly_and_strict(hub_db, card_key):
    """Behind TLS (the hub's public URL is https), the shopper's session cookie is
    `__Host-hub_me`: Secure, HttpOnly, SameSite=Strict, Path=/, no Domain."""
    from fastapi.testclient import TestClient
    from hub.app import create_app
    app = create_app(HubSettings(db_path=hub_db, public_url="https://id.shop.example"))
    device = SoftAuthenticator("https://id.shop.example")
    with TestClient(app, base_url="https://id.shop.example") as client:
        send = {"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}
        start = client.post(f"/s/{token(4)}/claim/options", json={}, headers=send)
        assert start.status_code == 200, start.text
        done = client.post(f"/s/{token(4)}/claim", headers=send,
                           json={"ceremony": start.json()["ceremony"], "credential": device.register(start.json())})
        assert done.status_code == 200, done.text
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("__Host-hub_me=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
        assert not any(f.startswith("domain=") for f in flags)
        assert client.get("/me").status_code == 200  # the cookie works over https
    app.state.store.close()
