"""The attract loop: a calm "tap your phone or card", the language chooser, the online badge,
and staff-facing notices (no reader, kiosk not set up). The top-left corner, held for two
seconds, is the technician's hidden entry."""
from __future__ import annotations

import math

from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen


BREATH_FPS = 10


class AttractScreen(Screen):
    online = BooleanProperty(False)
    reader_ok = BooleanProperty(True)
    enrolled = BooleanProperty(True)
    message = StringProperty("")
    pulse = NumericProperty(0.0)
    __events__ = ("on_language", "on_technician")

    def on_enter(self, *args) -> None:
        self._t = 0.0
        # 10 steps a second are smooth for a 4 s breath, and every step is a whole frame (Kivy
        # redraws the full window); the tap's first frame waits less behind one
        self._anim = Clock.schedule_interval(self._breathe, 1 / BREATH_FPS)

    def on_leave(self, *args) -> None:
        if getattr(self, "_anim", None):
            self._anim.cancel()

    def _breathe(self, dt: float) -> None:
        self._t += dt
        self.pulse = (math.sin(self._t * 1.6) + 1) / 2

    def show_message(self, text: str, seconds: float = 5.0) -> None:
        self.message = text
        Clock.unschedule(self._clear_message)
        Clock.schedule_once(self._clear_message, seconds)

    def _clear_message(self, dt) -> None:
        self.message = ""

    def on_language(self, code: str) -> None:
        pass

    def on_technician(self) -> None:
        pass
