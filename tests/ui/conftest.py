"""The UI under Xvfb: the real KioskApp, the real service, the real hub on loopback; driven
by real Kivy touch events (UnitTestTouch goes through the window's input dispatch), one
frame at a time. Screenshots of every screen in every language land in build/screenshots/.
"""
import os
import time
from pathlib import Path

os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # no sound card under Xvfb: a silent mixer

import pytest  # noqa: E402

SHOTS = Path(os.environ.get("KIOSK_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
STAFF_UID, TECH_UID = "04a1b2c3d4e501", "04a1b2c3d4e502"


@pytest.fixture(scope="session", autouse=True)
def screenshot_dir():
    if SHOTS.is_dir():
        for old in SHOTS.glob("*.png"):
            old.unlink()
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def pytest_terminal_summary(terminalreporter):
    shots = sorted(SHOTS.glob("*.png")) if SHOTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"UI screenshots: {len(shots)} in {SHOTS}")


def walk(widget):
    yield widget
    for child in widget.children:
        yield from walk(child)


def visible(widget) -> bool:
    w = widget
    while w is not None:
        if getattr(w, "opacity", 1) == 0 or (w.size[1] <= 1 and w is not widget.get_root_window()):
            return False
        w = w.parent if w.parent is not w else None
        if w is not None and w.__class__.__name__ == "WindowSDL":
            break
    return True


def texts(widget, only_visible: bool = False):
    return [w.text for w in walk(widget) if isinstance(getattr(w, "text", None), str) and w.text
            and (not only_visible or visible(w))]


class Driver:
    """What a test does to the kiosk: pump frames, tap widgets, present tags, take pictures."""

    def __init__(self, app, reader):
        self.app, self.reader = app, reader

    def pump(self, until=lambda: False, timeout: float = 10.0) -> bool:
        from kivy.base import EventLoop
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            EventLoop.idle()
            if until():
                return True
        return False

    def frames(self, n: int = 3) -> None:
        from kivy.base import EventLoop
        for _ in range(n):
            EventLoop.idle()

    def tap(self, widget, hold: float = 0.0) -> None:
        from kivy.tests.common import UnitTestTouch
        assert widget.get_root_window() is not None, f"{widget} is not on screen"
        self.frames(2)  # let the layout settle: a person taps what they see
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.frames(1)
        if hold:
            self.pump(timeout=hold)
        touch.touch_up()
        self.frames(2)

    def tap_text(self, root, text: str) -> None:
        matches = [w for w in walk(root) if getattr(w, "text", None) == text and hasattr(w, "on_release")]
        assert matches, f"no button {text!r} among {texts(root)}"
        self.tap(matches[0])

    def present(self, read) -> None:
        self.reader.present(read)

    def shot(self, name: str) -> Path:
        from kivy.core.window import Window
        self.frames(3)
        made = Path(Window.screenshot(name=str(SHOTS / f"{name}.png")))
        target = SHOTS / f"{name}.png"
        made.replace(target)
        assert target.stat().st_size > 10_000
        return target


def uid_read(uid: str):
    from drivers.base import UID_ONLY, TagRead
    return TagRead("simulated", UID_ONLY, uid=bytes.fromhex(uid))


@pytest.fixture
def kiosk(enrolled):
    """The kiosk UI on the demo hub (brand Lotus & Linen, store Saigon Centre)."""
    from kivy.clock import Clock

    from ui.app import _configure_kivy
    _configure_kivy(fullscreen=False)
    from drivers.simulated import SimulatedReader
    from kiosk.app import build_service
    from kiosk.staff import hash_pin
    from ui.kiosk_app import KioskApp

    made = []

    def start(**settings):
        reader = SimulatedReader()
        config = enrolled.replace(technician_pin_hash=hash_pin("1234", salt=b"test-salt-16byte"),
                                  **{"idle_warning_s": 20.0, "idle_timeout_s": 30.0, **settings})
        service = build_service(config, reader=reader, dispatch=lambda fn: Clock.schedule_once(lambda dt: fn()))
        app = KioskApp(service)
        app._run_prepare()  # builds the root and opens the window, like App.run() without the loop
        made.append(app)
        driver = Driver(app, reader)
        driver.pump(lambda: app.attract.reader_ok and app.service.reader_status.state.value == "connected", 5)
        return driver

    yield start
    from kivy.base import EventLoop
    for app in made:
        app.stop()
        EventLoop.idle()
