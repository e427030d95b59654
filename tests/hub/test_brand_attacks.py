"""Attacks on the brand doors (issue 10), as an attacker and as a sloppy retailer: each test states the
correct behaviour, so a failing test is a bug found. Runs on SQLite and PostgreSQL (db_kind)."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from kiosk import api
from hub import brandcli, brands, demo

LOTUS, SIAM = demo.brand_key("lotus"), demo.brand_key("siam")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("card_key")


def call(hub, method, path, key=LOTUS, **kw):
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return requests.request(method, hub.url + path, headers=headers, timeout=20, **kw)


def gtin(n: int, prefix: str = "893999") -> str:
    body = f"{prefix}{n:06d}"[:12]
    return body + str(api.gtin_check_digit(body))


def enroll(hub, code, name="k"):
    return requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": name}, timeout=10)


def dev(device):
    return {"Authorization": f"Bearer {device['device_token']}"}


def stock_of(hub, code, g, key=LOTUS):
    rows = call(hub, "get", f"/v1/brand/stores/{code}/inventory?limit=5000", key=key).json()["inventory"]
    return {r["id"]: r for r in rows}.get(brands.normalise_gtin(g))


def new_product(hub, n, key=LOTUS, currency="VND"):
    g = gtin(n)
    r = call(hub, "post", "/v1/brand/products:batch", key=key,
             json={"products": [{"gtin": g, "title": f"Probe {n}", "price": "1000", "currency": currency}]})
    assert r.status_code == 200 and r.json()["counts"]["rejected"] == 0, r.text
    return brands.normalise_gtin(g)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


# -- a hostile kiosk against its brand's fleet view -----------------------------------------
def test_a_kiosk_heartbeat_with_an_out_of_range_number_cannot_break_the_fleet_list(hub):
    """One enrolled kiosk (the attacker's) sends JSON numbers Python reads as infinity: the
    brand's device list (API, CLI, web page) must still answer, so the technician can find
    and revoke that kiosk."""
    device = enroll(hub, "DEMO", "hostile").json()
    r = requests.post(hub.url + f"/v1/devices/{device['device_id']}/heartbeat", headers={**dev(device),
                      "Content-Type": "application/json"}, timeout=10,
                      data=b'{"version": "1", "outbox_depth": 1e400, "parked": -1e400, "free_disk_mb": 1e400}')
    assert r.status_code in (204, 422)
    listed = call(hub, "get", "/v1/brand/devices")
    assert listed.status_code == 200, listed.text
    assert device["device_id"] in listed.text


def test_the_fleet_page_survives_a_hostile_heartbeat(hub):
    device = enroll(hub, "DEMO", "hostile").json()
    requests.post(hub.url + f"/v1/devices/{device['device_id']}/heartbeat", headers={**dev(device),
                  "Content-Type": "application/json"}, timeout=10, data=b'{"outbox_depth": 1e400}')
    s = requests.Session()
    r = s.post(hub.url + "/brand/sign-in", data={"key": LOTUS}, timeout=10, allow_redirects=False)
    assert r.status_code == 303
    page = s.get(hub.url + "/brand/devices", timeout=10)
    assert page.status_code == 200 and device["device_id"] in page.text


def test_a_heartbeat_with_a_huge_integer_is_a_4xx_not_a_5xx(hub):
    device = enroll(hub, "DEMO").json()
    r = requests.post(hub.url + f"/v1/devices/{device['device_id']}/heartbeat", headers={**dev(device),
                      "Content-Type": "application/json"}, timeout=10, data=b'{"sent_at": 1' + b"0" * 400 + b"}")
    assert r.status_code < 500, r.text


# -- feed rows that crash ------------------------------------------------------------------
def test_a_stock_row_with_a_huge_integer_as_of_is_refused_not_a_500(hub):
    g = call(hub, "get", "/v1/brand/products?limit=1").json()["products"][0]["gtin"]
    body = ('{"rows": [{"store_code": "hcm", "id": "%s", "quantity": 1, "as_of": 1%s}]}' % (g, "0" * 400)).encode()
    r = call(hub, "post", "/v1/brand/inventory:batch", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "rejected"
    assert r.json()["results"][0]["errors"][0]["field"] == "as_of"


# -- stock that goes back in time ----------------------------------------------------------
def test_rows_out_of_order_in_one_call_never_let_the_older_row_win(hub):
    """The same (store, product) twice in one feed call, the newer row first: the newer stock
    must stay (a late, older row never overwrites newer stock)."""
    g = new_product(hub, 501)
    now = time.time()
    rows = [{"store_code": "hcm", "id": g, "quantity": 5, "as_of": iso(now - 60)},
            {"store_code": "hcm", "id": g, "quantity": 3, "as_of": iso(now - 3600)}]
    r = call(hub, "post", "/v1/brand/inventory:batch", json={"rows": rows})
    assert r.status_code == 200
    assert stock_of(hub, "hcm", g)["quantity"] == 5, r.json()


def test_the_same_stock_file_sent_again_later_is_new_stock_when_it_has_no_as_of(hub, tmp_path, capsys):
    """Monday's file says 5, Tuesday's 3, Wednesday's file is byte for byte Monday's (the
    shelf went back to 5). Rows without as_of are true when the hub gets them: Wednesday's
    5 must land, not be answered from Monday's record."""
    g = new_product(hub, 502)
    five = tmp_path / "five.csv"
    three = tmp_path / "three.csv"
    five.write_text(f"store_code,id,quantity\nhcm,{g},5\n")
    three.write_text(f"store_code,id,quantity\nhcm,{g},3\n")
    for n, path in enumerate((five, three, five)):
        if n == 2:  # Wednesday's export: the same bytes, written again (the same file unchanged is a re-run)
            five.write_text(f"store_code,id,quantity\nhcm,{g},5\n")
        code = brandcli.main(["import", "inventory", str(path), "--hub", hub.url, "--key", LOTUS])
        assert code == 0
        time.sleep(0.05)
    capsys.readouterr()
    assert stock_of(hub, "hcm", g)["quantity"] == 5


def test_a_refused_stock_file_lands_once_its_products_exist(hub, tmp_path, capsys):
    """A retailer sends stock before the product: its rows are refused. Once the product is
    in, running the same command again must land the rows (not replay the refusal)."""
    g = gtin(503)
    stock = tmp_path / "stock.csv"
    stock.write_text(f"store_code,id,quantity\nhcm,{g},9\n")
    assert brandcli.main(["import", "inventory", str(stock), "--hub", hub.url, "--key", LOTUS]) == 1
    new_product(hub, 503)
    code = brandcli.main(["import", "inventory", str(stock), "--hub", hub.url, "--key", LOTUS])
    capsys.readouterr()
    assert code == 0 and stock_of(hub, "hcm", g)["quantity"] == 9


def test_a_snapshot_whose_every_row_is_refused_zeroes_nothing(hub):
    """A snapshot of one store whose rows are all refused (the POS sent a supplier's EANs the
    catalog does not hold): nothing of the file landed, so nothing of that store's stock may be
    zeroed either (a refused file changes nothing)."""
    before = {r["id"]: r["quantity"] for r in
              call(hub, "get", "/v1/brand/stores/hn/inventory?limit=5000").json()["inventory"]}
    assert sum(before.values()) > 0
    rows = [{"store_code": "hn", "id": gtin(901, "400638"), "quantity": 4},  # good GTINs, not in the catalog
            {"store_code": "hn", "id": gtin(902, "400638"), "quantity": 2}]
    r = call(hub, "post", "/v1/brand/inventory:batch", json={"snapshot": True, "rows": rows})
    assert r.status_code in (200, 422)
    after = {r["id"]: r["quantity"] for r in
             call(hub, "get", "/v1/brand/stores/hn/inventory?limit=5000").json()["inventory"]}
    assert after == before, r.json()


# -- offers ------------------------------------------------------------------------------
def test_an_offer_that_ends_between_pulls_arrives_deleted_at_the_next_pull(hub):
    """Contract: an offer that ends between pulls arrives as {"id", "deleted": true} at the
    next pull after it ended."""
    ends = time.time() + 3600
    r = call(hub, "post", "/v1/brand/offers:batch", json={"offers": [
        {"id": "hour", "title": "One hour only", "kind": "brand", "valid_until": iso(ends)}]})
    assert r.json()["counts"]["created"] == 1
    items, cursor = hub.store.offers_delta("lotus", "lotus-hcm", 0)
    assert {"lotus-hour"} <= {o["id"] for o in items if not o["deleted"]}
    later, _ = hub.store.offers_delta("lotus", "lotus-hcm", cursor, now=ends + 60)
    assert {"id": "lotus-hour", "deleted": True} in later


def test_an_offer_moved_to_another_store_leaves_the_first_stores_kiosks(hub):
    """A brand-wide offer cached by the kiosks of hcm is changed to store hn only: hcm's
    kiosks must be told to drop it (they show cached offers offline)."""
    call(hub, "post", "/v1/brand/offers:batch", json={"offers": [{"id": "mv", "title": "Moving", "kind": "brand"}]})
    device = enroll(hub, "DEMO").json()  # hcm
    first = requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=10).json()
    assert "lotus-mv" in {o["id"] for o in first["offers"]}
    r = call(hub, "post", "/v1/brand/offers:batch", json={"offers": [
        {"id": "mv", "title": "Moving", "kind": "brand", "store_code": "hn"}]})
    assert r.json()["counts"]["updated"] == 1
    after = requests.get(hub.url + "/v1/offers", params={"since": first["cursor"]}, headers=dev(device),
                         timeout=10).json()["offers"]
    assert {"id": "lotus-mv", "deleted": True} in after


def test_a_date_offer_ends_at_local_midnight_also_across_dst(hub):
    """valid_until as a date is the whole day in the store's zone (regression)."""
    # Asia/Bangkok (+07): 2026-12-03 ends at 2026-12-03T17:00Z
    end = dt.datetime(2026, 12, 3, 17, tzinfo=dt.timezone.utc).timestamp()
    assert brands.live("", "2026-12-03", "Asia/Bangkok", now=end - 1)
    assert not brands.live("", "2026-12-03", "Asia/Bangkok", now=end)
    # Europe/London switches to BST on 2026-03-29: that day ends at 23:00Z
    end = dt.datetime(2026, 3, 29, 23, tzinfo=dt.timezone.utc).timestamp()
    assert brands.live("2026-03-29", "2026-03-29", "Europe/London", now=end - 1)
    assert not brands.live("2026-03-29", "2026-03-29", "Europe/London", now=end)
    start = dt.datetime(2026, 3, 29, 0, tzinfo=dt.timezone.utc).timestamp()  # GMT midnight
    assert not brands.live("2026-03-29", "", "Europe/London", now=start - 1)
    assert brands.live("2026-03-29", "", "Europe/London", now=start)


# -- idempotency -----------------------------------------------------------------------------
def test_an_idempotency_key_is_per_brand(hub):
    """Siam using the same key string as lotus neither replays lotus's answer nor is refused."""
    g = new_product(hub, 504)
    r = call(hub, "post", "/v1/brand/inventory:batch", json={"rows": [{"store_code": "hcm", "id": g, "quantity": 2}]},
             headers={"Idempotency-Key": "shared:0"})
    assert r.status_code == 200
    s = new_product(hub, 505, key=SIAM, currency="THB")
    r = call(hub, "post", "/v1/brand/inventory:batch", key=SIAM, headers={"Idempotency-Key": "shared:0"},
             json={"rows": [{"store_code": "bkk", "id": s, "quantity": 4}]})
    assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") != "true"
    assert r.json()["counts"]["created"] == 1 and stock_of(hub, "bkk", s, key=SIAM)["quantity"] == 4


def test_the_same_feed_call_twice_at_once_applies_once(hub):
    g = new_product(hub, 506)
    body = {"rows": [{"store_code": "hcm", "id": g, "quantity": 11}]}
    answers = []

    def send():
        answers.append(call(hub, "post", "/v1/brand/inventory:batch", json=body, headers={"Idempotency-Key": "twin:0"}))
    threads = [threading.Thread(target=send) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == [False, True, True, True]


# -- the fleet ---------------------------------------------------------------------------------
def test_a_one_time_code_tried_at_once_by_several_kiosks_enrolls_one(hub):
    code = call(hub, "post", "/v1/brand/enrollment-codes", json={"store_code": "hn"}).json()["code"]
    answers = []

    def go(n):
        answers.append(enroll(hub, code, f"racer-{n}").status_code)
    threads = [threading.Thread(target=go, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(answers) == [200, 403, 403, 403, 403, 403]


def test_a_revocation_during_a_token_lookup_does_not_leave_the_kiosk_cached_as_active(hub):
    """The device lookup reads the row, then caches it: a revocation committed between the
    two must not leave a non-revoked Device in the cache (it would work for 10 s more)."""
    device = enroll(hub, "DEMO").json()
    store = hub.store
    store.forget_devices()
    real_one = store.one

    def one(sql, params=()):
        row = real_one(sql, params)
        if sql.startswith("SELECT id, name, brand_id, store_id, revoked_at"):
            brands.revoke_device(store, "lotus", device["device_id"])
        return row
    store.one = one
    try:
        store.device_by_token(device["device_token"])
    finally:
        store.one = real_one
    cached = store.cached_device(device["device_token"])
    assert cached is None or cached.revoked


def test_a_revoked_kiosk_is_refused_on_every_door(hub):
    device = enroll(hub, "DEMO").json()
    assert call(hub, "post", f"/v1/brand/devices/{device['device_id']}:revoke").status_code == 204
    for method, path, body in (("get", "/v1/offers", None), ("get", "/v1/stores/lotus-hcm/inventory", None),
                               ("post", "/v1/checkins", {"credential": {"kind": "token", "token": demo.token_for(0)}}),
                               ("post", "/v1/events:batch", {"events": []}),
                               ("post", f"/v1/devices/{device['device_id']}/heartbeat", {}),
                               ("get", "/v1/revocations", None), ("get", "/v1/session/view", None),
                               ("post", "/v1/staff/sessions", {}), ("get", "/v1/staff/shoppers?q=x", None)):
        r = requests.request(method, hub.url + path, json=body, headers=dev(device), timeout=10)
        assert r.status_code == 401 and r.json()["type"] == api.P_DEVICE_REVOKED, (path, r.status_code)


# -- image fetch -----------------------------------------------------------------------------
def test_a_refused_image_url_does_not_tell_the_brand_what_an_internal_name_resolves_to(hub):
    """image_url naming an internal host is refused; the reason the brand reads back must not
    be a DNS oracle for the hub's network (no resolved private address in it)."""
    g = brands.normalise_gtin(gtin(507))
    r = call(hub, "post", "/v1/brand/products:batch", json={"products": [
        {"gtin": g, "title": "x", "price": "1", "currency": "VND", "image_url": "https://localhost/x.png"}]})
    assert r.json()["counts"]["created"] == 1
    deadline = time.time() + 10
    state = ""
    while time.time() < deadline:
        state = call(hub, "get", f"/v1/brand/products/{g}").json()["image_state"]
        if state.startswith("failed"):
            break
        time.sleep(0.1)
    assert state.startswith("failed")
    assert "127.0.0.1" not in state and "::1" not in state, state


def test_a_snapshot_whose_rows_fail_their_check_zeroes_nothing(hub):
    """Regression: rows with bad check digits name no product; nothing is zeroed."""
    before = {r["id"]: r["quantity"] for r in
              call(hub, "get", "/v1/brand/stores/hn/inventory?limit=5000").json()["inventory"]}
    rows = [{"store_code": "hn", "id": "1234567890123", "quantity": 4}]
    call(hub, "post", "/v1/brand/inventory:batch", json={"snapshot": True, "rows": rows})
    after = {r["id"]: r["quantity"] for r in
             call(hub, "get", "/v1/brand/stores/hn/inventory?limit=5000").json()["inventory"]}
    assert after == before


# -- an issue-9 database upgraded ------------------------------------------------------------
ISSUE9 = "ff94a26"  # the last commit before issue 10 (schema 0002)

SEED_OLD = r"""
import sys
from hub import demo
from hub.store import HubStore
store = HubStore(sys.argv[1])
demo.seed(store)
store.add_enrollment_code("OLD-ONCE", "lotus", "lotus-hn")  # one-time, unused
store.add_enrollment_code("OLD-USED", "lotus", "lotus-hn")
used = store.enroll("OLD-USED", "old kiosk")
print(used["device_token"])
store.close()
"""


@pytest.fixture(scope="session")
def issue9_tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("issue9")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ISSUE9, "hub", "kiosk"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


@pytest.fixture
def issue9_db(request, db_kind, tmp_path, issue9_tree):
    """(database, old kiosk token): a demo hub seeded by the issue-9 code, at schema 0002."""
    if db_kind == "sqlite":
        db = str(tmp_path / "old.db")
    else:
        db = request.getfixturevalue("pg_cluster").create_database(f"old{os.getpid()}{abs(hash(request.node.nodeid)) % 10**6}")
    env = {**os.environ, "PYTHONPATH": str(issue9_tree)}
    if db_kind == "postgresql":
        env["KIOSK_HUB_CARD_KEY"] = "5a" * 32
    done = subprocess.run([sys.executable, "-c", SEED_OLD, db], cwd=issue9_tree, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return db, done.stdout.strip().splitlines()[-1]


def test_an_issue9_demo_database_upgrades_and_keeps_its_codes_and_kiosks(issue9_db):
    from hub.app import HubSettings
    from hub.server import EmbeddedHub
    db, old_token = issue9_db
    with EmbeddedHub(HubSettings(db_path=db, demo=True)) as hub:
        from hub import migrations
        assert migrations.current(hub.store.engine) == migrations.head()
        assert enroll(hub, "DEMO").status_code == 200  # the reusable demo code, hashed by 0003
        assert enroll(hub, "DEMO-LOTUS-HN").status_code == 200
        once = enroll(hub, "OLD-ONCE")
        assert once.status_code == 200 and once.json()["store_id"] == "lotus-hn"
        assert enroll(hub, "OLD-ONCE").status_code == 403  # still one-time
        assert enroll(hub, "OLD-USED").status_code == 403  # used before the upgrade: still used
        assert all(row[0] not in ("DEMO", "OLD-ONCE") for row in hub.store.all("SELECT code FROM enrollment_codes"))
        r = requests.get(hub.url + "/v1/offers", headers={"Authorization": "Bearer " + old_token}, timeout=10)
        assert r.status_code == 200  # a kiosk enrolled before the upgrade keeps working


def test_an_upgraded_issue9_demo_hub_accepts_the_demo_brand_key_it_prints(issue9_db):
    """`kiosk hub --demo` prints lotus's demo brand key (hub/cli.py); on a demo database seeded
    before issue 10, demo.seed() sees `demo_seeded` and adds no brand keys (nor the vi/ru/th
    texts, nor store time zones), so the printed key is refused."""
    from hub.app import HubSettings
    from hub.server import EmbeddedHub
    db, _ = issue9_db
    with EmbeddedHub(HubSettings(db_path=db, demo=True)) as hub:
        stores = call(hub, "get", "/v1/brand/stores")
        assert stores.status_code == 200, stores.text
        assert {s["store_code"] for s in stores.json()["stores"]} == {"hcm", "hn"}


def test_an_issue9_brand_gets_its_first_key_from_the_operator_and_its_old_data_is_served(issue9_db, capsys):
    from hub.app import HubSettings
    from hub.server import EmbeddedHub
    db, _ = issue9_db
    with EmbeddedHub(HubSettings(db_path=db)) as hub:
        code = brandcli.main(["key", "create", "--db", db, "--brand", "lotus", "--json"])
        assert code == 0
        key = json.loads(capsys.readouterr().out)["key"]
        offers = call(hub, "get", "/v1/brand/offers", key=key).json()["offers"]
        assert offers and all(not o["id"].startswith("lotus-") for o in offers)
        stock = call(hub, "get", "/v1/brand/stores/hcm/inventory?limit=5000", key=key).json()["inventory"]
        assert stock
        g = next(r for r in stock if r["quantity"] > 0)
        # a delta (no as_of: now) over the migrated row (as_of 0) lands; an older row is stale
        r = call(hub, "post", "/v1/brand/inventory:batch", key=key,
                 json={"rows": [{"store_code": "hcm", "id": g["id"], "quantity": g["quantity"] + 1}]})
        assert r.json()["counts"]["updated"] == 1
        device = enroll(hub, "DEMO").json()
        view = requests.post(hub.url + "/v1/checkins", headers=dev(device), timeout=10,
                             json={"credential": {"kind": "token", "token": demo.token_for(1)}})
        assert view.status_code == 200, view.text


# -- hostile bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize("row", [
    {"\ud800": 1},                                    # an unknown field named with a lone surrogate
    {"texts": {"\ud800": {"title": "x"}}},            # a language tag that is one
    {"gtin": "\ud800" * 3},                          # a GTIN that is one (echoed as the row's key)
], ids=["field", "language", "gtin"])
def test_a_lone_surrogate_anywhere_in_a_row_is_refused_not_a_500(hub, row):
    g = brands.normalise_gtin(gtin(601))
    body = {"products": [{"gtin": g, "title": "x", "price": "1", "currency": "VND", **row}]}
    r = call(hub, "post", "/v1/brand/products:batch", data=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json()["results"][0]["status"] == "rejected"


def test_a_body_that_is_not_utf8_is_a_4xx_problem(hub):
    r = call(hub, "post", "/v1/brand/products:batch", data=b'{"products": [{"title": "\xff\xfe"}]}',
             headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json", r.text


def test_a_10_mb_title_is_refused_per_row_and_good_rows_land(hub):
    g1, g2 = brands.normalise_gtin(gtin(602)), brands.normalise_gtin(gtin(603))
    r = call(hub, "post", "/v1/brand/products:batch", json={"products": [
        {"gtin": g1, "title": "x" * (10 * 1024 * 1024), "price": "1", "currency": "VND"},
        {"gtin": g2, "title": "=cmd|' /C calc'!A0", "price": "1", "currency": "VND"}]})
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "created"]
    assert call(hub, "get", f"/v1/brand/products/{g2}").json()["title"] == "=cmd|' /C calc'!A0"  # kept as text


def test_a_chunked_upload_past_the_limit_with_a_good_key_is_cut_off(hub):
    def body():
        for _ in range(40):
            yield b" " * (1024 * 1024)
    try:
        r = call(hub, "post", "/v1/brand/products:batch", data=body(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    except requests.exceptions.ConnectionError:
        pass  # cut off while sending: also refused


def test_an_idempotency_key_over_128_characters_is_a_422(hub):
    r = call(hub, "post", "/v1/brand/inventory:batch", json={"rows": []}, headers={"Idempotency-Key": "x" * 129})
    assert r.status_code == 422


def test_concurrent_feeds_for_one_product_end_with_the_newest_row(hub):
    """Two POS feeds at once (PostgreSQL: concurrent transactions): whatever the order they
    commit in, the stock ends as the newest as_of said."""
    g = new_product(hub, 604)
    base = time.time() - 1000
    errors = []

    def send(n):
        r = call(hub, "post", "/v1/brand/inventory:batch",
                 json={"rows": [{"store_code": "hcm", "id": g, "quantity": n, "as_of": base + n}]})
        if r.status_code != 200:
            errors.append(r.text)
    threads = [threading.Thread(target=send, args=(n,)) for n in range(1, 13)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert stock_of(hub, "hcm", g)["quantity"] == 12


# -- the web page ------------------------------------------------------------------------------
def test_the_fleet_page_sign_in_never_keeps_a_planted_session_id(hub):
    planted = "A" * 43
    r = requests.post(hub.url + "/brand/sign-in", data={"key": LOTUS}, timeout=10, allow_redirects=False,
                      headers={"Cookie": f"hub_session={planted}"})
    assert r.status_code == 303
    assert r.cookies.get("hub_session") not in (None, planted)
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"].replace("Strict", "strict")


def test_the_fleet_page_revoke_needs_the_sessions_csrf_token_and_this_site(hub):
    device = enroll(hub, "DEMO").json()
    s = requests.Session()
    s.post(hub.url + "/brand/sign-in", data={"key": LOTUS}, timeout=10, allow_redirects=False)
    url = hub.url + f"/brand/devices/{device['device_id']}/revoke"
    assert s.post(url, data={"confirm": "yes"}, timeout=10, allow_redirects=False).status_code == 403
    assert s.post(url, data={"confirm": "yes", "csrf": "x" * 43}, timeout=10, allow_redirects=False).status_code == 403
    other = requests.Session()  # siam's session token is not lotus's
    other.post(hub.url + "/brand/sign-in", data={"key": SIAM}, timeout=10, allow_redirects=False)
    page = other.get(hub.url + "/brand/devices", timeout=10).text
    siam_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert other.post(url, data={"confirm": "yes", "csrf": siam_csrf}, timeout=10).status_code == 404
    page = s.get(hub.url + "/brand/devices", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    cross = s.post(url, data={"confirm": "yes", "csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=10,
                   allow_redirects=False)
    assert cross.status_code == 403
    assert enroll(hub, "DEMO").status_code == 200  # (enrolling still works)
    r = requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=10)
    assert r.status_code == 200  # nothing above revoked it
    assert s.post(url, data={"confirm": "yes", "csrf": csrf}, timeout=10, allow_redirects=False).status_code == 303
    assert requests.get(hub.url + "/v1/offers", headers=dev(device), timeout=10).status_code == 401
