"""The shopper view a check-in returns: cross-brand wishlist under the shopper's sharing
choices, availability in this store, and the offers that are theirs today.

Cross-brand rule: at brand B a shopper sees B's own items, plus items of brand X when they
granted sharing X -> B (or "*" -> B, the kiosk's "show items saved at other brands here?"),
unless they refused X -> B specifically. The consent state travels in the answer so the
kiosk can ask.
"""
from __future__ import annotations

import time

from kiosk import api
from hub.store import Device, HubFailure, HubStore

LAPSED_AFTER_S = 90 * 24 * 3600
ALL_BRANDS = "*"


def sharing_state(store: HubStore, shopper_id: str, brand_id: str) -> tuple[str, dict[str, str]]:
    rows = store.all("SELECT from_brand, state FROM consents WHERE shopper_id=? AND to_brand=?",
                     (shopper_id, brand_id))
    per_brand = {f: s for f, s in rows}
    return per_brand.pop(ALL_BRANDS, api.UNDECIDED), per_brand


def live_wishlist(store: HubStore, shopper_id: str) -> dict[str, list[str]]:
    """gtin -> live add tags (adds not taken away by a remove that had seen them)."""
    rows = store.all("SELECT a.gtin, a.tag FROM wishlist_adds a LEFT JOIN wishlist_removed r ON r.tag = a.tag "
                     "WHERE a.shopper_id=? AND r.tag IS NULL ORDER BY a.received_at, a.tag", (shopper_id,))
    items: dict[str, list[str]] = {}
    for gtin, tag in rows:
        items.setdefault(gtin, []).append(tag)
    return items


def visit_kind(store: HubStore, shopper_id: str, brand_id: str, now: float | None = None) -> str:
    row = store.one("SELECT count, last_at FROM visits WHERE shopper_id=? AND brand_id=?", (shopper_id, brand_id))
    if not row or row[0] == 0:
        return "first"
    return "lapsed" if (now or time.time()) - row[1] > LAPSED_AFTER_S else "returning"


def shopper_view(store: HubStore, device: Device, shopper_id: str) -> dict:
    row = store.one("SELECT display_name, locale, role, allow_staff_search, erased FROM shoppers WHERE id=?",
                    (shopper_id,))
    if not row or row[4]:
        raise HubFailure(api.P_UNKNOWN_CREDENTIAL, "this card or phone is not registered", 404)
    name, locale, role, allow_search, _ = row
    brand = device.brand_id
    sharing, per_brand = sharing_state(store, shopper_id, brand)
    wishlist, hidden = [], 0
    tags_by_gtin = live_wishlist(store, shopper_id)
    if tags_by_gtin:
        marks = ",".join("?" * len(tags_by_gtin))
        products = {g: (b, bn, t, p, c, o) for g, b, bn, t, p, c, o in store.all(
            f"SELECT p.gtin, p.brand_id, b.name, p.title, p.price, p.currency, p.online FROM products p "
            f"JOIN brands b ON b.id = p.brand_id WHERE p.gtin IN ({marks})", tuple(tags_by_gtin))}
        stock_here = {g: (q, loc) for g, q, loc in store.all(
            f"SELECT gtin, quantity, location FROM inventory WHERE store_id=? AND gtin IN ({marks})",
            (device.store_id, *tags_by_gtin))}
        elsewhere: dict[str, list[str]] = {}
        for g, store_name in store.all(
                f"SELECT i.gtin, s.name FROM inventory i JOIN stores s ON s.id = i.store_id "
                f"WHERE s.brand_id=? AND i.store_id<>? AND i.quantity>0 AND i.gtin IN ({marks}) ORDER BY s.name",
                (brand, device.store_id, *tags_by_gtin)):
            elsewhere.setdefault(g, []).append(store_name)
        promoted = {g for (g,) in store.all(
            "SELECT gtin FROM offers WHERE brand_id=? AND kind='wishlist_promo' AND deleted=0 "
            "AND (store_id IS NULL OR store_id=?)", (brand, device.store_id))}
        for gtin, tags in tags_by_gtin.items():
            if gtin not in products:
                continue
            item_brand, brand_name, title, price, currency, online = products[gtin]
            if item_brand != brand:
                shared = per_brand.get(item_brand, sharing)
                if shared != api.GRANTED:
                    hidden += 1
                    continue
            quantity, location = stock_here.get(gtin, (0, ""))
            wishlist.append({
                "gtin": gtin, "title": title, "brand": item_brand, "brand_name": brand_name,
                "price": price, "currency": currency, "image": f"/v1/images/{gtin}.png",
                "available_here": quantity, "location": location if quantity else "",
                "elsewhere": elsewhere.get(gtin, [])[:3], "online": bool(online), "tags": tags,
                "on_promotion": gtin in promoted,
            })
    wishlist.sort(key=lambda i: (i["available_here"] <= 0, i["brand"] != brand, i["title"]))
    visit = visit_kind(store, shopper_id, brand)
    return {
        "shopper": {"id": shopper_id, "display_name": name, "locale": locale, "role": role,
                    "allow_staff_search": bool(allow_search)},
        "wishlist": wishlist,
        "offers": offers_for(store, device, visit, {i["gtin"] for i in wishlist}),
        "consent": {"sharing": sharing, "hidden_items": hidden},
        "visit": visit,
    }


def offers_for(store: HubStore, device: Device, visit: str, wishlist_gtins: set[str]) -> list[dict]:
    rows = store.all("SELECT id, title, kind, gtin, discount_pct, valid_until FROM offers WHERE brand_id=? "
                     "AND deleted=0 AND (store_id IS NULL OR store_id=?) ORDER BY id", (device.brand_id, device.store_id))
    offers = []
    visit_offer = {"first": "first_visit"}.get(visit, visit)
    for offer_id, title, kind, gtin, pct, until in rows:
        if kind == "brand" or kind == visit_offer or (kind == "wishlist_promo" and gtin in wishlist_gtins):
            offers.append({"id": offer_id, "title": title, "kind": kind, "personal": kind != "brand",
                           "gtin": gtin, "discount_pct": pct, "valid_until": until})
    offers.sort(key=lambda o: (not o["personal"], o["id"]))
    return offers
