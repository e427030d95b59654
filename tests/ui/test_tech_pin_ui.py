"""Issue 13, item 9 on screen: the technician changes the technician PIN on the technician
screen (Settings, Change PIN: the current PIN, the new one twice) through real Kivy touches,
the real service and the real hub; each refusal says what is wrong in the screen's language;
the check and the hashing run off the Kivy main thread; the new PIN unlocks from then on, is
kept hashed in the device settings and survives a restart."""
import json
import threading

import pytest

import kiosk.staff
from kiosk.config import load_config
from kiosk.pins import verify_pin
from tests.ui.conftest import walk
from tests.ui.test_every_screen import overflowing
from ui.format import LANGUAGE_NAMES


def unlock(k, pin: str) -> None:
    app = k.app
    k.tap(app.attract.ids.tech_corner, hold=2.3)
    assert k.pump(lambda: app.sm.current == "pin") and app.pin.role == "technician"
    for digit in pin:
        k.tap_text(app.pin.ids.keypad, digit)
    k.tap(app.pin.ids.unlock)


def type_pin(k, field: str, digits: str) -> None:
    t = k.app.technician
    box = t.ids[f"pin_{field}"]
    k.tap(next(w for w in walk(box) if hasattr(w, "on_release")))  # the field itself
    assert t.pin_field == field
    for digit in digits:
        k.tap_text(t.ids.pin_keypad, digit)


def attempt(k, old: str, new: str, again: str) -> str:
    t = k.app.technician
    type_pin(k, "old", old)
    type_pin(k, "new", new)
    type_pin(k, "again", again)
    k.tap(t.ids.pin_submit)
    assert k.pump(lambda: not t.busy, 10)
    assert all(not dots for dots in t.pin_dots.values())  # nothing typed stays on screen
    return t.ids.pin_message.text


@pytest.fixture
def no_stale_timers():
    """Earlier tests' stopped apps leave their idle timers on Kivy's global clock (a shopper
    screen's 30 s reset, which switches the shared translator back to English): cancelled here,
    so this test's language stays the one it chose."""
    from kivy.clock import Clock

    from ui.kiosk_app import KioskApp
    for event in Clock.get_events():
        callback = event.get_callback()
        cells = getattr(callback, "__closure__", None) or ()
        if any(isinstance(getattr(c, "cell_contents", None), KioskApp) for c in cells):
            event.cancel()


@pytest.fixture
def spy_threads(monkeypatch):
    """Which threads run the slow scrypt calls (the real ones, only watched)."""
    seen = []
    for name in ("hash_pin", "verify_pin"):
        real = getattr(kiosk.staff, name)

        def watched(*args, _real=real, **kwargs):
            seen.append(threading.current_thread())
            return _real(*args, **kwargs)
        monkeypatch.setattr(kiosk.staff, name, watched)
    return seen


@pytest.mark.parametrize("lang", ["en", "vi", "ru", "th"])
def test_the_technician_changes_the_technician_pin_on_screen(no_stale_timers, kiosk, lang, spy_threads):
    from ui.i18n import tr
    k = kiosk()
    app = k.app
    spy_threads.clear()  # the fixture hashed its PIN on this thread; from here on, only the kiosk
    k.tap_text(app.attract.ids.languages, LANGUAGE_NAMES[lang])
    assert tr.language == lang
    unlock(k, "1234")  # the local technician PIN (tests/ui/conftest.py)
    assert k.pump(lambda: app.sm.current == "technician")
    t = app.technician
    k.tap(t.ids.tab_settings)
    k.tap(t.ids.change_pin)
    assert t.ids.pages.current == "pin" and t.pin_field == "old" and t.has_pin
    k.frames(3)
    assert not overflowing(t), overflowing(t)
    k.shot(f"{lang}-technician-change-pin")

    shown = attempt(k, "9999", "246813", "246813")
    assert shown == tr._("The current PIN is wrong.") + " " + tr.ngettext(
        "Wrong PIN. %(n)d try left.", "Wrong PIN. %(n)d tries left.", 4) % {"n": 4}
    assert not overflowing(t), overflowing(t)
    k.shot(f"{lang}-technician-change-pin-wrong")
    assert attempt(k, "1234", "246813", "246831") == \
        tr._("The two new PINs are not the same. Enter the new PIN twice again.")
    weak = tr._("Choose 6 to 12 digits, not a run like 123456 or 111111.")
    assert attempt(k, "1234", "12345", "12345") == weak
    assert attempt(k, "1234", "123456", "123456") == weak
    assert not overflowing(t), overflowing(t)
    assert tr.language == lang
    if lang != "en":
        assert weak != "Choose 6 to 12 digits, not a run like 123456 or 111111."  # translated
    before = len(spy_threads)
    assert attempt(k, "1234", "246813", "246813") == \
        tr._("The technician PIN is changed. Use the new PIN from now on.")
    assert t.pin_ok
    k.shot(f"{lang}-technician-change-pin-done")
    assert len(spy_threads) > before and spy_threads
    assert all(thread is not threading.main_thread() for thread in spy_threads)  # never on the Kivy thread

    config = app.service.config
    stored = json.loads(config.settings_file.read_text())["technician_pin_hash"]
    assert verify_pin("246813", stored) and stored == config.technician_pin_hash == app.kiosk_config.technician_pin_hash
    k.tap(t.ids.exit)
    assert k.pump(lambda: app.sm.current == "attract")
    unlock(k, "1234")  # the old PIN no longer opens it
    assert k.pump(lambda: app.pin.message and not app.pin.busy)
    assert app.sm.current == "pin"
    k.tap(app.pin.ids.cancel)
    assert k.pump(lambda: app.sm.current == "attract")
    unlock(k, "246813")
    assert k.pump(lambda: app.sm.current == "technician")
    restarted = load_config(config.data_dir / "none.toml", environ={}, overrides={"data_dir": config.data_dir})
    assert verify_pin("246813", restarted.technician_pin_hash)  # from the device settings, not a config file
