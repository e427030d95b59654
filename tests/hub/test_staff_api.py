"""Staff mode on the hub over a real loopback port: badge + PIN unlock with lockout, search
only among shoppers who allowed it, lookup, and every refusal an RFC 9457 problem."""
import requests

from hub import demo, staff

STAFF_UID, TECH_UID = "04a1b2c3d4e501", "04a1b2c3d4e502"


def enroll(hub):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": "t"}, timeout=5)
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def badge(hub, auth, uid=STAFF_UID):
    r = requests.post(hub.url + "/v1/checkins", headers=auth, json={"credential": {"kind": "uid", "uid": uid}},
                      timeout=5)
    assert r.status_code == 200 and r.json()["shopper"]["role"] in ("staff", "technician")
    return r.json()["shopper"]["id"]


def unlock(hub, auth, staff_id, pin):
    return requests.post(hub.url + "/v1/staff/sessions", headers=auth, json={"staff_id": staff_id, "pin": pin},
                         timeout=10)


def search(hub, auth, q):
    return requests.get(hub.url + "/v1/staff/shoppers", headers=auth, params={"q": q}, timeout=5)


def test_pin_alone_unlocks_nothing_badge_plus_pin_does(hub):
    auth = enroll(hub)
    r = unlock(hub, auth, "staff-mai", demo.DEMO_PIN)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == staff.P_BADGE_REQUIRED
    staff_id = badge(hub, auth)
    r = unlock(hub, auth, staff_id, demo.DEMO_PIN)
    assert r.status_code == 200 and r.json()["role"] == "staff"
    # the badge tap is used up by that unlock
    requests.delete(hub.url + "/v1/staff/sessions", headers=auth, timeout=5)
    assert unlock(hub, auth, staff_id, demo.DEMO_PIN).json()["type"] == staff.P_BADGE_REQUIRED


def test_five_wrong_pins_lock_the_staff_member_out_even_with_the_right_pin(hub):
    auth = enroll(hub)
    staff_id = badge(hub, auth)
    answers = [unlock(hub, auth, staff_id, "000000").json() for _ in range(5)]
    assert [a["type"] for a in answers[:4]] == [staff.P_PIN_REFUSED] * 4
    assert "4 tries left" in answers[0]["detail"] and "1 tries left" in answers[3]["detail"]
    assert answers[4]["type"] == staff.P_PIN_LOCKED
    r = unlock(hub, auth, staff_id, demo.DEMO_PIN)
    assert r.status_code == 403 and r.json()["type"] == staff.P_PIN_LOCKED
    assert search(hub, auth, "Emma").json()["type"] == staff.P_STAFF_LOCKED


def test_search_needs_unlocked_staff_and_finds_only_shoppers_who_allowed_it(hub):
    auth = enroll(hub)
    assert search(hub, auth, "an").status_code == 403
    unlock(hub, auth, badge(hub, auth), demo.DEMO_PIN)
    names = lambda q: {s["full_name"] for s in search(hub, auth, q).json()["shoppers"]}  # noqa: E731
    allowed = {full for i, (_, full, _) in enumerate(demo.SHOPPERS) if demo.allows_staff_search(i)}
    assert names("nguyen thi") == {"Nguyễn Thị Lan"}  # typed without Vietnamese accents
    assert names("АННА") == {"Анна Смирнова"}  # Cyrillic, case-folded
    assert names("สมชาย") == {"สมชาย ใจดี"}
    assert names("carter") == set()  # James did not allow staff search
    assert names("Minh") == set()
    for q in ("a", "и", "น", " "):
        assert search(hub, auth, q).status_code == 422  # one letter is not a search
    everyone = set()
    for q in ("an", "ng", "ва", "ов", "ชา", "er", "ma", "นั", "ti"):
        everyone |= names(q)
    assert len(everyone) >= 6 and everyone <= allowed
    assert search(hub, auth, "%_%").json()["shoppers"] == []  # LIKE wildcards are plain text


def test_lookup_shows_wishlist_with_stock_and_location_then_lock_ends_it(hub):
    auth = enroll(hub)
    unlock(hub, auth, badge(hub, auth), demo.DEMO_PIN)
    found = search(hub, auth, "emma").json()["shoppers"]
    r = requests.get(hub.url + f"/v1/staff/shoppers/{found[0]['id']}", headers=auth, timeout=5)
    view = r.json()
    assert view["shopper"]["display_name"] == "Emma"
    assert any(i["available_here"] > 0 and i["location"] for i in view["wishlist"])
    hidden = requests.get(hub.url + "/v1/staff/shoppers/shopper-04", headers=auth, timeout=5)  # James: not allowed
    assert hidden.status_code == 404
    assert requests.delete(hub.url + "/v1/staff/sessions", headers=auth, timeout=5).status_code == 204
    assert requests.get(hub.url + f"/v1/staff/shoppers/{found[0]['id']}", headers=auth, timeout=5).status_code == 403


def test_search_key_folds_case_and_accents():
    assert staff.search_key("Nguyễn Thị Lan") == "nguyen thi lan"
    assert staff.search_key("Đặng") == "dang"
    assert staff.search_key("Ёлка ЙОД") == "елка иод"
    assert staff.search_key("สมชาย") == "สมชาย"
