"""Issue 9 at the kiosk, through the real KioskService and the real hub on loopback: what a
shopper or a technician would notice when a proof cannot be verified, a consent is revoked
elsewhere, the hub refuses the kiosk's token, a hub is plain http:// or the data files are
readable by others."""
import json
import os
import queue
import stat
import time

import ndef
import pytest

from drivers import hce
from drivers.base import HCE, TYPE4, HceAnswer, TagRead
from drivers.hce_phone import Phone
from hub import credentials, demo, sun
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk import api, doctor
from kiosk import errors as E
from kiosk.app import build_service, ensure_enrolled
from kiosk.config import load_config
from kiosk.hubclient import HubClient, transport_problem
from kiosk.results import ErrorResult, ProductResult, SessionEnded, ShopperResult
from kiosk.desk import enroll_device
from tests.taps import card, product

META = bytes.fromhex("5f3a1c0e9b7d24681357acebdf024680")
FILE = bytes.fromhex("00112233445566778899aabbccddeeff")
UID = bytes.fromhex("04c0ffee424d02")


def sun_read(counter: int) -> TagRead:
    url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, counter, META, FILE)
    return TagRead("test", TYPE4, uid=UID, ndef=b"".join(ndef.message_encoder([ndef.UriRecord(url)])))


class Shown:
    """Everything the service published to the screen."""

    def __init__(self, service):
        self.q = queue.Queue()
        service.subscribe(self.q.put)

    def shoppers(self) -> list[ShopperResult]:
        out = []
        while not self.q.empty():
            item = self.q.get_nowait()
            if isinstance(item, ShopperResult):
                out.append(item)
        return out


def hub_wishlist(store, shopper_id):
    return {g for (g,) in store.all(
        "SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag=a.tag AND r.shopper_id=a.shopper_id "
        "WHERE a.shopper_id=? AND r.tag IS NULL", (shopper_id,))}


def other_gtins(store, shopper_id, n=2):
    have = hub_wishlist(store, shopper_id)
    return [i for i in range(40, 150) if demo.products()[i]["gtin"] not in have][:n]


def restart(hub_db, port):
    return EmbeddedHub(HubSettings(db_path=hub_db), port=port)


# -- item 7: offline, an unverifiable proof is a guest ------------------------------------

def test_offline_cloned_sun_card_is_a_guest_and_what_it_did_stays_parked(hub_db, hub, enrolled):
    """A clone of Lan's secure card (same UID, a SUN message copied from an earlier tap) shown
    while the hub is unreachable: today the kiosk shows Lan's cached profile. Now: a guest, and
    her profile never flashes up; on sync the copy is refused and its events parked, while a
    genuine offline tap of her card (a fresh message) is attached to her."""
    credentials.set_meta_read_key(hub.store, META)
    credentials.register_sun_card(hub.store, "shopper-01", UID, FILE)
    cloned_item, real_item = other_gtins(hub.store, "shopper-01")
    service = build_service(enrolled, with_reader=False)
    shown = Shown(service)
    try:
        online = service.handle_tag(sun_read(10))
        assert online.view.display_name == "Lan" and online.view.source == "hub"  # cached now
        service.end_session()
        service.sync_now()
        port = hub.port
        hub.stop()
        shown.shoppers()

        clone = service.handle_tag(sun_read(10))  # the copied message, replayed offline
        assert isinstance(clone, ShopperResult) and clone.guest
        assert clone.view.display_name == "" and clone.view.wishlist == ()
        copied_add = service.handle_tag(product(cloned_item)[1])
        assert isinstance(copied_add, ProductResult) and copied_add.saved
        service.end_session()
        genuine = service.handle_tag(sun_read(11))  # Lan's own card, a fresh message: still unverifiable offline
        assert genuine.guest and genuine.view.display_name == ""
        real_add = service.handle_tag(product(real_item)[1])
        service.end_session()
        assert all(r.view.display_name == "" for r in shown.shoppers())  # her name never reached the screen

        with restart(hub_db, port) as back:
            service.sync_now()
            wishlist = hub_wishlist(back.store, "shopper-01")
        assert demo.products()[real_item]["gtin"] in wishlist  # attached to her once the hub verified it
        assert demo.products()[cloned_item]["gtin"] not in wishlist
        parked = {p["event_id"] for p in service.outbox.parked()}
        assert {clone.event_id, copied_add.undo_token} <= parked  # parked, never applied
        assert genuine.event_id not in parked and real_add.undo_token not in parked
    finally:
        service.stop()


def test_offline_bare_phone_credential_id_is_a_guest(hub_db, hub, enrolled):
    """A phone's credential id is no secret (it travels in clear): offline, an answer that
    names it but carries no valid signature must not open the cached profile."""
    phone = Phone.generate("lan-phone-9")
    credentials.register_phone(hub.store, "shopper-01", phone.credential_id, phone.public_key_bytes())
    service = build_service(enrolled, with_reader=False)
    shown = Shown(service)
    try:
        answer = hce.exchange(phone.process_apdu, kiosk_id=service.identity.device_id)
        online = service.handle_tag(TagRead("test", HCE, hce=answer))
        assert online.view.display_name == "Lan"  # cached under the phone's id
        service.end_session()
        service.sync_now()
        port = hub.port
        hub.stop()
        shown.shoppers()
        bare = HceAnswer(phone.credential_id, os.urandom(16), service.identity.device_id, bytes(64))
        guest = service.handle_tag(TagRead("test", HCE, hce=bare))
        assert isinstance(guest, ShopperResult) and guest.guest and guest.view.display_name == ""
        assert all(r.view.display_name == "" for r in shown.shoppers())
        service.end_session()
        with restart(hub_db, port):
            service.sync_now()
        assert guest.event_id in {p["event_id"] for p in service.outbox.parked()}
    finally:
        service.stop()


def test_a_card_token_still_shows_its_cached_profile_offline_and_its_events_land(hub_db, hub, enrolled):
    """The offline path of a plain card still works: the cached view (other brands' items
    shown, Emma shares them), and the queued check-in carries the card's credential, not a
    hash; the hub verifies it on sync and applies the visit's add."""
    service = build_service(enrolled, with_reader=False)
    try:
        online = service.handle_tag(card(0))
        assert len({i.brand for i in online.view.wishlist}) >= 2
        service.end_session()
        gtin_index = other_gtins(hub.store, "shopper-00", 1)[0]
        port = hub.port
        hub.stop()
        offline = service.handle_tag(card(0))
        assert offline.view.source == "cache" and offline.view.display_name == "Emma"
        assert len({i.brand for i in offline.view.wishlist}) >= 2
        add = service.handle_tag(product(gtin_index)[1])
        queued = {e["event_id"]: e for e in service.outbox.batch(10)}
        checkin = queued[offline.event_id]
        assert checkin["credential"] == {"kind": "token", "token": demo.token_for(0)}
        assert queued[add.undo_token]["checkin"] == offline.event_id
        assert "hash" not in json.dumps(list(queued.values()))
        with restart(hub_db, port) as back:
            sent = service.sync_now()
            assert sent["rejected"] == 0
            assert demo.products()[gtin_index]["gtin"] in hub_wishlist(back.store, "shopper-00")
    finally:
        service.stop()


# -- item 1: an online check-in is recorded by the hub, events point at it -----------------

def test_online_checkin_queues_nothing_and_its_events_carry_the_checkin(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        shown = service.handle_tag(card(0))
        assert shown.view.source == "hub" and shown.event_id
        assert service.outbox.depth() == 0  # the hub recorded the check-in itself
        receipt = hub.store.one("SELECT type, shopper_id FROM events WHERE event_id=?", (shown.event_id,))
        assert tuple(receipt) == ("checkin", "shopper-00")
        index = other_gtins(hub.store, "shopper-00", 1)[0]
        add = service.handle_tag(product(index)[1])
        scan, event = service.outbox.batch(10)  # the tap's scan, then the add: both carry the visit's proof
        assert event["event_id"] == add.undo_token and (scan["type"], event["type"]) == ("scan", "wishlist_add")
        for queued in (scan, event):
            assert queued["checkin"] == shown.event_id
            assert queued["session"] == shown.view.session and queued["shopper_id"] == "shopper-00"
        assert service.sync_now()["created"] == 2
        assert demo.products()[index]["gtin"] in hub_wishlist(hub.store, "shopper-00")
    finally:
        service.stop()


# -- item 6: revocation reaches every kiosk within one sync ---------------------------------

def test_a_consent_revoked_at_kiosk_a_is_forgotten_by_kiosk_b_within_one_sync(hub_db, hub, kiosk_config):
    """Waits on the hub's revocation feed (GET /v1/revocations). Emma shares her other-brand
    items with this brand; kiosk B has her cached and on screen. She says no at kiosk A. After
    one sync, B's screen no longer shows other brands' items and B has nothing cached of her:
    offline, her card is a guest at B."""
    config_b = kiosk_config.replace(data_dir=kiosk_config.data_dir.parent / "kiosk-b")
    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    ensure_enrolled(config_b, hub.url, "DEMO")
    a = build_service(kiosk_config, with_reader=False)
    b = build_service(config_b, with_reader=False)
    try:
        b.sync.pull()  # B is up to date with the feed before anything happens
        on_b = b.handle_tag(card(0))
        brand = b.identity.brand_id
        assert {i.brand for i in on_b.view.wishlist} - {brand}  # other brands' items on B's screen
        shown_b = Shown(b)

        a.handle_tag(card(0))
        assert isinstance(a.set_sharing(False), ShopperResult)
        a.sync_now()
        assert a.outbox.depth() == 0 and not a.outbox.parked()

        b.sync.pull()  # one sync
        assert {i.brand for i in b.session_view.wishlist} <= {brand}
        refreshed = shown_b.shoppers()
        assert refreshed and {i.brand for i in refreshed[-1].view.wishlist} <= {brand}
        assert "shopper-00" not in b.cache.shopper_ids()
        b.end_session()
        hub.stop()
        offline = b.handle_tag(card(0))
        assert offline.guest and offline.view.display_name == "" and offline.view.wishlist == ()
    finally:
        a.stop()
        b.stop()


def test_expired_cache_rows_are_purged_at_start(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(card(0))
        service.end_session()
        assert service.cache.shopper_ids() == {"shopper-00"}
        service.cache.conn.execute("UPDATE shoppers SET fetched_at = fetched_at - ?", (enrolled.cache_ttl_s + 60,))
    finally:
        service.stop()
    again = build_service(enrolled, with_reader=False)
    try:
        assert again.cache.shopper_ids() == set()
        assert not again.cache.conn.execute("SELECT count(*) FROM shoppers").fetchone()[0]
    finally:
        again.stop()


# -- item 6: a refused device token ---------------------------------------------------------

def _break_token(config):
    data = json.loads(config.device_file.read_text())
    data["enrollment"]["device_token"] = "refused-" + "x" * 40
    config.device_file.write_text(json.dumps(data))


def test_a_refused_device_token_shows_no_profile_and_tells_the_technician(hub_db, hub, enrolled, capsys):
    first = build_service(enrolled, with_reader=False)
    try:
        assert first.handle_tag(card(0)).view.display_name == "Emma"  # cached
    finally:
        first.stop()
    _break_token(enrolled)  # the hub no longer knows this kiosk's token (revoked, or a hub restored)

    service = build_service(enrolled, with_reader=False)
    shown = Shown(service)
    try:
        refused = service.handle_tag(card(0))
        assert isinstance(refused, ErrorResult) and refused.code == "device_refused"
        # the cached view shown while the hub was asked (it could not know yet) is taken down
        published = list(shown.q.queue)
        assert isinstance(published[-1], SessionEnded) and published[-1].reason == "device_refused"
        assert service.cache.shopper_ids() == set()  # cached views purged
        assert service.status().device_refused
        shown.q.queue.clear()
        again = service.handle_tag(card(0))
        assert again.code == "device_refused" and shown.shoppers() == []  # from now on, not even a glimpse
    finally:
        service.stop()
    checks = {c.name: c for c in doctor.run_checks("simulated", production=False, data_dir=enrolled.data_dir)}
    assert checks["device-token"].status == doctor.FAIL and "re-enroll" in checks["device-token"].fix

    from kiosk.cli import main
    assert main(["--data-dir", str(enrolled.data_dir), "status"]) == 0
    assert "DEVICE TOKEN REFUSED" in capsys.readouterr().out

    restarted = build_service(enrolled, with_reader=False)  # a restart remembers
    try:
        assert restarted.status().device_refused
        port = hub.port
        hub.stop()
        offline = restarted.handle_tag(card(0))  # offline: still no profile, no guest either
        assert isinstance(offline, ErrorResult) and offline.code == "device_refused"
    finally:
        restarted.stop()

    with restart(hub_db, port) as back:
        enrolled_again = enroll_device(enrolled, back.url, "DEMO")
        assert enrolled_again.ok
        fresh = build_service(enrolled, with_reader=False)
        try:
            assert fresh.status().device_refused == ""
            assert fresh.handle_tag(card(0)).view.display_name == "Emma"
        finally:
            fresh.stop()


def test_the_sync_worker_hearing_401_purges_and_remembers(hub, enrolled):
    first = build_service(enrolled, with_reader=False)
    try:
        first.handle_tag(card(0))
        first.end_session()
    finally:
        first.stop()
    _break_token(enrolled)
    service = build_service(enrolled, with_reader=False)
    try:
        service.outbox.append(api.SCAN, {"gtin": demo.products()[1]["gtin"]})
        service.sync_now()
        assert service.status().device_refused and service.cache.shopper_ids() == set()
        assert service.outbox.depth() == 1  # nothing lost: it waits for a re-enrolled kiosk or an export
    finally:
        service.stop()


# -- item 9: transport ---------------------------------------------------------------------

def test_a_plain_http_hub_off_loopback_is_refused_unless_explicitly_allowed(tmp_path):
    config = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path / "k"})
    with pytest.raises(E.ConfigError, match="https://"):
        ensure_enrolled(config, "http://192.0.2.10:8080", "DEMO")  # refused before any packet is sent
    assert not config.device_file.exists()
    result = enroll_device(config, "http://hub.example.com", "DEMO")
    assert not result.ok and result.code == "insecure_url"
    for fine in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.8.0.1",
                 "https://hub.example.com", "https://192.0.2.10"):
        assert transport_problem(fine) == "", fine
        HubClient(fine).close()
    allowed = load_config(tmp_path / "none.toml", environ={"KIOSK_ALLOW_INSECURE_HUB": "1"},
                          overrides={"data_dir": tmp_path / "k"})
    assert allowed.allow_insecure_hub and transport_problem("http://192.0.2.10", allowed.allow_insecure_hub) == ""
    HubClient("http://192.0.2.10", allow_insecure=True).close()


def test_the_enrolled_hub_is_pinned_to_its_token(hub, enrolled, tmp_path):
    elsewhere = "https://hub.attacker.example"
    for config in (enrolled.replace(hub_url=elsewhere),
                   load_config(tmp_path / "none.toml", environ={"KIOSK_HUB_URL": elsewhere},
                               overrides={"data_dir": enrolled.data_dir})):
        # another hub named in the file or the environment: the token still goes only to the
        # hub that issued it (the enrolled hub wins; README, Configuration)
        service = build_service(config, with_reader=False)
        try:
            assert service.hub.base_url == hub.url
        finally:
            service.stop()
    same = build_service(enrolled.replace(hub_url=hub.url + "/"), with_reader=False)  # the enrolled one: fine
    try:
        assert same.hub.base_url == hub.url and same.handle_tag(card(0)).view.display_name == "Emma"
    finally:
        same.stop()


# -- item 2: a hash is not a key; private files -----------------------------------------------

def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_data_files_are_private_and_doctor_reports_a_bad_mode(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(card(0))
        service.desk.update_settings(language="vi")
        service.sync_now()
        data = enrolled.data_dir
        assert _mode(data) == 0o700
        files = [data / n for n in ("device.json", "outbox.db", "cache.db", "settings.json")]
        files += [p for p in data.glob("*.db-*")]
        assert any(p.name.endswith("-wal") for p in files)
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        service.stop()
    check = doctor.data_files_check(enrolled.data_dir)
    assert check.status == doctor.OK
    os.chmod(enrolled.cache_path, 0o644)  # e.g. copied in by hand
    checks = doctor.run_checks("simulated", production=False, data_dir=enrolled.data_dir)
    bad = {c.name: c for c in checks}["data-files"]
    assert bad.status == doctor.FAIL and "cache.db is 0644" in bad.summary
    assert f"chmod 600 {enrolled.cache_path}" in bad.fix and doctor.exit_code(checks) >= 1
    build_service(enrolled, with_reader=False).stop()  # the kiosk tightens it again at start
    assert _mode(enrolled.cache_path) == 0o600


def test_an_old_device_file_gets_a_key_of_its_own_and_forgets_views_cached_under_the_old_one(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(card(0))
        service.end_session()
        assert service.cache.shopper_ids() == {"shopper-00"}
        own_key = service.cache_key
    finally:
        service.stop()
    # as a kiosk enrolled before issue 9 left it: the hub's shared key, no key of its own
    data = json.loads(enrolled.device_file.read_text())
    del data["cache_key"]
    data["enrollment"]["credential_key"] = "ab" * 32
    enrolled.device_file.write_text(json.dumps(data))

    again = build_service(enrolled, with_reader=False)
    try:
        assert again.cache.shopper_ids() == set()  # rows keyed under the old key are gone
        stored = json.loads(enrolled.device_file.read_text())
        assert len(bytes.fromhex(stored["cache_key"])) == 32 and bytes.fromhex(stored["cache_key"]) != own_key
        assert "credential_key" not in json.dumps(stored)
        assert _mode(enrolled.device_file) == 0o600
    finally:
        again.stop()


def test_two_kiosks_never_share_a_cache_key(hub, kiosk_config):
    other = kiosk_config.replace(data_dir=kiosk_config.data_dir.parent / "other")
    keys = []
    for config in (kiosk_config, other):
        ensure_enrolled(config, hub.url, "DEMO")
        keys.append(json.loads(config.device_file.read_text())["cache_key"])
    assert keys[0] != keys[1]


def test_results_of_a_refused_token_never_wait_on_the_ui(hub, enrolled):
    """`device_refused` is answered at once (no retry loop on the tap path)."""
    _break_token(enrolled)
    service = build_service(enrolled, with_reader=False)
    try:
        t = time.monotonic()
        assert service.handle_tag(card(1)).code == "device_refused"
        assert time.monotonic() - t < 2.0
    finally:
        service.stop()
