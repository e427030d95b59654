"""The attract loop: a calm "tap your phone or card", the online badge, reader notices."""
from __future__ import annotations

import math

from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen


class AttractScreen(Screen):
    online = BooleanProperty(False)
    reader_ok = BooleanProperty(True)
    message = StringProperty("")
    pulse = NumericProperty(0.0)

    def on_enter(self, *args) -> None:
        self._t = 0.0
        self._anim = Clock.schedule_interval(self._breathe, 1 / 20)

    def on_leave(self, *args) -> None:
        if getattr(self, "_anim", None):
            self._anim.cancel()

    def _breathe(self, dt: float) -> None:
        self._t += dt
        self.pulse = (math.sin(self._t * 1.6) + 1) / 2

    def show_message(self, text: str, seconds: float = 4.0) -> None:
        self.message = text
        Clock.unschedule(self._clear_message)
        Clock.schedule_once(self._clear_message, seconds)

    def _clear_message(self, dt) -> None:
        self.message = ""
