"""The brand API over a real loopback port, on SQLite and PostgreSQL: keys, hostile feed rows,
stock that is idempotent and never goes back in time, offers inside their dates, the fleet,
and brand isolation walked over the OpenAPI document (a new call cannot be forgotten)."""
import datetime as dt
import re
import time
import uuid

import pytest
import requests

from kiosk import api
from hub import brands, demo

LOTUS, SIAM = demo.brand_key("lotus"), demo.brand_key("siam")


def call(hub, method, path, key=LOTUS, **kw):
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return requests.request(method, hub.url + path, headers=headers, timeout=10, **kw)


def gtin(n: int, prefix: str = "893999") -> str:
    body = f"{prefix}{n:06d}"[:12]
    return body + str(api.gtin_check_digit(body))


def enroll(hub, code):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "k"}, timeout=5)
    return r


def dev(device):
    return {"Authorization": f"Bearer {device['device_token']}"}


def lotus_gtin(hub):
    return call(hub, "get", "/v1/brand/products?limit=1").json()["products"][0]["gtin"]


# -- keys -------------------------------------------------------------------------------
def test_keys_are_needed_listed_rotated_and_revoked(hub):
    assert call(hub, "get", "/v1/brand").json()["id"] == "lotus"
    for bad in ("", "bk_nope", "Bearer", LOTUS + "x"):
        r = requests.get(hub.url + "/v1/brand/products", headers={"Authorization": f"Bearer {bad}"}, timeout=5)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == api.P_UNAUTHORIZED
    made = call(hub, "post", "/v1/brand/keys", json={"name": "erp"})
    assert made.status_code == 201
    new = made.json()
    assert new["key"].startswith("bk_") and call(hub, "get", "/v1/brand", key=new["key"]).json()["key_id"] == new["id"]
    listed = call(hub, "get", "/v1/brand/keys").json()["keys"]
    assert {k["id"] for k in listed} >= {new["id"]} and "key" not in str([set(k) for k in listed])
    assert new["key"] not in str(listed)  # a key is shown once, never listed
    stored = hub.store.all("SELECT key_hash FROM brand_keys")
    assert all(new["key"] not in row[0] for row in stored)  # only its hash is kept
    assert call(hub, "delete", f"/v1/brand/keys/{new['id']}").status_code == 204
    assert call(hub, "get", "/v1/brand", key=new["key"]).status_code == 401  # revoked: refused at once
    # the last active key cannot be revoked (the brand would lock itself out)
    mine = [k["id"] for k in call(hub, "get", "/v1/brand/keys").json()["keys"] if not k["revoked"]]
    assert len(mine) == 1
    r = call(hub, "delete", f"/v1/brand/keys/{mine[0]}")
    assert r.status_code == 409 and call(hub, "get", "/v1/brand").status_code == 200


def test_a_device_token_is_not_a_brand_key_and_a_brand_key_is_not_a_device(hub):
    device = enroll(hub, "DEMO").json()
    assert call(hub, "get", "/v1/brand", key=device["device_token"]).status_code == 401
    r = requests.get(hub.url + "/v1/offers", headers={"Authorization": f"Bearer {LOTUS}"}, timeout=5)
    assert r.status_code == 401


def test_a_big_body_without_a_key_is_refused_before_it_is_read(hub):
    r = requests.post(hub.url + "/v1/brand/products:batch", data=b"x" * (20 * 1024 * 1024), timeout=20,
                      headers={"Authorization": "Bearer bk_wrong", "Content-Type": "application/json"})
    assert r.status_code == 401
    r = call(hub, "post", "/v1/brand/products:batch", data=b"x" * (17 * 1024 * 1024),
             headers={"Content-Type": "application/json"})
    assert r.status_code == 413


# -- catalog ----------------------------------------------------------------------------
def test_hostile_product_rows_are_refused_one_by_one_and_good_rows_land(hub):
    rows = [
        {"gtin": gtin(1), "title": "Silk Fan", "price": "250000", "currency": "VND",
         "texts": {"th": {"title": "พัดผ้าไหม"}, "vi": {"title": "Quạt lụa"}}},
        {"gtin": gtin(2)[:-1] + str((int(gtin(2)[-1]) + 1) % 10), "title": "Bad check", "price": "1", "currency": "VND"},
        {"gtin": gtin(3), "title": "x" * 10_000_000, "price": "1", "currency": "VND"},
        {"gtin": gtin(4), "title": "=cmd()|' /C calc'!A0", "price": "1", "currency": "VND"},
        {"gtin": gtin(5), "title": "Nice\u202eevil", "price": "1", "currency": "VND"},
        {"gtin": gtin(6), "title": "Neg", "price": "-3", "currency": "VND"},
        {"gtin": gtin(7), "title": "Cur", "price": "3", "currency": "dollars"},
        {"gtin": gtin(8), "title": "Lang", "price": "3", "currency": "VND", "texts": {"not a tag!": "x"}},
        {"gtin": gtin(9), "title": "Extra", "price": "3", "currency": "VND", "admin": True},
        "not an object",
        {"gtin": gtin(10), "title": "Surrogate \ud800", "price": "1", "currency": "VND"},
        {"gtin": "12345670", "title": "GTIN-8", "price": "1", "currency": "VND"},
    ]
    r = call(hub, "post", "/v1/brand/products:batch", json={"products": rows})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    status = {res["index"]: res["status"] for res in results}
    assert [status[i] for i in range(len(rows))] == ["created", "rejected", "rejected", "created", "rejected", "rejected",
                                                      "rejected", "rejected", "rejected", "rejected", "rejected", "created"]
    reasons = {res["index"]: res["errors"][0] for res in results if res["errors"]}
    assert reasons[1]["field"] == "gtin" and "check digit" in reasons[1]["reason"]
    assert reasons[2]["field"] == "title" and "longer than 200" in reasons[2]["reason"]
    assert reasons[8]["field"] == "admin"
    assert call(hub, "get", f"/v1/brand/products/{gtin(4)}").json()["title"] == "=cmd()|' /C calc'!A0"  # text, kept as sent
    assert call(hub, "get", "/v1/brand/products/12345670").json()["gtin"] == "00000012345670"  # normalised to 14
    fan = call(hub, "get", f"/v1/brand/products/{gtin(1)}").json()
    assert fan["texts"]["th"]["title"] == "พัดผ้าไหม"
    # the same rows again change nothing
    again = call(hub, "post", "/v1/brand/products:batch", json={"products": [rows[0], rows[3]]}).json()
    assert again["counts"]["unchanged"] == 2


def test_a_body_of_the_wrong_shape_changes_nothing(hub):
    before = call(hub, "get", "/v1/brand/products?limit=5000").json()["products"]
    for body in ({"products": "nope"}, {"rows": []}, {"products": [{"gtin": gtin(1)}] * 5001}):
        r = call(hub, "post", "/v1/brand/products:batch", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = call(hub, "post", "/v1/brand/products:batch", data=b"\xff\xfe{not json", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
    assert call(hub, "get", "/v1/brand/products?limit=5000").json()["products"] == before


def test_a_product_of_another_brand_cannot_be_taken_over(hub):
    theirs = call(hub, "get", "/v1/brand/products?limit=1", key=SIAM).json()["products"][0]
    r = call(hub, "post", "/v1/brand/products:batch",
             json={"products": [{"gtin": theirs["gtin"], "title": "Mine now", "price": "1", "currency": "VND"}]})
    assert r.json()["results"][0]["status"] == "rejected"
    assert call(hub, "get", f"/v1/brand/products/{theirs['gtin']}", key=SIAM).json()["title"] == theirs["title"]
    assert call(hub, "get", f"/v1/brand/products/{theirs['gtin']}").status_code == 404


# -- stock ------------------------------------------------------------------------------
def test_stock_is_idempotent_never_goes_back_in_time_and_reaches_the_kiosk(hub):
    device = enroll(hub, "DEMO").json()
    cursor = requests.get(hub.url + "/v1/stores/lotus-hcm/inventory", headers=dev(device), timeout=5).json()["cursor"]
    g = lotus_gtin(hub)
    now = dt.datetime.now(dt.timezone.utc)
    row = {"store_code": "hcm", "id": g, "quantity": 7, "instore_product_location": "Aisle 9",
           "price": "99000", "as_of": now.isoformat()}
    body = {"rows": [row]}
    first = call(hub, "post", "/v1/brand/inventory:batch", json=body, headers={"Idempotency-Key": "feed-1:0"})
    assert first.json()["counts"]["updated"] == 1
    replay = call(hub, "post", "/v1/brand/inventory:batch", json=body, headers={"Idempotency-Key": "feed-1:0"})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json()["counts"] == first.json()["counts"]
    other = call(hub, "post", "/v1/brand/inventory:batch", json={"rows": [{**row, "quantity": 1}]},
                 headers={"Idempotency-Key": "feed-1:0"})
    assert other.status_code == 422  # the same key for another body
    assert call(hub, "post", "/v1/brand/inventory:batch", json=body).json()["counts"]["unchanged"] == 1  # no key: same rows
    late = {**row, "quantity": 0, "as_of": (now - dt.timedelta(hours=1)).isoformat()}
    assert call(hub, "post", "/v1/brand/inventory:batch", json={"rows": [late]}).json()["counts"]["stale"] == 1
    delta = requests.get(hub.url + "/v1/stores/lotus-hcm/inventory", params={"since": cursor}, headers=dev(device),
                         timeout=5).json()["inventory"]
    mine = [i for i in delta if i["gtin"] == g]
    assert mine and mine[-1]["quantity"] == 7 and mine[-1]["location"] == "Aisle 9" and mine[-1]["price"] == "99000"
    assert mine[-1]["texts"]["th"]["title"]  # the kiosk gets every language's title


def test_bad_stock_rows_are_named(hub):
    g = lotus_gtin(hub)
    rows = [{"store_code": "hcm", "id": g, "quantity": -1},
            {"store_code": "nowhere", "id": g, "quantity": 1},
            {"store_code": "hcm", "id": gtin(77), "quantity": 1},
            {"store_code": "hcm", "id": g, "quantity": "lots"},
            {"store_code": "hcm", "id": g, "quantity": 1, "availability": "maybe"},
            {"store_code": "hcm", "id": g, "quantity": 1, "as_of": "yesterday"},
            {"store_code": "hcm", "id": g, "quantity": 1, "as_of": "2999-01-01T00:00:00Z"},
            {"store_code": "bkk", "id": g, "quantity": 1}]  # siam's store code, not lotus's
    results = call(hub, "post", "/v1/brand/inventory:batch", json={"rows": rows}).json()["results"]
    fields = [r["errors"][0]["field"] if r["errors"] else "" for r in results]
    assert [r["status"] for r in results] == ["rejected"] * len(rows)
    assert fields == ["quantity", "store_code", "id", "quantity", "availability", "as_of", "as_of", "store_code"]


def test_a_snapshot_zeroes_what_it_does_not_list_and_must_be_one_store(hub):
    stock = call(hub, "get", "/v1/brand/stores/hn/inventory").json()["inventory"]
    stocked = [i for i in stock if i["quantity"] > 0]
    keep = stocked[0]
    r = call(hub, "post", "/v1/brand/inventory:batch", json={"snapshot": True, "rows": [
        {"store_code": "hn", "id": keep["id"], "quantity": keep["quantity"]}]})
    assert r.status_code == 200 and r.json()["zeroed"] == len(stocked) - 1
    after = {i["id"]: i["quantity"] for i in call(hub, "get", "/v1/brand/stores/hn/inventory").json()["inventory"]}
    assert after[keep["id"]] == keep["quantity"] and sum(after.values()) == keep["quantity"]
    assert any(i["quantity"] for i in call(hub, "get", "/v1/brand/stores/hcm/inventory").json()["inventory"])  # other store kept
    two = call(hub, "post", "/v1/brand/inventory:batch", json={"snapshot": True, "rows": [
        {"store_code": "hn", "id": keep["id"], "quantity": 1}, {"store_code": "hcm", "id": keep["id"], "quantity": 1}]})
    assert two.status_code == 422


# -- offers -----------------------------------------------------------------------------
def test_offers_show_only_inside_their_dates_in_every_answer(hub):
    today = dt.date.today()
    rows = [{"id": "old", "title": "Expired sale", "kind": "brand", "valid_until": (today - dt.timedelta(days=2)).isoformat()},
            {"id": "soon", "title": "Next week", "kind": "brand", "valid_from": (today + dt.timedelta(days=7)).isoformat()},
            {"id": "now", "title": "Today only", "kind": "brand", "titles": {"th": "วันนี้เท่านั้น"},
             "valid_from": today.isoformat(), "valid_until": (today + dt.timedelta(days=1)).isoformat()},
            {"id": "bad", "title": "x", "kind": "forever"},
            {"id": "bad2", "title": "x", "kind": "brand", "valid_until": "next tuesday"},
            {"id": "bad3", "title": "x", "kind": "wishlist_promo"}]
    results = call(hub, "post", "/v1/brand/offers:batch", json={"offers": rows}).json()["results"]
    assert [r["status"] for r in results] == ["created"] * 3 + ["rejected"] * 3
    device = enroll(hub, "DEMO").json()
    view = requests.post(hub.url + "/v1/checkins", headers=dev(device), timeout=5,
                         json={"credential": {"kind": "token", "token": demo.token_for(0)}}).json()
    titles = [o["title"] for o in view["offers"]]
    assert "Today only" in titles and "Expired sale" not in titles and "Next week" not in titles
    delta = {o["id"]: o for o in requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=5).json()["offers"]}
    assert delta["lotus-old"] == {"id": "lotus-old", "deleted": True}
    assert delta["lotus-soon"]["valid_from"]  # the kiosk keeps it for later, and shows it from then
    assert delta["lotus-now"]["titles"] == {"th": "วันนี้เท่านั้น", "en": "Today only"}  # and the brand's default
    cursor = requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=5).json()["cursor"]
    assert call(hub, "post", "/v1/brand/offers/now:end").status_code == 204
    after = requests.get(hub.url + "/v1/offers", params={"since": cursor}, headers=dev(device), timeout=5).json()["offers"]
    assert after == [{"id": "lotus-now", "deleted": True}]
    view = requests.post(hub.url + "/v1/checkins", headers=dev(device), timeout=5,
                         json={"credential": {"kind": "token", "token": demo.token_for(0)}}).json()
    assert "Today only" not in [o["title"] for o in view["offers"]]


def test_the_thai_shopper_gets_thai_titles(hub):
    device = enroll(hub, "DEMO-SIAM-BKK").json()
    view = requests.post(hub.url + "/v1/checkins", headers=dev(device), timeout=5,
                         json={"credential": {"kind": "token", "token": demo.token_for(3)}}).json()  # สมชาย, th
    assert view["shopper"]["locale"] == "th"
    siam = [i for i in view["wishlist"] if i["brand"] == "siam"]
    assert siam and all(re.search("[\u0e00-\u0e7f]", i["title"]) for i in siam)
    assert all(re.search("[\u0e00-\u0e7f]", o["title"]) for o in view["offers"])


# -- the fleet --------------------------------------------------------------------------
def test_a_code_works_once_expires_and_can_be_revoked(hub):
    made = call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hn", "expires_in_s": 3600})
    assert made.status_code == 201
    code = made.json()
    assert enroll(hub, code["code"]).json()["store_id"] == "lotus-hn"
    assert enroll(hub, code["code"]).status_code == 403  # once
    listed = {c["id"]: c for c in call(hub, "get", "/v1/brand/enrollment-codes").json()["codes"]}
    assert listed[code["id"]]["used_by"] and code["code"] not in str(listed)
    second = call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hn"}).json()
    assert call(hub, "delete", f"/v1/brand/enrollment-codes/{second['id']}").status_code == 204
    assert enroll(hub, second["code"]).status_code == 403  # revoked
    third = call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hn", "expires_in_s": 60}).json()
    hub.store.conn.execute("UPDATE enrollment_codes SET expires_at=? WHERE id=?", (time.time() - 1, third["id"]))
    assert enroll(hub, third["code"]).status_code == 403  # expired
    assert call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "bkk"}).status_code == 404  # siam's
    assert all(third["code"] not in row[0] for row in hub.store.all("SELECT code FROM enrollment_codes"))  # hashed


def test_devices_list_heartbeats_and_revocation_is_immediate(hub):
    device = enroll(hub, "DEMO").json()
    beat = {"version": "0.1.0", "reader_state": "ready", "outbox_depth": 3, "parked": 1, "last_sync": time.time(),
            "sent_at": time.time() + 42, "free_disk_mb": 1234}
    assert requests.post(hub.url + f"/v1/devices/{device['device_id']}/heartbeat", json=beat, headers=dev(device),
                         timeout=5).status_code == 204
    listed = {d["id"]: d for d in call(hub, "get", "/v1/brand/devices").json()["devices"]}
    mine = listed[device["device_id"]]
    assert mine["online"] and mine["outbox_depth"] == 3 and mine["parked"] == 1 and mine["free_disk_mb"] == 1234
    assert 40 <= mine["clock_skew_s"] <= 44 and mine["store_code"] == "hcm" and mine["reader_state"] == "ready"
    assert device["device_id"] not in str(call(hub, "get", "/v1/brand/devices", key=SIAM).json())
    assert call(hub, "post", f"/v1/brand/devices/{device['device_id']}:revoke", key=SIAM).status_code == 404
    assert call(hub, "post", f"/v1/brand/devices/{device['device_id']}:revoke").status_code == 204
    r = requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=5)
    assert r.status_code == 401 and r.json()["type"] == api.P_DEVICE_REVOKED
    assert "removed from the fleet" in r.json()["detail"]
    again = {d["id"]: d for d in call(hub, "get", "/v1/brand/devices").json()["devices"]}[device["device_id"]]
    assert again["revoked"] and not again["online"]


# -- isolation over the whole OpenAPI document ----------------------------------------------
def _lotus_world(hub) -> dict:
    """Everything lotus has, read with its own key (compared before and after siam's attack)."""
    out = {}
    for path in ("/v1/brand/keys", "/v1/brand/products?limit=5000", "/v1/brand/stores", "/v1/brand/offers",
                 "/v1/brand/enrollment-codes", "/v1/brand/devices", "/v1/brand/stores/hcm/inventory?limit=5000"):
        body = call(hub, "get", path).json()
        for d in body.get("devices", []):
            d.pop("last_seen", None), d.pop("online", None)
        for k in body.get("keys", []):
            k.pop("last_used_at", None)
        out[path] = body
    return out


def test_another_brands_key_can_touch_nothing_of_this_brand_in_any_call(hub):
    device = enroll(hub, "DEMO").json()
    code = call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hcm"}).json()
    assert call(hub, "post", "/v1/brand/offers:batch", json={"offers": [{"id": "ours-only", "title": "Ours",
                                                                           "kind": "brand"}]}).status_code == 200
    g = lotus_gtin(hub)
    key_id = call(hub, "get", "/v1/brand/keys").json()["keys"][0]["id"]
    client = call(hub, "post", "/v1/brand/clients", json={"name": "Ours", "redirect_uris": ["https://lotus.example/cb"]})
    values = {"gtin": g, "store_code": "hcm", "offer_id": "ours-only", "code_id": code["id"], "device_id": device["device_id"],
              "key_id": key_id, "client_id": client.json()["client_id"]}
    bodies = {  # what an attacker holding siam's key would send at lotus's things
        "/v1/brand/products:batch": {"products": [{"gtin": g, "title": "pwned", "price": "1", "currency": "THB"}]},
        "/v1/brand/stores:batch": {"stores": [{"store_code": "hcm", "name": "pwned", "city": "x", "currency": "THB"}]},
        "/v1/brand/inventory:batch": {"rows": [{"store_code": "hcm", "id": g, "quantity": 0}], "snapshot": True},
        "/v1/brand/offers:batch": {"offers": [{"id": "ours-only", "title": "pwned", "kind": "brand"},
                                              {"id": "x", "title": "pwned", "kind": "wishlist_promo", "gtin": g}]},
        "/v1/brand/enrollment-codes": {"store_code": "hcm"},
        "/v1/brand/keys": {"name": "pwned"},
    }
    before = _lotus_world(hub)
    spec = requests.get(hub.url + "/openapi.json", timeout=5).json()
    calls = [(m, p) for p, ops in spec["paths"].items() if p.startswith("/v1/brand") for m in ops]
    assert len(calls) >= 19  # every brand call of the contract is in the document
    for method, path in calls:
        op = spec["paths"][path][method]
        assert "401" in op["responses"] and "422" in op["responses"], f"{method} {path}: problems documented"
        url = path
        for name in re.findall(r"{(\w+)}", path):
            assert name in values, f"{method} {path}: a new brand call; teach this test what it touches"
            url = url.replace("{" + name + "}", values[name])
        kw = {}
        if path.endswith("/image"):
            kw = {"data": b"\x89PNG\r\n\x1a\n", "headers": {"Content-Type": "image/png"}}
        elif method in ("post", "put", "patch"):
            kw = {"json": bodies.get(path, {})}
        r = call(hub, method, url, key=SIAM, **kw)
        assert r.status_code < 500, f"{method} {path}: {r.status_code}"
        # 404 (not this brand's), or the attacker's own namesake (store codes and offer ids are
        # per brand: the batch calls above gave siam a store "hcm" and an offer of its own)
        namesake = "{store_code}" in path or "{offer_id}" in path
        assert r.status_code == 404 or "{" not in path or namesake, f"{method} {url}: {r.status_code}"
        assert "lotus" not in r.text.lower(), f"{method} {path} shows lotus's data"
        assert requests.get(hub.url + path.split("{")[0], timeout=5).status_code in (401, 404, 405)  # and no key: refused
    assert _lotus_world(hub) == before
    assert requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=5).status_code == 200  # its kiosk untouched


@pytest.mark.parametrize("kind", ["products", "stores", "offers"])
def test_a_row_key_twice_in_one_call_is_named(hub, kind):
    rows = {"products": [{"gtin": gtin(1), "title": "a", "price": "1", "currency": "VND"}] * 2,
            "stores": [{"store_code": "new", "name": "a", "city": "b", "currency": "VND"}] * 2,
            "offers": [{"id": "dup", "title": "a", "kind": "brand"}] * 2}[kind]
    results = call(hub, "post", f"/v1/brand/{kind}:batch", json={kind: rows}).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert "appears again at row 1" in results[0]["errors"][0]["reason"]


def test_brand_create_refuses_bad_and_taken_ids(hub):
    for bad in ("A", "with-hyphen", "x", "1abc", "a" * 40):
        with pytest.raises(ValueError):
            brands.create_brand(hub.store, bad, "Bad")
    with pytest.raises(ValueError, match="exists"):
        brands.create_brand(hub.store, "lotus", "Again")
    key_id, key = brands.create_brand(hub.store, "newbrand" + uuid.uuid4().hex[:6], "New")
    assert call(hub, "get", "/v1/brand", key=key).json()["key_id"] == key_id


def test_a_kiosk_enrolled_again_delivers_events_of_its_old_check_ins_only_with_its_old_token(hub):
    old = enroll(hub, "DEMO").json()
    visit = str(uuid.uuid4())
    r = requests.post(hub.url + "/v1/checkins", headers=dev(old), timeout=5,
                      json={"credential": {"kind": "token", "token": demo.token_for(0)}, "checkin_id": visit})
    assert r.status_code == 200
    assert call(hub, "post", f"/v1/brand/devices/{old['device_id']}:revoke").status_code == 204
    g = lotus_gtin(hub)

    def add(device):
        body = {"events": [{"event_id": str(uuid.uuid4()), "type": "wishlist_add", "checkin": visit, "gtin": g,
                            "at": time.time()}]}
        return requests.post(hub.url + "/v1/events:batch", headers=dev(device), json=body, timeout=5).json()["results"][0]

    def code():
        return call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hcm"}).json()["code"]
    stranger = enroll(hub, code()).json()  # a new kiosk: the old device's check-ins prove nothing here
    assert add(stranger)["status"] == "rejected"
    live = enroll(hub, "DEMO").json()  # a live device's token links nothing
    r = requests.post(hub.url + "/v1/devices/enroll", timeout=5,
                      json={"code": code(), "name": "k", "previous_token": live["device_token"]})
    assert add(r.json())["status"] == "rejected"
    siam = enroll(hub, "DEMO-SIAM-BKK").json()  # another brand's revoked kiosk links nothing either
    call(hub, "post", f"/v1/brand/devices/{siam['device_id']}:revoke", key=SIAM)
    r = requests.post(hub.url + "/v1/devices/enroll", timeout=5,
                      json={"code": code(), "name": "k", "previous_token": siam["device_token"]})
    assert add(r.json())["status"] == "rejected"
    again = requests.post(hub.url + "/v1/devices/enroll", timeout=5,
                          json={"code": code(), "name": "k", "previous_token": old["device_token"]}).json()
    assert add(again)["status"] == "created"
    assert requests.get(hub.url + "/v1/offers", headers=dev(old), timeout=5).status_code == 401  # the old one stays out


# -- images -----------------------------------------------------------------------------
def _png(size=(800, 600), colour=(200, 30, 30)) -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _kiosk_image(hub, device, g):
    import io

    from PIL import Image
    r = requests.get(hub.url + f"/v1/images/{g}.png", headers=dev(device), timeout=5)
    return r.status_code, (Image.open(io.BytesIO(r.content)).size if r.status_code == 200 else None)


def test_an_uploaded_image_is_what_kiosks_get_downscaled_and_a_bad_one_is_refused(hub):
    g = lotus_gtin(hub)
    device = enroll(hub, "DEMO").json()
    r = call(hub, "put", f"/v1/brand/products/{g}/image", data=_png(), headers={"Content-Type": "image/png"})
    assert r.status_code == 204, r.text
    assert _kiosk_image(hub, device, g) == (200, (256, 192))
    for bad in (b"<svg onload=alert(1)>", b"GIF89a" + b"\0" * 100, b""):
        r = call(hub, "put", f"/v1/brand/products/{g}/image", data=bad, headers={"Content-Type": "image/png"})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert _kiosk_image(hub, device, g) == (200, (256, 192))  # the good one stays
    theirs = call(hub, "get", "/v1/brand/products?limit=1", key=SIAM).json()["products"][0]["gtin"]
    assert call(hub, "put", f"/v1/brand/products/{theirs}/image", data=_png(),
                headers={"Content-Type": "image/png"}).status_code == 404


@pytest.fixture
def image_server():
    import http.server
    import threading
    png = _png((1024, 1024), (10, 120, 60))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _wait_state(hub, g, key=LOTUS):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = call(hub, "get", f"/v1/brand/products/{g}", key=key).json()["image_state"]
        if state not in ("pending", ""):
            return state
        time.sleep(0.1)
    return state


def test_an_image_url_is_fetched_once_but_never_from_a_private_address(hub, image_server):
    https = image_server.replace("http://", "https://")
    rows = [{"gtin": gtin(500), "title": "Plain", "price": "1", "currency": "VND", "image_url": image_server + "/a.png"},
            {"gtin": gtin(502), "title": "Loopback", "price": "1", "currency": "VND", "image_url": https + "/a.png"},
            {"gtin": gtin(503), "title": "Metadata", "price": "1", "currency": "VND",
             "image_url": "https://169.254.169.254/latest/meta-data/"}]
    assert call(hub, "post", "/v1/brand/products:batch", json={"products": rows}).json()["counts"]["created"] == 3
    assert _wait_state(hub, gtin(500)) == "failed: the image URL must be https"
    assert "non-public address" in _wait_state(hub, gtin(502))
    assert "non-public address" in _wait_state(hub, gtin(503))


def test_an_image_url_is_fetched_once_when_the_hub_allows_its_image_server(hub_db, card_key, image_server):
    from hub.app import HubSettings
    from hub.server import EmbeddedHub
    with EmbeddedHub(HubSettings(db_path=hub_db, fetch_private_images=True)) as running:
        row = {"gtin": gtin(501), "title": "Fetched", "price": "1", "currency": "VND", "image_url": image_server + "/b.png"}
        call(running, "post", "/v1/brand/products:batch", json={"products": [row]})
        assert _wait_state(running, gtin(501)) == "fetched"
        device = enroll(running, "DEMO").json()
        assert _kiosk_image(running, device, "0" + gtin(501)) == (200, (256, 256))
        again = call(running, "post", "/v1/brand/products:batch", json={"products": [row]}).json()
        assert again["counts"]["unchanged"] == 1  # the same URL is not fetched again
