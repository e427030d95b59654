"""The demo bar: on-screen buttons and keyboard shortcuts that play taps on the simulated
reader. What each button presents comes from the demo's wiring (launch/demo.py: the hub's demo
cards, the driver's tag values); this widget only lays them out and calls `present`."""
from __future__ import annotations

from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button


class DemoBar(BoxLayout):
    def __init__(self, present, taps, **kwargs) -> None:
        """`present(read)` plays a tap; `taps`: (label, key, read or a callable giving one)."""
        super().__init__(size_hint_y=None, height=64, spacing=4, padding=4, **kwargs)
        from kivy.graphics import Color, Rectangle
        with self.canvas.before:  # its own dark strip (the window's clear colour follows the screen)
            Color(0.12, 0.14, 0.17, 1)
            self._bg = Rectangle(pos=self.pos, size=self.size)
        self.bind(pos=lambda *a: setattr(self._bg, "pos", self.pos), size=lambda *a: setattr(self._bg, "size", self.size))
        self.present = present
        self.keys = {}
        for label, key, read in taps:
            self.keys[key.lower()] = read
            self._button(label, read)
        Window.bind(on_key_down=self._on_key)

    def play(self, read) -> None:
        self.present(read() if callable(read) else read)

    def _button(self, text, read) -> None:
        button = Button(text=text, font_size="15sp", font_script_name="Thai" if any("\u0e00" <= c <= "\u0e7f" for c in text) else "Latn")
        button.bind(on_release=lambda *a: self.play(read))
        self.add_widget(button)

    def _on_key(self, window, key, scancode, codepoint, modifiers):
        read = self.keys.get((codepoint or "").lower())
        if read is None:
            return False
        self.play(read)
        return True
