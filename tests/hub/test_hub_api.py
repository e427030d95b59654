"""The reference hub over a real loopback port: enrollment, auth, cross-brand check-ins,
idempotent batches, metrics, OpenAPI."""
import uuid

import requests

from kiosk import api
from hub import demo


def enroll(hub, code="DEMO"):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "test"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def auth(device):
    return {"Authorization": f"Bearer {device['device_token']}"}


def checkin(hub, device, index, checkin_id=None):
    body = {"credential": {"kind": "token", "token": demo.token_for(index)}}
    if checkin_id:
        body["checkin_id"] = checkin_id
    return requests.post(hub.url + "/v1/checkins", headers=auth(device), timeout=5, json=body)


def test_enrollment_scopes_device_to_brand_and_store(hub):
    device = enroll(hub)
    assert (device["brand_id"], device["store_id"]) == ("lotus", "lotus-hcm")
    assert device["device_token"] and "credential_key" not in device  # the hub's pepper stays on the hub
    other = enroll(hub, "DEMO-SEVER-MSK")
    assert (other["brand_id"], other["store_id"]) == ("sever", "sever-msk")


def test_one_time_code_works_once_and_bad_code_is_a_problem(hub):
    hub.store.add_enrollment_code("ONCE-123", "siam", "siam-bkk")
    enroll(hub, "ONCE-123")
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "ONCE-123"}, timeout=5)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == api.P_ENROLLMENT_REFUSED


def test_every_kiosk_call_needs_a_device_token(hub):
    for method, path in [("post", "/v1/checkins"), ("post", "/v1/events:batch"), ("get", "/v1/offers"),
                         ("get", "/v1/stores/lotus-hcm/inventory"), ("post", "/v1/devices/x/heartbeat")]:
        r = requests.request(method, hub.url + path, json={}, timeout=5,
                             headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, path
        assert r.json()["type"] == api.P_UNAUTHORIZED


def test_checkin_with_sharing_granted_shows_items_from_two_brands(hub):
    device = enroll(hub)
    view = checkin(hub, device, 0).json()  # Emma granted sharing with every brand
    assert view["shopper"]["display_name"] == "Emma"
    assert view["consent"] == {"sharing": "granted", "hidden_items": 0}
    brands = {item["brand"] for item in view["wishlist"]}
    assert "lotus" in brands and len(brands) >= 2
    here = [i for i in view["wishlist"] if i["available_here"] > 0]
    assert here and all(i["location"] for i in here)
    assert view["wishlist"][0]["available_here"] > 0  # on the shelf here first


def test_checkin_without_consent_hides_other_brands_and_says_so(hub):
    device = enroll(hub)
    for index, expected in [(2, "refused"), (4, "undecided")]:  # demo: i % 3 == 2 refused, == 1 undecided
        view = checkin(hub, device, index).json()
        assert view["consent"]["sharing"] == ("refused" if index % 3 == 2 else "undecided" if index % 3 == 1
                                              else "granted")
        if view["consent"]["sharing"] != "granted":
            assert {i["brand"] for i in view["wishlist"]} <= {"lotus"}
            assert view["consent"]["hidden_items"] > 0


def test_consent_grant_event_changes_the_next_checkin(hub):
    device = enroll(hub)
    view = checkin(hub, device, 7).json()  # 7 % 3 == 1: undecided
    assert view["consent"]["sharing"] == "undecided" and view["consent"]["hidden_items"] > 0
    event = {"event_id": str(uuid.uuid4()), "type": "consent_grant", "shopper_id": view["shopper"]["id"],
             "session": view["session"], "from_brand": "*"}
    r = requests.post(hub.url + "/v1/events:batch", headers=auth(device), json={"events": [event]}, timeout=5)
    assert r.json()["results"][0]["status"] == "created"
    after = requests.get(hub.url + "/v1/session/view", timeout=5,
                         headers={**auth(device), "Kiosk-Session": view["session"]}).json()
    assert after["consent"]["sharing"] == "granted" and after["consent"]["hidden_items"] == 0
    assert len(after["wishlist"]) == len(view["wishlist"]) + view["consent"]["hidden_items"]
    other = enroll(hub)  # another kiosk cannot use this session
    refused = requests.get(hub.url + "/v1/session/view", timeout=5,
                           headers={**auth(other), "Kiosk-Session": view["session"]})
    assert refused.status_code == 404


def test_offers_are_brand_wide_plus_targeted(hub):
    device = enroll(hub)
    first = checkin(hub, device, 0).json()  # no earlier visits
    kinds = {o["kind"] for o in first["offers"]}
    assert {"brand", "first_visit"} <= kinds and "lapsed" not in kinds
    assert first["offers"][0]["personal"]  # personal offers first
    lapsed = checkin(hub, device, 2).json()  # demo: i % 4 == 2 last visited 100+ days ago
    assert "lapsed" in {o["kind"] for o in lapsed["offers"]}
    returning = checkin(hub, device, 1).json()
    assert "returning" in {o["kind"] for o in returning["offers"]}


def test_unknown_card_is_a_problem_not_a_crash(hub):
    device = enroll(hub)
    r = requests.post(hub.url + "/v1/checkins", headers=auth(device), timeout=5,
                      json={"credential": {"kind": "token", "token": "x" * 24}})
    assert r.status_code == 404 and r.json()["type"] == api.P_UNKNOWN_CREDENTIAL
    r = requests.post(hub.url + "/v1/checkins", headers=auth(device), timeout=5, json={"credential": {"kind": 5}})
    assert r.status_code == 422 and r.json()["type"] == api.P_INVALID


def test_same_batch_twice_counts_once(hub):
    device = enroll(hub)
    visit = str(uuid.uuid4())
    shopper = checkin(hub, device, 0, visit).json()["shopper"]["id"]
    gtin = demo.products()[5]["gtin"]
    card = {"kind": "token", "token": demo.token_for(0)}
    events = [{"event_id": str(uuid.uuid4()), "type": "wishlist_add", "checkin": visit, "shopper_id": shopper,
               "gtin": gtin, "seq": 1},
              {"event_id": str(uuid.uuid4()), "type": "checkin", "credential": card, "seq": 2},
              {"event_id": str(uuid.uuid4()), "type": "wishlist_add", "checkin": visit, "gtin": "123", "seq": 3}]
    first = requests.post(hub.url + "/v1/events:batch", headers=auth(device), json={"events": events}, timeout=5)
    assert [r["status"] for r in first.json()["results"]] == ["created", "created", "rejected"]
    assert "gtin" in first.json()["results"][2]["reason"]
    again = [dict(e, seq=e["seq"] + 10) for e in events]  # a retry may renumber; the payload is the same
    second = requests.post(hub.url + "/v1/events:batch", headers=auth(device), json={"events": again}, timeout=5)
    assert [r["status"] for r in second.json()["results"]] == ["duplicate", "duplicate", "rejected"]
    tampered = [dict(events[0], gtin=demo.products()[6]["gtin"])]
    third = requests.post(hub.url + "/v1/events:batch", headers=auth(device), json={"events": tampered}, timeout=5)
    assert third.json()["results"][0]["status"] == "rejected"
    view = checkin(hub, device, 0).json()
    assert [i["gtin"] for i in view["wishlist"]].count(gtin) == 1
    item = next(i for i in view["wishlist"] if i["gtin"] == gtin)
    assert item["tags"] == [events[0]["event_id"]]
    metrics = requests.get(hub.url + "/metrics", timeout=5).text
    values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if not line.startswith("#")}
    assert values["hub_events_accepted_total"] == 2
    assert values["hub_events_duplicate_total"] == 2
    assert values["hub_events_rejected_total"] == 3
    assert values["hub_checkins_total"] == 2


def test_deltas_inventory_and_offers(hub):
    device = enroll(hub)
    r = requests.get(hub.url + "/v1/stores/lotus-hcm/inventory", headers=auth(device), timeout=5).json()
    assert len(r["inventory"]) == demo.PRODUCTS_PER_BRAND
    cursor = r["cursor"]
    empty = requests.get(hub.url + "/v1/stores/lotus-hcm/inventory", params={"since": cursor},
                         headers=auth(device), timeout=5).json()
    assert empty["inventory"] == [] and empty["cursor"] == cursor
    gtin = r["inventory"][0]["gtin"]
    hub.store.set_stock("lotus-hcm", gtin, 42, "7")
    delta = requests.get(hub.url + "/v1/stores/lotus-hcm/inventory", params={"since": cursor},
                         headers=auth(device), timeout=5).json()
    assert [(i["gtin"], i["quantity"]) for i in delta["inventory"]] == [(gtin, 42)]
    other = requests.get(hub.url + "/v1/stores/sever-msk/inventory", headers=auth(device), timeout=5)
    assert other.status_code == 403
    offers = requests.get(hub.url + "/v1/offers", headers=auth(device), timeout=5).json()
    assert offers["offers"] and all(o["id"].startswith("lotus-") for o in offers["offers"])


def test_openapi_lists_the_api(hub):
    paths = requests.get(hub.url + "/openapi.json", timeout=5).json()["paths"]
    for path in ["/v1/devices/enroll", "/v1/checkins", "/v1/events:batch", "/v1/stores/{store_id}/inventory",
                 "/v1/offers", "/v1/devices/{device_id}/heartbeat"]:
        assert path in paths


def test_heartbeat_is_stored(hub):
    device = enroll(hub)
    r = requests.post(hub.url + f"/v1/devices/{device['device_id']}/heartbeat", headers=auth(device),
                      json={"outbox_depth": 3, "version": "t"}, timeout=5)
    assert r.status_code == 204
    row = hub.store.one("SELECT heartbeat FROM devices WHERE id=?", (device["device_id"],))
    assert '"outbox_depth": 3' in row[0]
