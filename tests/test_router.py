"""The router without a window (issue 13, part 2): the real KioskService on the real hub, the
router's screens replaced by recorders, its clock by one a test moves by hand, its background
by a call made at once. What a person would see is what the router tells each screen."""
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.base import UID_ONLY, TagRead
from kiosk.app import build_service, open_service
from kiosk.config import load_config
from kiosk.results import Mode, OnlineChanged, ReaderChanged, SessionEnded, TapSeen
from kiosk.staff import hash_pin
from tests.taps import card, product
from ui.router import TECHNICIAN_IDLE_S, Router

ROOT = Path(__file__).resolve().parents[1]
STAFF_UID = "04a1b2c3d4e501"
TECH_PIN = "135790"


class Screen:
    """A screen that records what it is told; properties set on it are kept as attributes."""

    def __init__(self, name):
        self.name, self.calls = name, []
        self.guest = self.active = False

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def record(*args, **kwargs):
            self.calls.append((attr, args, kwargs))
            if self.name == "overlay":
                self.active = attr == "show"
        return record

    def told(self, method):
        return [args for name, args, _ in self.calls if name == method]


class Screens:
    def __init__(self):
        for name in ("attract", "shopper", "pin", "staff", "technician", "overlay"):
            setattr(self, name, Screen(name))
        self.current, self.beeps, self.forgotten = "attract", 0, 0

    def go(self, name):
        self.current = name

    def beep(self):
        self.beeps += 1

    def forget_pictures(self):
        self.forgotten += 1

    def screenshot(self, path):
        pass


class Clock:
    def __init__(self):
        self.now, self.events = 0.0, []

    def schedule(self, seconds, fn):
        event = type("Event", (), {"cancelled": False})()
        event.cancel = lambda: setattr(event, "cancelled", True)
        self.events.append((self.now + seconds, fn, event))
        return event

    def advance(self, seconds):
        self.now += seconds
        due = [e for e in self.events if e[0] <= self.now and not e[2].cancelled]
        self.events = [e for e in self.events if e not in due]
        for _, fn, _ in sorted(due, key=lambda e: e[0]):
            fn()


class Inline:
    def run(self, fn, *args, then=None, keep=False):
        result = fn(*args)
        if then is not None:
            then(result)

    def forget(self):
        pass


class Words:
    language = "en"

    def _(self, text):
        return text

    def ngettext(self, one, many, n):
        return one if n == 1 else many

    def switch(self, code):
        self.language = code


@pytest.fixture
def kiosk(hub, enrolled):
    made = []

    def start(config=None, service=None):
        config = config or enrolled.replace(technician_pin_hash=hash_pin(TECH_PIN, salt=b"test-salt-16byte"))
        service = service or build_service(config, with_reader=False)
        screens, clock = Screens(), Clock()
        router = Router(service, screens, clock, Inline(), Words())
        service.subscribe(router.on_result)
        made.append(service)
        return router, service, screens, clock

    yield start
    for service in made:
        service.stop()


def tap(router, service, read):
    """A tap as the reader thread and the tap worker deliver it: TapSeen, then the result."""
    router.on_result(TapSeen("simulated"))
    router.on_result(service.handle_tag(read))


def test_a_shopper_tap_shows_the_wishlist_and_idle_takes_every_trace_away(kiosk):
    router, service, s, clock = kiosk()
    router.on_result(TapSeen("simulated"))
    assert s.beeps == 1 and s.overlay.told("show") == [("One moment...",)]
    clock.advance(0.6)
    assert s.overlay.told("show")[-1] == ("Looking up your wishlist...",)
    router.on_result(service.handle_tag(card(0)))
    assert s.current == "shopper" and not s.overlay.active
    view = s.shopper.told("show")[-1][0]
    assert view.display_name == "Emma"
    clock.advance(service.config.idle_warning_s)
    assert s.shopper.idle_warning == "Still there? Touch the screen to keep your wishlist open"
    router.touched()  # a touch keeps it open
    clock.advance(service.config.idle_timeout_s - 1)
    assert s.current == "shopper"
    clock.advance(1)
    assert s.current == "attract" and service.mode == Mode.ATTRACT and service.session_view is None
    assert s.shopper.told("clear") and s.forgotten == 1


def test_a_product_tap_in_a_visit_is_saved_with_undo_and_outside_one_says_tap_first(kiosk):
    router, service, s, clock = kiosk()
    service.sync_now()
    tap(router, service, product(3)[1])
    assert s.attract.told("show_message")[-1] == ("Tap your card or phone first, then tap products to save them",)
    tap(router, service, card(0))
    tap(router, service, product(3)[1])
    title, token, already = s.shopper.told("saved")[-1]
    assert token and not already
    router.undo(token)
    assert s.shopper.told("show_toast")[-1] == ("Removed from your wishlist",)


def test_the_pin_screen_ignores_a_shopper_card_and_locks_after_its_idle_time(kiosk):
    router, service, s, clock = kiosk()
    router.technician_entry()
    assert s.current == "pin" and service.mode == Mode.PIN and s.pin.told("ask") == [("technician", "")]
    depth = service.outbox.depth()
    tap(router, service, card(0))
    assert s.current == "pin" and not s.overlay.active and service.outbox.depth() == depth
    router.submit_pin("000000")
    assert s.pin.told("refused")[-1][0].code == "wrong_pin"
    clock.advance(service.config.staff_idle_timeout_s)
    assert s.current == "attract" and service.mode == Mode.ATTRACT
    router.submit_pin(TECH_PIN)  # typed too late: the screen is gone, nothing opens
    assert s.current == "attract" and service.mode == Mode.ATTRACT


def test_the_technician_unlocks_tests_the_reader_and_is_locked_out_after_two_minutes(kiosk):
    router, service, s, clock = kiosk()
    router.technician_entry()
    router.submit_pin(TECH_PIN)
    assert s.current == "technician" and service.mode == Mode.TECHNICIAN
    config, enrolled, hub_url = s.technician.told("begin")[-1]
    assert enrolled and hub_url == service.hub_url
    router.technician_tab("reader")
    assert service.mode == Mode.READER_TEST
    router.technician_tab("health")
    assert service.mode == Mode.TECHNICIAN and s.technician.told("show_health")[-1][0].hub_reachable
    router.change_pin(TECH_PIN, "802468", "802468")
    assert s.technician.told("pin_changed")[-1][0].ok
    clock.advance(TECHNICIAN_IDLE_S)
    assert s.current == "attract" and service.mode == Mode.ATTRACT


def test_a_staff_badge_in_a_visit_ends_it_and_staff_find_and_tap_shoppers(kiosk, hub):
    router, service, s, clock = kiosk()
    tap(router, service, card(0))
    tap(router, service, TagRead("simulated", UID_ONLY, uid=bytes.fromhex(STAFF_UID)))
    assert s.current == "pin" and s.shopper.told("clear") and service.session_view is None
    router.submit_pin("246813")
    assert s.current == "staff" and s.staff.told("begin") == [("Mai (staff)",)]
    router.staff_search("Emma")
    found = s.staff.told("show_results")[-1][0]
    assert found.shoppers and found.shoppers[0][1] == "Emma"
    tap(router, service, card(0))
    assert s.staff.told("show_shopper")[-1][0].view.display_name == "Emma"
    tap(router, service, product(3)[1])
    assert s.staff.status.endswith("on the shelf here")
    router.to_attract()
    assert service.mode == Mode.ATTRACT and service.desk.staff is None


def test_service_news_reaches_the_attract_screen_and_a_revoked_visit_ends(kiosk):
    router, service, s, clock = kiosk()
    router.on_result(ReaderChanged(False, "disconnected"))
    router.on_result(OnlineChanged(False))
    assert s.attract.reader_ok is False and s.attract.online is False
    tap(router, service, card(0))
    service.end_session("revoked")  # what the sync worker does when the hub says the card is revoked
    assert s.current == "attract" and service.mode == Mode.ATTRACT
    router.on_result(SessionEnded("revoked"))  # a late copy changes nothing
    assert s.current == "attract"


def test_a_fresh_kiosk_opens_on_set_up_and_enrolls_there(kiosk, hub, tmp_path):
    config = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path / "fresh", "reader": "simulated",
                                                                        "hub_timeout_s": 1.0})
    router, service, s, clock = kiosk(service=open_service(config))
    tap(router, service, card(0))
    assert s.attract.told("show_message")[-1] == (
        "This kiosk cannot show your profile right now. Please ask staff for help",)
    router.technician_entry()
    assert s.current == "technician" and s.technician.told("begin")[-1][1] is False
    router.enroll(hub.url, "DEMO")
    assert s.technician.told("enrolled_result")[-1][0].ok
    assert s.attract.enrolled is True and service.enrolled
    router.to_attract()
    tap(router, service, card(0))
    assert s.current == "shopper"


def test_the_router_needs_no_kivy():
    out = subprocess.run([sys.executable, "-c", "import ui.router, sys; print(sorted(m for m in sys.modules "
                          "if m.split('.')[0] == 'kivy'))"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
