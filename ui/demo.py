"""The demo bar: on-screen buttons and keyboard shortcuts that tap demo cards and products
through the simulated reader (keys 1-8 tap shopper cards, P a product, G garbage, S the staff
badge, T the technician badge; PIN 246813).

Demo-only: the one UI module that imports drivers/ (to play the simulated reader's tags)."""
from __future__ import annotations

import itertools

import ndef
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button

from drivers.base import TYPE2, UID_ONLY, TagRead
from hub import demo


def _uri_read(uri: str) -> TagRead:
    return TagRead("simulated", TYPE2, uid=bytes.fromhex("04d3e40000000a"),
                   ndef=b"".join(ndef.message_encoder([ndef.UriRecord(uri)])))


class DemoBar(BoxLayout):
    @classmethod
    def wrap(cls, content, service) -> BoxLayout:
        root = BoxLayout(orientation="vertical")
        root.add_widget(content)
        root.add_widget(cls(service))
        return root

    def __init__(self, service, **kwargs) -> None:
        super().__init__(size_hint_y=None, height=64, spacing=4, padding=4, **kwargs)
        from kivy.graphics import Color, Rectangle
        with self.canvas.before:  # its own dark strip (the window's clear colour follows the screen)
            Color(0.12, 0.14, 0.17, 1)
            self._bg = Rectangle(pos=self.pos, size=self.size)
        self.bind(pos=lambda *a: setattr(self._bg, "pos", self.pos), size=lambda *a: setattr(self._bg, "size", self.size))
        self.reader = service.reader
        cards = [c for c in demo.demo_cards() if c["kind"] == "shopper"][:8]
        self.products = itertools.cycle(demo.demo_products(limit=40)[::3])
        self.taps = [_uri_read(c["uri"]) for c in cards]
        for n, card in enumerate(cards):
            self._button(f"{n + 1}: {card['name']}", lambda r=self.taps[n]: self.reader.present(r))
        self._button("P: product", self.tap_product)
        staff = {c["kind"]: c["uid"] for c in demo.demo_cards() if c["kind"] != "shopper"}
        self.badges = {k: TagRead("simulated", UID_ONLY, uid=bytes.fromhex(uid)) for k, uid in staff.items()}
        self._button("S: staff", lambda: self.reader.present(self.badges["staff"]))
        self._button("T: tech", lambda: self.reader.present(self.badges["technician"]))
        self._button("G: garbage", lambda: self.reader.present(TagRead("simulated", TYPE2, uid=b"\x04" * 7,
                                                                         ndef=b"\xd1\x01\x01\xff")))
        Window.bind(on_key_down=self._on_key)

    def _button(self, text, action) -> None:
        button = Button(text=text, font_size="15sp", font_script_name="Thai" if any("\u0e00" <= c <= "\u0e7f" for c in text) else "Latn")
        button.bind(on_release=lambda *a: action())
        self.add_widget(button)

    def tap_product(self) -> None:
        self.reader.present(_uri_read(next(self.products)["uri"]))

    def _on_key(self, window, key, scancode, codepoint, modifiers):
        if codepoint and codepoint.isdigit() and 1 <= int(codepoint) <= len(self.taps):
            self.reader.present(self.taps[int(codepoint) - 1])
            return True
        if codepoint in ("p", "P"):
            self.tap_product()
            return True
        if codepoint in ("s", "S", "t", "T"):
            self.reader.present(self.badges["staff" if codepoint in "sS" else "technician"])
            return True
        if codepoint in ("g", "G"):
            self.reader.present(TagRead("simulated", TYPE2, uid=b"\x04" * 7, ndef=b"\xd1\x01\x01\xff"))
            return True
        return False
