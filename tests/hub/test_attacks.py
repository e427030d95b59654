"""Issue 9's attacks on the hub, each through a real hub on a loopback port over SQLite and
PostgreSQL, by an attacker holding one enrolled kiosk (of this brand or another), one card, a
kiosk's disk or a backup. Each of these worked before the hub demanded proofs."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from hub import demo
from kiosk import api

LOTUS, SEVER = "DEMO", "DEMO-SEVER-MSK"


def enroll(hub, code=LOTUS) -> dict:
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "t"}, timeout=5)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def card(index: int) -> dict:
    return {"kind": "token", "token": demo.token_for(index)}


def new_id() -> str:
    return str(uuid.uuid4())


def checkin(hub, auth, index, checkin_id=None):
    body = {"credential": card(index), **({"checkin_id": checkin_id} if checkin_id else {})}
    return requests.post(hub.url + "/v1/checkins", headers=auth, json=body, timeout=5)


def post(hub, auth, *events):
    r = requests.post(hub.url + "/v1/events:batch", headers=auth, json={"events": list(events)}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def refused_shopper(hub) -> tuple[int, str]:
    """A demo shopper who refused sharing with other brands (i % 3 == 2), and their id."""
    auth = enroll(hub)
    view = checkin(hub, auth, 2).json()
    assert view["consent"]["sharing"] == "refused" and view["consent"]["hidden_items"] > 0
    return 2, view["shopper"]["id"]


def test_an_event_naming_only_a_shopper_id_is_refused_for_every_type(hub):
    index, victim = refused_shopper(hub)
    attacker = enroll(hub, SEVER)  # any enrolled kiosk, of another brand
    own = [i for i in checkin(hub, enroll(hub), index).json()["wishlist"]]
    visits = hub.store.all("SELECT brand_id, count FROM visits WHERE shopper_id=? ORDER BY brand_id", (victim,))
    gtin = demo.products()[3]["gtin"]
    forged = [
        {"type": "checkin"},
        {"type": "scan", "gtin": gtin},
        {"type": "wishlist_add", "gtin": gtin},
        {"type": "wishlist_remove", "gtin": own[0]["gtin"], "tags": own[0]["tags"]},
        {"type": "consent_grant", "from_brand": "*"},
        {"type": "consent_revoke", "from_brand": "*"},
        {"type": "staff_lookup", "staff_id": "staff-mai"},
    ]
    results = post(hub, attacker, *[{"event_id": new_id(), "shopper_id": victim, **e} for e in forged])
    assert [r["status"] for r in results] == [api.REJECTED] * len(forged)
    assert all("proof" in r["reason"] or "credential" in r["reason"] for r in results), results
    # nothing happened to the victim: still refusing, same wishlist, no visit at the attacker's brand
    view = checkin(hub, enroll(hub), index).json()
    assert view["consent"]["sharing"] == "refused"
    assert sorted(i["gtin"] for i in view["wishlist"]) == sorted(i["gtin"] for i in own)
    assert hub.store.all("SELECT brand_id, count FROM visits WHERE shopper_id=? ORDER BY brand_id", (victim,)) == visits
    assert not hub.store.one("SELECT 1 FROM events WHERE shopper_id=?", (victim,))


def test_another_kiosks_checkin_or_session_proves_nothing_here(hub):
    index, victim = refused_shopper(hub)
    kiosk, attacker = enroll(hub), enroll(hub)  # same brand, same store, even
    visit = new_id()
    session = checkin(hub, kiosk, index, visit).json()["session"]
    grant = {"type": "consent_grant", "from_brand": "*", "shopper_id": victim}
    results = post(hub, attacker, {"event_id": new_id(), "checkin": visit, **grant},
                   {"event_id": new_id(), "session": session, **grant})
    assert [r["status"] for r in results] == [api.REJECTED, api.REJECTED]
    assert "check-in was not accepted" in results[0]["reason"]
    assert "session has ended" in results[1]["reason"]
    # the kiosk that checked the shopper in may change sharing while the shopper is there
    assert post(hub, kiosk, {"event_id": new_id(), "session": session, **grant})[0]["status"] == api.CREATED
    assert checkin(hub, kiosk, index).json()["consent"]["sharing"] == "granted"


def test_a_keyed_hash_is_not_a_credential(hub):
    """What a kiosk's disk or a hub backup holds (the keyed hash of a card) opens nothing."""
    auth = enroll(hub, SEVER)
    digest = hub.store.credential_hash(f"token:{demo.token_for(0)}")  # the exact hash the hub keeps
    r = requests.post(hub.url + "/v1/checkins", headers=auth, json={"credential": {"kind": "hash", "hash": digest}},
                      timeout=5)
    assert r.status_code == 422 and r.json()["type"] == api.P_INVALID
    result = post(hub, auth, {"event_id": new_id(), "type": "checkin", "credential": {"kind": "hash", "hash": digest}})
    assert result[0]["status"] == api.REJECTED and "hash is not a credential" in result[0]["reason"]


def test_stored_event_bodies_hold_no_credential_material(hub):
    auth = enroll(hub)
    token = demo.token_for(1)
    visit = new_id()
    session = checkin(hub, auth, 1).json()["session"]
    results = post(hub, auth, {"event_id": visit, "type": "checkin", "credential": card(1)},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": visit, "session": session,
                    "gtin": demo.products()[0]["gtin"]})
    assert [r["status"] for r in results] == [api.CREATED, api.CREATED]
    bodies = " ".join(b for (b,) in hub.store.all("SELECT body FROM events"))
    assert token not in bodies and session not in bodies
    assert json.loads(hub.store.one("SELECT body FROM events WHERE event_id=?", (visit,))[0])["credential"] == {"kind": "token"}


def test_an_offline_checkin_proves_its_visit_and_a_refused_one_proves_nothing(hub):
    auth = enroll(hub)
    gtin = demo.products()[4]["gtin"]
    good, bad = new_id(), new_id()
    results = post(hub, auth,
                   {"event_id": good, "type": "checkin", "credential": card(5)},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": good, "gtin": gtin},
                   {"event_id": new_id(), "type": "consent_grant", "checkin": good, "from_brand": "*"},
                   {"event_id": bad, "type": "checkin", "credential": {"kind": "token", "token": "Z" * 24}},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": bad, "gtin": gtin})
    assert [r["status"] for r in results] == [api.CREATED] * 3 + [api.REJECTED] * 2
    assert "check-in was not accepted" in results[4]["reason"]
    view = checkin(hub, auth, 5).json()
    assert gtin in [i["gtin"] for i in view["wishlist"]] and view["consent"]["sharing"] == "granted"


def test_a_sharing_change_needs_the_shopper_present(hub):
    """A check-in reference from an hour ago shows the visit's items, not a shopper at the kiosk."""
    auth = enroll(hub)
    index, victim = refused_shopper(hub)
    visit = new_id()
    checkin(hub, auth, index, visit)
    hub.store.conn.execute("UPDATE events SET received_at = received_at - 3600 WHERE event_id=?", (visit,))
    gtin = demo.products()[7]["gtin"]
    results = post(hub, auth, {"event_id": new_id(), "type": "consent_grant", "checkin": visit, "from_brand": "*"},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": visit, "gtin": gtin})
    assert [r["status"] for r in results] == [api.REJECTED, api.CREATED]
    assert "shopper at the kiosk" in results[0]["reason"]


def test_a_live_checkin_is_counted_once_however_often_the_call_is_retried(hub):
    auth = enroll(hub, SEVER)
    visit = new_id()
    first = checkin(hub, auth, 6, visit).json()
    for _ in range(3):
        assert checkin(hub, auth, 6, visit).status_code == 200
    count = hub.store.one("SELECT count FROM visits WHERE shopper_id=? AND brand_id='sever'", (first["shopper"]["id"],))
    assert count == (1,) if first["visit"] == "first" else count[0] >= 1
    # another kiosk cannot take over the id, nor a card another shopper's
    assert checkin(hub, enroll(hub, SEVER), 6, visit).status_code == 409
    assert checkin(hub, auth, 7, visit).status_code == 409


def test_a_remove_takes_away_only_adds_of_the_same_shopper(hub):
    auth = enroll(hub)
    victim_visit, attacker_visit = new_id(), new_id()
    victim = checkin(hub, auth, 0, victim_visit).json()
    checkin(hub, auth, 3, attacker_visit)
    item = victim["wishlist"][0]
    # the attacker knows the victim's tags (they are in every check-in answer) and names them
    results = post(hub, auth, {"event_id": new_id(), "type": "wishlist_remove", "checkin": attacker_visit,
                               "gtin": item["gtin"], "tags": item["tags"]})
    assert results[0]["status"] == api.CREATED  # it removes the attacker's own nothing
    assert item["gtin"] in [i["gtin"] for i in checkin(hub, auth, 0).json()["wishlist"]]
    # and it did not pre-empt the victim's own remove of the same tags
    post(hub, auth, {"event_id": new_id(), "type": "wishlist_remove", "checkin": victim_visit,
                     "gtin": item["gtin"], "tags": item["tags"]})
    assert item["gtin"] not in [i["gtin"] for i in checkin(hub, auth, 0).json()["wishlist"]]


def test_events_and_batches_are_bounded(hub):
    auth = enroll(hub)
    visit = new_id()
    checkin(hub, auth, 0, visit)
    tags = [new_id() for _ in range(101)]
    result = post(hub, auth, {"event_id": new_id(), "type": "wishlist_remove", "checkin": visit, "gtin": "0" * 14,
                              "tags": tags})
    assert result[0]["status"] == api.REJECTED and "at most 100" in result[0]["reason"]
    long = post(hub, auth, {"event_id": new_id(), "type": "scan", "gtin": demo.products()[0]["gtin"], "note": "x" * 300})
    assert long[0]["status"] == api.REJECTED
    too_many = [{"event_id": new_id(), "type": "scan", "gtin": demo.products()[0]["gtin"]} for _ in range(501)]
    r = requests.post(hub.url + "/v1/events:batch", headers=auth, json={"events": too_many}, timeout=10)
    assert r.status_code == 422 and r.json()["type"] == api.P_INVALID
    assert hub.store.one("SELECT COUNT(*) FROM wishlist_removes")[0] == 0


@pytest.mark.parametrize("since", ["²", "-1", "1e3", " 1", "99999999999999999999", "0x10", "٣"])
def test_a_cursor_is_ascii_digits_within_range(hub, since):
    auth = enroll(hub)
    for path in ("/v1/offers", "/v1/stores/lotus-hcm/inventory", "/v1/revocations"):
        r = requests.get(hub.url + path, params={"since": since}, headers=auth, timeout=5)
        assert r.status_code == 422 and r.json()["type"] == api.P_INVALID, (path, r.text)


@pytest.mark.parametrize("name", ["kiosk\u202egnp.exe", "front\x00desk", "a\x1b[31mred", "x\u2066y"])
def test_control_and_bidi_characters_are_refused_never_a_500(hub, name):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": name}, timeout=5)
    assert r.status_code == 422 and r.json()["type"] == api.P_INVALID
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": name, "name": "k"}, timeout=5)
    assert r.status_code == 422
    auth = enroll(hub)
    result = post(hub, auth, {"event_id": new_id(), "type": "staff_lookup", "checkin": new_id(), "staff_id": name})
    assert result[0]["status"] == api.REJECTED


def test_enrollment_codes_cannot_be_guessed_at_speed(hub):
    codes = []
    for _ in range(21):  # 10 a minute: the 11th, or past a minute's turn the 21st at the latest, is refused
        r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "GUESS-" + new_id()[:8]}, timeout=5)
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes[-1] == 429 and set(codes[:-1]) == {403} and len(codes) in (11, 21)
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": LOTUS}, timeout=5)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1  # even the right code, for now
    assert r.json()["type"].endswith("/rate-limited")


def test_one_kiosk_flooding_is_slowed_and_the_others_are_not(hub):
    flooder, other = enroll(hub), enroll(hub)
    codes = [requests.get(hub.url + "/v1/offers", headers=flooder, timeout=5).status_code for _ in range(150)]
    assert 429 in codes and codes.count(200) >= 60  # a burst passes, a flood does not
    assert requests.get(hub.url + "/v1/offers", headers=other, timeout=5).status_code == 200
    assert checkin(hub, other, 0).status_code == 200


def test_a_consent_revoke_is_published_to_that_brands_kiosks_only(hub):
    lotus_a, lotus_b, sever = enroll(hub), enroll(hub), enroll(hub, SEVER)
    cursors = {}
    for name, auth in (("b", lotus_b), ("sever", sever)):
        cursors[name] = requests.get(hub.url + "/v1/revocations", headers=auth, timeout=5).json()["cursor"]
    view = checkin(hub, lotus_a, 0).json()
    assert post(hub, lotus_a, {"event_id": new_id(), "type": "consent_revoke", "session": view["session"],
                               "from_brand": "*"})[0]["status"] == api.CREATED
    seen_b = requests.get(hub.url + "/v1/revocations", params={"since": cursors["b"]}, headers=lotus_b, timeout=5).json()
    assert seen_b["revocations"] == [{"shopper_id": view["shopper"]["id"], "kind": "consent_revoked"}]
    seen_sever = requests.get(hub.url + "/v1/revocations", params={"since": cursors["sever"]}, headers=sever,
                              timeout=5).json()
    assert seen_sever["revocations"] == []
    again = requests.get(hub.url + "/v1/revocations", params={"since": seen_b["cursor"]}, headers=lotus_b, timeout=5)
    assert again.json()["revocations"] == []


def raw_batch(hub, auth, text: str):
    return requests.post(hub.url + "/v1/events:batch", headers={**auth, "Content-Type": "application/json"},
                         data=text.encode(), timeout=10)


def test_null_proofs_and_lone_surrogates_are_refused_per_event_never_a_500(hub):
    auth = enroll(hub)
    visit = new_id()
    checkin(hub, auth, 0, visit)
    gtin = demo.products()[0]["gtin"]
    cases = [
        {"type": "wishlist_add", "gtin": gtin, "checkin": visit, "credential": None},
        {"type": "wishlist_add", "gtin": gtin, "checkin": visit, "session": None},
        {"type": "wishlist_add", "gtin": gtin, "checkin": None, "session": "x"},
    ]
    results = post(hub, auth, *[{"event_id": new_id(), **c} for c in cases],
                   {"event_id": new_id(), "type": "wishlist_add", "gtin": gtin, "checkin": visit})
    assert [r["status"] for r in results] == [api.REJECTED] * 3 + [api.CREATED]
    for field in ('"session": "\\ud800"', '"credential": {"kind": "token", "token": "\\ud800"}'):
        r = raw_batch(hub, auth, '{"events": [{"event_id": "%s", "type": "scan", "gtin": "%s", "checkin": "%s", %s}]}'
                      % (new_id(), gtin, visit, field))
        assert r.status_code == 200 and r.json()["results"][0]["status"] == api.REJECTED, r.text
    for credential in ('{"kind": "token", "token": "\\ud800"}', '{"kind": "hce", "credential_id": "\\ud800"}'):
        r = requests.post(hub.url + "/v1/checkins", headers={**auth, "Content-Type": "application/json"},
                          data=('{"credential": %s}' % credential).encode(), timeout=5)
        assert r.status_code == 422 and r.json()["type"] == api.P_INVALID, r.text


def test_a_second_authorization_header_is_refused_not_a_way_past_the_rate_limit(hub):
    import http.client
    auth = enroll(hub)
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    try:
        conn.putrequest("GET", "/v1/offers")
        conn.putheader("Authorization", auth["Authorization"])
        conn.putheader("Authorization", "Bearer x")
        conn.endheaders()
        assert conn.getresponse().status == 400
    finally:
        conn.close()


def test_without_a_valid_token_a_body_is_never_read_and_an_address_that_insists_is_slowed(hub):
    from concurrent.futures import ThreadPoolExecutor
    body = b'{"events": [' + b'{},' * 50_000 + b'{}]}'  # 150 kB that would be parsed

    def send(_):
        try:
            return requests.post(hub.url + "/v1/events:batch", data=body, timeout=20,
                                 headers={"Authorization": "Bearer " + "y" * 43, "Content-Type": "application/json"}
                                 ).status_code
        except requests.ConnectionError:
            return "closed"  # answered and closed before the client finished sending: also unread
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(120)))
    assert 401 in codes and 429 in codes and set(codes) <= {401, 429, "closed"}, codes
    assert checkin(hub, enroll(hub), 0).status_code == 200  # a kiosk of the same address still works


def test_a_refused_checkin_in_a_batch_vouches_for_nothing(hub):
    kiosk, attacker = enroll(hub), enroll(hub)
    taken = new_id()
    assert post(hub, kiosk, {"event_id": taken, "type": "checkin", "credential": card(0)})[0]["status"] == api.CREATED
    gtin = demo.products()[2]["gtin"]
    # the attacker re-sends that event id (with its own card) and points an add at it
    results = post(hub, attacker, {"event_id": taken, "type": "checkin", "credential": card(3)},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": taken, "gtin": gtin})
    assert [r["status"] for r in results] == [api.REJECTED, api.REJECTED]


def test_a_staff_lookup_needs_that_staff_member_to_have_unlocked_this_kiosk(hub):
    auth = enroll(hub)
    visit = new_id()
    checkin(hub, auth, 0, visit)
    result = post(hub, auth, {"event_id": new_id(), "type": "staff_lookup", "checkin": visit, "staff_id": "tech-ivan"})
    assert result[0]["status"] == api.REJECTED and "unlocked" in result[0]["reason"]


def test_a_checkin_proves_its_visit_for_a_week_not_for_ever(hub):
    auth = enroll(hub)
    old, recent = new_id(), new_id()
    checkin(hub, auth, 0, old)
    checkin(hub, auth, 0, recent)
    hub.store.conn.execute("UPDATE events SET received_at = received_at - 8 * 86400 WHERE event_id=?", (old,))
    gtin = demo.products()[9]["gtin"]
    results = post(hub, auth, {"event_id": new_id(), "type": "wishlist_add", "checkin": old, "gtin": gtin},
                   {"event_id": new_id(), "type": "wishlist_add", "checkin": recent, "gtin": gtin})
    assert [r["status"] for r in results] == [api.REJECTED, api.CREATED]
