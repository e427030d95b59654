"""Secure credentials through the real service and the hub on loopback: NTAG 424 DNA SUN
messages (counter must rise) and phones answering a fresh challenge (Ed25519)."""
import ndef
import requests

from drivers import hce
from drivers.base import HCE, TYPE4, HceAnswer, TagRead
from drivers.hce_phone import Phone
from kiosk.app import build_service
from hub import credentials, demo, sun
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk.results import ErrorResult, ShopperResult
from tests.taps import product

META = bytes.fromhex("5f3a1c0e9b7d24681357acebdf024680")
FILE = bytes.fromhex("00112233445566778899aabbccddeeff")
UID = bytes.fromhex("04c0ffee424d01")


def sun_read(counter: int) -> TagRead:
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, counter, META, FILE)
    return TagRead("test", TYPE4, uid=UID, ndef=b"".join(ndef.message_encoder([ndef.UriRecord(url)])))


def with_card(hub):
    hub.store.set_setting("sun_meta_read_key", META.hex())
    credentials.register_sun_card(hub.store, "shopper-01", UID, FILE)


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


def test_tampered_sun_mac_is_refused(hub, enrolled):
    with_card(hub)
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, 9, META, FILE)
    bad = url[:-2] + ("00" if not url.endswith("00") else "11")
    device = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO"}, timeout=5).json()
    r = requests.post(hub.url + "/v1/checkins", headers={"Authorization": f"Bearer {device['device_token']}"},
                      json={"credential": {"kind": "sun", "url": bad}}, timeout=5)
    assert r.status_code == 403 and r.json()["type"].endswith("credential-refused")


def test_offline_sun_tap_shows_cached_view_unverified_and_hub_verifies_on_sync(hub_db, hub, enrolled):
    with_card(hub)
    service = build_service(enrolled, with_reader=False)
    try:
        assert service.handle_tag(sun_read(10)).view.source == "hub"  # cached under the card's UID
        service.end_session()
        service.sync_now()
        port = hub.port
        hub.stop()
        offline = service.handle_tag(sun_read(11))
        assert offline.view.source == "cache" and offline.view.display_name == "Lan"
        assert offline.view.verified is False  # shown from cache; the hub has not checked this tap
        good_add = service.handle_tag(product(20)[1]).undo_token
        service.end_session()
        replayed = service.handle_tag(sun_read(11))  # a copy of the same message, also offline
        copied_add = service.handle_tag(product(21)[1]).undo_token
        service.end_session()
        with EmbeddedHub(HubSettings(db_path=hub_db), port=port) as back:
            sent = service.sync_now()
            adds = {t for (t,) in back.store.all("SELECT tag FROM wishlist_adds WHERE shopper_id='shopper-01'")}
        # the hub verified the first tap (and its add), and refused the copy and what it did
        assert sent["created"] == 2 and sent["rejected"] == 2
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
