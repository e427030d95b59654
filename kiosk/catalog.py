"""What the kiosk shows of products and offers: each text in the screen's language, and only
the offers that are valid now.

Localisation (the contract's rule): texts[lang] -> texts[primary subtag of lang] -> the
default `title` the hub sent. Every title a screen, the CLI or a toast shows goes through
`title_in` (products and offers alike), so the rule lives in one place.

Validity: `valid_from` .. `valid_until`, where a bare date is a whole day in the store's time
zone (valid_until "2026-12-31" ends at the midnight after it) and a time without an offset is
store time too; without a known zone, the kiosk's own local time. An offer outside its window
is never shown, online or offline; one the offers feed ended is never shown either.

    title_in(item, "th-TH")            # the Thai title, else the default one
    live_offers(view.offers, zone="Asia/Bangkok")
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Iterable
from zoneinfo import ZoneInfo

from kiosk import api
from kiosk.errors import HubProtocolError, StorageError

log = logging.getLogger(__name__)


def _candidates(language: str) -> tuple[str, ...]:
    tag = api.language_tag(language)
    primary = tag.split("-")[0]
    return (tag, primary) if primary != tag else (tag,)


def localized(texts: api.Texts, language: str, field: str, default: str) -> str:
    """texts[language] -> texts[primary subtag] -> `default` (an empty text falls through)."""
    if texts and language:
        by_tag = {tag: (title, description) for tag, title, description in texts}
        for tag in _candidates(language):
            entry = by_tag.get(tag)
            text = entry and entry[0 if field == "title" else 1]
            if text:
                return text
    return default


def title_in(thing, language: str) -> str:
    """The title of a wishlist item, product result or offer as a screen in `language` shows it."""
    return localized(getattr(thing, "texts", ()) or (), language, "title", getattr(thing, "title", "") or "")


def description_in(thing, language: str) -> str:
    return localized(getattr(thing, "texts", ()) or (), language, "description",
                     getattr(thing, "description", "") or "")


def screen_language(locale: str, languages: Iterable[str], default: str) -> str:
    """The language a screen switches to for a shopper: their locale, or its primary subtag,
    when the kiosk offers it; else the kiosk's own language."""
    offered = list(languages)
    for tag in _candidates(locale or ""):
        if tag in offered:
            return tag
    return default


# -- validity -------------------------------------------------------------------------------
def _zone(name: str | None):
    if not name:
        return None  # the kiosk's local time
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        log.warning("unknown time zone %r for offers: using the kiosk's local time", name[:64])
        return None


def offer_live(offer: api.Offer, now: float | None = None, zone: str | None = None) -> bool:
    """Whether `offer` may be shown at `now` (valid_from <= now < end of valid_until)."""
    tz = _zone(zone)
    now = time.time() if now is None else now
    start, end = api.offer_moment(offer.valid_from, tz, False), api.offer_moment(offer.valid_until, tz, True)
    return (start is None or start <= now) and (end is None or now < end)


def live_offers(offers: Iterable[api.Offer], now: float | None = None, zone: str | None = None,
                ended: set[str] | frozenset = frozenset()) -> tuple[api.Offer, ...]:
    now = time.time() if now is None else now
    return tuple(o for o in offers if o.offer_id not in ended and offer_live(o, now, zone))


def offline_offers(view: api.ShopperView, feed: list[dict]) -> tuple[api.Offer, ...]:
    """A cached view's offers, refreshed from the offers feed the kiosk pulled since: the
    feed's version of an offer wins, and the feed's brand offers, the visit's offer and the
    promotions of items on the wishlist join (the hub's rule for a check-in)."""
    by_id = {o.offer_id: o for o in view.offers}
    visit_kind = {"first": "first_visit"}.get(view.visit, view.visit)
    gtins = {i.gtin for i in view.wishlist}
    for body in feed:
        try:
            offer = api.Offer.from_json(body)
        except HubProtocolError:
            continue
        if offer.offer_id in by_id or offer.kind == "brand" or (view.shopper_id and offer.kind == visit_kind) or (
                offer.kind == "wishlist_promo" and offer.gtin in gtins):
            by_id[offer.offer_id] = offer
    return tuple(sorted(by_id.values(), key=lambda o: (not o.personal, o.offer_id)))


def shown_offers(view: api.ShopperView, cache, zone: str | None = None) -> api.ShopperView:
    """`view` with only the offers valid now: the hub's (online) or, for a view from the
    cache, the cached ones refreshed from the offers feed; never one the feed ended."""
    try:
        offers = offline_offers(view, cache.offers()) if view.source == "cache" else view.offers
        ended = cache.ended_offers()
    except StorageError:
        offers, ended = view.offers, set()
    live = live_offers(offers, zone=zone, ended=ended)
    return view if live == view.offers else replace(view, offers=live)


def product_texts(stock: dict) -> dict:
    """A cached stock row's texts, as a ProductResult carries them."""
    return {"texts": tuple(stock.get("texts", ())), "description": stock.get("description", ""),
            "availability": stock.get("availability", "")}
