"""Every screen in every language, through real touches, saved as a screenshot (the folder is
printed at the end of the run), with no text spilling out of its box."""
import pytest

from hub import demo

from tests.taps import card, product
from tests.ui.conftest import STAFF_UID, TECH_UID, uid_read, walk

from ui.format import LANGUAGE_NAMES


def overflowing(root):
    """Labels whose drawn text is bigger than their box: clipped on screen."""
    from kivy.uix.label import Label
    bad = []
    for w in walk(root):
        if isinstance(w, Label) and w.text and w.opacity > 0 and w.height > 1 and w.get_root_window():
            tw, th = w.texture_size
            if tw > w.width + 2 or th > w.height + 2:
                bad.append((w.text[:40], (round(tw), round(th)), (round(w.width), round(w.height))))
    return bad


@pytest.mark.parametrize("lang", ["en", "vi", "ru", "th"])
def test_every_screen(kiosk, lang):
    k = kiosk()
    app = k.app

    def choose():
        k.tap_text(app.attract.ids.languages, LANGUAGE_NAMES[lang])

    def check(name, screen):
        k.frames(3)
        assert not overflowing(screen), overflowing(screen)
        k.shot(f"{lang}-{name}")

    choose()
    k.reader.unplug()  # the staff-facing notice when the reader is gone
    assert k.pump(lambda: not app.attract.reader_ok)
    check("1-attract-no-reader", app.attract)
    k.reader.plug()
    assert k.pump(lambda: app.attract.reader_ok)

    k.present(card(4))  # James: the sharing question, two of his items here
    assert k.pump(lambda: app.sm.current == "shopper" and app.shopper.ask_sharing)
    k.present(product(7)[1])
    assert k.pump(lambda: app.shopper.undo_token)
    assert k.pump(lambda: all(c.image for c in walk(app.shopper.ids.wishlist) if hasattr(c, "where_kind")), 5)
    check("2-shopper", app.shopper)
    k.tap(app.shopper.ids.done)
    assert k.pump(lambda: app.sm.current == "attract")

    choose()
    k.present(uid_read(STAFF_UID))
    assert k.pump(lambda: app.sm.current == "pin")
    for digit in "12":
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)  # too short: the screen says what to do
    check("3-pin", app.pin)
    from ui.i18n import tr
    k.tap_text(app.pin.ids.keypad, tr._("Clear"))
    for digit in demo.DEMO_PIN:
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: app.sm.current == "staff")
    query = {"en": "oli", "vi": "anh", "ru": "ва", "th": "ติ"}[lang]
    if lang in ("ru", "th"):
        k.tap_text(app.staff.ids.keyboard.ids.switches, {"ru": "абв", "th": "กขค"}[lang])
    for char in query:
        key = next(w for w in walk(app.staff.ids.keyboard) if getattr(w, "char", None) == char)
        k.tap(key)
    k.tap(app.staff.ids.search)
    assert k.pump(lambda: app.staff.found), (app.staff.query, app.staff.status)
    k.tap(app.staff.ids.results.children[-1])
    assert k.pump(lambda: app.staff.shopper_name)
    check("4-staff", app.staff)
    k.tap(app.staff.ids.lock)

    choose()
    k.present(uid_read(TECH_UID))
    assert k.pump(lambda: app.sm.current == "pin" and app.pin.role == "technician")
    for digit in demo.DEMO_PIN:
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)
    assert k.pump(lambda: app.sm.current == "technician" and app.technician.health is not None)
    check("5-tech-health", app.technician)
    k.tap(app.technician.ids.tab_reader)
    k.present(product(3)[1])
    k.present(card(3))
    assert k.pump(lambda: len(app.technician.reads) == 2)
    check("6-tech-reader", app.technician)
    k.tap(app.technician.ids.tab_setup)
    for char in "https://hub":
        key = next(w for w in walk(app.technician.ids.keyboard) if getattr(w, "char", None) == char)
        k.tap(key)
    check("7-tech-setup", app.technician)
    k.tap(app.technician.ids.tab_settings)
    check("8-tech-settings", app.technician)
    k.tap(app.technician.ids.exit)
    assert app.sm.current == "attract"
