"""Text formatting for the screens: pure functions, tested without Kivy.

Every function takes the translator's `gettext`/`ngettext` (or a language code) as an
argument, so the same view renders in any language and switching language re-renders.
"""
from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation

from babel.dates import format_timedelta
from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_symbol
from babel.units import format_unit

BABEL_LOCALES = {"en": "en_GB", "vi": "vi_VN", "ru": "ru_RU", "th": "th_TH"}
LANGUAGE_NAMES = {"en": "English", "vi": "Tiếng Việt", "ru": "Русский", "th": "ไทย"}  # each in its own script


def _locale(language: str) -> str:
    return BABEL_LOCALES.get(language, "en_GB")


def script_for(text: str) -> str:
    """The OpenType script Kivy should shape `text` with: "Thai" when it holds any Thai letter
    (tone marks stack only when shaped as Thai), else "Latn" (fine for Latin and Cyrillic)."""
    return "Thai" if any("\u0e00" <= c <= "\u0e7f" for c in text) else "Latn"


def price(amount: str, currency: str, language: str) -> str:
    """`1.234.567 ₫`, `฿1,234.50`, `1 234,50 ₽`, and for an English reader `₽15,690.00`: the
    shopper's language decides the pattern (CLDR, through Babel), the currency its digits
    (VND none), and the symbol is the language's own for that currency, else the one the
    currency's home country writes (CLDR gives English no symbol for the rouble or the baht:
    `RUB15,690.00` tells a shopper less than `₽`)."""
    if not amount or not currency:
        return ""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return ""
    locale = _locale(language)
    text = format_currency(value, currency, locale=locale, format_type="standard", currency_digits=True)
    home = _home_symbol(currency)
    if home and get_currency_symbol(currency, locale=locale) == currency:
        text = text.replace(currency, home)
    return text


@functools.lru_cache(maxsize=64)
def _home_symbol(currency: str) -> str:
    """The symbol the currency's home country writes (RUB: ₽, THB: ฿), or "" if none is known."""
    try:
        home = Locale.parse("und_" + currency[:2])
    except (ValueError, UnknownLocaleError):
        return ""
    symbol = home.currency_symbols.get(currency, "")
    return "" if symbol == currency else symbol


def availability_kind(item) -> str:
    if item.available_here > 0:
        return "here"
    if item.elsewhere:
        return "elsewhere"
    return "online" if item.online else "none"


def availability(item, gettext, ngettext) -> str:
    """Where to get a wishlist item, most useful first."""
    kind = availability_kind(item)
    if kind == "here":
        n = item.available_here
        if item.location:
            return ngettext("%(n)d on the shelf here, aisle %(aisle)s", "%(n)d on the shelf here, aisle %(aisle)s",
                            n) % {"n": n, "aisle": item.location}
        return ngettext("%(n)d on the shelf here", "%(n)d on the shelf here", n) % {"n": n}
    if kind == "elsewhere":
        return gettext("at %(store)s") % {"store": item.elsewhere[0]}
    if kind == "online":
        return gettext("online only")
    return gettext("not available right now")


def order_wishlist(items) -> list:
    """Items the shopper asked to hear about that are now on the shelf here first, then items
    on the shelf here; otherwise the hub's order (stable)."""
    return sorted(items, key=lambda i: (not (i.now_on_shelf and i.available_here > 0), i.available_here <= 0))


def card_note(item, gettext) -> str:
    """The small line beside the brand: a pending save, or "Now on the shelf here" for an item
    the shopper asked to be told about ("tell me when it is on the shelf here")."""
    if item.pending:
        return gettext("saved just now")
    if item.now_on_shelf and item.available_here > 0:
        return gettext("Now on the shelf here")
    return ""


def order_offers(offers) -> list:
    """Personal offers first; otherwise the hub's order (stable)."""
    return sorted(offers, key=lambda o: not o.personal)


def greeting(name: str, gettext, visit: str = "returning") -> str:
    if not name:
        return gettext("Welcome!")
    if visit == "first":
        return gettext("Welcome, %(name)s!") % {"name": name}
    if visit == "lapsed":
        return gettext("Welcome back, %(name)s!") % {"name": name}
    return gettext("Hello, %(name)s!") % {"name": name}


def ago(seconds: float, language: str) -> str:
    """"3 minutes ago", "3 phút trước", "3 минуты назад", "3 นาทีที่ผ่านมา"."""
    return format_timedelta(dt.timedelta(seconds=-max(0.0, seconds)), threshold=1.0, add_direction=True,
                            locale=_locale(language))


def cached_note(age_s: float, gettext, language: str) -> str:
    return gettext("Offline: as saved %(ago)s") % {"ago": ago(age_s, language)}


def disk(n_bytes: int, language: str) -> str:
    """`84.3 GB`, `84,3 ГБ`: the unit as the language abbreviates it (CLDR)."""
    return format_unit(round(n_bytes / 1e9, 1), "digital-gigabyte", length="short", format="#,##0.0",
                       locale=_locale(language))


def latency(ms: float | None, language: str) -> str:
    """`6 ms`, `6 мс`, `6 mili giây`, `6 มิลลิวินาที` (CLDR's short unit)."""
    return "—" if ms is None else format_unit(round(ms), "duration-millisecond", length="short",
                                              locale=_locale(language))


def locked_for(seconds: float, gettext, ngettext) -> str:
    if not seconds:  # the hub did not say for how long (an older hub): no made-up time
        return gettext("Too many wrong PINs. Try again later, or ask a manager.")
    minutes = max(1, int(round(seconds / 60.0)))
    return ngettext("Too many wrong PINs. Try again in %(n)d minute, or ask a manager.",
                    "Too many wrong PINs. Try again in %(n)d minutes, or ask a manager.", minutes) % {"n": minutes}


def tries_left(n: int | None, gettext, ngettext) -> str:
    if n is None:
        return gettext("Wrong PIN. Try again.")
    return ngettext("Wrong PIN. %(n)d try left.", "Wrong PIN. %(n)d tries left.", n) % {"n": n}


def pin_dots(length: int) -> str:
    return "  ".join("•" * length) if length else ""
