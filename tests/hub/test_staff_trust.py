"""Staff are people of a brand (issue 9), attacked through the real hub on a loopback port, on
SQLite and PostgreSQL: PIN brute force from one kiosk and spread over several, lock-outs aimed
at someone else's badge, unlocks at another brand's kiosk, staff search across brands, bad
input. Each of these worked against the hub before issue 9."""
import json
import time
import types

import pytest
import requests

from hub import demo, ratelimit, staff
from hub import store as hub_store
from hub.store import HubStore

MAI_UID, IVAN_UID = "04a1b2c3d4e501", "04a1b2c3d4e502"
WRONG = "000000"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The clock of staff mode and of the badge taps' sessions, put 100 s into a rate-limit
    window so no test straddles two windows by chance; `advance(s)` moves it on."""
    real = time.time()
    offset = [-(real % staff.WINDOW_S) + 100]
    fake = types.SimpleNamespace(time=lambda: time.time() + offset[0], monotonic=time.monotonic)
    monkeypatch.setattr(staff, "time", fake)
    monkeypatch.setattr(hub_store, "time", fake)

    def advance(seconds):
        offset[0] += seconds
    fake.advance = advance
    return fake


def enroll(hub, code="DEMO"):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "t"}, timeout=5)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def badge(hub, auth, uid=MAI_UID):
    r = requests.post(hub.url + "/v1/checkins", headers=auth, json={"credential": {"kind": "uid", "uid": uid}},
                      timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["shopper"]["id"]


def unlock(hub, auth, staff_id, pin):
    return requests.post(hub.url + "/v1/staff/sessions", headers=auth, json={"staff_id": staff_id, "pin": pin},
                         timeout=10)


def lock(hub, auth):
    assert requests.delete(hub.url + "/v1/staff/sessions", headers=auth, timeout=5).status_code == 204


def search(hub, auth, q):
    return requests.get(hub.url + "/v1/staff/shoppers", headers=auth, params={"q": q}, timeout=5)


def names(hub, auth, q):
    r = search(hub, auth, q)
    assert r.status_code == 200, r.text
    return {s["full_name"] for s in r.json()["shoppers"]}


def lookup(hub, auth, shopper_id):
    return requests.get(hub.url + f"/v1/staff/shoppers/{shopper_id}", headers=auth, timeout=5)


def tries(hub, staff_id="staff-mai"):
    return hub.store.all("SELECT device_id, failures FROM staff_pin_tries WHERE staff_id=?", (staff_id,))


def detail(r):
    return r.json()["detail"]


def test_lock_out_grows_from_five_minutes_to_a_day():
    assert [staff.lock_for(f) for f in range(1, 5)] == [0.0] * 4
    assert [staff.lock_for(f) for f in (5, 6, 7, 8)] == [300, 600, 1200, 2400]
    assert staff.lock_for(13) == 76800 and staff.lock_for(14) == 24 * 3600 and staff.lock_for(10 ** 6) == 24 * 3600


def test_a_pin_brute_force_from_one_kiosk_is_locked_longer_each_time_and_never_starts_over(hub, clock):
    auth = enroll(hub)
    staff_id = badge(hub, auth)
    answers = [unlock(hub, auth, staff_id, WRONG) for _ in range(5)]
    assert [a.json()["type"] for a in answers] == [staff.P_PIN_REFUSED] * 4 + [staff.P_PIN_LOCKED]
    assert "wrong PIN: 4 tries left" in detail(answers[0]) and "wrong PIN: 1 tries left" in detail(answers[3])
    assert "locked, try again in 300 s" in detail(answers[4])
    assert unlock(hub, auth, staff_id, demo.DEMO_PIN).json()["type"] == staff.P_PIN_LOCKED  # the right PIN too
    clock.advance(301)  # the lock ends; the count does not
    badge(hub, auth)
    r = unlock(hub, auth, staff_id, WRONG)
    assert r.json()["type"] == staff.P_PIN_LOCKED and "try again in 600 s" in detail(r)
    clock.advance(601)
    badge(hub, auth)
    r = unlock(hub, auth, staff_id, WRONG)
    assert r.json()["type"] == staff.P_PIN_LOCKED and "try again in 1200 s" in detail(r)
    assert [f for _, f in tries(hub)] == [7]
    clock.advance(1201)
    badge(hub, auth)
    assert unlock(hub, auth, staff_id, demo.DEMO_PIN).status_code == 200  # only a right PIN starts over
    assert tries(hub) == []
    lock(hub, auth)
    badge(hub, auth)
    assert "4 tries left" in detail(unlock(hub, auth, staff_id, WRONG))


def test_a_brute_force_spread_over_kiosks_meets_the_hub_wide_limit(hub, clock):
    kiosks = [enroll(hub) for _ in range(4)]
    for auth in kiosks[:2]:  # five wrong PINs each, which locks each of these kiosks
        staff_id = badge(hub, auth)
        assert unlock(hub, auth, staff_id, WRONG).json()["type"] == staff.P_PIN_REFUSED
        for _ in range(4):
            last = unlock(hub, auth, staff_id, WRONG)
        assert last.json()["type"] == staff.P_PIN_LOCKED
    third = kiosks[2]
    badge(hub, third)
    r = unlock(hub, third, staff_id, WRONG)  # the 11th wrong PIN in the window, on a fresh kiosk
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == ratelimit.P_RATE_LIMITED and "too many" in detail(r)
    assert 0 < int(r.headers["Retry-After"]) <= staff.WINDOW_S
    assert unlock(hub, third, staff_id, demo.DEMO_PIN).status_code == 429  # not even the right PIN
    assert len(tries(hub)) == 2  # a refused try counted nowhere: the third kiosk has no count
    clock.advance(staff.WINDOW_S)  # the window ends: the right PIN works again, on an untouched kiosk
    fourth = kiosks[3]
    badge(hub, fourth)
    assert unlock(hub, fourth, staff_id, demo.DEMO_PIN).status_code == 200


def test_wrong_pins_against_a_badge_at_another_kiosk_do_not_lock_its_owner_out_of_her_own(hub, clock):
    attacker, attacker2, own = enroll(hub), enroll(hub), enroll(hub)
    staff_id = badge(hub, attacker)  # a cloned badge
    for _ in range(5):
        unlock(hub, attacker, staff_id, WRONG)
    for _ in range(10):  # hammering a locked kiosk counts nothing more
        assert unlock(hub, attacker, staff_id, WRONG).json()["type"] == staff.P_PIN_LOCKED
    badge(hub, own)
    r = unlock(hub, own, staff_id, demo.DEMO_PIN)
    assert r.status_code == 200, r.text  # her own kiosk: her own count, still zero
    lock(hub, own)
    badge(hub, attacker2)
    for _ in range(5):
        unlock(hub, attacker2, staff_id, WRONG)
    badge(hub, own)
    r = unlock(hub, own, staff_id, demo.DEMO_PIN)  # ten wrong PINs elsewhere: the short hub-wide wait
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= staff.WINDOW_S
    clock.advance(int(r.headers["Retry-After"]))
    badge(hub, own)
    assert unlock(hub, own, staff_id, demo.DEMO_PIN).status_code == 200
    assert {f for d, f in tries(hub)} == {5}  # only the attacker's kiosks are locked


def test_a_kiosk_has_twenty_pin_tries_per_window_whoever_types_them(hub):
    auth, other = enroll(hub), enroll(hub)
    mai, ivan = badge(hub, auth, MAI_UID), badge(hub, auth, IVAN_UID)
    for staff_id in (mai, ivan):  # ten tries each: five wrong PINs, then five at a locked kiosk
        answers = [unlock(hub, auth, staff_id, WRONG).json()["type"] for _ in range(staff.DEVICE_TRIES // 2)]
        assert answers == [staff.P_PIN_REFUSED] * 4 + [staff.P_PIN_LOCKED] * 6
    r = unlock(hub, auth, mai, demo.DEMO_PIN)
    assert r.status_code == 429 and r.headers["Retry-After"] and "kiosk" in detail(r)
    badge(hub, other, IVAN_UID)
    assert unlock(hub, other, ivan, demo.DEMO_PIN).status_code == 200  # another kiosk has its own


def test_staff_of_one_brand_or_store_unlock_nowhere_else_and_are_answered_like_strangers(hub):
    sever, hanoi = enroll(hub, "DEMO-SEVER-MSK"), enroll(hub, "DEMO-LOTUS-HN")
    for auth in (sever, hanoi):  # Mai works at Lotus & Linen's Saigon Centre only
        stranger = unlock(hub, auth, "staff-nobody", demo.DEMO_PIN)
        staff_id = badge(hub, auth, MAI_UID)
        for pin in (demo.DEMO_PIN, WRONG, WRONG, WRONG, WRONG, WRONG, demo.DEMO_PIN):
            r = unlock(hub, auth, staff_id, pin)
            assert (r.status_code, r.json()) == (stranger.status_code, stranger.json())
        assert stranger.status_code == 403 and stranger.json()["type"] == staff.P_BADGE_REQUIRED
        assert search(hub, auth, "emma").json()["type"] == staff.P_STAFF_LOCKED
    assert tries(hub) == []  # nothing was counted: no PIN was checked
    tech = badge(hub, sever, IVAN_UID)  # the technician looks after every demo brand
    assert unlock(hub, sever, tech, demo.DEMO_PIN).json()["role"] == "technician"


def test_staff_search_finds_only_shoppers_who_allowed_this_brand_and_have_been_with_it(hub):
    lotus, sever = enroll(hub), enroll(hub, "DEMO-SEVER-MSK")
    assert unlock(hub, lotus, badge(hub, lotus, MAI_UID), demo.DEMO_PIN).status_code == 200
    assert unlock(hub, sever, badge(hub, sever, IVAN_UID), demo.DEMO_PIN).status_code == 200
    # Trần Văn Minh (a visitor of every brand) allows staff search at Lotus & Linen only
    hub.store.conn.execute("INSERT INTO staff_search(shopper_id, brand_id) VALUES ('shopper-05', 'lotus')")
    assert names(hub, lotus, "minh") == {"Trần Văn Minh"}
    assert lookup(hub, lotus, "shopper-05").status_code == 200
    assert names(hub, sever, "minh") == set()
    assert lookup(hub, sever, "shopper-05").status_code == 404
    # อนันต์ รุ่งเรือง allows it everywhere, but has never visited Lotus & Linen nor saved its items
    assert names(hub, lotus, "อนันต์") == set()
    assert lookup(hub, lotus, "shopper-19").status_code == 404
    assert names(hub, sever, "อนันต์") == {"อนันต์ รุ่งเรือง"}
    # the old global flag means nothing for search any more
    hub.store.conn.execute("UPDATE shoppers SET allow_staff_search=1 WHERE id='shopper-04'")
    assert names(hub, lotus, "carter") == set() and lookup(hub, lotus, "shopper-04").status_code == 404


def test_a_lookup_through_search_is_recorded_by_the_hub_without_names(hub):
    auth = enroll(hub)
    assert unlock(hub, auth, badge(hub, auth), demo.DEMO_PIN).status_code == 200
    [emma] = search(hub, auth, "emma walker").json()["shoppers"]
    assert hub.store.all("SELECT 1 FROM events WHERE type='staff_lookup'") == []  # a search alone is no lookup
    assert lookup(hub, auth, emma["id"]).status_code == 200
    [(event_id, device_id, shopper_id, body)] = hub.store.all(
        "SELECT event_id, device_id, shopper_id, body FROM events WHERE type='staff_lookup'")
    assert shopper_id == "shopper-00" and device_id.startswith("dev-")
    assert json.loads(body) == {"event_id": event_id, "type": "staff_lookup", "staff_id": "staff-mai", "via": "search"}
    assert "Emma" not in body and "Walker" not in body


@pytest.mark.parametrize("pin", ["1234", "12345", "0000", "١٢٣٤٥٦", "１２３４５６", "1234567890123", "12345a", ""])
def test_short_and_strange_pins_are_refused_before_anything_is_counted(hub, pin):
    auth = enroll(hub)
    staff_id = badge(hub, auth)
    r = unlock(hub, auth, staff_id, pin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert tries(hub) == []


def test_staff_ids_and_search_terms_with_control_or_bidi_characters_are_refused_never_a_500(hub):
    auth = enroll(hub)
    assert unlock(hub, auth, "x" * 65, demo.DEMO_PIN).status_code == 422
    for staff_id in ("staff-mai\x00", "staff\u202emai", "\x85"):
        assert unlock(hub, auth, staff_id, demo.DEMO_PIN).json()["type"] == staff.P_BADGE_REQUIRED
    assert unlock(hub, auth, badge(hub, auth), demo.DEMO_PIN).status_code == 200
    for q in ("\u202eamme", "em\u202ama", "emma\u2066", "em\u2069ma", "\u200eemma", "emma\u200f", "em\x00ma",
              "em\x1bma", "emma\x7f", "em\x85ma", "em\x9bma", "\u061cemma", "e" * 65):
        r = search(hub, auth, q)
        assert r.status_code == 422 and r.json()["type"].endswith("invalid-request"), (repr(q), r.text)
    for shopper_id in ("shopper-00%00", "shopper%E2%80%AE-00", "x" * 65, "%85"):
        r = requests.get(hub.url + "/v1/staff/shoppers/" + shopper_id, headers=auth, timeout=5)
        assert r.status_code in (404, 422), (shopper_id, r.status_code, r.text)
    assert names(hub, auth, "emma") == {"Emma Walker"}


def test_seeding_an_older_demo_hub_adds_roles_search_permissions_and_the_new_pin_once(hub_db):
    store = HubStore(hub_db)
    try:
        with store.transaction() as conn:  # a demo hub seeded before issue 9, just migrated
            conn.execute("DELETE FROM staff_roles")
            conn.execute("DELETE FROM staff_search WHERE shopper_id <> 'shopper-01'")
            conn.execute("DELETE FROM settings WHERE key='demo_trust_seeded'")
            conn.execute("UPDATE shoppers SET pin_hash=? WHERE id='staff-mai'", (demo.pin_hash(demo.OLD_DEMO_PIN),))
            conn.execute("UPDATE shoppers SET pin_hash=? WHERE id='tech-ivan'", (demo.pin_hash("97531864"),))
        assert demo.seed(store) is False
        assert sorted(store.all("SELECT staff_id, brand_id, store_id FROM staff_roles")) == sorted(demo.STAFF_ROLES)
        allowed = {f"shopper-{i:02d}" for i in range(len(demo.SHOPPERS)) if demo.allows_staff_search(i)}
        rows = store.all("SELECT shopper_id, brand_id FROM staff_search")
        assert {s for s, _ in rows} == allowed and len(rows) == len(allowed) * len(demo.BRANDS)
        from kiosk.pins import verify_pin
        assert verify_pin(demo.DEMO_PIN, store.one("SELECT pin_hash FROM shoppers WHERE id='staff-mai'")[0])
        assert verify_pin("97531864", store.one("SELECT pin_hash FROM shoppers WHERE id='tech-ivan'")[0])  # kept
        store.conn.execute("DELETE FROM staff_search WHERE shopper_id='shopper-00' AND brand_id='lotus'")
        demo.seed(store)  # once: what changed since is never undone
        assert store.one("SELECT 1 FROM staff_search WHERE shopper_id='shopper-00' AND brand_id='lotus'") is None
    finally:
        store.close()


def test_every_demo_brand_has_staff_and_someone_staff_can_find(hub):
    for code, uid in (("DEMO", MAI_UID), ("DEMO-SEVER-MSK", IVAN_UID), ("DEMO-SIAM-BKK", IVAN_UID),
                      ("DEMO-HARBOUR-LDN", IVAN_UID)):
        auth = enroll(hub, code)
        assert unlock(hub, auth, badge(hub, auth, uid), demo.DEMO_PIN).status_code == 200
        found = set()
        for q in ("an", "ng", "ва", "ов", "ชา", "er", "ma", "นั", "ti", "ol", "ie"):
            found |= names(hub, auth, q)
        assert len(found) >= 3, (code, found)
