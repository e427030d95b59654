"""The touch experience through real Kivy frames and touches, the real service and the real
hub on loopback: what a shopper, a member of staff and a technician would notice."""
import time

from hub import demo
from tests.taps import card, product
from tests.ui.conftest import STAFF_UID, texts, uid_read, visible, walk

LANGS = ("en", "vi", "ru", "th")
# every title a demo product can be shown with (the brand's default and each language's): its brand
TITLES = {t: p["brand_id"] for p in demo.products()
          for t in (p["title"], *(text["title"] for text in p["texts"].values()))}


def shown_titles(app):
    return [t for t in texts(app.shopper) if t in TITLES]


def test_tap_shows_two_brands_shelf_first_with_feedback_under_100ms(kiosk):
    k = kiosk()
    app = k.app
    assert app.sm.current == "attract" and "Tap your phone or card" in texts(app.attract)
    read_at = time.perf_counter()
    k.present(card(0))  # Emma, shares with every brand
    assert k.pump(lambda: app.tap_seen_at > read_at, 2)
    assert app.tap_seen_at - read_at < 0.1  # feedback is on screen in the next frame
    assert k.pump(lambda: app.sm.current == "shopper" and shown_titles(app), 10)
    assert app.shopper.greeting.endswith("Emma!")
    assert not app.overlay.active
    titles = shown_titles(app)
    assert len({TITLES[t] for t in titles}) >= 2  # items saved at two brands
    cards = [w for w in walk(app.shopper.ids.wishlist) if w.__class__.__name__ == "ProductCard"]
    kinds = [c.where_kind for c in reversed(cards)]  # GridLayout children are last-first
    assert kinds[0] == "here" and kinds == sorted(kinds, key=lambda kind: kind != "here")
    assert any("on the shelf here, aisle" in c.where for c in cards)
    assert all(c.price for c in cards)
    assert k.pump(lambda: any(c.image for c in cards), 5)  # pictures fetched from the hub, then on disk
    assert app.service.image_file(app.shopper.view.wishlist[0].image) is not None
    k.shot("en-shopper-emma")


def test_slow_hub_shows_progress_and_the_screen_keeps_moving(kiosk):
    k = kiosk()
    app = k.app
    checkin = app.service.hub.checkin

    def slow_checkin(*args, **kwargs):  # a hub that takes its time (within the check-in timeout)
        time.sleep(0.9)
        return checkin(*args, **kwargs)

    app.service.hub.checkin = slow_checkin
    k.present(card(2))
    assert k.pump(lambda: app.overlay.active, 2)
    assert app.overlay.text == "One moment..."
    phases = set()
    assert k.pump(lambda: phases.add(app.overlay.phase) or app.overlay.text == "Looking up your wishlist...", 2)
    k.shot("en-attract-progress")
    assert len(phases) > 5  # frames kept coming: the ring moved while the hub thought
    assert k.pump(lambda: app.sm.current == "shopper", 5)
    assert not app.overlay.active


def test_product_tap_saves_at_once_and_undo_takes_it_back(kiosk, hub):
    k = kiosk()
    app = k.app
    k.present(card(0))
    assert k.pump(lambda: app.sm.current == "shopper" and shown_titles(app))
    gtin, read = product(5)
    title = next(p["title"] for p in demo.products() if p["gtin"] == gtin)
    k.present(read)
    assert k.pump(lambda: title in texts(app.shopper) and app.shopper.undo_token)
    assert "Saved to your wishlist" in app.shopper.toast
    undo = app.shopper.ids.undo
    assert undo.opacity == 1 and undo.text == "Undo"
    k.tap(undo)
    assert k.pump(lambda: title not in texts(app.shopper))
    assert k.pump(lambda: "Removed from your wishlist" in app.shopper.toast)
    assert k.pump(lambda: app.service.outbox.depth() == 0, 10)
    live = hub.store.all("SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag=a.tag AND r.shopper_id=a.shopper_id "
                         "WHERE a.shopper_id='shopper-00' AND r.tag IS NULL AND a.gtin=?", (gtin,))
    assert live == []  # added and taken back: the hub agrees


def test_sharing_yes_shows_other_brands_at_once(kiosk, hub):
    k = kiosk()
    app = k.app
    k.present(card(4))  # James has not decided about sharing
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.ask_sharing)
    question = app.shopper.ids.consent_question
    assert question.text == "Show the items you saved at other brands here?"
    before = {TITLES[t] for t in shown_titles(app)}
    assert before == {"lotus"}
    k.shot("en-shopper-consent")
    k.tap(app.shopper.ids.sharing_yes)
    assert not app.shopper.ask_sharing  # the question goes the moment it is answered
    assert k.pump(lambda: len({TITLES[t] for t in shown_titles(app)}) >= 2)
    row = hub.store.one("SELECT state FROM consents WHERE shopper_id='shopper-04' AND from_brand='*' AND to_brand='lotus'")
    assert row == ("granted",)


def test_sharing_no_is_recorded_and_the_question_goes(kiosk, hub):
    k = kiosk()
    app = k.app
    k.present(card(4))
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.ask_sharing)
    k.tap(app.shopper.ids.sharing_no)
    assert not app.shopper.ask_sharing
    assert "Only this brand's items" in app.shopper.toast
    assert k.pump(lambda: hub.store.one("SELECT state FROM consents WHERE shopper_id='shopper-04' "
                                        "AND from_brand='*' AND to_brand='lotus'") == ("refused",))
    assert {TITLES[t] for t in shown_titles(app)} == {"lotus"}
    k.present(card(4))  # next visit: not asked again
    assert k.pump(lambda: app.shopper.view is not None and app.shopper.view.sharing == "refused")
    assert not app.shopper.ask_sharing


def test_idle_warns_then_resets_leaving_no_trace_of_the_shopper(kiosk):
    from kivy.cache import Cache

    k = kiosk(idle_warning_s=1.0, idle_timeout_s=2.0)
    app = k.app
    k.present(card(3))  # สมชาย, Thai
    assert k.pump(lambda: app.sm.current == "shopper" and shown_titles(app))
    assert k.pump(lambda: any(c.image for c in walk(app.shopper) if hasattr(c, "where_kind")), 5)
    personal = [app.shopper.view.display_name, *shown_titles(app)]
    assert app.shopper.ids.greeting.font_script_name == "Thai"  # the Thai name is shaped as Thai
    assert k.pump(lambda: app.shopper.idle_warning != "", 3)
    assert app.shopper.ids.toast.text == "ยังอยู่ไหม แตะหน้าจอเพื่อเปิดรายการต่อ"  # in the shopper's own language
    assert k.pump(lambda: app.sm.current == "attract", 4)
    k.frames(3)
    everything = " ".join(texts(app.root))
    assert not any(p in everything for p in personal)
    assert app.service.session_view is None and app.shopper.view is None
    assert not any(str(app.service.config.images_dir) in str(key)
                   for category in ("kv.loader", "kv.image", "kv.texture")
                   for key in (Cache._objects.get(category) or {}))
    assert "Tap your phone or card" in texts(app.attract)  # language back to the kiosk's default


def test_unreadable_tag_says_hold_still_not_an_error_code(kiosk):
    from drivers.base import MOVED, TYPE2, TagRead
    k = kiosk()
    app = k.app
    k.present(TagRead("simulated", TYPE2, uid=b"\x04" * 7, problem=MOVED))
    assert k.pump(lambda: app.attract.message)
    assert app.attract.message.startswith("Hold your card still for a second")


def test_staff_pin_locks_out_after_five_wrong_tries(kiosk):
    k = kiosk()
    app = k.app
    k.present(uid_read(STAFF_UID))
    assert k.pump(lambda: app.sm.current == "pin")
    assert "Mai" in app.pin.who
    keypad = app.pin.ids.keypad
    for attempt in range(5):
        for _ in range(len(demo.DEMO_PIN)):
            k.tap_text(keypad, "9")
        k.tap(app.pin.ids.unlock)
        assert k.pump(lambda: not app.pin.busy)
        if attempt < 4:
            assert f"{4 - attempt} " in app.pin.message and "Wrong PIN" in app.pin.message
    assert "Too many wrong PINs" in app.pin.message and "5 minutes" in app.pin.message
    k.shot("en-pin-locked")
    for digit in demo.DEMO_PIN:  # the right PIN now changes nothing
        k.tap_text(keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: not app.pin.busy)
    assert app.sm.current == "pin" and "Too many wrong PINs" in app.pin.message


def test_staff_finds_a_shopper_by_name_and_every_lookup_is_recorded(kiosk, hub):
    k = kiosk()
    app = k.app
    k.present(uid_read(STAFF_UID))
    assert k.pump(lambda: app.sm.current == "pin")
    for digit in demo.DEMO_PIN:
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: app.sm.current == "staff")
    keyboard = app.staff.ids.keyboard
    for char in "emma":
        k.tap_text(keyboard, char)
    assert app.staff.query == "emma"
    k.tap(app.staff.ids.search)
    assert k.pump(lambda: "Emma Walker" in texts(app.staff.ids.results))
    k.tap_text(app.staff.ids.results, "Emma Walker")
    assert k.pump(lambda: app.staff.shopper_name == "Emma")
    cards = [w for w in walk(app.staff.ids.wishlist) if hasattr(w, "where_kind")]
    assert any(c.where_kind == "here" and "aisle" in c.where for c in cards)
    k.present(card(8))  # a shopper taps while staff mode is on: looked up by tap
    assert k.pump(lambda: app.staff.shopper_name == "Olivia")
    assert k.pump(lambda: app.service.outbox.depth() == 0, 10)
    lookups = hub.store.all("SELECT shopper_id FROM events WHERE type='staff_lookup' ORDER BY received_at")
    assert [r[0] for r in lookups] == ["shopper-00", "shopper-08"]
    k.tap(app.staff.ids.lock)
    assert app.sm.current == "attract" and app.staff.shopper_name == ""
    assert not any("Emma" in t or "Olivia" in t for t in texts(app.root))


def test_technician_health_shows_real_values_and_reader_test_decodes(kiosk, hub):
    k = kiosk()
    app = k.app
    k.tap(app.attract.ids.tech_corner, hold=2.3)  # the hidden entry: a long press in the corner
    assert k.pump(lambda: app.sm.current == "pin") and app.pin.role == "technician"
    for digit in "1234":  # the local technician PIN (tests/ui/conftest.py)
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: app.sm.current == "technician")
    assert k.pump(lambda: app.technician.health is not None)
    shown = " | ".join(texts(app.technician.ids.health))
    assert f"reachable  ({hub.url})" in shown
    assert "connected" in shown and "simulated" in shown
    assert " ms" in shown and app.technician.health.hub_latency_ms > 0
    assert " GB" in shown and app.service.status().version in shown
    k.tap(app.technician.ids.tab_reader)
    gtin, read = product(2)
    k.present(read)
    k.present(card(1))
    assert k.pump(lambda: len(app.technician.reads) == 2)
    shown = " | ".join(texts(app.technician.ids.reads))
    assert f"product tag: {gtin}" in shown and f"URI https://id.gs1.org/01/{gtin}" in shown
    assert "shopper card: token" in shown and demo.token_for(1) not in shown  # tokens are masked
    assert app.service.session_view is None  # reader-test reads are not taps
    k.tap(app.technician.ids.exit)
    assert app.sm.current == "attract"


def test_language_switch_changes_every_visible_text(kiosk):
    from ui.format import LANGUAGE_NAMES
    k = kiosk()
    app = k.app
    english = set(texts(app.attract, only_visible=True)) - set(LANGUAGE_NAMES.values())
    assert "Tap your phone or card" in english
    for code in ("vi", "ru", "th"):
        k.tap_text(app.attract.ids.languages, LANGUAGE_NAMES[code])
        now = set(texts(app.attract, only_visible=True))
        assert not english & now, f"{code}: still English: {english & now}"
    assert app.attract.ids.headline.font_script_name == "Thai"
    k.present(card(4))  # James: the chosen language stays for this session
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.ask_sharing)
    data = set(TITLES) | {b[1] for b in demo.BRANDS} | {"James"}
    thai = [t for t in texts(app.shopper, only_visible=True) if t not in data and not t.replace(" ", "").isascii()]
    assert app.shopper.ids.done.text == "เสร็จสิ้น" and thai
    k.tap_text(app.shopper.ids.languages, "English")
    shopper_en = set(texts(app.shopper, only_visible=True))
    k.tap_text(app.shopper.ids.languages, "Русский")
    shopper_ru = set(texts(app.shopper, only_visible=True))
    offers = {o.title for o in app.shopper.view.offers}
    ui_texts = {t for t in shopper_en if t not in data and not any(o in t for o in offers)
                and not t[0].isdigit() and t not in LANGUAGE_NAMES.values()}
    assert ui_texts and not ui_texts & shopper_ru, ui_texts & shopper_ru
    k.tap(app.shopper.ids.done)
    assert k.pump(lambda: app.sm.current == "attract")
    assert "Tap your phone or card" in texts(app.attract)  # the language resets with the session


def stale_labels(root) -> list:
    """Visible labels whose texture shows another text than their own."""
    from ui.widgets import OnScreenOnly
    return [(w.text, getattr(w, "rendered_text", None)) for w in walk(root)
            if isinstance(w, OnScreenOnly) and w.text and visible(w) and getattr(w, "rendered_text", None) != w.text]


def test_labels_changed_off_screen_show_their_new_text_when_they_come_back(kiosk):
    """Labels off the window skip rendering (a language switch would re-render every screen);
    whatever comes back on screen must show its current text from its first frame."""
    k = kiosk()
    app = k.app
    k.present(card(3))  # สมชาย: Thai comes with him, while the attract screen is put away
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.view.source == "hub")
    k.frames(1)
    assert app.shopper.ids.done.text == "เสร็จสิ้น" and not stale_labels(app.root)
    app.end_session("done")  # English again, while the shopper screen and its cards are put away
    assert k.pump(lambda: app.sm.current == "attract")
    k.frames(1)
    assert "Tap your phone or card" in texts(app.attract) and not stale_labels(app.root)
    k.present(card(0))  # Emma, in English: the pooled wishlist cards come back
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.view.source == "hub"
                  and app.shopper.greeting.endswith("Emma!"))
    k.frames(1)
    assert not stale_labels(app.root)


def test_wishlist_cards_are_reused_and_keep_nothing_of_the_last_shopper(kiosk):
    k = kiosk()
    app = k.app
    k.present(card(0))
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.view.source == "hub" and shown_titles(app))
    cards = list(app.shopper.ids.wishlist.children)
    app.shopper.show(app.shopper.view)  # an equal view (the hub's answer after the cached paint) changes nothing
    assert list(app.shopper.ids.wishlist.children) == cards
    app.end_session("done")
    assert k.pump(lambda: app.sm.current == "attract")
    pooled = app.shopper._cards.widgets
    assert pooled and not app.shopper.ids.wishlist.children
    for c in pooled:  # kept for the next shopper, but empty: no title, price, place or picture
        assert not (c.title or c.brand or c.price or c.where or c.gtin or c.note or c.image)
        assert not texts(c)
    k.present(card(1))
    assert k.pump(lambda: app.sm.current == "shopper" and shown_titles(app))
    shown = app.shopper.ids.wishlist.children
    assert shown and all(c in pooled for c in shown[:len(pooled)] if c.__class__.__name__ == "ProductCard")
    assert not set(shown_titles(app)) - {v.title for v in app.shopper.view.wishlist}


def test_a_kiosk_whose_token_the_hub_refused_shows_no_profile_and_tells_the_technician(kiosk, enrolled):
    import json
    data = json.loads(enrolled.device_file.read_text())
    data["enrollment"]["device_token"] = "refused-" + "x" * 40  # the hub no longer knows this kiosk
    enrolled.device_file.write_text(json.dumps(data))
    k = kiosk()
    app = k.app
    k.present(card(0))
    assert k.pump(lambda: "ask staff" in app.attract.message)
    assert app.attract.message == "This kiosk cannot show your profile right now. Please ask staff for help"
    assert app.sm.current == "attract" and not any("Emma" in t for t in texts(app.root))
    k.shot("en-device-refused")
    k.tap(app.attract.ids.tech_corner, hold=2.3)
    assert k.pump(lambda: app.sm.current == "pin") and app.pin.role == "technician"
    for digit in "1234":  # the local technician PIN (tests/ui/conftest.py)
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: app.technician.health is not None)
    assert any("REFUSED by the hub" in t for t in texts(app.technician.ids.health))
    k.shot("en-device-refused-health")
