"""Translations: gettext catalogs (built with Babel) behind an observable translator, so kv
rules written as `tr._("...")` re-evaluate the moment the language changes.

    tr.switch("vi")
"""
from __future__ import annotations

import gettext
from pathlib import Path

from kivy.event import Observable

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kiosk"


class Translator(Observable):
    def __init__(self, language: str = "en") -> None:
        super().__init__()
        self.observers: list = []
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
        self._t = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)
        for func, largs, kwargs in list(self.observers):
            try:
                func(largs, None, None)
            except ReferenceError:
                pass  # the widget is gone

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
