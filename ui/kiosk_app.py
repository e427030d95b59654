"""KioskApp: builds the screens, subscribes to the service, routes results to screens."""
from __future__ import annotations

import logging

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.uix.screenmanager import NoTransition, ScreenManager

from drivers.base import ReaderState, ReaderStatus
from kiosk.app import build_service
from kiosk.results import ErrorResult, ProductResult, SessionEnded, ShopperResult, TapSeen
from kiosk.sync import SyncStatus
from ui.app import KV_DIR
from ui.i18n import tr
from ui.screens.attract import AttractScreen
from ui.screens.shopper import ShopperScreen

log = logging.getLogger(__name__)

ERROR_TEXT = {
    "hold_still": "Hold your card still for a second, then try again",
    "unreadable": "We couldn't read that tag. Try your card again, or ask staff",
    "unknown_card": "This card isn't registered yet. Staff can help you set it up",
    "refused": "We couldn't verify this card or phone. Please ask staff",
    "storage": "We couldn't save that. Please ask staff for help",
}


class KioskApp(App):
    title = "NFC kiosk"

    def __init__(self, config, demo: bool = False, max_seconds: float | None = None, screenshot: str | None = None,
                 service=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kiosk_config = config
        self.demo = demo
        self.max_seconds = max_seconds
        self.screenshot_path = screenshot
        self.service = service
        self._idle_events = []

    # -- wiring ------------------------------------------------------------------
    def build(self):
        for name in ("attract", "shopper"):
            Builder.load_file(str(KV_DIR / f"{name}.kv"))
        tr.switch(self.kiosk_config.language)
        if self.service is None:
            self.service = build_service(self.kiosk_config, dispatch=lambda fn: Clock.schedule_once(lambda dt: fn()))
        self.service.subscribe(self.on_result)
        self.sm = ScreenManager(transition=NoTransition())
        self.attract = AttractScreen(name="attract")
        self.shopper = ShopperScreen(name="shopper")
        self.shopper.on_done = lambda: self.end_session("done")
        self.sm.add_widget(self.attract)
        self.sm.add_widget(self.shopper)
        Window.bind(on_key_down=self._on_key, on_touch_down=lambda *a: self._touched())
        if self.demo:
            from ui.demo import DemoBar
            return DemoBar.wrap(self.sm, self.service)
        return self.sm

    def on_start(self) -> None:
        self.service.start()
        if self.max_seconds:
            Clock.schedule_once(lambda dt: self.stop(), self.max_seconds)

    def on_stop(self) -> None:
        if self.service:
            self.service.stop()

    # -- results from the service (main thread, via Clock) ------------------------
    def on_result(self, result) -> None:
        try:
            self._route(result)
        except Exception:  # a screen bug must never take the kiosk down in front of a shopper
            log.exception("showing a result failed; back to the attract screen")
            self.service.end_session("error")

    def _route(self, result) -> None:
        if isinstance(result, TapSeen):
            self.attract.show_message(tr._("One moment..."), 2)
        elif isinstance(result, ShopperResult):
            self.shopper.show(result.view, guest=result.guest)
            self.sm.current = "shopper"
            self._restart_idle()
            if self.screenshot_path and not result.provisional:
                Clock.schedule_once(lambda dt: self._screenshot(), 0.3)
        elif isinstance(result, ProductResult):
            if result.view is not None:
                self.shopper.show(result.view)
                self.shopper.notice = tr._("Saved to your wishlist") if result.saved else ""
                self._restart_idle()
            else:
                self.attract.show_message(tr._("Tap your card first to save products"))
        elif isinstance(result, ErrorResult):
            text = tr._(ERROR_TEXT.get(result.code, ERROR_TEXT["unreadable"]))
            if self.sm.current == "shopper":
                self.shopper.notice = text
            else:
                self.attract.show_message(text)
        elif isinstance(result, SessionEnded):
            self._to_attract()
        elif isinstance(result, SyncStatus):
            self.attract.online = result.online
        elif isinstance(result, ReaderStatus):
            self.attract.reader_ok = result.state in (ReaderState.CONNECTED, ReaderState.STARTING)

    # -- sessions ----------------------------------------------------------------
    def _touched(self) -> None:
        if self.sm.current == "shopper":
            self._restart_idle()

    def _restart_idle(self) -> None:
        for event in self._idle_events:
            event.cancel()
        self.shopper.idle_warning = ""
        cfg = self.kiosk_config
        self._idle_events = [
            Clock.schedule_once(lambda dt: setattr(self.shopper, "idle_warning",
                                                   tr._("Still there? Touch the screen to stay")), cfg.idle_warning_s),
            Clock.schedule_once(lambda dt: self.end_session("idle"), cfg.idle_timeout_s),
        ]

    def end_session(self, reason: str) -> None:
        self.service.end_session(reason)

    def _to_attract(self) -> None:
        for event in self._idle_events:
            event.cancel()
        self._idle_events = []
        self.shopper.clear()
        self.sm.current = "attract"

    def _on_key(self, window, key, scancode, codepoint, modifiers):
        if key == 27:  # Escape never closes the kiosk
            return True
        return False

    def _screenshot(self) -> None:
        Window.screenshot(name=self.screenshot_path)
