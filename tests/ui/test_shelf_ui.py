"""Issue 12 on screen, through real Kivy frames, the real service and the real hub: an item the
shopper asked to be told about ("tell me when it is on the shelf here") that the stock feed put
on this store's shelf is the first card, saying "Now on the shelf here" in the screen's language."""
import time

from hub import brands, demo, shelf
from tests.taps import card
from tests.ui.conftest import walk
from tests.ui.test_every_screen import overflowing
from ui.format import LANGUAGE_NAMES

PRODUCTS = {p["gtin"]: p for p in demo.products()}
NOTE = {"en": "Now on the shelf here", "vi": "Đã có trên kệ tại đây", "ru": "Теперь есть на полке здесь",
        "th": "มีวางบนชั้นที่นี่แล้ว"}


def cards(app) -> list:
    """The wishlist's cards in the order the screen shows them (top first)."""
    shown = [c for c in walk(app.shopper.ids.wishlist) if c.__class__.__name__ == "ProductCard" and c.gtin]
    return sorted(shown, key=lambda c: -c.y)


def lan_lotus_items(store) -> list[str]:
    rows = store.all("SELECT a.gtin FROM wishlist_adds a JOIN products p ON p.gtin = a.gtin LEFT JOIN wishlist_removes r "
                     "ON r.tag = a.tag AND r.shopper_id = a.shopper_id WHERE a.shopper_id='shopper-01' AND r.tag IS NULL "
                     "AND p.brand_id='lotus' ORDER BY a.gtin")
    return [r[0] for r in rows]


def test_a_watched_item_now_on_the_shelf_is_the_first_card_and_says_so(kiosk, hub):
    store = hub.store
    mine = lan_lotus_items(store)
    watched, other = mine[-1], mine[0]
    brands.apply_stock(store, "lotus", [{"store_code": "hcm", "id": other, "quantity": 8, "as_of": time.time()},
                                        {"store_code": "hcm", "id": watched, "quantity": 2, "as_of": time.time()}])
    assert shelf.add_watch(store, "shopper-01", watched, "lotus-hcm", via="web")
    k = kiosk()
    app = k.app
    k.present(card(1))  # Lan, locale vi
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.view.source == "hub" and cards(app))
    k.frames(3)
    top = cards(app)
    assert top[0].gtin == watched and top[0].highlight and NOTE["vi"] in top[0].note
    assert all(not c.highlight and NOTE["vi"] not in c.note for c in top[1:])
    assert not overflowing(app.shopper), overflowing(app.shopper)
    k.shot("vi-shopper-now-on-the-shelf")
    for lang in ("th", "ru", "en"):
        k.tap_text(app.shopper.ids.languages, LANGUAGE_NAMES[lang])
        assert k.pump(lambda: NOTE[lang] in cards(app)[0].note)
        assert cards(app)[0].gtin == watched
        k.frames(2)
        assert not overflowing(app.shopper), overflowing(app.shopper)
    k.shot("en-shopper-now-on-the-shelf")
