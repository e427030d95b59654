"""The shopper page's service (hub/shopper.py) on real SQLite and PostgreSQL, checked by what a
shopper or a kiosk would notice through the real hub HTTP API: a claimed card, guest visits
counted, who saw the data, a sharing refusal honoured at that brand's next tap and in its
revocation feed, an export that validates and holds no secret, a CSV no spreadsheet runs, an
erase after which the card is unknown everywhere while the counts per store stay true."""
import csv
import io
import json
import os
import secrets
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import api
from hub import brands, demo, revocations, shopper
from hub.store import HubFailure

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "shopper-export.schema.json").read_text())
MAI_UID = "04a1b2c3d4e501"


@pytest.fixture
def hub_(card_key, hub):
    return hub


def enroll(hub, code="DEMO"):
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": "t"}, timeout=5)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def checkin(hub, auth, token, checkin_id=None):
    body = {"credential": {"kind": "token", "token": token}}
    if checkin_id:
        body["checkin_id"] = checkin_id
    return requests.post(hub.url + "/v1/checkins", headers=auth, json=body, timeout=5)


def batch(hub, auth, events):
    r = requests.post(hub.url + "/v1/events:batch", headers=auth, json={"events": events}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def revoked_since(hub, auth, cursor):
    r = requests.get(hub.url + "/v1/revocations", headers=auth, params={"since": cursor}, timeout=5)
    return r.json()


def head(hub, auth):
    return revoked_since(hub, auth, "")["cursor"]


def a_passkey():
    return {"id": secrets.token_urlsafe(16), "public_key": os.urandom(77), "sign_count": 0, "transports": ["internal"]}


def new_token():
    return secrets.token_urlsafe(24)


def live_tags(hub, shopper_id):
    return hub.store.all("SELECT a.tag, a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag "
                         "AND r.shopper_id = a.shopper_id WHERE a.shopper_id=? AND r.tag IS NULL", (shopper_id,))


def test_a_card_is_new_unclaimed_claimed_or_revoked_and_two_racing_claims_leave_one_winner(hub_):
    store = hub_.store
    assert shopper.card_state(store, "not a token!") == (shopper.REVOKED, None)
    assert shopper.card_state(store, new_token()) == (shopper.CLAIM_NEW, None)
    assert shopper.card_state(store, demo.token_for(0)) == (shopper.UNCLAIMED, "shopper-00")
    assert shopper.claim(store, demo.token_for(0), a_passkey(), "en") == "shopper-00"
    assert shopper.card_state(store, demo.token_for(0)) == (shopper.CLAIMED, "shopper-00")
    with pytest.raises(HubFailure) as again:
        shopper.claim(store, demo.token_for(0), a_passkey(), "en")
    assert again.value.status == 409
    assert len(shopper.passkeys(store, "shopper-00")) == 1  # the refused claim added nothing
    # a new card: a profile of its own, then known at the kiosk (an empty wishlist)
    token = new_token()
    outcomes = []

    def race():
        try:
            outcomes.append(shopper.claim(store, token, a_passkey(), "vi"))
        except HubFailure as exc:
            outcomes.append(exc.status)
    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1 and sorted(o for o in outcomes if not isinstance(o, str)) == [409, 409, 409]
    assert shopper.card_state(store, token) == (shopper.CLAIMED, winners[0])
    assert winners[0].startswith("shopper-") and len(shopper.passkeys(store, winners[0])) == 1
    r = checkin(hub_, enroll(hub_), token)
    assert r.status_code == 200 and r.json()["shopper"]["id"] == winners[0] and r.json()["shopper"]["locale"] == "vi"
    card = shopper.profile(store, winners[0], "vi")["cards"]
    assert [(c["kind"], c["id"][:5], len(c["id"]), c["revoked"]) for c in card] == [("token", "card-", 17, False)]
    # a malformed passkey changes nothing
    with pytest.raises(HubFailure) as bad:
        shopper.claim(store, new_token(), {**a_passkey(), "public_key": "not bytes"}, "en")
    assert bad.value.status == 422


def test_guest_visits_of_an_unknown_card_are_counted_once_when_it_is_claimed(hub_):
    store = hub_.store
    token = new_token()
    lotus, sever = enroll(hub_), enroll(hub_, "DEMO-SEVER-MSK")
    visit = str(uuid.uuid4())
    for _ in range(2):  # a retried call is one visit
        r = checkin(hub_, lotus, token, visit)
        assert r.status_code == 404 and r.json()["type"] == api.P_UNKNOWN_CREDENTIAL
    offline = str(uuid.uuid4())  # a check-in queued offline at another brand's kiosk
    results = batch(hub_, sever, [{"event_id": offline, "type": "checkin", "credential": {"kind": "token", "token": token}}])
    assert results[0]["status"] == api.REJECTED
    assert store.one("SELECT COUNT(*) FROM guest_visits")[0] == 2
    # a known card's unknown-looking tap (revoked) is no guest
    shopper.revoke_card(store, "shopper-05", shopper.cards(store, "shopper-05")[0]["id"])
    assert checkin(hub_, lotus, demo.token_for(5), str(uuid.uuid4())).status_code == 404
    assert store.one("SELECT COUNT(*) FROM guest_visits")[0] == 2
    shopper_id = shopper.claim(store, token, a_passkey(), "ru")
    visits = dict(store.all("SELECT brand_id, count FROM visits WHERE shopper_id=?", (shopper_id,)))
    assert visits == {"lotus": 1, "sever": 1}
    assert store.one("SELECT COUNT(*) FROM guest_visits")[0] == 0
    assert {b["brand_id"] for b in shopper.profile(store, shopper_id, "ru")["brands"]} == {"lotus", "sever"}
    r = checkin(hub_, lotus, token)
    assert r.status_code == 200 and r.json()["visit"] == "returning"


def test_who_saw_my_data_lists_a_real_check_in_a_staff_search_hit_and_a_lookup(hub_):
    store = hub_.store
    auth = enroll(hub_)
    assert checkin(hub_, auth, demo.token_for(0), str(uuid.uuid4())).status_code == 200  # Emma
    r = requests.post(hub_.url + "/v1/checkins", headers=auth, json={"credential": {"kind": "uid", "uid": MAI_UID}},
                      timeout=5)
    staff_id = r.json()["shopper"]["id"]
    assert requests.post(hub_.url + "/v1/staff/sessions", headers=auth, json={"staff_id": staff_id, "pin": demo.DEMO_PIN},
                         timeout=10).status_code == 200
    found = requests.get(hub_.url + "/v1/staff/shoppers", headers=auth, params={"q": "emma"}, timeout=5).json()
    assert [s["id"] for s in found["shoppers"]] == ["shopper-00"]
    assert requests.get(hub_.url + "/v1/staff/shoppers/shopper-00", headers=auth, timeout=5).status_code == 200
    log = shopper.access_log(store, "shopper-00")
    assert [(e["what"], e["actor"], e["why"]) for e in log] == [
        ("staff_lookup", "staff", shopper.WHY_LOOKUP), ("staff_search", "staff", shopper.WHY_SEARCH),
        ("checkin", "kiosk", shopper.WHY_CHECKIN)]
    assert {(e["brand_name"], e["store_name"]) for e in log} == {("Lotus & Linen", "Saigon Centre")}
    assert log[0]["at"] >= log[1]["at"] >= log[2]["at"] > time.time() - 60
    assert shopper.access_log(store, "shopper-01") == []  # nobody else's
    # kept ACCESS_RETENTION_DAYS: an older row is swept when the log is read
    store.conn.execute(*shopper.record_access_statement("shopper-00", "checkin", None, "kiosk", "old"))
    store.conn.execute("UPDATE access_log SET at=? WHERE why='old'", (time.time() - 366 * 86400,))
    assert len(shopper.access_log(store, "shopper-00")) == 3
    assert store.one("SELECT COUNT(*) FROM access_log WHERE why='old'")[0] == 0


def test_a_refusal_on_the_page_hides_other_brands_at_that_brands_next_tap_and_reaches_its_feed(hub_):
    store = hub_.store
    lotus, sever = enroll(hub_), enroll(hub_, "DEMO-SEVER-MSK")
    token = demo.token_for(1)  # Lan: shares with every brand, items at several
    before = checkin(hub_, lotus, token).json()
    assert {i["brand"] for i in before["wishlist"]} - {"lotus"}
    cursors = head(hub_, lotus), head(hub_, sever)
    shopper.set_sharing(store, "shopper-01", "lotus", False)
    feed = revoked_since(hub_, lotus, cursors[0])["revocations"]
    assert {"shopper_id": "shopper-01", "kind": revocations.CONSENT} in feed
    assert revoked_since(hub_, sever, cursors[1])["revocations"] == []  # another brand's kiosks keep theirs
    after = checkin(hub_, lotus, token).json()
    assert {i["brand"] for i in after["wishlist"]} == {"lotus"}
    assert after["consent"] == {"sharing": api.REFUSED, "hidden_items": len(before["wishlist"]) - len(after["wishlist"])}
    assert {i["brand"] for i in checkin(hub_, sever, token).json()["wishlist"]} - {"sever"}  # still shared there
    row = next(b for b in shopper.profile(store, "shopper-01", "vi")["brands"] if b["brand_id"] == "lotus")
    assert row["sees_others"] == api.REFUSED and row["via"] == "page" and row["changed_at"] > time.time() - 60
    assert row["other_brands"] and "Lotus & Linen" not in row["other_brands"]
    shopper.set_sharing(store, "shopper-01", "lotus", True)
    assert len(checkin(hub_, lotus, token).json()["wishlist"]) == len(before["wishlist"])
    # a brand the shopper never met, an unknown one, a bad channel: refused, nothing changed
    brands.create_brand(store, "newbrand", "New Brand", "en")
    consents = store.all("SELECT * FROM consents WHERE shopper_id='shopper-01' ORDER BY to_brand, from_brand")
    for brand_id, via, status in (("newbrand", "page", 404), ("nobrand", "page", 404), ("lotus", "fax", 422),
                                  ("lotus\x00", "page", 404)):
        with pytest.raises(HubFailure) as refused:
            shopper.set_sharing(store, "shopper-01", brand_id, False, via=via)
        assert refused.value.status == status
    with pytest.raises(HubFailure):
        shopper.set_sharing(store, "shopper-404", "lotus", False)
    assert store.all("SELECT * FROM consents WHERE shopper_id='shopper-01' ORDER BY to_brand, from_brand") == consents


def test_staff_search_choice_on_the_page_decides_whether_staff_find_the_shopper(hub_):
    store = hub_.store
    auth = enroll(hub_)
    r = requests.post(hub_.url + "/v1/checkins", headers=auth, json={"credential": {"kind": "uid", "uid": MAI_UID}},
                      timeout=5)
    requests.post(hub_.url + "/v1/staff/sessions", headers=auth,
                  json={"staff_id": r.json()["shopper"]["id"], "pin": demo.DEMO_PIN}, timeout=10)

    def found():
        return [s["id"] for s in requests.get(hub_.url + "/v1/staff/shoppers", headers=auth, params={"q": "emma"},
                                              timeout=5).json()["shoppers"]]
    assert found() == ["shopper-00"]
    shopper.set_staff_search(store, "shopper-00", "lotus", False)
    assert found() == []
    row = next(b for b in shopper.profile(store, "shopper-00", "en")["brands"] if b["brand_id"] == "lotus")
    assert row["staff_search"] is False and row["staff_search_via"] == "page"
    shopper.set_staff_search(store, "shopper-00", "lotus", True, via="app")
    assert found() == ["shopper-00"]
    choices = {c["brand_id"]: c for c in shopper.export(store, "shopper-00")["staff_search"]}
    assert choices["lotus"]["allowed"] is True and choices["lotus"]["via"] == "app"


def test_removing_items_on_the_page_takes_away_only_the_shoppers_own_adds(hub_):
    store = hub_.store
    mine, theirs = live_tags(hub_, "shopper-02"), live_tags(hub_, "shopper-03")
    removed = shopper.remove_items(store, "shopper-02", [mine[0][0], theirs[0][0], "not-a-tag", mine[0][0]])
    assert removed == 1
    assert len(live_tags(hub_, "shopper-02")) == len(mine) - 1 and live_tags(hub_, "shopper-03") == theirs
    assert shopper.remove_items(store, "shopper-02", [mine[0][0]]) == 0  # already gone
    gtins = {i["gtin"] for i in checkin(hub_, enroll(hub_), demo.token_for(2)).json()["wishlist"]}
    assert mine[0][1] not in gtins or sum(1 for _, g in mine if g == mine[0][1]) > 1
    for bad in ("a tag", [1, 2], ["x" * 65]):
        with pytest.raises(HubFailure) as refused:
            shopper.remove_items(store, "shopper-02", bad)
        assert refused.value.status == 422
    assert len(live_tags(hub_, "shopper-02")) == len(mine) - 1


def test_the_profile_says_where_and_how_each_item_was_added_with_stock_nearby_and_recent_scans(hub_):
    store = hub_.store
    auth = enroll(hub_)
    token = demo.token_for(1)
    visit = str(uuid.uuid4())
    view = checkin(hub_, auth, token, visit).json()
    product = demo.products()[5]  # a Lotus product
    scan, add = str(uuid.uuid4()), str(uuid.uuid4())
    results = batch(hub_, auth, [
        {"event_id": scan, "type": "scan", "gtin": product["gtin"], "checkin": visit, "shopper_id": "shopper-01"},
        {"event_id": add, "type": "wishlist_add", "gtin": product["gtin"], "checkin": visit, "session": view["session"]},
        {"event_id": str(uuid.uuid4()), "type": "consent_grant", "checkin": visit, "session": view["session"]}])
    assert [r["status"] for r in results] == [api.CREATED] * 3
    page = shopper.profile(store, "shopper-01", "vi")
    assert page["shopper"]["id"] == "shopper-01" and page["shopper"]["display_name"] == "Lan"
    item = next(i for i in page["wishlist"] if add in i["tags"])
    assert item["title"] == product["texts"]["vi"]["title"] and item["brand_name"] == "Lotus & Linen"
    others = [i for i in page["wishlist"] if add not in i["tags"]]
    assert all(i["channel"] == "kiosk" and i["added_brand_name"] and i["added_store_name"] for i in others)
    assert all(len(i["nearby"]) <= 3 and all(n["quantity"] > 0 for n in i["nearby"]) for i in page["wishlist"])
    assert any(i["nearby"] for i in page["wishlist"])
    assert page["scans"][0]["gtin"] == product["gtin"] and page["scans"][0]["store_name"] == "Saigon Centre"
    assert page["scans"][0]["title"] == product["texts"]["vi"]["title"]
    added = store.one("SELECT channel, brand_id, store_id FROM wishlist_adds WHERE tag=?", (add,))
    assert tuple(added) == ("kiosk", "lotus", "lotus-hcm")
    consent = store.one("SELECT via, store_id, changed_at FROM consents WHERE shopper_id='shopper-01' AND to_brand='lotus' "
                        "AND from_brand='*'")
    assert consent[:2] == ("kiosk", "lotus-hcm") and consent[2] > time.time() - 60
    lotus = next(b for b in page["brands"] if b["brand_id"] == "lotus")
    assert lotus["via"] == "kiosk" and lotus["sees_others"] == api.GRANTED
    assert {p["id"] for p in page["passkeys"]} == set() and page["phones"] == []
    # scans older than SCAN_DAYS are neither shown nor kept with the shopper's id
    store.conn.execute("UPDATE events SET received_at=? WHERE event_id=?", (time.time() - 91 * 86400, scan))
    assert shopper.profile(store, "shopper-01", "vi")["scans"] == []
    kept = store.one("SELECT shopper_id, body FROM events WHERE event_id=?", (scan,))
    assert kept[0] is None and "shopper-01" not in kept[1]
    with pytest.raises(HubFailure) as nobody:
        shopper.profile(store, "staff-mai", "en")  # a staff account has no shopper page
    assert nobody.value.status == 404


def test_the_export_validates_against_its_schema_and_holds_no_secret(hub_):
    store = hub_.store
    token = demo.token_for(3)
    key = a_passkey()
    shopper_id = shopper.claim(store, token, key, "th")
    phone = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shopper.add_phone(store, shopper_id, "phone-one", phone)
    auth = enroll(hub_)
    assert checkin(hub_, auth, token, str(uuid.uuid4())).status_code == 200
    shopper.set_sharing(store, shopper_id, "lotus", False)
    exported = shopper.export(store, shopper_id)
    jsonschema.Draft202012Validator(SCHEMA).validate(exported)
    text = json.dumps(exported)
    secrets_held = [token, store.credential_hash(f"token:{token}"), phone.hex(), key["public_key"].hex(),
                    store.get_setting("pepper")]
    secrets_held += [r[0] for r in store.all("SELECT hash FROM credentials WHERE shopper_id=?", (shopper_id,))]
    assert not [s for s in secrets_held if s in text]
    assert exported["profile"]["id"] == shopper_id and exported["phones"][0]["id"] == "phone-one"
    assert exported["access_log"][0]["what"] == "checkin" and exported["passkeys"][0]["id"] == key["id"]
    assert {s["to_brand"]: s["via"] for s in exported["sharing"] if s["from_brand"] == "*"}["lotus"] == "page"
    assert exported["wishlist"] and all(a["channel"] == "kiosk" for a in exported["wishlist"])
    # a tampered file is caught by the schema (it is not decoration)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**exported, "cards": [{**exported["cards"][0], "hash": "x"}]}, SCHEMA)


def test_the_wishlist_csv_neutralises_cells_a_spreadsheet_would_run(hub_):
    store = hub_.store
    gtins = [g for _, g in live_tags(hub_, "shopper-04")]
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR"]
    for gtin, title in zip(gtins, evil):
        store.conn.execute("UPDATE products SET title=?, texts='{}' WHERE gtin=?", (title, gtin))
    text = shopper.wishlist_csv(store, "shopper-04", "en")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(shopper.CSV_HEADER)
    assert len(rows) - 1 == len(set(gtins))
    titles = {r[1] for r in rows[1:]}
    assert {"'" + t for t in evil[:len(set(gtins))]} <= titles
    assert not [cell for row in rows[1:] for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert all(r[3].endswith("Z") and r[4] == "kiosk" for r in rows[1:])


def test_cards_and_phones_are_named_revoked_and_bad_input_changes_nothing(hub_):
    store = hub_.store
    auth = enroll(hub_)
    card = shopper.profile(store, "shopper-04", "en")["cards"][0]
    other = shopper.profile(store, "shopper-05", "en")["cards"][0]
    shopper.rename_card(store, "shopper-04", card["id"], "  Wallet card  ")
    for name in ("", "   ", "x" * 41, "bad\x07name", "evil\u202ename", "new\nline", None):
        with pytest.raises(HubFailure) as refused:
            shopper.rename_card(store, "shopper-04", card["id"], name)
        assert refused.value.status == 422
    for card_id in (other["id"], "card-000000000000", "", "sun-000000000000"):
        with pytest.raises(HubFailure) as refused:
            shopper.rename_card(store, "shopper-04", card_id, "Mine now")
        assert refused.value.status == 404
        with pytest.raises(HubFailure) as refused:
            shopper.revoke_card(store, "shopper-04", card_id)
        assert refused.value.status == 404
    assert shopper.profile(store, "shopper-04", "en")["cards"][0]["name"] == "Wallet card"
    assert shopper.profile(store, "shopper-05", "en")["cards"][0]["name"] == "" and checkin(
        hub_, auth, demo.token_for(5)).status_code == 200  # the other shopper's card untouched
    cursor = head(hub_, auth)
    shopper.revoke_card(store, "shopper-04", card["id"])
    r = checkin(hub_, auth, demo.token_for(4))
    assert r.status_code == 404 and r.json()["type"] == api.P_UNKNOWN_CREDENTIAL
    assert {"shopper_id": "shopper-04", "kind": revocations.CREDENTIAL} in revoked_since(hub_, auth, cursor)["revocations"]
    assert shopper.card_state(store, demo.token_for(4)) == (shopper.REVOKED, None)
    listed = shopper.profile(store, "shopper-04", "en")["cards"][0]
    assert listed["revoked"] is True and listed["revoked_at"] > time.time() - 60
    # phones: added, named, revoked; another shopper's phone is not this one's
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shopper.add_phone(store, "shopper-04", "phone-4", key)
    shopper.add_phone(store, "shopper-05", "phone-5", Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw))
    with pytest.raises(HubFailure) as taken:
        shopper.add_phone(store, "shopper-04", "phone-5", key)
    assert taken.value.status == 409
    shopper.rename_phone(store, "shopper-04", "phone-4", "Work phone")
    for who, phone_id, name, status in (("shopper-04", "phone-5", "Mine", 404), ("shopper-04", "phone-4", "x" * 41, 422)):
        with pytest.raises(HubFailure) as refused:
            shopper.rename_phone(store, who, phone_id, name)
        assert refused.value.status == status
    with pytest.raises(HubFailure) as refused:
        shopper.revoke_phone(store, "shopper-04", "phone-5")
    assert refused.value.status == 404
    shopper.revoke_phone(store, "shopper-04", "phone-4")
    phones = {p["id"]: p for p in shopper.profile(store, "shopper-04", "en")["phones"]}
    assert phones["phone-4"]["name"] == "Work phone" and phones["phone-4"]["revoked"] is True
    assert phones["phone-4"]["created_at"] and phones["phone-4"]["revoked_at"]
    assert shopper.profile(store, "shopper-05", "en")["phones"][0]["revoked"] is False


def test_passkeys_sign_in_are_counted_and_the_last_one_stays(hub_):
    store = hub_.store
    first, second = a_passkey(), a_passkey()
    shopper_id = shopper.claim(store, demo.token_for(6), first, "ru")
    handle = shopper.webauthn_user(store, shopper_id)
    assert isinstance(handle, bytes) and len(handle) == 32 and shopper.webauthn_user(store, shopper_id) == handle
    shopper.add_passkey(store, shopper_id, second)
    with pytest.raises(HubFailure) as twice:
        shopper.add_passkey(store, shopper_id, second)
    assert twice.value.status == 409
    assert [p["id"] for p in shopper.passkeys(store, shopper_id)] == [first["id"], second["id"]]
    found = shopper.passkey_for_sign_in(store, second["id"])
    assert found == {"id": second["id"], "shopper_id": shopper_id, "public_key": second["public_key"], "sign_count": 0}
    shopper.passkey_used(store, second["id"], 7)
    assert shopper.passkey_for_sign_in(store, second["id"])["sign_count"] == 7
    assert shopper.profile(store, shopper_id, "ru")["passkeys"][1]["last_used_at"] > time.time() - 60
    assert shopper.passkey_for_sign_in(store, "unknown") is None
    other = shopper.claim(store, demo.token_for(7), a_passkey(), "th")
    with pytest.raises(HubFailure) as not_theirs:
        shopper.remove_passkey(store, other, first["id"])
    assert not_theirs.value.status == 404
    shopper.remove_passkey(store, shopper_id, first["id"])
    with pytest.raises(HubFailure) as last:
        shopper.remove_passkey(store, shopper_id, second["id"])
    assert last.value.status == 409 and len(shopper.passkeys(store, shopper_id)) == 1
    shopper.erase(store, shopper_id)
    assert shopper.passkey_for_sign_in(store, second["id"]) is None


def events_per_store(store):
    return store.all("SELECT d.store_id, e.type, COUNT(*) FROM events e JOIN devices d ON d.id = e.device_id "
                     "GROUP BY d.store_id, e.type ORDER BY d.store_id, e.type")


def test_after_erase_the_card_is_unknown_every_kiosk_is_told_and_counts_per_store_stay_true(hub_):
    store = hub_.store
    lotus, sever = enroll(hub_), enroll(hub_, "DEMO-SEVER-MSK")
    token = demo.token_for(1)
    shopper_id = shopper.claim(store, token, a_passkey(), "vi")
    phone = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shopper.add_phone(store, shopper_id, "phone-lan", phone)
    visit = str(uuid.uuid4())
    view = checkin(hub_, lotus, token, visit).json()
    batch(hub_, lotus, [{"event_id": str(uuid.uuid4()), "type": "scan", "gtin": view["wishlist"][0]["gtin"],
                         "checkin": visit, "shopper_id": shopper_id}])
    store.conn.execute("INSERT INTO web_sessions(id_hash, kind, subject, csrf, created_at, expires_at) "
                       "VALUES ('h', 'shopper', ?, 'c', 0, ?)", (shopper_id, time.time() + 600))
    counts, cursors = events_per_store(store), (head(hub_, lotus), head(hub_, sever))
    assert store.one("SELECT COUNT(*) FROM events WHERE shopper_id=?", (shopper_id,))[0] >= 2
    shopper.erase(store, shopper_id)
    r = checkin(hub_, lotus, token, str(uuid.uuid4()))
    assert r.status_code == 404 and r.json()["type"] == api.P_UNKNOWN_CREDENTIAL
    assert store.one("SELECT COUNT(*) FROM guest_visits")[0] == 0  # an erased card is no guest either
    for auth, cursor in zip((lotus, sever), cursors):
        assert {"shopper_id": shopper_id, "kind": revocations.ERASED} in revoked_since(hub_, auth, cursor)["revocations"]
    assert events_per_store(store) == counts
    assert store.one("SELECT COUNT(*) FROM events WHERE shopper_id=? OR body LIKE ?",
                     (shopper_id, f"%{shopper_id}%"))[0] == 0
    for table, column in (("wishlist_adds", "shopper_id"), ("wishlist_removes", "shopper_id"), ("consents", "shopper_id"),
                          ("staff_search", "shopper_id"), ("visits", "shopper_id"), ("sessions", "shopper_id"),
                          ("access_log", "shopper_id"), ("passkeys", "shopper_id"), ("staff_directory", "shopper_id"),
                          ("web_sessions", "subject")):
        assert store.one(f"SELECT COUNT(*) FROM {table} WHERE {column}=?", (shopper_id,))[0] == 0, table
    assert tuple(store.one("SELECT erased, display_name, pin_hash FROM shoppers WHERE id=?", (shopper_id,))) == (1, "", "")
    assert store.one("SELECT COUNT(*) FROM phone_keys WHERE credential_id='phone-lan' AND revoked=1 AND name=''")[0] == 1
    assert store.all("SELECT revoked, name FROM credentials WHERE shopper_id=?", (shopper_id,)) == [(1, "")]
    assert shopper.card_state(store, token) == (shopper.REVOKED, None)
    for call in (lambda: shopper.profile(store, shopper_id, "vi"), lambda: shopper.export(store, shopper_id),
                 lambda: shopper.erase(store, shopper_id), lambda: shopper.claim(store, token, a_passkey(), "vi")):
        with pytest.raises(HubFailure) as gone:
            call()
        assert gone.value.status in (404, 409)
    # the staff search no longer finds her (she allowed it before)
    assert not store.one("SELECT 1 FROM staff_directory WHERE full_name LIKE '%Lan%'")
