"""The kiosk's router: which screen shows what, when, for how long. No Kivy in here.

    router = Router(service, screens, clock, background, tr)
    service.subscribe(router.on_result)        # results arrive on the UI thread
    router.technician_entry()                  # what a person did, as the screens report it

The service owns the mode and decides what a tap means (kiosk/service.py); the router turns
its results and people's touches into screen changes, holds the idle timers and the staff and
technician flows, and runs every blocking service call through `background` (results come back
on the UI thread). It needs, all injected so tests run it without a window:

- `screens`: `attract`, `shopper`, `pin`, `staff`, `technician`, `overlay` (the screen objects'
  own methods and properties), and `go(name)`, `beep()`, `forget_pictures()`, `screenshot()`;
- `clock.schedule(seconds, fn)` returning something with `cancel()`;
- `background.run(fn, *args, then=..., keep=...)` and `background.forget()`;
- `tr`: `_`, `ngettext`, `switch(code)` and `language` (ui/i18n.py's `tr` in the app).

Every way out goes through `to_attract()`, which clears every trace of the person who used
the kiosk: views, widgets, pictures, staff unlock, language.
"""
from __future__ import annotations

import logging
import time

from kiosk.catalog import screen_language, title_in
from kiosk.results import (BadgeResult, ErrorResult, Mode, OnlineChanged, ProductResult, ProvisionResult,
                           ReaderChanged, SessionEnded, ShopperResult, StaffLookupResult, StaffResult, TapIgnored,
                           TapSeen)

log = logging.getLogger(__name__)
PROGRESS_AFTER_S = 0.6
TECHNICIAN_IDLE_S = 120.0


def error_text(tr, code: str) -> str:
    """What the person sees for an ErrorResult: what happened and what to do next."""
    if code == "hold_still":
        return tr._("Hold your card still for a second, then try again")
    if code == "unknown_card":
        return tr._("This card is not registered yet. Staff can help you set it up")
    if code == "refused":
        return tr._("We could not check this card or phone. Please ask staff")
    if code == "storage":
        return tr._("We could not save that. Please ask staff for help")
    if code in ("device_refused", "device_revoked", "not_enrolled"):
        return tr._("This kiosk cannot show your profile right now. Please ask staff for help")
    return tr._("We could not read that tag. Hold your card flat on the reader and try again")


class Router:
    def __init__(self, service, screens, clock, background, tr, screenshot_path: str | None = None) -> None:
        self.service, self.screens, self.clock, self.background, self.tr = service, screens, clock, background, tr
        self.screenshot_path = screenshot_path
        self.language_chosen = False  # the shopper chose a language here: their profile's does not override it
        self.tap_seen_at = 0.0
        self._idle: list = []
        self._progress = None

    @property
    def mode(self) -> Mode:
        return self.service.mode

    @property
    def config(self):
        return self.service.config

    # -- results from the service (UI thread) -----------------------------------------
    def on_result(self, result) -> None:
        try:
            self._route(result)
        except Exception:  # a screen bug must never take the kiosk down in front of a shopper
            log.exception("showing a result failed; back to the attract screen")
            self.to_attract()

    def _route(self, result) -> None:
        s, mode = self.screens, self.mode
        if isinstance(result, TapSeen):
            self._tap_seen()
        elif isinstance(result, OnlineChanged):
            s.attract.online = result.online
        elif isinstance(result, ReaderChanged):
            s.attract.reader_ok = result.ok
        elif isinstance(result, SessionEnded):
            if s.current == "shopper":  # revoked, erased, refused at the hub: the visit is over
                self.to_attract()
        elif isinstance(result, TapIgnored):
            self._hide_progress()
            if s.current == "pin":
                s.pin.tap_ignored()
        elif isinstance(result, BadgeResult):
            self._hide_progress()
            self._show_pin(result.role, result.display_name, badge=True)
        elif isinstance(result, StaffLookupResult):
            if mode == Mode.STAFF:
                s.staff.show_shopper(result)
                self._restart_idle()
        elif mode == Mode.STAFF:
            self._staff_result(result)
        elif isinstance(result, ShopperResult):
            self._shopper_result(result)
        elif isinstance(result, ProductResult):
            self._product_result(result)
        elif isinstance(result, ErrorResult):
            self._hide_progress()
            if s.current == "shopper":
                s.shopper.show_toast(error_text(self.tr, result.code))
                self._restart_idle()
            else:
                s.attract.show_message(error_text(self.tr, result.code))

    def _tap_seen(self) -> None:
        s, tr = self.screens, self.tr
        self.tap_seen_at = time.perf_counter()
        s.beep()
        if s.current == "attract":
            s.overlay.show(tr._("One moment..."))
            if self._progress:
                self._progress.cancel()
            self._progress = self.clock.schedule(
                PROGRESS_AFTER_S, lambda: s.overlay.active and s.overlay.show(tr._("Looking up your wishlist...")))
        elif s.current == "shopper":
            s.shopper.show_toast(tr._("Reading the tag..."), seconds=3)
            self._restart_idle()
        elif s.current == "staff":
            s.staff.status = tr._("Reading the tag...")

    def _hide_progress(self) -> None:
        self.screens.overlay.hide()
        if self._progress:
            self._progress.cancel()
            self._progress = None

    def _shopper_result(self, result: ShopperResult) -> None:
        s = self.screens
        self._hide_progress()
        if self.mode not in ((Mode.ATTRACT, Mode.SHOPPER) if result.provisional else (Mode.SHOPPER,)):
            return  # the visit is over (the person left, a PIN screen opened) before this came
        view = result.view
        if s.current != "shopper" and not self.language_chosen and view.locale:
            # the shopper's own language (th-TH: th), unless they just chose one here
            self.tr.switch(screen_language(view.locale, self.config.languages, self.tr.language))
        s.shopper.show(view, guest=result.guest, provisional=result.provisional)
        s.go("shopper")
        self._restart_idle()
        if self.screenshot_path and not result.provisional:
            self.clock.schedule(0.5, lambda: s.screenshot(self.screenshot_path))

    def _product_result(self, result: ProductResult) -> None:
        s, tr = self.screens, self.tr
        self._hide_progress()
        if result.view is not None and s.current == "shopper":
            s.shopper.show(result.view, guest=s.shopper.guest)
            s.shopper.saved(title_in(result, tr.language) or tr._("Saved product"), result.undo_token,
                            result.already_saved)
            self._restart_idle()
        elif s.current == "shopper":
            s.shopper.show_toast(tr._("Tap your card or phone again, then tap products to save them"))
        else:
            s.attract.show_message(tr._("Tap your card or phone first, then tap products to save them"))

    def _staff_result(self, result) -> None:
        s, tr = self.screens, self.tr
        if isinstance(result, ProductResult):
            s.staff.status = "%s: %s" % (title_in(result, tr.language) or result.gtin, tr.ngettext(
                "%(n)d on the shelf here", "%(n)d on the shelf here", result.available_here) % {"n": result.available_here})
        elif isinstance(result, ErrorResult):
            s.staff.status = error_text(tr, result.code)
        self._restart_idle()

    # -- what the shopper does -----------------------------------------------------------
    def answer_sharing(self, grant: bool) -> None:
        self.background.run(self.service.set_sharing, grant, then=self._sharing_answered)
        self._restart_idle()

    def _sharing_answered(self, result) -> None:
        if isinstance(result, ShopperResult) and self.mode == Mode.SHOPPER:
            self.screens.shopper.show(result.view, guest=self.screens.shopper.guest)

    def undo(self, token: str) -> None:
        self.background.run(self.service.undo, token, then=self._undone)
        self._restart_idle()

    def _undone(self, result) -> None:
        if isinstance(result, ShopperResult) and self.mode == Mode.SHOPPER:
            self.screens.shopper.show(result.view, guest=self.screens.shopper.guest)
            self.screens.shopper.show_toast(self.tr._("Removed from your wishlist"), seconds=4)

    def choose_language(self, code: str) -> None:
        self.language_chosen = True
        self.tr.switch(code)

    def end_session(self, reason: str) -> None:
        """The shopper is done (or idle): the service ends the visit and says so."""
        self.service.end_session(reason, publish=False)
        self.to_attract()

    def touched(self) -> None:
        if self.screens.current != "attract":
            self._restart_idle()

    # -- staff and technician -------------------------------------------------------------
    def technician_entry(self) -> None:
        """The technician's button on the attract screen: the PIN, or Set up on a fresh kiosk."""
        if self.service.open_technician():
            self._open_technician()
        elif self.service.ask_pin():
            self._show_pin("technician")

    def _show_pin(self, role: str, who: str = "", badge: bool = False) -> None:
        s = self.screens
        self._release_staff()  # a badge tapped in staff mode: the one before is locked
        s.shopper.clear()
        s.pin.ask(role, who, badge=badge)
        s.go("pin")
        self._restart_idle()

    def submit_pin(self, pin: str) -> None:
        self.background.run(self.service.desk.unlock, pin, then=self._unlocked)

    def _unlocked(self, result: StaffResult) -> None:
        s = self.screens
        if s.current != "pin":
            return
        if not result.ok:
            if result.code == "cancelled":
                self.to_attract()
            else:
                s.pin.refused(result)
            return
        s.pin.clear()
        if result.role == "technician":
            self._open_technician()
        else:
            s.staff.begin(result.display_name)
            s.go("staff")
            self._restart_idle()

    def staff_search(self, query: str) -> None:
        self.background.run(self.service.desk.staff_search, query, then=self.screens.staff.show_results)
        self._restart_idle()

    def staff_pick(self, shopper_id: str) -> None:
        self.background.run(self.service.desk.staff_lookup, shopper_id, then=self.screens.staff.show_shopper)
        self._restart_idle()

    def _open_technician(self) -> None:
        s = self.screens
        s.technician.begin(self.config, self.service.enrolled, self.service.hub_url)
        s.go("technician")
        self._restart_idle()

    def technician_tab(self, tab: str) -> None:
        desk = self.service.desk
        if tab == "reader" and self.service.enrolled:
            desk.start_reader_test(self.screens.technician.add_read)
        else:
            desk.stop_reader_test()
        if tab == "health":
            self.refresh_health()
        self._restart_idle()

    def refresh_health(self) -> None:
        if self.service.enrolled:
            self.screens.technician.busy = True
            self.background.run(self.service.desk.check_health, then=self.screens.technician.show_health)

    def sync_now(self) -> None:
        if self.service.enrolled:
            self.screens.technician.busy = True
            self.background.run(self.service.sync_now, then=lambda sent: self.refresh_health())

    def enroll(self, hub_url: str, code: str) -> None:
        """Set up on the technician screen: one service verb enrolls and hands the reader over."""
        self.background.run(self.service.reenroll, hub_url, code, then=self._enrolled, keep=True)

    def _enrolled(self, result: ProvisionResult) -> None:
        s = self.screens
        s.technician.enrolled_result(result)
        if result.ok:
            s.attract.enrolled = True
            s.technician.enrolled = True

    def save_settings(self, values: dict) -> None:
        def save():
            try:
                return self.service.desk.update_settings(**values)
            except ValueError as exc:
                return exc

        def done(result) -> None:
            self.screens.technician.saved(str(result) if isinstance(result, ValueError) else "")
        self.background.run(save, then=done)

    def change_pin(self, old: str, new: str, again: str) -> None:
        """scrypt is slow: hashed off the UI thread; the verdict comes back to the screen."""
        self.background.run(self.service.desk.change_technician_pin, old, new, again,
                            then=self.screens.technician.pin_changed, keep=True)

    def _release_staff(self) -> None:
        """Staff who left are locked on this kiosk already (service.reset); the hub hears it here."""
        if self.service.desk.leaving is not None:
            self.background.run(self.service.desk.lock_staff, keep=True)

    # -- sessions ---------------------------------------------------------------------------
    def _restart_idle(self) -> None:
        s, tr, cfg = self.screens, self.tr, self.config
        for event in self._idle:
            event.cancel()
        s.shopper.idle_warning = s.staff.idle_warning = ""
        screen = s.current
        if screen == "shopper":
            self._idle = [
                self.clock.schedule(cfg.idle_warning_s, lambda: setattr(s.shopper, "idle_warning", tr._(
                    "Still there? Touch the screen to keep your wishlist open"))),
                self.clock.schedule(cfg.idle_timeout_s, lambda: self.end_session("idle"))]
        elif screen in ("staff", "pin"):
            self._idle = [
                self.clock.schedule(cfg.staff_idle_timeout_s * 2 / 3, lambda: setattr(s.staff, "idle_warning", tr._(
                    "Locking soon: touch the screen to stay"))),
                self.clock.schedule(cfg.staff_idle_timeout_s, self.to_attract)]
        elif screen == "technician":
            self._idle = [self.clock.schedule(TECHNICIAN_IDLE_S, self.to_attract)]
        else:
            self._idle = []

    def cancel_timers(self) -> None:
        for event in self._idle:
            event.cancel()
        self._idle = []
        self._hide_progress()

    def to_attract(self) -> None:
        """Back to the attract loop with nothing of the last person left: widgets, views,
        pictures in memory, staff unlock, language."""
        s = self.screens
        self.cancel_timers()
        self.background.forget()
        self.service.reset()
        self._release_staff()
        for screen in (s.shopper, s.pin, s.staff, s.technician):
            screen.clear()
        self.language_chosen = False
        self.tr.switch(self.config.language)
        s.go("attract")
        s.forget_pictures()
