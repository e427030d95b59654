"""Text formatting for the screens: pure functions, tested without Kivy."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency

BABEL_LOCALES = {"en": "en_GB", "vi": "vi_VN", "ru": "ru_RU", "th": "th_TH"}


def price(amount: str, currency: str, language: str) -> str:
    """`1.234.567 ₫`, `฿1,234.50`, `1 234,50 ₽`: the shopper's language decides the format."""
    if not amount or not currency:
        return ""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return ""
    return format_currency(value, currency, locale=BABEL_LOCALES.get(language, "en_GB"),
                           format_type="standard", currency_digits=True)


def availability(item, gettext, ngettext) -> str:
    """Where to get a wishlist item, most useful first."""
    if item.available_here > 0:
        text = ngettext("%(n)d on the shelf here", "%(n)d on the shelf here", item.available_here) % {
            "n": item.available_here}
        if item.location:
            text += ", " + gettext("aisle %(aisle)s") % {"aisle": item.location}
        return text
    if item.elsewhere:
        return gettext("at %(store)s") % {"store": item.elsewhere[0]}
    if item.online:
        return gettext("online only")
    return gettext("not available right now")


def greeting(name: str, gettext) -> str:
    return gettext("Hello, %(name)s!") % {"name": name} if name else gettext("Hello!")
