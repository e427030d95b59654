"""Secure credentials through the real service and the hub on loopback: NTAG 424 DNA SUN
messages (counter must rise) and phones answering a fresh challenge (Ed25519); card keys sealed
at rest, revocable cards, one answer for unknown, forged and revoked cards; no hash credential."""
import logging
import shutil
import sqlite3

import ndef
import pytest
import requests

from drivers import hce
from drivers.base import HCE, TYPE4, HceAnswer, TagRead
from drivers.hce_phone import Phone
from kiosk.app import build_service
from hub import admin, credentials, demo, sun
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk.results import ErrorResult, ShopperResult
from tests.taps import product
from tests.hub.conftest import CARD_KEY

META = bytes.fromhex("5f3a1c0e9b7d24681357acebdf024680")
FILE = bytes.fromhex("00112233445566778899aabbccddeeff")
UID = bytes.fromhex("04c0ffee424d01")


pytestmark = pytest.mark.usefixtures("card_key")  # tests/hub/conftest.py


def sun_read(counter: int) -> TagRead:
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, counter, META, FILE)
    return TagRead("test", TYPE4, uid=UID, ndef=b"".join(ndef.message_encoder([ndef.UriRecord(url)])))


def with_card(hub):
    credentials.set_meta_read_key(hub.store, META)
    credentials.register_sun_card(hub.store, "shopper-01", UID, FILE)


def enroll(hub) -> tuple[str, dict]:
    d = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO"}, timeout=5).json()
    return d["device_id"], {"Authorization": f"Bearer {d['device_token']}"}


def checkin(hub, auth: dict, credential: dict) -> requests.Response:
    return requests.post(hub.url + "/v1/checkins", headers=auth, json={"credential": credential}, timeout=5)


def card(uid: bytes, counter: int, file_key: bytes = FILE, layout=sun.ENCRYPTED) -> dict:
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", uid, counter, META, file_key, layout=layout)
    return {"kind": "sun", "url": url}


def answer(r: requests.Response) -> tuple:
    body = r.json()
    return r.status_code, body["type"], body["title"], body["detail"]


def test_sun_card_checks_in_and_a_replayed_or_older_counter_is_refused(hub, enrolled):
    with_card(hub)
    service = build_service(enrolled, with_reader=False)
    try:
        first = service.handle_tag(sun_read(5))
        assert isinstance(first, ShopperResult) and first.view.display_name == "Lan"
        service.end_session()
        replay = service.handle_tag(sun_read(5))
        assert isinstance(replay, ErrorResult) and replay.code == "refused"
        older = service.handle_tag(sun_read(4))
        assert isinstance(older, ErrorResult) and older.code == "refused"
        newer = service.handle_tag(sun_read(6))
        assert isinstance(newer, ShopperResult) and newer.view.display_name == "Lan"
    finally:
        service.stop()
    row = hub.store.one("SELECT last_counter FROM sun_cards WHERE uid=?", (UID.hex(),))
    assert row[0] == 6


def test_tampered_sun_mac_is_refused(hub):
    with_card(hub)
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, 9, META, FILE)
    bad = url[:-2] + ("00" if not url.endswith("00") else "11")
    device = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO"}, timeout=5).json()
    r = requests.post(hub.url + "/v1/checkins", headers={"Authorization": f"Bearer {device['device_token']}"},
                      json={"credential": {"kind": "sun", "url": bad}}, timeout=5)
    assert r.status_code == 403 and r.json()["type"].endswith("credential-refused")


def test_offline_sun_tap_is_a_guest_until_the_hub_verifies_it_on_sync(hub_db, hub, enrolled):
    """Offline, a SUN message cannot be verified (a copied card looks the same): the tap opens a
    guest session, never the cached profile; what the guest saves is attached when the hub
    verifies the message, and refused with it when it does not."""
    with_card(hub)
    service = build_service(enrolled, with_reader=False)
    try:
        assert service.handle_tag(sun_read(10)).view.source == "hub"  # cached under the card's UID
        service.end_session()
        service.sync_now()
        port = hub.port
        hub.stop()
        offline = service.handle_tag(sun_read(11))
        assert offline.guest and offline.view.display_name == "" and not offline.view.wishlist
        assert offline.view.verified is False  # nothing of Lan's is shown for an unverified tap
        good_add = service.handle_tag(product(20)[1]).undo_token
        service.end_session()
        replayed = service.handle_tag(sun_read(11))  # a copy of the same message, also offline
        copied_add = service.handle_tag(product(21)[1]).undo_token
        service.end_session()
        with EmbeddedHub(HubSettings(db_path=hub_db), port=port) as back:
            sent = service.sync_now()
            adds = {t for (t,) in back.store.all("SELECT tag FROM wishlist_adds WHERE shopper_id='shopper-01'")}
        # the hub verified the first tap (and its scan and add), and refused the copy and what it did
        assert sent["created"] == 3 and sent["rejected"] == 3
        assert good_add in adds and copied_add not in adds
        parked = {p["event_id"]: p["reason"] for p in service.outbox.parked()}
        assert "already used" in parked[replayed.event_id]
        assert "check-in was not accepted" in parked[copied_add]
    finally:
        service.stop()


def test_phone_answers_fresh_challenge_and_replays_are_refused(hub, enrolled):
    phone = Phone.generate("lan-phone-1")
    r = requests.post(hub.url + "/v1/shoppers/shopper-01/phone-keys", timeout=5,
                      headers={"Authorization": "Bearer admin-test"},
                      json={"credential_id": phone.credential_id, "public_key": phone.public_key_bytes().hex()})
    assert r.status_code == 204
    service = build_service(enrolled, with_reader=False)
    try:
        answer = hce.exchange(phone.process_apdu, kiosk_id=service.identity.device_id)
        shown = service.handle_tag(TagRead("test", HCE, hce=answer))
        assert isinstance(shown, ShopperResult) and shown.view.display_name == "Lan"
        service.end_session()
        again = service.handle_tag(TagRead("test", HCE, hce=answer))  # the recorded answer, resent
        assert isinstance(again, ErrorResult) and again.code == "refused"
        fresh_nonce = HceAnswer(answer.credential_id, b"\x07" * 16, answer.kiosk_id, answer.signature)
        moved = service.handle_tag(TagRead("test", HCE, hce=fresh_nonce))  # old answer, new challenge
        assert isinstance(moved, ErrorResult) and moved.code == "refused"
        elsewhere = hce.exchange(phone.process_apdu, kiosk_id="dev-someone-else")
        stolen = service.handle_tag(TagRead("test", HCE, hce=elsewhere))  # answered to another kiosk
        assert isinstance(stolen, ErrorResult) and stolen.code == "refused"
    finally:
        service.stop()
    unauthorised = requests.post(hub.url + "/v1/shoppers/shopper-01/phone-keys", timeout=5,
                                 json={"credential_id": "x", "public_key": "00" * 32})
    assert unauthorised.status_code == 401


def test_a_keyed_hash_is_not_a_credential(hub):
    _, auth = enroll(hub)
    digest = hub.store.one("SELECT hash FROM credentials WHERE kind='token' LIMIT 1")[0]
    r = checkin(hub, auth, {"kind": "hash", "hash": digest})
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-request")
    assert "unknown credential kind" in r.json()["detail"]
    token = demo.token_for(0)  # the raw token still works
    assert checkin(hub, auth, {"kind": "token", "token": token}).status_code == 200


def test_unknown_forged_and_revoked_cards_get_one_answer_and_a_revoked_card_is_out(hub):
    with_card(hub)
    desk = admin.add_client(hub.store, "card-desk", ["cards"])
    other = bytes.fromhex("04aabbccddee01")
    lost = bytes.fromhex("04aabbccddee02")
    r = requests.post(f"{hub.url}/v1/shoppers/shopper-02/sun-cards", headers={"Authorization": f"Bearer {desk}"},
                      json={"uid": lost.hex(), "file_key": FILE.hex()}, timeout=5)
    assert r.status_code == 204
    _, auth = enroll(hub)
    assert checkin(hub, auth, card(lost, 1)).json()["shopper"]["id"] == "shopper-02"
    gone = requests.delete(f"{hub.url}/v1/sun-cards/{lost.hex().upper()}", headers={"Authorization": f"Bearer {desk}"},
                           timeout=5)
    assert gone.status_code == 204
    assert hub.store.all("SELECT shopper_id, kind FROM revocations") == [("shopper-02", "credential_revoked")]

    forged = card(UID, 7)
    forged["url"] = forged["url"][:-1] + ("0" if forged["url"][-1] != "0" else "1")
    answers = {
        "unknown": answer(checkin(hub, auth, card(other, 3))),
        "unknown, plain mirroring": answer(checkin(hub, auth, card(other, 3, layout=sun.PLAIN))),
        "forged MAC": answer(checkin(hub, auth, forged)),
        "wrong file key": answer(checkin(hub, auth, card(UID, 8, file_key=bytes(16)))),
        "revoked": answer(checkin(hub, auth, card(lost, 2))),
    }
    assert len(set(answers.values())) == 1, answers
    assert answers["revoked"][0] == 403
    assert hub.store.one("SELECT last_counter FROM sun_cards WHERE uid=?", (lost.hex(),))[0] == 1
    # a genuine card still checks in; a replay of its genuine message may be told apart
    assert checkin(hub, auth, card(UID, 9)).status_code == 200
    replayed = checkin(hub, auth, card(UID, 9))
    assert replayed.status_code == 403 and "already used" in replayed.json()["detail"]

    # registering never moves a card nor un-revokes one; the same registration again is a no-op
    def register(shopper: str, uid: bytes, key: bytes = FILE) -> int:
        return requests.post(f"{hub.url}/v1/shoppers/{shopper}/sun-cards", timeout=5,
                             headers={"Authorization": f"Bearer {desk}"},
                             json={"uid": uid.hex(), "file_key": key.hex()}).status_code
    assert register("shopper-02", lost) == 409  # un-revoke attempt
    assert register("shopper-02", UID) == 409  # another shopper's card
    assert register("shopper-01", UID, bytes(16)) == 409  # another key
    assert register("shopper-01", UID) == 204  # the same again
    assert register("shopper-nobody", other) == 404
    assert hub.store.one("SELECT shopper_id, revoked FROM sun_cards WHERE uid=?", (lost.hex(),)) == ("shopper-02", 1)
    assert hub.store.one("SELECT shopper_id FROM sun_cards WHERE uid=?", (UID.hex(),))[0] == "shopper-01"
    assert checkin(hub, auth, card(lost, 3)).status_code == 403


def test_card_keys_are_sealed_at_rest(hub):
    with_card(hub)
    stored = hub.store.one("SELECT file_key FROM sun_cards WHERE uid=?", (UID.hex(),))[0]
    meta = hub.store.get_setting("sun_meta_read_key")
    for value, clear in ((stored, FILE), (meta, META)):
        assert value.startswith("v1:") and clear.hex() not in value.lower()
    _, auth = enroll(hub)
    assert checkin(hub, auth, card(UID, 1)).status_code == 200


def _copy_db(src, dst) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def test_the_database_alone_cannot_verify_a_card(demo_db, tmp_path, caplog):
    first = tmp_path / "first" / "hub.db"
    first.parent.mkdir()
    shutil.copy(demo_db, first)
    with EmbeddedHub(HubSettings(db_path=first)) as h:
        with_card(h)
        _, auth = enroll(h)
        assert checkin(h, auth, card(UID, 1)).status_code == 200
        unknown = answer(checkin(h, auth, card(bytes.fromhex("04aabbccddee01"), 1)))
    key_file = first.parent / "hub.db.cardkey"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    raw = b"".join(p.read_bytes() for p in first.parent.glob("hub.db*") if p != key_file)
    for clear in (FILE, META):
        assert clear.hex().encode() not in raw.lower() and clear not in raw
    with sqlite3.connect(first) as db:
        stored = db.execute("SELECT file_key FROM sun_cards WHERE uid=?", (UID.hex(),)).fetchone()[0]
    assert stored.startswith("v1:") and FILE.hex() not in stored

    stolen = tmp_path / "stolen" / "hub.db"  # the database without its card key (a backup, a copy)
    stolen.parent.mkdir()
    _copy_db(first, stolen)
    caplog.set_level(logging.ERROR, logger="hub")
    with EmbeddedHub(HubSettings(db_path=stolen)) as h:
        _, auth = enroll(h)
        r = checkin(h, auth, card(UID, 2))
        assert answer(r) == unknown  # refused as any card it cannot verify: no 500
        assert h.store.one("SELECT last_counter FROM sun_cards WHERE uid=?", (UID.hex(),))[0] == 1
    assert not (stolen.parent / "hub.db.cardkey").exists()  # no new key made for sealed rows
    assert any("secure cards will be refused" in m and "cardkey is missing" in m for m in caplog.messages)
    assert all(CARD_KEY not in m and key_file.read_text().strip() not in m for m in caplog.messages)

    shutil.copy(key_file, stolen.parent / "hub.db.cardkey")  # with its key, the copy verifies
    with EmbeddedHub(HubSettings(db_path=stolen)) as h:
        _, auth = enroll(h)
        assert checkin(h, auth, card(UID, 2)).status_code == 200


def test_a_wrong_card_key_refuses_cards_with_a_log_line(hub, caplog, monkeypatch, tmp_path, db_kind):
    with_card(hub)
    url = hub.store.url if db_kind == "postgresql" else hub.store.path
    hub.stop()
    wrong = tmp_path / "wrong.key"
    wrong.write_text("11" * 32)
    monkeypatch.setenv("KIOSK_HUB_CARD_KEY_FILE", str(wrong))
    caplog.set_level(logging.ERROR, logger="hub")
    db = url.replace("postgresql+psycopg://", "postgresql://") if db_kind == "postgresql" else url
    with EmbeddedHub(HubSettings(db_path=db)) as h:
        _, auth = enroll(h)
        r = checkin(h, auth, card(UID, 1))
        assert r.status_code == 403 and r.json()["detail"] == credentials.CARD_NOT_VERIFIED
        assert h.store.one("SELECT last_counter FROM sun_cards WHERE uid=?", (UID.hex(),))[0] == -1
    assert any("is not the card key" in m for m in caplog.messages)


def test_card_keys_an_older_hub_kept_in_clear_are_sealed_at_start(demo_db, tmp_path):
    path = tmp_path / "hub.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as db:  # what the hub before issue 9 stored
        db.execute("INSERT INTO sun_cards(uid, shopper_id, file_key) VALUES (?,?,?)", (UID.hex(), "shopper-01", FILE.hex()))
        db.execute("INSERT INTO settings(key, value) VALUES ('sun_meta_read_key', ?)", (META.hex(),))
    with EmbeddedHub(HubSettings(db_path=path)) as h:
        sealed = h.store.one("SELECT file_key FROM sun_cards")[0], h.store.get_setting("sun_meta_read_key")
        assert all(v.startswith("v1:") for v in sealed)
        _, auth = enroll(h)
        assert checkin(h, auth, card(UID, 1)).status_code == 200
    with EmbeddedHub(HubSettings(db_path=path)) as h:  # idempotent: sealed once, left alone after
        assert (h.store.one("SELECT file_key FROM sun_cards")[0], h.store.get_setting("sun_meta_read_key")) == sealed
        _, auth = enroll(h)
        assert checkin(h, auth, card(UID, 2)).status_code == 200
