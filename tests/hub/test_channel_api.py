"""The channel API (hub/channel_api.py) over a real loopback port, on SQLite and PostgreSQL: a web
shop's or app's token reads the wishlist as its brand may see it (the ledger checked live), adds
and removes with the kiosk's idempotency and observed-remove rule, merges a guest list once,
answers ETag / If-None-Match, writes the shopper's access log, and refuses hostile input with
clear 4xx problems. Tokens are made as hub/oauth.py stores them (rows with SHA-256 hashes); the
OAuth flow itself is tests/hub/test_oauth.py's."""
import hashlib
import secrets
import time
import uuid

import pytest
import requests

from kiosk import api
from hub import brands, demo, oauth, shelf, shopper

LAN = "shopper-01"  # demo shopper 1: items at lotus, siam and harbour; shares with every brand
PRODUCTS = {p["gtin"]: p for p in demo.products()}


def new_id() -> str:
    return str(uuid.uuid4())


def client(hub, brand="lotus", kind="web", name=None) -> str:
    uri = "com.example.app:/cb" if kind == "app" else "https://shop.example/cb"
    return oauth.register_client(hub.store, brand, name or f"{brand} {kind} shop", [uri], kind)["client_id"]


def token(hub, shopper_id=LAN, brand="lotus", scopes="wishlist", kind="web", client_id=None, ttl=600.0) -> str:
    """An access token as the token endpoint stores it: a live grant and the token's hash."""
    client_id = client_id or client(hub, brand, kind)
    now, value = time.time(), "at_" + secrets.token_urlsafe(32)
    grant = "gr_" + secrets.token_urlsafe(12)
    with hub.store.transaction() as conn:
        conn.execute("INSERT INTO oauth_grants(id, shopper_id, brand_id, client_id, scope, created_at, updated_at) "
                     "VALUES (?,?,?,?,?,?,?)", (grant, shopper_id, brand, client_id, scopes, now, now))
        conn.execute("INSERT INTO oauth_tokens(id, grant_id, client_id, shopper_id, brand_id, scope, access_hash, "
                     "refresh_hash, issued_at, access_expires_at, refresh_expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     ("tk_" + secrets.token_urlsafe(8), grant, client_id, shopper_id, brand, scopes,
                      hashlib.sha256(value.encode()).hexdigest(), hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                      now, now + ttl, now + 86400))
    return value


def call(hub, method, path, tok, **kw):
    headers = {"Authorization": f"Bearer {tok}", **kw.pop("headers", {})}
    return requests.request(method, hub.url + "/v1/channel" + path, headers=headers, timeout=10, **kw)


def read(hub, tok, **kw):
    r = call(hub, "get", "/wishlist", tok, **kw)
    assert r.status_code in (200, 304), r.text
    return r


def items(hub, tok) -> dict:
    return {i["gtin"]: i for i in read(hub, tok).json()["items"]}


def live(hub, shopper_id=LAN) -> list[tuple]:
    return sorted(hub.store.all("SELECT a.tag, a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag "
                                "AND r.shopper_id = a.shopper_id WHERE a.shopper_id=? AND r.tag IS NULL", (shopper_id,)))


def unknown() -> str:
    body = "0899999999999"
    return body + str(api.gtin_check_digit(body))


def brand_of(gtin: str) -> str:
    return PRODUCTS[gtin]["brand_id"]


def fresh(hub, brand="lotus", exclude=()) -> str:
    """A product of `brand` not on Lan's list."""
    mine = {g for _, g in live(hub)} | set(exclude)
    return next(g for g, p in PRODUCTS.items() if p["brand_id"] == brand and g not in mine)


def enroll(hub, code="DEMO"):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "t"}, timeout=5)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def checkin(hub, auth, index=1):
    r = requests.post(hub.url + "/v1/checkins", headers=auth,
                      json={"credential": {"kind": "token", "token": demo.token_for(index)}}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def batch(hub, auth, *events):
    r = requests.post(hub.url + "/v1/events:batch", headers=auth, json={"events": list(events)}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


# -- reading, brands and the ledger -------------------------------------------------------------
def test_a_token_sees_its_brands_items_and_others_only_with_the_scope_and_the_ledger(hub):
    everything = {g for _, g in live(hub)}
    assert {brand_of(g) for g in everything} >= {"lotus", "siam", "harbour"}
    own = items(hub, token(hub))
    assert set(own) == {g for g in everything if brand_of(g) == "lotus"}
    siam = items(hub, token(hub, brand="siam"))
    assert set(siam) == {g for g in everything if brand_of(g) == "siam"}  # brand Y's token: never X's items
    first = next(iter(own.values()))
    assert first["title"] == PRODUCTS[first["gtin"]]["texts"]["vi"]["title"]  # Lan reads Vietnamese
    assert first["channel"] == "kiosk" and first["tags"] and first["brand"] == "lotus"
    assert {s["store_code"] for s in first["stock"]} <= {"hcm", "hn"}  # stock per store of the brand
    english = {i["gtin"]: i for i in read(hub, token(hub), params={"lang": "en"}).json()["items"]}
    assert english[first["gtin"]]["title"] == PRODUCTS[first["gtin"]]["title"]
    # the other brands' items: the scope and the ledger's "yes" (Lan shares with lotus)
    others = token(hub, scopes="wishlist wishlist.other_brands")
    assert set(items(hub, others)) == everything
    # a stop on the shopper's page: gone from the very next call, whatever the token says
    shopper.set_sharing(hub.store, LAN, "lotus", False)
    assert set(items(hub, others)) == set(own)
    shopper.set_sharing(hub.store, LAN, "lotus", True)
    assert set(items(hub, others)) == everything
    # a per-brand refusal wins over "*" (a kiosk's choice), as at the kiosk
    hub.store.conn.execute("INSERT INTO consents(shopper_id, from_brand, to_brand, state) VALUES (?,?,?,?)",
                           (LAN, "siam", "lotus", api.REFUSED))
    assert {brand_of(g) for g in items(hub, others)} == {"lotus", "harbour"}
    # a token of a shopper who refused: own brand only (demo shopper 2 refuses)
    assert {brand_of(g) for g in items(hub, token(hub, "shopper-02", scopes="wishlist wishlist.other_brands"))} \
        <= {"lotus"}


def test_etag_and_if_none_match_answer_304_until_the_list_changes(hub):
    tok = token(hub)
    first = read(hub, tok)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"].startswith("private")
    for header in (etag, "W/" + etag, f'"nope", {etag}', "*"):
        again = read(hub, tok, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert read(hub, tok, headers={"If-None-Match": '"other"'}).status_code == 200
    assert read(hub, tok, params={"lang": "en"}).headers["ETag"] != etag  # another body, another tag
    gtin = fresh(hub)
    assert call(hub, "post", "/wishlist/items", tok, json={"event_id": new_id(), "gtin": gtin}).status_code == 201
    changed = read(hub, tok, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert gtin in {i["gtin"] for i in changed.json()["items"]}
    brands.apply_stock(hub.store, "lotus", [{"store_code": "hn", "id": gtin, "quantity": 3, "as_of": time.time()}])
    assert read(hub, tok, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 200  # stock moved


def test_every_read_is_in_the_shoppers_access_log_once_a_minute_per_client(hub):
    web = client(hub, name="Lotus web shop")
    tok = token(hub, client_id=web, scopes="wishlist scans")
    app = token(hub, kind="app", scopes="wishlist")
    before = hub.store.one("SELECT COUNT(*) FROM access_log WHERE shopper_id=?", (LAN,))[0]
    read(hub, tok)
    read(hub, tok)  # the same client again within the minute: one line
    read(hub, app)
    assert call(hub, "get", "/scans", tok).status_code == 200
    rows = hub.store.all("SELECT what, brand_id, actor, why, device_id FROM access_log WHERE shopper_id=? "
                         "ORDER BY id", (LAN,))[before:]
    assert rows[0] == ("brand_read", "lotus", "web", "read by Lotus web shop", "oauth:" + web)
    assert rows[1][2] == "app" and rows[1][3] == "read by lotus app shop"
    assert rows[2][3] == "scans read by Lotus web shop" and len(rows) == 3
    log = shopper.access_log(hub.store, LAN)
    assert log[0]["brand_name"] == "Lotus & Linen" and log[0]["what"] == "brand_read"


def test_scans_need_their_scope_and_show_only_this_brands_stores(hub):
    lotus, siam = enroll(hub), enroll(hub, "DEMO-SIAM-BKK")
    for auth, gtin in ((lotus, fresh(hub)), (siam, fresh(hub, "siam"))):
        session = checkin(hub, auth)["session"]
        assert batch(hub, auth, {"event_id": new_id(), "type": "scan", "gtin": gtin, "session": session})[0]["status"] \
            == api.CREATED
    problem(call(hub, "get", "/scans", token(hub)), 403)
    scans = call(hub, "get", "/scans", token(hub, scopes="scans")).json()["scans"]
    assert len(scans) == 1 and scans[0]["store_code"] == "hcm" and brand_of(scans[0]["gtin"]) == "lotus"
    assert scans[0]["title"]


# -- writing: idempotency and the observed remove ---------------------------------------------
def test_an_add_is_idempotent_by_event_id_and_another_body_is_a_409(hub):
    web = client(hub)
    tok = token(hub, client_id=web)
    gtin, other = fresh(hub), fresh(hub, exclude=[fresh(hub)])
    event = new_id()
    first = call(hub, "post", "/wishlist/items", tok, json={"event_id": event, "gtin": gtin})
    assert first.status_code == 201 and first.json() == {"event_id": event, "status": api.CREATED, "tag": event,
                                                         "gtin": gtin}
    again = call(hub, "post", "/wishlist/items", tok, json={"event_id": event, "gtin": gtin})
    assert again.status_code == 200 and again.json()["status"] == api.DUPLICATE
    assert call(hub, "post", "/wishlist/items", tok, json={"event_id": event.upper(), "gtin": gtin}).status_code == 200
    problem(call(hub, "post", "/wishlist/items", tok, json={"event_id": event, "gtin": other}), 409)
    # the same id from another client (or shopper) is another body too
    problem(call(hub, "post", "/wishlist/items", token(hub), json={"event_id": event, "gtin": gtin}), 409)
    assert hub.store.all("SELECT gtin, channel, brand_id, store_id FROM wishlist_adds WHERE tag=?", (event,)) == \
        [(gtin, "web", "lotus", "")]
    assert hub.store.all("SELECT device_id, type, shopper_id FROM events WHERE event_id=?", (event,)) == \
        [("oauth:" + web, api.WISHLIST_ADD, LAN)]
    assert items(hub, tok)[gtin]["tags"] == [event] and items(hub, tok)[gtin]["channel"] == "web"
    # an app's add says so; another brand's product is not this brand's to add (404, like none)
    app = token(hub, kind="app")
    assert call(hub, "post", "/wishlist/items", app, json={"event_id": new_id(), "gtin": other}).status_code == 201
    assert hub.store.one("SELECT channel FROM wishlist_adds WHERE gtin=? AND shopper_id=? AND channel='app'",
                         (other, LAN))
    before = live(hub)
    problem(call(hub, "post", "/wishlist/items", tok, json={"event_id": new_id(), "gtin": fresh(hub, "siam")}), 404)
    problem(call(hub, "post", "/wishlist/items", tok, json={"event_id": new_id(), "gtin": unknown()}), 404)
    assert live(hub) == before
    # the shopper's page shows where it came from
    page = {i["gtin"]: i for i in shopper.profile(hub.store, LAN, "en")["wishlist"]}
    assert page[gtin]["channel"] == "web" and page[gtin]["added_brand_name"] == "Lotus & Linen"


def test_a_web_add_concurrent_with_a_kiosk_remove_survives_and_a_remove_takes_only_what_it_saw(hub):
    tok = token(hub)
    kiosk = enroll(hub)
    view = checkin(hub, kiosk)
    item = next(i for i in view["wishlist"] if i["brand"] == "lotus")
    gtin, seen_at_kiosk = item["gtin"], item["tags"]
    # the web shop adds the same item again while the kiosk (offline) removes what it had seen
    web_add = new_id()
    assert call(hub, "post", "/wishlist/items", tok, json={"event_id": web_add, "gtin": gtin}).status_code == 201
    removed = batch(hub, kiosk, {"event_id": new_id(), "type": "wishlist_remove", "gtin": gtin, "tags": seen_at_kiosk,
                                 "session": view["session"]})
    assert removed[0]["status"] == api.CREATED
    assert items(hub, tok)[gtin]["tags"] == [web_add]  # the concurrent add survives
    # the other way round: the web removes what it saw while a kiosk adds the item again
    shown = items(hub, tok)[gtin]["tags"]
    kiosk_add = new_id()
    assert batch(hub, kiosk, {"event_id": kiosk_add, "type": "wishlist_add", "gtin": gtin,
                              "session": view["session"]})[0]["status"] == api.CREATED
    remove = {"event_id": new_id(), "tags": shown}
    r = call(hub, "post", "/wishlist/remove", tok, json=remove)
    assert r.status_code == 200 and r.json() == {"event_id": remove["event_id"], "status": api.CREATED, "removed": 1}
    assert items(hub, tok)[gtin]["tags"] == [kiosk_add]
    again = call(hub, "post", "/wishlist/remove", tok, json=remove).json()
    assert again["status"] == api.DUPLICATE and again["removed"] == 1
    problem(call(hub, "post", "/wishlist/remove", tok, json={**remove, "tags": [kiosk_add]}), 409)
    assert items(hub, tok)[gtin]["tags"] == [kiosk_add]
    # a remove may name only tags this token sees: another brand's item stays (no other_brands scope)
    siam_tags = [t for t, g in live(hub) if brand_of(g) == "siam"]
    r = call(hub, "post", "/wishlist/remove", tok, json={"event_id": new_id(), "tags": siam_tags + [new_id()]})
    assert r.json()["removed"] == 0 and set(siam_tags) <= {t for t, _ in live(hub)}


# -- the guest list ---------------------------------------------------------------------------------
def test_a_guest_list_merges_once_as_a_union_by_gtin_at_sign_in_and_at_first_sign_up(hub):
    tok = token(hub)
    saved = next(g for _, g in live(hub) if brand_of(g) == "lotus")
    new1 = fresh(hub)
    new2 = fresh(hub, exclude=[new1])
    guest = [{"event_id": new_id(), "gtin": saved}, {"event_id": new_id(), "gtin": new1},
             {"event_id": new_id(), "gtin": new2}, {"event_id": new_id(), "gtin": new1},
             {"event_id": new_id(), "gtin": fresh(hub, "siam")}]
    before = live(hub)
    r = call(hub, "post", "/wishlist/merge", tok, json={"items": guest})
    assert r.status_code == 200, r.text
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["already_saved", api.CREATED, api.CREATED, "already_saved", api.REJECTED]
    after = live(hub)
    assert len(after) == len(before) + 2
    assert sorted(g for _, g in after if g in (new1, new2, saved)) == sorted([saved] * sum(
        1 for _, g in before if g == saved) + [new1, new2])
    replay = call(hub, "post", "/wishlist/merge", tok, json={"items": guest}).json()
    assert [x["status"] for x in replay["results"]] == [api.DUPLICATE] * 4 + [api.REJECTED]
    assert live(hub) == after
    # removed at a kiosk afterwards: the same merge again (the shop retried) does not bring it back
    tags = items(hub, tok)[new1]["tags"]
    assert call(hub, "post", "/wishlist/remove", tok, json={"event_id": new_id(), "tags": tags}).json()["removed"] == 1
    call(hub, "post", "/wishlist/merge", tok, json={"items": guest})
    assert new1 not in items(hub, tok)
    # the same id with another item: 409, and nothing of that call is applied
    mixed = [{"event_id": new_id(), "gtin": fresh(hub, exclude=[new1, new2])}, {**guest[1], "gtin": new2}]
    problem(call(hub, "post", "/wishlist/merge", tok, json={"items": mixed}), 409)
    assert mixed[0]["gtin"] not in items(hub, tok)
    # a first sign-up: a brand-new profile with nothing saved takes the guest list whole, once
    hub.store.conn.execute("INSERT INTO shoppers(id, display_name, locale, role, created_at) VALUES (?,?,?,?,?)",
                           ("shopper-new", "Neu", "en", "shopper", time.time()))
    newbie = token(hub, "shopper-new")
    guest2 = [{"event_id": new_id(), "gtin": g} for g in (new1, new2, new1)]
    first = call(hub, "post", "/wishlist/merge", newbie, json={"items": guest2}).json()
    assert first["counts"] == {api.CREATED: 2, "already_saved": 1}
    assert call(hub, "post", "/wishlist/merge", newbie, json={"items": guest2}).json()["counts"] == {api.DUPLICATE: 3}
    assert sorted(g for _, g in live(hub, "shopper-new")) == sorted([new1, new2])
    assert call(hub, "post", "/wishlist/merge", newbie, json={"items": []}).json()["counts"] == {}


# -- tokens and scopes ------------------------------------------------------------------------------
def test_no_token_a_wrong_expired_or_revoked_one_or_a_missing_scope_is_refused(hub):
    for header in ({}, {"Authorization": "Bearer at_nope"}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer " + "x" * 5000}):
        r = requests.get(hub.url + "/v1/channel/wishlist", headers=header, timeout=5)
        problem(r, 401)
        assert "Bearer" in r.headers.get("WWW-Authenticate", "")
    problem(call(hub, "get", "/wishlist", token(hub, ttl=-1)), 401)
    problem(call(hub, "get", "/wishlist", token(hub, scopes="scans")), 403)
    tok = token(hub)
    assert read(hub, tok).status_code == 200
    grant = hub.store.one("SELECT grant_id FROM oauth_tokens WHERE access_hash=?",
                          (hashlib.sha256(tok.encode()).hexdigest(),))[0]
    oauth.revoke_grant(hub.store, LAN, grant)
    problem(call(hub, "get", "/wishlist", tok), 401)  # revoked on the shopper's page: refused at once
    problem(call(hub, "post", "/wishlist/items", tok, json={"event_id": new_id(), "gtin": fresh(hub)}), 401)
    # a device token is not an access token, and an access token is not a device token
    kiosk = enroll(hub)
    problem(requests.get(hub.url + "/v1/channel/wishlist", headers=kiosk, timeout=5), 401)
    problem(requests.get(hub.url + "/v1/offers", headers={"Authorization": f"Bearer {token(hub)}"}, timeout=5), 401)


def test_hostile_input_is_a_clear_4xx_and_changes_nothing(hub):
    tok = token(hub)
    before = live(hub)
    gtin = fresh(hub)
    bad_bodies = [
        ("/wishlist/items", {"event_id": new_id(), "gtin": gtin[:-1] + str((int(gtin[-1]) + 1) % 10)}),  # check digit
        ("/wishlist/items", {"event_id": new_id(), "gtin": "abcdefghijklmn"}),
        ("/wishlist/items", {"event_id": new_id(), "gtin": "1" * 15}),
        ("/wishlist/items", {"event_id": new_id(), "gtin": 8931022000223}),
        ("/wishlist/items", {"event_id": new_id(), "gtin": "0893102200022\x00"}),
        ("/wishlist/items", {"event_id": "not-a-uuid", "gtin": gtin}),
        ("/wishlist/items", {"event_id": "'; DROP TABLE events; --", "gtin": gtin}),
        ("/wishlist/items", {"event_id": new_id(), "gtin": gtin, "brand_id": "siam"}),
        ("/wishlist/items", {"event_id": new_id()}),
        ("/wishlist/items", ["not", "an", "object"]),
        ("/wishlist/remove", {"event_id": new_id(), "tags": [new_id() for _ in range(10_000)]}),
        ("/wishlist/remove", {"event_id": new_id(), "tags": ["not-a-uuid"]}),
        ("/wishlist/remove", {"event_id": new_id(), "tags": "all"}),
        ("/wishlist/remove", {"event_id": 7, "tags": []}),
        ("/wishlist/merge", {"items": [{"event_id": new_id(), "gtin": gtin}] * 201}),
        ("/wishlist/merge", {"items": [{"event_id": new_id(), "gtin": gtin}, {"event_id": "x", "gtin": gtin}]}),
        ("/wishlist/merge", {"items": [{"event_id": new_id(), "gtin": "12"}]}),
        ("/wishlist/merge", {"items": "everything"}),
        ("/shelf-watches", {"gtin": gtin, "store_code": "../../etc"}),
        ("/shelf-watches", {"gtin": "x", "store_code": "hcm"}),
    ]
    for path, body in bad_bodies:
        r = call(hub, "post", path, tok, json=body)
        assert 400 <= r.status_code < 500, (path, str(body)[:80], r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/problem+json"), (path, r.text[:200])
    reasons = call(hub, "post", "/wishlist/items", tok, json=bad_bodies[0][1]).json()["detail"]
    assert "check digit" in reasons
    assert "UUID" in call(hub, "post", "/wishlist/items", tok, json=bad_bodies[5][1]).json()["detail"]
    assert "items[1].event_id" in call(hub, "post", "/wishlist/merge", tok, json=bad_bodies[15][1]).json()["detail"]
    for raw in (b"{", b"\xff\xfe", b"null", b"[]" * 100):
        r = call(hub, "post", "/wishlist/items", tok, data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (raw[:10], r.text[:200])
    problem(call(hub, "post", "/wishlist/merge", tok, data=b"x" * (300 * 1024),
                 headers={"Content-Type": "application/json"}), 413)
    problem(call(hub, "post", "/wishlist/items", tok, data=b" " * (5 * 1024 * 1024),
                 headers={"Content-Type": "application/json"}), 413)
    for params in ({"lang": "x" * 100}, {"lang": "vi\u202e"}, {"lang": "not a tag!"}):
        problem(call(hub, "get", "/wishlist", tok, params=params), 422)
    problem(call(hub, "delete", "/shelf-watches", tok, params={"gtin": "x", "store_code": "hcm"}), 422)
    assert live(hub) == before
    assert not hub.store.one("SELECT 1 FROM events WHERE device_id LIKE 'oauth:%'")


# -- tell me when it is on the shelf here -----------------------------------------------------------
def test_shelf_watches_through_the_api_the_page_functions_and_the_next_check_in(hub):
    tok = token(hub)
    gtin = fresh(hub)
    watch = {"gtin": gtin, "store_code": "hcm"}
    problem(call(hub, "post", "/shelf-watches", tok, json=watch), 422)  # not saved yet
    assert call(hub, "post", "/wishlist/items", tok, json={"event_id": new_id(), "gtin": gtin}).status_code == 201
    brands.apply_stock(hub.store, "lotus", [{"store_code": "hcm", "id": gtin, "quantity": 0, "as_of": time.time()}])
    r = call(hub, "post", "/shelf-watches", tok, json=watch)
    assert r.status_code == 201, r.text
    assert call(hub, "post", "/shelf-watches", tok, json=watch).status_code == 200  # the same watch: unchanged
    problem(call(hub, "post", "/shelf-watches", tok, json={**watch, "store_code": "bkk"}), 404)  # siam's store
    problem(call(hub, "post", "/shelf-watches", token(hub, brand="siam"), json={**watch, "store_code": "bkk"}), 404)
    listed = call(hub, "get", "/shelf-watches", tok).json()["watches"]
    assert [(w["gtin"], w["store_code"], w["on_shelf"]) for w in listed] == [(gtin, "hcm", False)]
    assert call(hub, "get", "/shelf-watches", token(hub, brand="siam")).json()["watches"] == []
    kiosk = enroll(hub)
    view = checkin(hub, kiosk)
    assert not any(i["now_on_shelf"] for i in view["wishlist"])
    # the stock feed puts it on the shelf: the next tap at that store shows it first
    brands.apply_stock(hub.store, "lotus", [{"store_code": "hcm", "id": gtin, "quantity": 4, "as_of": time.time()}])
    view = checkin(hub, kiosk)
    assert view["wishlist"][0]["gtin"] == gtin and view["wishlist"][0]["now_on_shelf"] is True
    assert [i["gtin"] for i in view["wishlist"] if i["now_on_shelf"]] == [gtin]
    other = checkin(hub, enroll(hub, "DEMO-LOTUS-HN"))  # another store of the brand: not watched there
    assert not any(i["now_on_shelf"] for i in other["wishlist"])
    # the shopper's page: the watch, on the shelf, in the shopper's language
    mine = shelf.watches_of(hub.store, LAN, "vi")
    assert len(mine) == 1 and mine[0]["on_shelf"] and mine[0]["store_name"] == "Saigon Centre"
    assert mine[0]["title"] == PRODUCTS[gtin]["texts"]["vi"]["title"] and mine[0]["via"] == "web"
    choices = {c["gtin"]: c for c in shelf.watch_choices(hub.store, LAN, "en")}
    assert {s["store_code"]: s["watched"] for s in choices[gtin]["stores"]} == {"hcm": True, "hn": False}
    assert shelf.add_watch(hub.store, LAN, gtin, "lotus-hn", via="page") is True
    with pytest.raises(Exception) as refused:
        shelf.add_watch(hub.store, LAN, gtin, "siam-bkk")
    assert refused.value.status == 422
    for bad in (("not a gtin", "lotus-hcm"), (gtin, "nowhere"), (gtin, None)):
        with pytest.raises(Exception) as refused:
            shelf.add_watch(hub.store, LAN, *bad)
        assert refused.value.status in (404, 422)
    assert shelf.remove_watch(hub.store, LAN, gtin, "lotus-hn") is True
    assert call(hub, "delete", "/shelf-watches", tok, params=watch).status_code == 204
    problem(call(hub, "delete", "/shelf-watches", tok, params=watch), 404)
    assert shelf.watches_of(hub.store, LAN) == []
    assert not any(i["now_on_shelf"] for i in checkin(hub, kiosk)["wishlist"])


def test_the_channel_calls_are_in_the_openapi_document(hub):
    paths = requests.get(hub.url + "/openapi.json", timeout=5).json()["paths"]
    for path in ("/v1/channel/wishlist", "/v1/channel/wishlist/items", "/v1/channel/wishlist/remove",
                 "/v1/channel/wishlist/merge", "/v1/channel/scans", "/v1/channel/shelf-watches"):
        assert path in paths
