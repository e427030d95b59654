"""Every product tap is recorded (issue 13, item 4): a `scan` event for each product tag read,
with the visit's proof in a session and anonymous outside one, whether or not the item was
already on the wishlist, each its own event; the wishlist add still happens once. Through the
real KioskService, outbox and sync, to the real hub on loopback, where the shopper's page
lists the scans."""
import json
from collections import Counter

from hub import demo, shopper
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk import api
from kiosk.app import build_service
from kiosk.results import ProductResult, ShopperResult
from tests.taps import card, product


def hub_events(store, device_id, kind):
    """(event_id, shopper_id, body) of this device's events of `kind`, as the hub keeps them."""
    return [(e, s, json.loads(b)) for e, s, b in store.all(
        "SELECT event_id, shopper_id, body FROM events WHERE device_id=? AND type=? ORDER BY received_at, event_id",
        (device_id, kind))]


def adds_of(store, shopper_id, gtin):
    return [t for (t,) in store.all("SELECT tag FROM wishlist_adds WHERE shopper_id=? AND gtin=?", (shopper_id, gtin))]


def new_gtin(view, start=40):
    """A product (index, gtin) not on the shopper's wishlist yet."""
    have = {i.gtin for i in view.wishlist}
    return next((n, g) for n, g in ((n, demo.products()[n]["gtin"]) for n in range(start, 150)) if g not in have)


def test_a_product_tapped_twice_in_a_visit_is_two_attributed_scans_and_one_add(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        shown = service.handle_tag(card(0))
        assert isinstance(shown, ShopperResult) and shown.view.source == "hub"
        n, gtin = new_gtin(shown.view)
        first = service.handle_tag(product(n)[1])
        second = service.handle_tag(product(n)[1])
        assert isinstance(first, ProductResult) and first.saved and first.undo_token
        assert isinstance(second, ProductResult) and second.already_saved and not second.undo_token
        saved = shown.view.wishlist[0].gtin  # on the wishlist before this visit: today a tap left no trace
        kept = service.handle_tag(product(next(i for i, p in enumerate(demo.products()) if p["gtin"] == saved))[1])
        assert kept.already_saved

        queued = service.outbox.batch(20)
        scans = [e for e in queued if e["type"] == api.SCAN]
        assert [e["gtin"] for e in scans] == [gtin, gtin, saved]
        assert len({e["event_id"] for e in scans}) == 3  # each tap its own event
        for scan in scans:  # the visit's proof, as the add carries it
            assert scan["checkin"] == shown.event_id and scan["session"] == shown.view.session
            assert scan["shopper_id"] == "shopper-00"
        assert [e["event_id"] for e in queued if e["type"] == api.WISHLIST_ADD] == [first.undo_token]

        page = lambda: Counter(s["gtin"] for s in shopper.profile(hub.store, "shopper-00", "en")["scans"])  # noqa: E731
        before = page()
        sent = service.sync_now()
        assert sent["created"] == 4 and sent["rejected"] == 0, service.outbox.parked()
        device = service.identity.device_id
        received = hub_events(hub.store, device, api.SCAN)
        assert {e for e, _, _ in received} == {e["event_id"] for e in scans}
        assert {s for _, s, _ in received} == {"shopper-00"}
        assert adds_of(hub.store, "shopper-00", gtin) == [first.undo_token]  # saved once
        assert page() - before == Counter([gtin, gtin, saved])  # the shopper's page lists every one
        assert service.sync_now()["created"] == 0  # nothing twice
    finally:
        service.stop()


def test_a_product_tap_outside_a_visit_is_an_anonymous_scan(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        gtin, read = product(7)
        results = [service.handle_tag(read) for _ in range(2)]
        assert all(isinstance(r, ProductResult) and not r.saved for r in results)
        queued = service.outbox.batch(10)
        assert [(e["type"], e["gtin"]) for e in queued] == [(api.SCAN, gtin)] * 2
        assert queued[0]["event_id"] != queued[1]["event_id"]
        for event in queued:  # no shopper, no proof: attached to nobody
            assert not {"shopper_id", "checkin", "session", "credential"} & set(event)
        assert service.sync_now()["created"] == 2
        received = hub_events(hub.store, service.identity.device_id, api.SCAN)
        assert [(s, b["gtin"]) for _, s, b in received] == [(None, gtin)] * 2
    finally:
        service.stop()


def test_scans_of_an_offline_visit_reach_the_shopper_once_the_hub_is_back(hub_db, hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        online = service.handle_tag(card(0))  # cached now
        service.end_session()
        port = hub.port
        hub.stop()
        offline = service.handle_tag(card(0))
        assert offline.view.source == "cache" and offline.event_id
        n, gtin = new_gtin(offline.view, start=60)
        assert service.handle_tag(product(n)[1]).saved
        assert service.handle_tag(product(n)[1]).already_saved
        scans = [e for e in service.outbox.batch(20) if e["type"] == api.SCAN]
        assert len(scans) == 2 and all(e["checkin"] == offline.event_id for e in scans)
        with EmbeddedHub(HubSettings(db_path=hub_db), port=port) as back:
            sent = service.sync_now()
            assert sent["rejected"] == 0 and service.outbox.depth() == 0, service.outbox.parked()
            received = hub_events(back.store, service.identity.device_id, api.SCAN)
            assert {(e, s) for e, s, _ in received} == {(e["event_id"], "shopper-00") for e in scans}
            assert len(adds_of(back.store, "shopper-00", gtin)) == 1
        assert online.view.display_name == "Emma"
    finally:
        service.stop()
