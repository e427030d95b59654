"""KioskApp: builds the screens, runs the clock, hands results and touches to the router.

It is handed a built KioskService (kiosk.app.open_service, enrolled or not): the service owns
the mode and decides what a tap means, the router (ui/router.py, no Kivy) decides which
screen shows what and runs blocking calls in `ui.worker.Background`; results come back
through Kivy's Clock. This module only builds widgets and binds their events.
"""
from __future__ import annotations

import gc
import logging
from pathlib import Path

from kivy.app import App
from kivy.cache import Cache
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition

from kiosk.watchdog import Watchdog
from ui import theme
from ui.i18n import tr
from ui.router import Router
from ui.screens.attract import AttractScreen
from ui.screens.pin import PinScreen
from ui.screens.shopper import ShopperScreen
from ui.screens.staff import StaffScreen
from ui.screens.technician import TechnicianScreen
from ui.widgets import KScreenManager, TapOverlay, forget_stale, start_refreshing
from ui.worker import Background, ImageLoader

log = logging.getLogger(__name__)
KV_DIR = Path(__file__).parent / "kv"
KV_FILES = ("widgets", "attract", "shopper", "pin", "staff", "technician")
SOUND = Path(__file__).parent / "sounds" / "tap.wav"
FREEZE_AFTER_S = 1.0
WATCHDOG_PING_S = 10.0  # packaging/nfc-kiosk.service has WatchdogSec=30
_kv_loaded = False


class KivyClock:
    """The router's clock: Kivy's, on the main thread."""

    @staticmethod
    def schedule(seconds: float, fn):
        return Clock.schedule_once(lambda dt: fn(), seconds)


def clock_dispatch(fn) -> None:
    """The service's dispatch: its results reach the UI on the main thread, next frame."""
    Clock.schedule_once(lambda dt: fn())


class KioskApp(App):
    title = "NFC kiosk"
    use_kivy_settings = False

    def __init__(self, service, max_seconds: float | None = None, screenshot: str | None = None,
                 locked_down: bool = False, below=None, **kwargs) -> None:
        """`below(service)`: a widget under the screens (the demo's tap bar), or None."""
        super().__init__(**kwargs)
        self.service = service
        self.max_seconds = max_seconds
        self.screenshot_path = screenshot
        self.locked_down = locked_down
        self.below = below
        self.sound = None

    @property
    def kiosk_config(self):
        return self.service.config

    @property
    def mode(self) -> str:
        return self.service.mode.value

    @property
    def tap_seen_at(self) -> float:
        return self.router.tap_seen_at

    # -- wiring ------------------------------------------------------------------
    def build(self):
        global _kv_loaded
        theme.register_fonts()
        if not _kv_loaded:
            for name in KV_FILES:
                Builder.load_file(str(KV_DIR / f"{name}.kv"))
            _kv_loaded = True
        self.background = Background(clock_dispatch)
        tr.switch(self.kiosk_config.language)
        images = ImageLoader(self.service, self.background)
        self.sm = KScreenManager(transition=NoTransition())
        self.attract = AttractScreen(name="attract", enrolled=self.service.enrolled)
        self.shopper = ShopperScreen(name="shopper", images=images)
        self.pin = PinScreen(name="pin")
        self.staff = StaffScreen(name="staff", images=images)
        self.technician = TechnicianScreen(name="technician")
        for screen in (self.attract, self.shopper, self.pin, self.staff, self.technician):
            self.sm.add_widget(screen)
        self.overlay = TapOverlay()
        self.router = Router(self.service, self, KivyClock(), self.background, tr, self.screenshot_path)
        self.service.subscribe(self.router.on_result)
        self._wire_screens()
        self.sm.bind(current=self.paint_background)
        self.paint_background()
        start_refreshing()  # labels back on the window render (see OnScreenOnly)
        root = FloatLayout()
        for child in (self.sm, self.overlay):  # follow the layout's position (the demo bar sits below it)
            child.pos_hint = {"x": 0, "y": 0}
            root.add_widget(child)
        self._window_bindings = {"on_key_down": self._on_key, "on_touch_down": lambda w, t: self.router.touched(),
                                 "on_request_close": self._on_request_close}
        Window.bind(**self._window_bindings)
        if self.locked_down:
            Window.show_cursor = False
            Window.allow_screensaver = False
        self._load_sound()
        self._set_languages(self.kiosk_config.language)
        tr.bind_switch(self._on_language_switched)
        if self.below is not None:
            from kivy.uix.boxlayout import BoxLayout
            column = BoxLayout(orientation="vertical")
            column.add_widget(root)
            column.add_widget(self.below(self.service))
            return column
        return root

    # -- what the router needs of the screens ---------------------------------------
    @property
    def current(self) -> str:
        return self.sm.current

    def go(self, name: str) -> None:
        self.sm.current = name

    def screenshot(self, path: str) -> None:
        Window.screenshot(name=path)

    def forget_pictures(self) -> None:
        """The last person's pictures and textures leave memory with them."""
        for category in ("kv.loader", "kv.image", "kv.texture"):
            Cache.remove(category)
        gc.collect()

    def _wire_screens(self) -> None:
        r = self.router
        self.attract.bind(on_language=lambda s, code: r.choose_language(code), on_technician=lambda s: r.technician_entry())
        self.shopper.bind(on_done=lambda s: r.end_session("done"), on_sharing=lambda s, g: r.answer_sharing(g),
                          on_undo=lambda s, token: r.undo(token), on_language=lambda s, code: r.choose_language(code))
        self.pin.bind(on_pin=lambda s, pin: r.submit_pin(pin), on_cancel=lambda s: r.to_attract())
        self.staff.bind(on_search=lambda s, q: r.staff_search(q), on_pick=lambda s, sid: r.staff_pick(sid),
                        on_lock=lambda s: r.to_attract())
        self.technician.bind(
            on_tab_chosen=lambda s, tab: r.technician_tab(tab), on_refresh=lambda s: r.refresh_health(),
            on_sync=lambda s: r.sync_now(), on_enroll=lambda s, url, code: r.enroll(url, code),
            on_save=lambda s, values: r.save_settings(values), on_exit=lambda s: r.to_attract(),
            on_change_pin=lambda s, old, new, again: r.change_pin(old, new, again))

    def paint_background(self, *args) -> None:
        """Each screen's background is the window's clear colour, not a full-screen rectangle:
        under a software renderer every blended full-screen fill costs several ms a frame."""
        Window.clearcolor = theme.NIGHT if self.sm.current == "attract" else theme.PAPER

    def on_start(self) -> None:
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
        if getattr(self, "router", None):
            self.router.cancel_timers()  # a stopped kiosk's idle timers must not fire later
        if getattr(self, "watchdog", None):
            self.watchdog.stopping()
        Window.unbind(**getattr(self, "_window_bindings", {}))
        forget_stale()
        if self._on_language_switched in tr.listeners:
            tr.listeners.remove(self._on_language_switched)
        self.service.stop()
        if getattr(self, "background", None):
            self.background.shutdown()

    def open_settings(self, *largs) -> None:
        """Kivy's settings panel (F1) never opens on a kiosk."""

    def end_session(self, reason: str) -> None:
        self.router.end_session(reason)

    def to_attract(self) -> None:
        self.router.to_attract()

    def _on_language_switched(self, code: str) -> None:
        self._set_languages(code)
        if self.sm.current == "shopper":
            self.shopper.render()
        elif self.sm.current == "staff":
            self.staff.refresh()
        elif self.sm.current == "technician":
            self.technician.render()

    def _set_languages(self, code: str) -> None:
        self.attract.ids.languages.current = code
        self.shopper.ids.languages.current = code

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

    def beep(self) -> None:
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
