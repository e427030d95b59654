"""KioskApp: builds the screens, subscribes to the service, routes results to screens.

It only wires: each screen says what the person did (Kivy events), the service decides, and
results come back through Clock. Blocking service calls run in `ui.worker.Background`.
Modes: attract -> shopper | pin -> staff | technician; every way out goes through
`to_attract()`, which clears every trace of the person who used the kiosk.
"""
from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

from kivy.app import App
from kivy.cache import Cache
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition

from kiosk import errors as E
from kiosk.app import build_service
from kiosk.catalog import screen_language, title_in
from kiosk.results import BadgeResult, ErrorResult, ProductResult, SessionEnded, ShopperResult, TapSeen
from kiosk.sync import SyncStatus
from kiosk.watchdog import Watchdog
from ui import theme
from ui.app import KV_DIR
from ui.i18n import tr
from ui.screens.attract import AttractScreen
from ui.screens.pin import PinScreen
from ui.screens.shopper import ShopperScreen
from ui.screens.staff import StaffScreen
from ui.screens.technician import TechnicianScreen
from ui.staff_flow import StaffFlow
from ui.widgets import KScreenManager, TapOverlay, forget_stale, start_refreshing
from ui.worker import Background, ImageLoader

log = logging.getLogger(__name__)
KV_FILES = ("widgets", "attract", "shopper", "pin", "staff", "technician")
SOUND = Path(__file__).parent / "sounds" / "tap.wav"
PROGRESS_AFTER_S = 0.6
TECHNICIAN_IDLE_S = 120.0
FREEZE_AFTER_S = 1.0
WATCHDOG_PING_S = 10.0  # packaging/nfc-kiosk.service has WatchdogSec=30
_kv_loaded = False


def error_text(code: str) -> str:
    """What the person sees for an ErrorResult: what happened and what to do next."""
    if code == "hold_still":
        return tr._("Hold your card still for a second, then try again")
    if code == "unknown_card":
        return tr._("This card is not registered yet. Staff can help you set it up")
    if code == "refused":
        return tr._("We could not check this card or phone. Please ask staff")
    if code == "storage":
        return tr._("We could not save that. Please ask staff for help")
    if code in ("device_refused", "device_revoked"):
        return tr._("This kiosk cannot show your profile right now. Please ask staff for help")
    return tr._("We could not read that tag. Hold your card flat on the reader and try again")


class KioskApp(StaffFlow, App):
    title = "NFC kiosk"
    use_kivy_settings = False

    def __init__(self, config, demo: bool = False, max_seconds: float | None = None, screenshot: str | None = None,
                 service=None, locked_down: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kiosk_config = config
        self.demo = demo
        self.max_seconds = max_seconds
        self.screenshot_path = screenshot
        self.service = service
        self.locked_down = locked_down
        self.mode = "attract"
        self._idle_events: list = []
        self._badge: BadgeResult | None = None
        self._language_chosen = False
        self._progress_event = None
        self.tap_seen_at = 0.0
        self.sound = None

    # -- wiring ------------------------------------------------------------------
    def build(self):
        global _kv_loaded
        theme.register_fonts()
        if not _kv_loaded:
            for name in KV_FILES:
                Builder.load_file(str(KV_DIR / f"{name}.kv"))
            _kv_loaded = True
        self.dispatch_ui = lambda fn: Clock.schedule_once(lambda dt: fn())
        self.background = Background(self.dispatch_ui)
        if self.service is None:
            try:
                self.service = build_service(self.kiosk_config, dispatch=self.dispatch_ui)
            except E.NotEnrolled:
                log.warning("this kiosk is not enrolled: only the technician screen can help")
            except E.ConfigError as exc:  # e.g. a device file that names no hub: a technician re-enrolls
                log.error("the kiosk cannot start: %s", exc.detail)
        if self.service is not None:
            self.kiosk_config = self.service.config
            self.service.subscribe(self.on_result)
        tr.switch(self.kiosk_config.language)
        images = ImageLoader(self, self.background)
        self.sm = KScreenManager(transition=NoTransition())
        self.attract = AttractScreen(name="attract", enrolled=self.service is not None)
        self.shopper = ShopperScreen(name="shopper", images=images)
        self.pin = PinScreen(name="pin")
        self.staff = StaffScreen(name="staff", images=images)
        self.technician = TechnicianScreen(name="technician")
        for screen in (self.attract, self.shopper, self.pin, self.staff, self.technician):
            self.sm.add_widget(screen)
        self._wire_screens()
        self.sm.bind(current=self.paint_background)
        self.paint_background()
        start_refreshing()  # labels back on the window render (see OnScreenOnly)
        self.overlay = TapOverlay()
        root = FloatLayout()
        for child in (self.sm, self.overlay):  # follow the layout's position (the demo bar sits below it)
            child.pos_hint = {"x": 0, "y": 0}
            root.add_widget(child)
        self._window_bindings = {"on_key_down": self._on_key, "on_touch_down": self._touched,
                                 "on_request_close": self._on_request_close}
        Window.bind(**self._window_bindings)
        if self.locked_down:
            Window.show_cursor = False
            Window.allow_screensaver = False
        self._load_sound()
        self._set_languages(self.kiosk_config.language)
        tr.bind_switch(self._on_language_switched)
        if self.demo and self.service is not None:
            from ui.demo import DemoBar
            return DemoBar.wrap(root, self.service)
        return root

    def _wire_screens(self) -> None:
        self.attract.bind(on_language=lambda s, code: self.choose_language(code),
                          on_technician=lambda s: self.technician_entry())
        self.shopper.bind(on_done=lambda s: self.end_session("done"), on_sharing=lambda s, g: self.answer_sharing(g),
                          on_undo=lambda s, token: self.undo(token), on_language=lambda s, code: self.choose_language(code))
        self.pin.bind(on_pin=lambda s, pin: self.submit_pin(pin), on_cancel=lambda s: self.to_attract())
        self.staff.bind(on_search=lambda s, q: self.background.run(self.service.staff_search, q,
                                                                    then=self.staff.show_results),
                        on_pick=lambda s, sid: self.background.run(self.service.staff_lookup, sid,
                                                                    then=self.staff.show_shopper),
                        on_lock=lambda s: self.to_attract())
        t = self.technician
        t.bind(on_tab_chosen=lambda s, tab: self.technician_tab(tab), on_refresh=lambda s: self.refresh_health(),
               on_sync=lambda s: self.sync_now(), on_enroll=lambda s, url, code: self.provision(url, code),
               on_save=lambda s, values: self.save_settings(values), on_exit=lambda s: self.to_attract())

    def paint_background(self, *args) -> None:
        """Each screen's background is the window's clear colour, not a full-screen rectangle:
        under a software renderer every blended full-screen fill costs several ms a frame."""
        Window.clearcolor = theme.NIGHT if self.sm.current == "attract" else theme.PAPER

    def on_start(self) -> None:
        if self.service is not None:
            self.service.start()
        # systemd's watchdog is pinged from the UI clock: a frozen screen stops the pings
        self.watchdog = Watchdog(self.kiosk_config.notify_socket)
        if self.watchdog.active:
            self.watchdog.ready()
            Clock.schedule_interval(lambda dt: self.watchdog.ping(), WATCHDOG_PING_S)
        if self.max_seconds:
            Clock.schedule_once(lambda dt: self.stop(), self.max_seconds)
        Clock.schedule_once(self._freeze_startup_objects, FREEZE_AFTER_S)

    def _freeze_startup_objects(self, dt=None) -> None:
        """Everything built at start (Kivy, the screens, the service) lives as long as the
        process: moved out of the collector's sight, a full collection walks only what a session
        made (about 100 ms -> 13 ms), so neither to_attract() nor an automatic collection in the
        middle of a tap stalls a frame. Done once the attract screen is up, not before it."""
        gc.collect()
        gc.freeze()

    def on_stop(self) -> None:
        for event in self._idle_events:  # a stopped kiosk's idle timers must not fire later
            event.cancel()
        self._idle_events = []
        if getattr(self, "watchdog", None):
            self.watchdog.stopping()
        Window.unbind(**getattr(self, "_window_bindings", {}))
        forget_stale()
        if self._on_language_switched in tr.listeners:
            tr.listeners.remove(self._on_language_switched)
        if self.service:
            self.service.stop()
        if getattr(self, "background", None):
            self.background.shutdown()

    def open_settings(self, *largs) -> None:
        """Kivy's settings panel (F1) never opens on a kiosk."""

    # image lookups for the screens, through the current service (it may be rebuilt)
    def image_file(self, path: str):
        return self.service.image_file(path) if self.service else None

    def fetch_image(self, path: str):
        return self.service.fetch_image(path) if self.service else None

    # -- results from the service (main thread, via Clock) ------------------------
    def on_result(self, result) -> None:
        try:
            self._route(result)
        except Exception:  # a screen bug must never take the kiosk down in front of a shopper
            log.exception("showing a result failed; back to the attract screen")
            self.to_attract()

    def _route(self, result) -> None:
        mode = self.mode
        if isinstance(result, TapSeen):
            self._tap_seen()
        elif isinstance(result, SyncStatus):
            self.attract.online = result.online
        elif hasattr(result, "state") and hasattr(result, "reader"):  # drivers' ReaderStatus
            self.attract.reader_ok = result.state.value in ("connected", "starting")
        elif isinstance(result, SessionEnded):
            if mode == "shopper":
                self.to_attract()
        elif isinstance(result, BadgeResult):
            self._hide_progress()
            if mode != "technician":
                self.ask_pin(result.role, result.display_name, result)
        elif mode == "technician" or mode == "pin":
            self._hide_progress()
            if isinstance(result, ShopperResult) and self.service:
                self.service.end_session("ignored", publish=False)  # a card tapped while staff type a PIN
        elif mode == "staff":
            self._staff_result(result)
        elif isinstance(result, ShopperResult):
            self._shopper_result(result)
        elif isinstance(result, ProductResult):
            self._product_result(result)
        elif isinstance(result, ErrorResult):
            self._hide_progress()
            if mode == "shopper":
                self.shopper.show_toast(error_text(result.code))
                self._restart_idle()
            else:
                self.attract.show_message(error_text(result.code))

    def _tap_seen(self) -> None:
        self.tap_seen_at = time.perf_counter()
        self._beep()
        if self.mode == "attract":
            self.overlay.show(tr._("One moment..."))
            if self._progress_event:
                self._progress_event.cancel()
            self._progress_event = Clock.schedule_once(
                lambda dt: self.overlay.active and self.overlay.show(tr._("Looking up your wishlist...")), PROGRESS_AFTER_S)
        elif self.mode == "shopper":
            self.shopper.show_toast(tr._("Reading the tag..."), seconds=3)
            self._restart_idle()
        elif self.mode == "staff":
            self.staff.status = tr._("Reading the tag...")

    def _hide_progress(self) -> None:
        self.overlay.hide()
        if self._progress_event:
            self._progress_event.cancel()
            self._progress_event = None

    def _shopper_result(self, result: ShopperResult) -> None:
        self._hide_progress()
        view = result.view
        if self.mode != "shopper" and not self._language_chosen and view.locale:
            # the shopper's own language (th-TH: th), unless they just chose one here
            tr.switch(screen_language(view.locale, self.kiosk_config.languages, tr.language))
        self.mode = "shopper"
        self.shopper.show(view, guest=result.guest, provisional=result.provisional)
        self.sm.current = "shopper"
        self._restart_idle()
        if self.screenshot_path and not result.provisional:
            Clock.schedule_once(lambda dt: Window.screenshot(name=self.screenshot_path), 0.5)

    def _product_result(self, result: ProductResult) -> None:
        self._hide_progress()
        if result.view is not None and self.mode == "shopper":
            self.shopper.show(result.view, guest=self.shopper.guest)
            self.shopper.saved(title_in(result, tr.language) or tr._("Saved product"), result.undo_token,
                               result.already_saved)
            self._restart_idle()
        elif self.mode == "shopper":
            self.shopper.show_toast(tr._("Tap your card or phone again, then tap products to save them"))
        else:
            self.attract.show_message(tr._("Tap your card or phone first, then tap products to save them"))

    def _staff_result(self, result) -> None:
        if isinstance(result, ShopperResult) and not result.provisional:
            self.background.run(self.service.staff_lookup_session, then=self.staff.show_shopper)
        elif isinstance(result, ProductResult):
            self.staff.status = "%s: %s" % (title_in(result, tr.language) or result.gtin, tr.ngettext(
                "%(n)d on the shelf here", "%(n)d on the shelf here", result.available_here) % {"n": result.available_here})
        elif isinstance(result, ErrorResult):
            self.staff.status = error_text(result.code)
        self._restart_idle()

    # -- what the shopper does ---------------------------------------------------
    def answer_sharing(self, grant: bool) -> None:
        self.background.run(self.service.set_sharing, grant, then=self._sharing_answered)
        self._restart_idle()

    def _sharing_answered(self, result) -> None:
        if isinstance(result, ShopperResult) and self.mode == "shopper":
            self.shopper.show(result.view, guest=self.shopper.guest)

    def undo(self, token: str) -> None:
        self.background.run(self.service.undo, token, then=self._undone)
        self._restart_idle()

    def _undone(self, result) -> None:
        if isinstance(result, ShopperResult) and self.mode == "shopper":
            self.shopper.show(result.view, guest=self.shopper.guest)
            self.shopper.show_toast(tr._("Removed from your wishlist"), seconds=4)

    def choose_language(self, code: str) -> None:
        self._language_chosen = True
        tr.switch(code)

    def _on_language_switched(self, code: str) -> None:
        self._set_languages(code)
        if self.mode == "shopper":
            self.shopper.render()
        elif self.mode == "staff":
            self.staff.refresh()
        elif self.mode == "technician":
            self.technician.render()

    def _set_languages(self, code: str) -> None:
        self.attract.ids.languages.current = code
        self.shopper.ids.languages.current = code

    def end_session(self, reason: str) -> None:
        if self.service:
            self.service.end_session(reason)
        else:
            self.to_attract()

    # -- sessions ----------------------------------------------------------------
    def _touched(self, window, touch) -> None:
        if self.mode != "attract":
            self._restart_idle()

    def _restart_idle(self) -> None:
        for event in self._idle_events:
            event.cancel()
        self.shopper.idle_warning = self.staff.idle_warning = ""
        cfg = self.kiosk_config
        if self.mode == "shopper":
            self._idle_events = [
                Clock.schedule_once(lambda dt: setattr(self.shopper, "idle_warning", tr._(
                    "Still there? Touch the screen to keep your wishlist open")), cfg.idle_warning_s),
                Clock.schedule_once(lambda dt: self.end_session("idle"), cfg.idle_timeout_s)]
        elif self.mode in ("staff", "pin"):
            self._idle_events = [
                Clock.schedule_once(lambda dt: setattr(self.staff, "idle_warning", tr._(
                    "Locking soon: touch the screen to stay")), cfg.staff_idle_timeout_s * 2 / 3),
                Clock.schedule_once(lambda dt: self.to_attract(), cfg.staff_idle_timeout_s)]
        elif self.mode == "technician":
            self._idle_events = [Clock.schedule_once(lambda dt: self.to_attract(), TECHNICIAN_IDLE_S)]
        else:
            self._idle_events = []

    def to_attract(self) -> None:
        """Back to the attract loop with nothing of the last person left: widgets, views,
        pictures in memory, staff unlock, language."""
        for event in self._idle_events:
            event.cancel()
        self._idle_events = []
        self._hide_progress()
        self.background.forget()
        if self.service is not None:
            self.service.stop_reader_test()
            self.service.end_session("reset", publish=False)
            if self.service.staff is not None:
                self.background.run(self.service.lock_staff, keep=True)
        self._badge = None
        for screen in (self.shopper, self.pin, self.staff, self.technician):
            screen.clear()
        for category in ("kv.loader", "kv.image", "kv.texture"):
            Cache.remove(category)
        self.mode = "attract"
        self._language_chosen = False
        tr.switch(self.kiosk_config.language)
        self.sm.current = "attract"
        gc.collect()

    # -- odds and ends -----------------------------------------------------------
    def _load_sound(self) -> None:
        if not SOUND.is_file():
            return
        try:
            from kivy.core.audio import SoundLoader
            self.sound = SoundLoader.load(str(SOUND))
        except Exception:  # no audio device: the kiosk stays silent, never fails
            log.info("no audio for the tap sound", exc_info=True)
            self.sound = None

    def _beep(self) -> None:
        if self.sound is not None:
            try:
                self.sound.stop()
                self.sound.play()
            except Exception:
                self.sound = None

    def _on_key(self, window, key, scancode, codepoint, modifiers):
        if key == 27 or (self.locked_down and key in (282, 292)):  # Escape, F1, F11 never do anything
            return True
        return False

    def _on_request_close(self, *args, **kwargs):
        return self.locked_down  # True: the window refuses to close
