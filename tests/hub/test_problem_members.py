"""Lock-out seconds and tries left travel as RFC 9457 extension members (issue 13, item 5):
the hub puts `tries_left` on a wrong PIN's problem and `retry_after_s` on a lock-out's and on
a PIN rate limit's; the kiosk reads the members, through the real HubClient and KioskService,
and never the problem's text: from a hub that sends none it knows no number at all."""
import json
import types
import time

import pytest
import requests

from drivers.base import UID_ONLY, TagRead
from hub import demo, ratelimit, staff
from hub import store as hub_store
from hub.app import problem
from hub.store import HubFailure
from kiosk import api
from kiosk import errors as E
from kiosk.app import build_service
from kiosk.hubclient import HubClient, problem_members
from kiosk.results import BadgeResult
from kiosk.desk import _staff_refusal

MAI_UID = "04a1b2c3d4e501"
WRONG = "000000"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """Staff mode's clock, 100 s into a rate-limit window (as in test_staff_trust.py)."""
    offset = [-(time.time() % staff.WINDOW_S) + 100]
    fake = types.SimpleNamespace(time=lambda: time.time() + offset[0], monotonic=time.monotonic)
    monkeypatch.setattr(staff, "time", fake)
    monkeypatch.setattr(hub_store, "time", fake)
    fake.advance = lambda seconds: offset.__setitem__(0, offset[0] + seconds)
    return fake


def enroll(hub):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": "t"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["device_token"]


def badge(hub, token, uid=MAI_UID):
    r = requests.post(hub.url + "/v1/checkins", headers={"Authorization": f"Bearer {token}"},
                      json={"credential": {"kind": "uid", "uid": uid}}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["shopper"]["id"]


def unlock(hub, token, staff_id, pin):
    return requests.post(hub.url + "/v1/staff/sessions", headers={"Authorization": f"Bearer {token}"},
                         json={"staff_id": staff_id, "pin": pin}, timeout=10)


def test_problem_adds_extension_members_but_never_over_the_standard_ones():
    answer = problem(403, api.P_PIN_LOCKED, "locked", extra={api.M_RETRY_AFTER_S: 300, "type": "x", "status": 200})
    body = json.loads(answer.body)
    assert body == {"type": api.P_PIN_LOCKED, "title": "locked", "status": 403, "detail": "locked",
                    api.M_RETRY_AFTER_S: 300}
    assert answer.media_type == "application/problem+json"
    assert json.loads(problem(404, api.P_NOT_FOUND, "gone").body) == {  # no members: as before
        "type": api.P_NOT_FOUND, "title": "gone", "status": 404, "detail": "gone"}
    assert HubFailure(api.P_INVALID, "no", 422).extra == {}


def test_wrong_pins_carry_tries_left_and_the_lock_out_its_seconds(hub, clock):
    token = enroll(hub)
    staff_id = badge(hub, token)
    answers = [unlock(hub, token, staff_id, WRONG) for _ in range(5)]
    bodies = [a.json() for a in answers]
    assert [b["type"] for b in bodies] == [staff.P_PIN_REFUSED] * 4 + [staff.P_PIN_LOCKED]
    assert [b.get(api.M_TRIES_LEFT) for b in bodies[:4]] == [4, 3, 2, 1]
    assert bodies[4][api.M_RETRY_AFTER_S] == 300 and api.M_TRIES_LEFT not in bodies[4]
    assert all(api.M_RETRY_AFTER_S not in b for b in bodies[:4])
    again = unlock(hub, token, staff_id, demo.DEMO_PIN).json()  # locked: the right PIN too, and the time left
    assert again["type"] == staff.P_PIN_LOCKED and 0 < again[api.M_RETRY_AFTER_S] <= 300
    clock.advance(301)
    badge(hub, token)
    longer = unlock(hub, token, staff_id, WRONG).json()
    assert longer[api.M_RETRY_AFTER_S] == 600  # the next wrong PIN doubles it
    assert "600 s" in longer["detail"]  # the text still says it, for people


def test_a_pin_rate_limit_carries_its_wait_as_a_member_too(hub, clock):
    kiosks = [enroll(hub) for _ in range(3)]
    for token in kiosks[:2]:  # ten wrong PINs over two kiosks: the hub-wide limit per badge
        staff_id = badge(hub, token)
        for _ in range(5):
            unlock(hub, token, staff_id, WRONG)
    badge(hub, kiosks[2])
    r = unlock(hub, kiosks[2], staff_id, WRONG)
    assert r.status_code == 429 and r.json()["type"] == ratelimit.P_RATE_LIMITED
    assert r.json()[api.M_RETRY_AFTER_S] == int(r.headers["Retry-After"]) > 0


def test_the_hub_client_keeps_the_members_and_the_service_shows_them(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        tapped = service.handle_tag(TagRead("simulated", UID_ONLY, uid=bytes.fromhex(MAI_UID)))
        assert isinstance(tapped, BadgeResult) and tapped.role == "staff"
        results = [service.desk.unlock_staff(tapped, WRONG) for _ in range(5)]
        assert [(r.code, r.tries_left) for r in results[:4]] == [("wrong_pin", n) for n in (4, 3, 2, 1)]
        assert (results[4].code, results[4].locked_for_s) == ("locked", 300.0)
    finally:
        service.stop()
    token = enroll(hub)  # another kiosk, straight through the hub client
    client = HubClient(hub.url, token=token)
    try:
        staff_id = badge(hub, token)
        with pytest.raises(E.Forbidden) as refused:
            client.request("POST", "/v1/staff/sessions", json_body={"staff_id": staff_id, "pin": WRONG})
    finally:
        client.close()
    assert refused.value.problem_type == api.P_PIN_REFUSED
    assert refused.value.members == {api.M_TRIES_LEFT: 4} and refused.value.number(api.M_TRIES_LEFT) == 4.0


def test_a_hub_that_sends_no_members_gives_no_numbers_whatever_its_text_says():
    who = BadgeResult("staff", "staff-mai", "Mai")
    locked = _staff_refusal(who, E.Forbidden("too many wrong PINs: locked, try again in 600 s (about 10 min)",
                                             problem_type=api.P_PIN_LOCKED, status=403))
    assert (locked.code, locked.locked_for_s) == ("locked", 0.0)  # unknown: not scraped from the text
    wrong = _staff_refusal(who, E.Forbidden("wrong PIN: 3 tries left", problem_type=api.P_PIN_REFUSED, status=403))
    assert (wrong.code, wrong.tries_left) == ("wrong_pin", None)
    members = _staff_refusal(who, E.Forbidden("", problem_type=api.P_PIN_LOCKED, status=403,
                                              members={api.M_RETRY_AFTER_S: 1200}))
    assert members.locked_for_s == 1200.0
    assert _staff_refusal(who, E.Forbidden("", problem_type=api.P_PIN_REFUSED, status=403,
                                           members={api.M_TRIES_LEFT: 2})).tries_left == 2


@pytest.mark.parametrize("value", ["300", True, -5, float("nan"), float("inf"), None, [300]])
def test_a_member_that_is_not_a_plain_number_is_no_number(value):
    exc = E.Forbidden("", problem_type=api.P_PIN_LOCKED, members={api.M_RETRY_AFTER_S: value})
    assert exc.number(api.M_RETRY_AFTER_S) is None
    assert _staff_refusal(BadgeResult("staff", "s", ""), exc).locked_for_s == 0.0
    huge = E.Forbidden("", problem_type=api.P_PIN_LOCKED, members={api.M_RETRY_AFTER_S: 10 ** 12})
    assert _staff_refusal(BadgeResult("staff", "s", ""), huge).locked_for_s == 24 * 3600.0  # not believed past a day


def test_problem_members_keeps_plain_values_under_short_names_only():
    got = problem_members({"type": "t", "title": "x", "status": 403, "detail": "d", "instance": "/i",
                           "tries_left": 2, "retry_after_s": 1.5, "flag": False, "note": "n", "none": None,
                           "nested": {"a": 1}, "list": [1], "long": "x" * 301, "k" * 65: 1})
    assert got == {"tries_left": 2, "retry_after_s": 1.5, "flag": False, "note": "n", "none": None}
    assert len(problem_members({f"m{i}": i for i in range(100)})) == 16
