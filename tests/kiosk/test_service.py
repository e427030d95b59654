"""End to end: simulated reader -> KioskService -> hub on loopback -> result, and the
offline path: the same tap with the hub stopped answers from the cache, and the queued
event reaches the hub exactly once when it is back."""
import queue
import time

import pytest

from drivers.base import TYPE2, TagRead
from drivers.simulated import SimulatedReader
from kiosk.app import build_service
from hub import demo
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk.results import ErrorResult, ProductResult, SessionEnded, ShopperResult, TapSeen
from tests.taps import card, product, uri_read


class Results:
    def __init__(self, service):
        self.q = queue.Queue()
        service.subscribe(self.q.put)

    def next(self, kind, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(item, kind) and not getattr(item, "provisional", False):
                return item
        raise AssertionError(f"no {kind.__name__} within {timeout}s")


@pytest.fixture
def running(enrolled):
    reader = SimulatedReader()
    service = build_service(enrolled, reader=reader)
    results = Results(service)
    service.start()
    yield service, reader, results
    service.stop()


def hub_wishlist(hub, shopper_id):
    return {g for (g,) in hub.store.all(
        "SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag=a.tag AND r.shopper_id=a.shopper_id "
        "WHERE a.shopper_id=? AND r.tag IS NULL", (shopper_id,))}


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_tap_shows_cross_brand_wishlist_and_product_tap_saves(hub, running):
    service, reader, results = running
    reader.present(card(0))
    assert isinstance(results.next(TapSeen), TapSeen)
    shown = results.next(ShopperResult)
    assert shown.view.display_name == "Emma" and shown.view.source == "hub"
    assert len({i.brand for i in shown.view.wishlist}) >= 2
    assert wait_for(lambda: service.cache.get_meta("inventory_cursor"))  # the first catalogue pull landed
    gtin, read = product(3)
    reader.present(read)
    saved = results.next(ProductResult)
    assert saved.saved and saved.view.wishlist[0].gtin == gtin and saved.view.wishlist[0].pending
    item = saved.view.wishlist[0]
    expected = demo.products()[3]
    assert (item.title, item.price, item.currency, item.brand) == (  # known from the pulled catalogue
        expected["title"], expected["price"], expected["currency"], expected["brand_id"])
    assert item.brand_name == "Lotus & Linen"
    assert wait_for(lambda: gtin in hub_wishlist(hub, "shopper-00"))
    assert wait_for(lambda: service.outbox.depth() == 0)
    # undo takes back exactly that add
    undone = service.undo(saved.undo_token)
    assert gtin not in {i.gtin for i in undone.view.wishlist}
    assert wait_for(lambda: gtin not in hub_wishlist(hub, "shopper-00"))
    service.end_session()
    assert service.session_view is None
    assert isinstance(results.next(SessionEnded), SessionEnded)


def test_unknown_card_and_garbage_give_clear_errors(hub, running):
    service, reader, results = running
    reader.present(uri_read(f"https://{demo.ID_HOST}/s/{'z' * 24}"))
    assert results.next(ErrorResult).code == "unknown_card"
    reader.present(TagRead("simulated", TYPE2, uid=b"\x04" * 7, ndef=b"\xd1\x01\x01\xff"))
    error = results.next(ErrorResult)
    assert error.code == "unreadable" and "NDEF" in error.detail


def test_offline_tap_uses_cache_and_event_is_delivered_once_hub_returns(hub_db, enrolled, hub):
    reader = SimulatedReader()
    service = build_service(enrolled, reader=reader)
    results = Results(service)
    service.start()
    try:
        reader.present(card(0))
        online = results.next(ShopperResult)
        assert online.view.source == "hub"
        service.end_session()
        assert wait_for(lambda: service.outbox.depth() == 0)
        port = hub.port
        hub.stop()

        reader.present(card(0))
        offline = results.next(ShopperResult)
        assert offline.view.source == "cache" and offline.view.display_name == "Emma"
        assert [i.gtin for i in offline.view.wishlist] == [i.gtin for i in online.view.wishlist]
        gtin, read = product(7)
        reader.present(read)
        assert results.next(ProductResult).saved
        assert service.outbox.depth() == 3  # the check-in, the product's scan and the add wait in the outbox
        assert wait_for(lambda: not service.status().online)
        queued = set(service.outbox.all_event_ids())

        with EmbeddedHub(HubSettings(db_path=hub_db), port=port) as back:
            service.sync.wake()
            assert wait_for(lambda: service.outbox.depth() == 0, timeout=20)
            received = {e for (e,) in back.store.all("SELECT event_id FROM events")}
            assert queued <= received
            assert gtin in hub_wishlist(back, "shopper-00")
            assert wait_for(lambda: service.status().online)
            service.sync_now()  # a second drain sends nothing again
            assert back.store.one("SELECT count(*) FROM events WHERE event_id IN (%s)" % ",".join("?" * len(queued)),
                                  tuple(queued))[0] == len(queued)
    finally:
        service.stop()


def test_unknown_card_offline_starts_guest_session_attached_later(hub_db, enrolled, hub):
    """An unknown-to-this-kiosk card while offline: scans queue with the credential hash,
    and the hub attaches them to the shopper on sync."""
    reader = SimulatedReader()
    service = build_service(enrolled, reader=reader)
    results = Results(service)
    service.start()
    try:
        port = hub.port
        hub.stop()
        reader.present(card(5))
        guest = results.next(ShopperResult)
        assert guest.guest and guest.view.display_name == ""
        gtin, read = product(11)
        reader.present(read)
        assert results.next(ProductResult).saved
        with EmbeddedHub(HubSettings(db_path=hub_db), port=port) as back:
            service.sync.wake()
            assert wait_for(lambda: service.outbox.depth() == 0, timeout=20)
            assert gtin in hub_wishlist(back, "shopper-05")
        # the raw token never reached the kiosk's disk
        token = demo.token_for(5).encode()
        for path in enrolled.data_dir.glob("*.db*"):
            assert token not in path.read_bytes(), path.name
    finally:
        service.stop()


def test_kiosk_started_just_after_power_on_pulls_its_catalogue_at_once(enrolled, hub, monkeypatch):
    """time.monotonic() counts from boot: a kiosk whose app starts 20 s after power-on must not
    wait out a whole pull interval (5 min) before it knows the shelf and the offers."""
    real = time.monotonic
    shift = real() - 20.0
    monkeypatch.setattr(time, "monotonic", lambda: real() - shift)  # the clock reads ~20 s
    service = build_service(enrolled, reader=SimulatedReader())
    service.start()
    try:
        assert wait_for(lambda: service.cache.get_meta("inventory_cursor") and service.cache.get_meta("offers_cursor"))
        assert service.sync.status().online
    finally:
        service.stop()
