""""Tell me when it is on the shelf here" at the kiosk, through the real KioskService and the real
hub on loopback: a watch for a wishlist item at lotus-hcm, the stock feed puts the item on that
shelf, and the next tap at that store's kiosk shows it first, marked now_on_shelf; the field is
optional (older hubs send none), checked, and kept by the kiosk's cache."""
import time

import pytest

from hub import brands, shelf
from kiosk import api
from kiosk.app import build_service
from kiosk.results import ShopperResult
from tests.taps import card

LAN = 1  # demo shopper 1, Lan: several lotus items


def test_a_watched_item_put_on_the_shelf_shows_first_at_the_next_tap(hub, enrolled):
    store = hub.store
    service = build_service(enrolled, with_reader=False)
    try:
        service.prime()
        first = service.handle_tag(card(LAN))
        assert isinstance(first, ShopperResult)
        lotus = [i for i in first.view.wishlist if i.brand == "lotus"]
        assert len(lotus) >= 2 and not any(i.now_on_shelf for i in first.view.wishlist)
        watched = lotus[-1].gtin  # the last of the brand's items: it must move to the top
        service.end_session()
        brands.apply_stock(store, "lotus", [{"store_code": "hcm", "id": watched, "quantity": 0, "as_of": time.time()}])
        # another item on the shelf here, unwatched: comes after the watched one
        brands.apply_stock(store, "lotus", [{"store_code": "hcm", "id": lotus[0].gtin, "quantity": 9,
                                             "as_of": time.time()}])
        assert shelf.add_watch(store, "shopper-01", watched, "lotus-hcm", via="page")
        quiet = service.handle_tag(card(LAN))
        assert not any(i.now_on_shelf for i in quiet.view.wishlist)  # watched, not on the shelf yet
        service.end_session()
        # the brand's stock feed: on the shelf now
        brands.apply_stock(store, "lotus", [{"store_code": "hcm", "id": watched, "quantity": 2,
                                             "instore_product_location": "aisle 3", "as_of": time.time() + 1}])
        shown = service.handle_tag(card(LAN))
        assert isinstance(shown, ShopperResult) and shown.view.source == "hub"
        top = shown.view.wishlist[0]
        assert top.gtin == watched and top.now_on_shelf and top.available_here == 2
        assert [i.gtin for i in shown.view.wishlist if i.now_on_shelf] == [watched]
        from ui import format as fmt
        ordered = fmt.order_wishlist(shown.view.wishlist)
        assert ordered[0].gtin == watched and fmt.card_note(ordered[0], lambda s: s) == "Now on the shelf here"
        assert fmt.card_note(ordered[1], lambda s: s) == ""
        service.end_session()
        assert shelf.watches_of(store, "shopper-01")[0]["on_shelf"] is True  # and the shopper's page lists it
        # the kiosk's cache keeps the mark: offline, the tap shows what the hub said last
        hub.stop()
        offline = service.handle_tag(card(LAN))
        assert isinstance(offline, ShopperResult) and offline.view.source == "cache"
        assert offline.view.wishlist[0].gtin == watched and offline.view.wishlist[0].now_on_shelf
        service.end_session()
    finally:
        service.stop()


def test_now_on_shelf_is_optional_checked_and_round_trips_the_cache_shape():
    base = {"gtin": "08931000000009", "title": "Silk Hat", "brand": "lotus"}
    assert api.WishlistItem.from_json(base).now_on_shelf is False  # an older hub sends none
    assert api.WishlistItem.from_json({**base, "now_on_shelf": None}).now_on_shelf is False
    assert api.WishlistItem.from_json({**base, "now_on_shelf": True}).now_on_shelf is True
    for bad in ("yes", 1.5, ["x"] * 10_000, {"a": 1}):
        with pytest.raises(api.HubProtocolError):
            api.WishlistItem.from_json({**base, "now_on_shelf": bad})
    view = api.ShopperView.from_json({"shopper": {"id": "s", "display_name": "Lan"},
                                      "wishlist": [{**base, "now_on_shelf": True, "available_here": 2}, base]})
    again = api.ShopperView.from_json(view.to_json())
    assert [i.now_on_shelf for i in again.wishlist] == [True, False] and again == view
