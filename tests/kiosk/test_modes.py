"""The service owns the kiosk's mode and decides what a tap means in it (issue 13, part 1):
through the real KioskService, its outbox and the real hub on loopback. What a person would
notice: a shopper's card tapped while staff type a PIN, or in technician mode, leaves no visit
and no scan anywhere; the reader test only shows what it read; staff checking a shelf is not
a shopper's scan; a PIN typed after its person walked away unlocks nothing."""
import threading
import time

from drivers.base import UID_ONLY, TagRead
from drivers.simulated import SimulatedReader
from kiosk import api
from kiosk.app import build_service, open_service
from kiosk.config import load_config
from kiosk.results import (BadgeResult, ErrorResult, Mode, ProductResult, ReaderTestRead, ShopperResult,
                           StaffLookupResult, TapIgnored, TapSeen)
from kiosk.staff import hash_pin
from tests.taps import card, product

STAFF_UID, TECH_UID = "04a1b2c3d4e501", "04a1b2c3d4e502"
STAFF_PIN = "246813"


def badge(uid: str = STAFF_UID) -> TagRead:
    return TagRead("simulated", UID_ONLY, uid=bytes.fromhex(uid))


def everything_recorded(service, hub) -> tuple:
    """What a tap can leave behind: this kiosk's queued and parked events, and the hub's visits."""
    visits = hub.store.one("SELECT count(*) FROM visits")[0]
    return service.outbox.depth(), service.outbox.parked_count(), visits, tuple(
        e["event_id"] for e in service.outbox.pending_for("shopper_id", "shopper-00"))


def test_a_card_tapped_during_pin_entry_leaves_the_outbox_and_the_hub_unchanged(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.sync_now()
        assert isinstance(service.handle_tag(badge()), BadgeResult) and service.mode == Mode.PIN
        before = everything_recorded(service, hub)
        gtin, tag = product(3)
        for read in (card(0), card(1), tag, badge(TECH_UID)):
            result = service.handle_tag(read)
            assert result == TapIgnored("pin"), result
        assert everything_recorded(service, hub) == before
        assert service.session_view is None and service.mode == Mode.PIN
    finally:
        service.stop()


def test_a_card_through_the_reader_thread_during_pin_entry_records_nothing(hub, enrolled):
    """The same through the reader and the tap worker, as a shopper's tap really arrives."""
    reader = SimulatedReader()
    service = build_service(enrolled, reader=reader)
    seen, done = [], threading.Event()
    service.subscribe(lambda r: (seen.append(r), isinstance(r, TapIgnored) and done.set()))
    service.start()
    try:
        assert service.ask_pin()  # the technician's button on the attract screen
        before = everything_recorded(service, hub)
        reader.present(card(0))
        assert done.wait(10)
        assert any(isinstance(r, TapSeen) for r in seen)  # the beep: the tap was felt
        assert not [r for r in seen if isinstance(r, (ShopperResult, ProductResult, ErrorResult))]
        assert everything_recorded(service, hub) == before
    finally:
        service.stop()


def test_technician_mode_records_no_tap_and_the_reader_test_only_shows_it(hub, enrolled):
    config = enrolled.replace(technician_pin_hash=hash_pin("135790", salt=b"test-salt-16byte"))
    reader = SimulatedReader()
    service = build_service(config, reader=reader)
    shown = []
    service.start()
    try:
        assert service.ask_pin() and service.desk.unlock("135790").ok and service.mode == Mode.TECHNICIAN
        before = everything_recorded(service, hub)
        assert service.handle_tag(card(0)) == TapIgnored("technician")
        assert service.handle_tag(product(2)[1]) == TapIgnored("technician")
        assert service.desk.start_reader_test(shown.append) and service.mode == Mode.READER_TEST
        reader.present(card(0))
        deadline = time.monotonic() + 5
        while not shown and time.monotonic() < deadline:
            time.sleep(0.02)
        assert shown and isinstance(shown[0], ReaderTestRead) and shown[0].meaning == "card"
        assert service.handle_tag(card(0)) == TapIgnored("reader_test")
        time.sleep(0.3)  # anything the tap worker would have done is done
        assert everything_recorded(service, hub) == before
        service.desk.stop_reader_test()
        assert service.mode == Mode.TECHNICIAN
    finally:
        service.stop()


def test_the_reader_test_is_only_reachable_from_technician_mode(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        assert not service.desk.start_reader_test(lambda r: None) and service.mode == Mode.ATTRACT
        assert isinstance(service.handle_tag(card(0)), ShopperResult) and service.mode == Mode.SHOPPER
        assert not service.desk.start_reader_test(lambda r: None) and service.mode == Mode.SHOPPER
    finally:
        service.stop()


def test_staff_mode_a_product_shows_stock_and_a_shopper_tap_is_a_recorded_lookup(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.sync_now()
        service.handle_tag(badge())
        assert service.desk.unlock(STAFF_PIN).ok and service.mode == Mode.STAFF
        depth = service.outbox.depth()
        gtin, tag = product(3)
        shelf = service.handle_tag(tag)
        assert isinstance(shelf, ProductResult) and not shelf.saved and shelf.gtin == gtin
        assert service.outbox.depth() == depth  # staff checking a shelf is not a shopper's scan
        looked = service.handle_tag(card(0))
        assert isinstance(looked, StaffLookupResult) and looked.view.display_name == "Emma"
        assert service.session_view is None and service.mode == Mode.STAFF  # no visit stays open under staff
        assert service.handle_tag(tag).saved is False  # so nothing is saved to Emma's list by a stock check
        service.sync_now()
        rows = hub.store.all("SELECT body FROM events WHERE type='staff_lookup'")
        assert len(rows) == 1 and '"via": "tap"' in rows[0][0]
    finally:
        service.stop()


def test_attract_and_shopper_modes_a_visit_opens_scans_and_ends(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        gtin, tag = product(3)
        depth = service.outbox.depth()
        assert isinstance(service.handle_tag(tag), ProductResult) and service.mode == Mode.ATTRACT
        assert service.outbox.depth() == depth + 1  # an anonymous scan
        assert isinstance(service.handle_tag(card(0)), ShopperResult) and service.mode == Mode.SHOPPER
        assert service.handle_tag(tag).saved
        service.end_session("done")
        assert service.mode == Mode.ATTRACT and service.session_view is None
    finally:
        service.stop()


def test_a_badge_ends_the_visit_and_a_pin_typed_after_its_person_left_unlocks_nothing(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(card(0))
        assert service.mode == Mode.SHOPPER
        assert isinstance(service.handle_tag(badge()), BadgeResult)
        assert service.mode == Mode.PIN and service.session_view is None  # Emma's list is not under the PIN pad
        wrong = service.desk.unlock("000000")
        assert not wrong.ok and wrong.code == "wrong_pin" and service.mode == Mode.PIN
        service.reset()  # the PIN screen timed out: the person walked away
        late = service.desk.unlock(STAFF_PIN)
        assert not late.ok and service.mode == Mode.ATTRACT and service.desk.staff is None
    finally:
        service.stop()


def test_the_mode_changing_while_the_hub_is_asked_opens_no_visit(hub, enrolled):
    """A shopper taps, and before the hub answers a technician opens the PIN screen: the answer
    shows nothing and leaves no session to leak onto the next screen."""
    service = build_service(enrolled, with_reader=False)
    real, asked = service.hub.checkin, threading.Event()

    def slow_checkin(*args, **kwargs):
        asked.set()
        time.sleep(0.3)
        return real(*args, **kwargs)
    service.hub.checkin = slow_checkin
    try:
        results = []
        worker = threading.Thread(target=lambda: results.append(service.handle_tag(card(0))))
        worker.start()
        assert asked.wait(5) and service.ask_pin()
        worker.join(10)
        assert results == [TapIgnored("pin")] and service.session_view is None and service.mode == Mode.PIN
    finally:
        service.stop()


def test_a_kiosk_not_enrolled_has_a_service_that_enrolls_itself(hub, tmp_path):
    """No static calls for the state before enrollment: the service has it. Taps say so, a
    fresh kiosk opens on Set up, and one verb enrolls it and makes it whole."""
    config = load_config(tmp_path / "none.toml", environ={}, overrides={
        "data_dir": tmp_path / "kiosk", "hub_timeout_s": 1.0, "reader": "simulated"})
    service = open_service(config)
    try:
        assert not service.enrolled
        assert service.handle_tag(card(0)) == ErrorResult("not_enrolled", "this kiosk is not enrolled with a hub")
        assert service.open_technician() and service.mode == Mode.TECHNICIAN
        assert service.desk.check_health() is None
        assert service.reenroll(hub.url, "WRONG-CODE").code == "refused" and not service.enrolled
        done = service.reenroll(hub.url, "DEMO")
        assert done.ok and service.enrolled and service.reader is not None
        service.reset()
        view = service.handle_tag(card(0)).view
        assert view.display_name == "Emma" and service.status().hub_url == hub.url
    finally:
        service.stop()


def test_a_kiosk_with_a_technician_pin_asks_for_it_before_set_up(tmp_path):
    config = load_config(tmp_path / "none.toml", environ={}, overrides={
        "data_dir": tmp_path / "kiosk", "technician_pin_hash": hash_pin("135790", salt=b"test-salt-16byte")})
    service = open_service(config)
    try:
        assert not service.open_technician() and service.mode == Mode.ATTRACT
        assert service.ask_pin() and not service.desk.unlock("000000").ok
        assert service.desk.unlock("135790").ok and service.mode == Mode.TECHNICIAN
        assert service.desk.change_technician_pin("135790", "802468", "802468").ok  # enrolled or not
        assert service.config.technician_pin_hash != config.technician_pin_hash
    finally:
        service.stop()


def test_kiosk_events_from_modes_are_only_the_contract_types(hub, enrolled):
    """Belt and braces for the quiet modes: every event a mode walk leaves is one a shopper's
    own taps made (check-in, scan, add), never one made while a PIN pad was up."""
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(card(0))
        service.handle_tag(product(4)[1])
        service.handle_tag(badge())
        service.handle_tag(card(1))
        service.handle_tag(product(5)[1])
        kinds = [e["type"] for e in service.outbox.pending_for("shopper_id", "shopper-00")]
        kinds += [e["type"] for e in service.outbox.pending_for("shopper_id", "shopper-01")]
        assert set(kinds) <= {api.SCAN, api.WISHLIST_ADD} and len(kinds) == 2
    finally:
        service.stop()
