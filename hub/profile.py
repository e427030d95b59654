"""The shopper view a check-in returns: cross-brand wishlist under the shopper's sharing
choices, availability in this store, and the offers that are theirs today.

Cross-brand rule: at brand B a shopper sees B's own items, plus items of brand X when they
granted sharing X -> B (or "*" -> B, the kiosk's "show items saved at other brands here?"),
unless they refused X -> B specifically. The consent state travels in the answer so the
kiosk can ask. An item the shopper watches at this store ("tell me when it is on the shelf
here", hub/shelf.py) that is on this store's shelf now comes first, with `now_on_shelf`.
"""
from __future__ import annotations

import time

from kiosk import api
from hub import shelf
from hub.brands import live
from hub.store import Device, HubFailure, HubStore, _json, localized, store_price, with_default

LAPSED_AFTER_S = 90 * 24 * 3600
ALL_BRANDS = "*"


def visit_kind(count: int | None, last_at: float | None, now: float | None = None) -> str:
    if not count:
        return "first"
    return "lapsed" if (now or time.time()) - (last_at or 0) > LAPSED_AFTER_S else "returning"


def shopper_view(store: HubStore, device: Device, shopper_id: str, also: tuple = (), answers: list | None = None) -> dict:
    """Five independent statements, sent together (one round trip on PostgreSQL), plus any
    `also` statements (a check-in's session and visit) in the same trip, after them; their
    rows go to `answers`."""
    brand, here = device.brand_id, device.store_id
    shopper, consents, rows, elsewhere, offers, watched, *extra = store.all_of([
        ("SELECT s.display_name, s.locale, s.role, "
         "(SELECT COUNT(*) FROM staff_search f WHERE f.shopper_id = s.id AND f.brand_id = ?), "
         "s.erased, v.count, v.last_at "
         "FROM shoppers s LEFT JOIN visits v ON v.shopper_id = s.id AND v.brand_id = ? WHERE s.id = ?",
         (brand, brand, shopper_id)),
        ("SELECT from_brand, state FROM consents WHERE shopper_id=? AND to_brand=?", (shopper_id, brand)),
        # the live wishlist (adds not taken away by a remove that had seen them), with each
        # item's product and its stock in this store
        ("SELECT a.gtin, a.tag, p.brand_id, b.name, p.title, p.price, p.currency, p.online, i.quantity, i.location, "
         "p.texts, p.description, i.price, p.deleted, b.default_language "
         "FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
         "JOIN products p ON p.gtin = a.gtin JOIN brands b ON b.id = p.brand_id "
         "LEFT JOIN inventory i ON i.gtin = a.gtin AND i.store_id = ? "
         "WHERE a.shopper_id = ? AND r.tag IS NULL ORDER BY a.received_at, a.tag", (here, shopper_id)),
        ("SELECT DISTINCT a.gtin, s.name FROM wishlist_adds a "
         "LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
         "JOIN inventory i ON i.gtin = a.gtin JOIN stores s ON s.id = i.store_id "
         "WHERE a.shopper_id = ? AND r.tag IS NULL AND s.brand_id = ? AND i.store_id <> ? AND i.quantity > 0 "
         "ORDER BY s.name", (shopper_id, brand, here)),
        ("SELECT o.id, o.title, o.kind, o.gtin, o.discount_pct, o.valid_until, o.valid_from, o.titles, s.timezone, "
         "b.default_language FROM offers o JOIN brands b ON b.id = o.brand_id LEFT JOIN stores s ON s.id = ? WHERE o.brand_id=? "
         "AND o.deleted=0 AND (o.store_id IS NULL OR o.store_id=?) ORDER BY o.id", (here, brand, here)),
        # "tell me when it is on the shelf here": the items the shopper watches at this store
        (shelf.WATCHED_HERE_SQL, (shopper_id, here)),
        *also,
    ])
    if answers is not None:
        answers.extend(extra)
    if not shopper or shopper[0][4]:
        raise HubFailure(api.P_UNKNOWN_CREDENTIAL, "this card or phone is not registered", 404)
    name, locale, role, allow_search, _, visits, last_at = shopper[0]
    per_brand = {f: state for f, state in consents}
    sharing = per_brand.pop(ALL_BRANDS, api.UNDECIDED)
    items: dict[str, dict] = {}
    for (gtin, tag, item_brand, brand_name, title, price, currency, online, quantity, location, texts, description,
         here_price, gone, default_language) in rows:
        if gtin in items:
            items[gtin]["tags"].append(tag)
            continue
        quantity = 0 if gone else quantity or 0
        texts = with_default(_json(texts), default_language, {"title": title, "description": description or ""})
        price, currency = store_price(here_price or "", price, currency)
        items[gtin] = {
            "gtin": gtin, "title": localized(texts, locale, "title", title), "brand": item_brand,
            "brand_name": brand_name, "description": localized(texts, locale, "description", description or ""),
            "texts": texts, "price": price, "currency": currency, "image": f"/v1/images/{gtin}.png",
            "available_here": quantity, "location": (location or "") if quantity else "",
            "elsewhere": [], "online": bool(online) and not gone, "tags": [tag], "on_promotion": False, "now_on_shelf": False,
        }
    hidden = 0
    for gtin, item in list(items.items()):
        if item["brand"] != brand and per_brand.get(item["brand"], sharing) != api.GRANTED:
            hidden += 1
            del items[gtin]
    for gtin, store_name in elsewhere:
        if gtin in items and len(items[gtin]["elsewhere"]) < 3:
            items[gtin]["elsewhere"].append(store_name)
    for (gtin,) in watched:  # watched here and on this shelf now: shown first
        if gtin in items and items[gtin]["available_here"] > 0:
            items[gtin]["now_on_shelf"] = True
    now = time.time()
    offers = [o for o in offers if live(o[6], o[5], o[8] or "UTC", now)]  # valid_from .. valid_until, local time
    for _, _, kind, gtin, *_ in offers:
        if kind == "wishlist_promo" and gtin in items:
            items[gtin]["on_promotion"] = True
    wishlist = sorted(items.values(), key=lambda i: (not i["now_on_shelf"], i["available_here"] <= 0, i["brand"] != brand, i["title"]))
    visit = visit_kind(visits, last_at)
    return {
        "shopper": {"id": shopper_id, "display_name": name, "locale": locale, "role": role,
                    "allow_staff_search": bool(allow_search)},
        "wishlist": wishlist,
        "offers": offers_for(offers, visit, set(items), locale),
        "consent": {"sharing": sharing, "hidden_items": hidden},
        "visit": visit,
    }


def offers_for(rows: list[tuple], visit: str, wishlist_gtins: set[str], locale: str = "en") -> list[dict]:
    offers = []
    visit_offer = {"first": "first_visit"}.get(visit, visit)
    for offer_id, title, kind, gtin, pct, until, start, titles, _, default_language in rows:
        if kind == "brand" or kind == visit_offer or (kind == "wishlist_promo" and gtin in wishlist_gtins):
            titles = _json(titles)
            if default_language and default_language not in titles:
                titles = {**titles, default_language: title}
            offers.append({"id": offer_id, "title": localized(titles, locale, "title", title), "titles": titles,
                           "kind": kind, "personal": kind != "brand", "gtin": gtin, "discount_pct": pct,
                           "valid_from": start, "valid_until": until})
    offers.sort(key=lambda o: (not o["personal"], o["id"]))
    return offers
