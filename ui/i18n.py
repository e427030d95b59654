"""Translations: gettext catalogs (built with Babel) behind an observable translator, so kv
rules written as `tr._("...")` re-evaluate the moment the language changes.

    tr.switch("vi")
    tr.bind_switch(screen.refresh)     # Python-built texts re-render too

Catalogs live in ui/locale/<lang>/LC_MESSAGES/kiosk.po, compiled to .mo by `python -m ui.build`.
"""
from __future__ import annotations

import gettext
import logging
from pathlib import Path

from kivy.event import Observable

log = logging.getLogger(__name__)
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kiosk"


class Translator(Observable):
    def __init__(self, language: str = "en") -> None:
        super().__init__()
        self.observers: list = []
        self.listeners: list = []
        self.language = ""
        self._t: gettext.NullTranslations = gettext.NullTranslations()
        self.switch(language)

    def _(self, text: str) -> str:
        return self._t.gettext(text)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def switch(self, language: str) -> None:
        if language == self.language:
            return
        self.language = language
        try:
            self._t = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
        except OSError:
            if language != "en":
                log.error("no compiled catalog for %r (run `python -m ui.build`); showing English", language)
            self._t = gettext.NullTranslations()
        alive = []
        for entry in list(self.observers):
            func, largs, kwargs = entry
            try:
                func(*largs, None, None)
                alive.append(entry)
            except ReferenceError:
                pass  # the widget is gone: forget it, so observers never pile up
        self.observers[:] = alive
        for listener in list(self.listeners):
            listener(language)

    def bind_switch(self, listener) -> None:
        self.listeners.append(listener)

    # Kivy's kv language binds `tr._` through fbind/funbind: record the observers.
    def fbind(self, name, func, *largs, **kwargs):
        if name == "_":
            self.observers.append((func, largs, kwargs))
            return len(self.observers)
        return super().fbind(name, func, *largs, **kwargs)

    def funbind(self, name, func, *largs, **kwargs):
        if name == "_":
            key = (func, largs, kwargs)
            if key in self.observers:
                self.observers.remove(key)
            return None
        return super().funbind(name, func, *largs, **kwargs)


tr = Translator()
