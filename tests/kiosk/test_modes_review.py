"""Review of issue 13, parts 1-3 (the service owns the mode, the router): races between the
tap worker, the UI thread and the hub, as a person would meet them. Through the real
KioskService on the real hub; the router with the recorders of tests/test_router.py. Each
test holds a hub call open (a `Gate`) to make the race happen every time."""
import threading
import time

from drivers.base import UID_ONLY, TagRead
from kiosk import api
from kiosk.app import build_service
from kiosk.results import Mode, TapSeen
from tests.taps import card
from tests.test_router import kiosk, tap  # noqa: F401  (kiosk: the router's fixture, used by name)

STAFF_UID, TECH_UID = "04a1b2c3d4e501", "04a1b2c3d4e502"
STAFF_PIN = "246813"


def badge(uid: str = STAFF_UID) -> TagRead:
    return TagRead("simulated", UID_ONLY, uid=bytes.fromhex(uid))


class Gate:
    """Holds one hub call (those `when` picks) until `release()`: the hub answering late."""

    def __init__(self, hub, name: str, when=lambda *args, **kwargs: True) -> None:
        self.real, self.when = getattr(hub, name), when
        self.asked, self.released = threading.Event(), threading.Event()
        setattr(hub, name, self.call)

    def call(self, *args, **kwargs):
        if self.when(*args, **kwargs):
            self.asked.set()
            self.released.wait(5)  # never hang a failing test
        return self.real(*args, **kwargs)

    def release(self) -> None:
        self.released.set()


def in_thread(fn, *args):
    """`fn(*args)` on another thread, as the tap worker or a UI background worker runs it."""
    results: list = []
    worker = threading.Thread(target=lambda: results.append(fn(*args)), daemon=True)
    worker.start()
    return worker, results


def staff_unlock_posted(method, path, **kwargs) -> bool:
    return method == "POST" and path == "/v1/staff/sessions"


def test_a_shopper_who_pressed_done_before_the_hub_answered_is_not_shown_again(kiosk):
    """Emma taps, her cached list shows at once, she presses Done and walks away; the hub's
    answer arrives a moment later. Her list must not come back up for the next person."""
    router, service, s, clock = kiosk()
    tap(router, service, card(0))  # her view is cached now
    router.end_session("done")
    gate = Gate(service.core.hub, "checkin")
    router.on_result(TapSeen("simulated"))
    worker, results = in_thread(service.handle_tag, card(0))
    assert gate.asked.wait(10)
    assert s.current == "shopper" and s.shopper.calls[-1][2].get("provisional")  # the cached view is up
    router.end_session("done")  # she is gone
    assert s.current == "attract"
    gate.release()
    worker.join(10)
    router.on_result(results[0])
    assert s.current == "attract", "the shopper's wishlist came back on screen after she pressed Done"
    assert service.session_view is None and service.mode == Mode.ATTRACT


def test_staff_locking_while_a_tapped_shopper_is_looked_up_leaves_the_kiosk_usable(kiosk):
    """Staff tap Emma's card, then press Lock before the hub answers. The kiosk must be back in
    attract mode: today the late answer turns it into shopper mode with no visit, and the
    technician's button does nothing until some shopper's visit ends."""
    router, service, s, clock = kiosk()
    tap(router, service, badge())
    router.submit_pin(STAFF_PIN)
    assert s.current == "staff" and service.mode == Mode.STAFF
    gate = Gate(service.core.hub, "checkin")
    worker, results = in_thread(service.handle_tag, card(0))
    assert gate.asked.wait(10)
    router.to_attract()  # Lock
    gate.release()
    worker.join(10)
    router.on_result(results[0])
    assert service.mode == Mode.ATTRACT and service.session_view is None, service.mode
    router.technician_entry()
    assert s.current == "pin", "the technician's button did nothing"


def test_a_lookup_answered_after_staff_left_is_not_recorded_under_their_name(hub, enrolled):
    """The same race, with the hub's lock of the staff member not run yet (the UI's two
    background workers busy with the slow hub): the service was reset, so the late answer must
    not record a staff_lookup under the staff member who left, nor hand Emma's list on."""
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(badge())
        assert service.desk.unlock(STAFF_PIN).ok and service.mode == Mode.STAFF
        gate = Gate(service.core.hub, "checkin")
        worker, results = in_thread(service.handle_tag, card(0))
        assert gate.asked.wait(10)
        service.reset()  # what the router's to_attract does first, on the UI thread
        gate.release()
        worker.join(10)
        lookups = [e for e in service.outbox.pending_for("shopper_id", "shopper-00") if e["type"] == api.STAFF_LOOKUP]
        assert not lookups, "a staff lookup was recorded after staff mode was left"
        assert getattr(results[0], "view", None) is None, "Emma's wishlist was handed to the staff screen"
        assert service.mode == Mode.ATTRACT
    finally:
        service.stop()


def test_a_late_staff_pin_does_not_unlock_under_the_next_persons_pin_pad(hub, enrolled):
    """Mai types her PIN and walks away (Cancel) while the hub checks it; a technician then
    presses the button and gets the PIN pad. Mai's late answer must not open staff mode as Mai
    under the technician's PIN pad (a PIN typed after its person left unlocks nothing)."""
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(badge())
        assert service.mode == Mode.PIN
        gate = Gate(service.core.hub, "request", when=staff_unlock_posted)
        worker, results = in_thread(service.desk.unlock, STAFF_PIN)
        assert gate.asked.wait(10)
        service.reset()  # Mai cancelled
        assert service.ask_pin()  # the technician's button: a new PIN prompt, for the technician PIN
        gate.release()
        worker.join(10)
        late = results[0]
        assert not late.ok, "Mai's PIN, typed on her own prompt, unlocked the technician's prompt"
        assert service.mode == Mode.PIN and service.desk.staff is None
    finally:
        service.stop()


def test_a_cancelled_unlock_leaves_no_staff_session_open_at_the_hub(hub, enrolled):
    """The hub said yes after Mai cancelled: the kiosk opens nothing (right), but the hub still
    holds Mai unlocked on this kiosk for the session's lifetime (lookups and staff_lookup events
    from this kiosk's token count as hers). The kiosk must lock it at the hub too."""
    service = build_service(enrolled, with_reader=False)
    try:
        service.handle_tag(badge())
        gate = Gate(service.core.hub, "request", when=staff_unlock_posted)
        worker, results = in_thread(service.desk.unlock, STAFF_PIN)
        assert gate.asked.wait(10)
        service.reset()  # Mai cancelled
        gate.release()
        worker.join(10)
        assert not results[0].ok and service.mode == Mode.ATTRACT
        deadline = time.monotonic() + 3  # a background lock may take a moment
        while time.monotonic() < deadline:
            live = hub.store.one("SELECT count(*) FROM staff_sessions WHERE expires_at > ?", (time.time(),))[0]
            if not live:
                break
            time.sleep(0.05)
        assert live == 0, "the hub still holds the staff member unlocked on this kiosk"
    finally:
        service.stop()


def test_a_badge_on_the_pin_pad_is_read_as_nothing_and_the_pad_says_what_to_do(kiosk, enrolled):
    """A kiosk with no technician PIN: the PIN pad says so. A tap on the PIN pad records nothing
    (the service cannot tell a badge from a shopper's card without a check-in at the hub), so the
    pad must not send people to the reader: it tells them to press Cancel first, and says so
    again when they tap anyway. Before, a badge tapped here asked for that badge's PIN, and a
    shopper's card tapped here was a visit at the hub."""
    router, service, s, clock = kiosk(enrolled)
    assert not service.config.technician_pin_hash
    router.technician_entry()
    assert s.current == "pin"
    router.submit_pin("135790")
    assert s.pin.told("refused")[-1][0].code == "no_local_pin"
    depth = service.outbox.depth()
    tap(router, service, badge(TECH_UID))
    assert s.pin.told("tap_ignored") and service.mode == Mode.PIN and service.desk.badge is None
    assert service.outbox.depth() == depth and s.current == "pin"
    router.to_attract()  # Cancel
    tap(router, service, badge(TECH_UID))
    assert s.current == "pin" and s.pin.told("ask")[-1] == ("technician", "Ivan (technician)")
