"""Issue 10 on screen, through real Kivy frames and touches, the real service and the real hub:
a Thai shopper reads Thai product and offer titles (and each language's when they switch), and a
kiosk its brand removed from the fleet tells the technician, who enrolls it again on screen."""
from hub import brands, demo
from tests.taps import card, product
from tests.ui.conftest import texts, walk
from tests.ui.test_every_screen import overflowing
from ui.format import LANGUAGE_NAMES

PRODUCTS = {p["gtin"]: p for p in demo.products()}


def card_titles(app) -> dict:
    return {c.gtin: c.title for c in walk(app.shopper.ids.wishlist) if c.__class__.__name__ == "ProductCard" and c.gtin}


def offer_texts(app) -> list:
    return [w.text for w in walk(app.shopper.ids.offers) if w.__class__.__name__ == "OfferRow" and w.text]


def is_thai(text: str) -> bool:
    return any("\u0e00" <= c <= "\u0e7f" for c in text)


def test_a_thai_shopper_reads_thai_titles_and_each_language_on_switching(kiosk):
    k = kiosk()
    app = k.app
    k.present(card(3))  # สมชาย, locale th
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.view.source == "hub" and card_titles(app))
    shown = card_titles(app)
    assert shown == {g: PRODUCTS[g]["texts"]["th"]["title"] for g in shown}
    assert offer_texts(app) and all(is_thai(t) for t in offer_texts(app))
    gtin, read = next((g, r) for g, r in (product(n) for n in range(40)) if g not in shown
                      and PRODUCTS[g]["brand_id"] == "lotus")
    k.present(read)
    assert k.pump(lambda: gtin in card_titles(app) and app.shopper.toast)
    assert PRODUCTS[gtin]["texts"]["th"]["title"] in app.shopper.toast  # "saved" says it in Thai
    assert card_titles(app)[gtin] == PRODUCTS[gtin]["texts"]["th"]["title"]
    assert k.pump(lambda: all(c.image for c in walk(app.shopper.ids.wishlist) if hasattr(c, "where_kind")), 5)
    k.frames(3)
    assert not overflowing(app.shopper), overflowing(app.shopper)
    k.shot("th-shopper-thai-titles")
    k.tap_text(app.shopper.ids.languages, LANGUAGE_NAMES["ru"])  # the screen's language, not the hub's choice
    assert k.pump(lambda: all(t == PRODUCTS[g]["texts"]["ru"]["title"] for g, t in card_titles(app).items()))
    assert all(not is_thai(t) for t in offer_texts(app))
    k.shot("ru-shopper-after-thai-checkin")


def test_a_revoked_kiosk_tells_the_technician_who_enrolls_it_again_on_screen(kiosk, hub):
    from ui.i18n import tr
    k = kiosk()
    app = k.app
    old = app.service.identity.device_id
    brands.revoke_device(hub.store, "lotus", old)
    k.present(card(0))
    assert k.pump(lambda: "ask staff" in app.attract.message)
    assert not any("Emma" in t for t in texts(app.root))
    k.present(product(5)[1])  # an anonymous scan: kept in the outbox, not sent
    assert k.pump(lambda: app.service.outbox.depth() == 1)
    assert app.service.status().device_revoked
    for lang in ("en", "th"):
        k.tap_text(app.attract.ids.languages, LANGUAGE_NAMES[lang])
        k.tap(app.attract.ids.tech_corner, hold=2.3)
        assert k.pump(lambda: app.sm.current == "pin") and app.pin.role == "technician"
        for digit in "1234":  # the local technician PIN (tests/ui/conftest.py)
            k.tap_text(app.pin.ids.keypad, digit)
        k.tap(app.pin.ids.unlock)
        assert k.pump(lambda: app.technician.health is not None)
        rows = texts(app.technician.ids.health)
        assert tr._("This kiosk was removed from the fleet: enroll it again (Set up). Its queued events are kept "
                    "and sent after that.") in rows
        if lang == "en":
            assert any("removed from the fleet: enroll it again" in t for t in rows)
        else:
            assert any(is_thai(t) and "ลงทะเบียนใหม่" in t for t in rows)
        k.frames(3)
        assert not overflowing(app.technician), overflowing(app.technician)
        k.shot(f"{lang}-technician-kiosk-revoked")
        if lang == "en":
            k.tap(app.technician.ids.exit)
            assert k.pump(lambda: app.sm.current == "attract")
    assert app.service.outbox.depth() == 1  # still queued
    k.tap(app.technician.ids.tab_setup)
    app.technician.hub_url, app.technician.code = hub.url, "DEMO"
    k.tap(app.technician.ids.enroll)
    assert k.pump(lambda: app.service is not None and app.service.identity.device_id != old, 10)
    assert k.pump(lambda: hub.store.one("SELECT count(*) FROM events WHERE device_id=? AND type='scan'",
                                        (app.service.identity.device_id,))[0] == 1, 10)  # delivered by the new one
    # the hub holds it a moment before the kiosk has read the answer that lets it drop it
    assert k.pump(lambda: app.service.outbox.depth() == 0, 10)
    assert not app.service.status().device_revoked
