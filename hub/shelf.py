""""Tell me when it is on the shelf here" (issue 12): a shopper watches a wishlist item at a
chosen store; when the stock feed puts it on that store's shelf, the shopper's next tap at a
kiosk of that store shows it first, marked `now_on_shelf` (hub/profile.py), and the shopper's
page lists the watch as on the shelf. Recording is enough: no mail or push is sent.

    shelf.add_watch(store, "shopper-01", "08931022000223", "lotus-hcm", via="page")   # True: new
    shelf.watches_of(store, "shopper-01", "vi")      # the page's list, on the shelf or not
    shelf.watch_choices(store, "shopper-01", "vi")   # the page's form: each item and its stores
    shelf.remove_watch(store, "shopper-01", "08931022000223", "lotus-hcm")

The rules: a watch names a live wishlist item of the shopper and a store of the product's own
brand (a store sells only its brand's products); at most MAX_WATCHES per shopper; the same
watch again changes nothing. Refusals are HubFailure: 404 for an unknown store, product or
shopper, 409 past the limit, 422 for bad input. Nothing here logs a shopper's item.
"""
from __future__ import annotations

import time

from kiosk import api
from hub import brands, credentials
from hub.store import HubFailure, HubStore, _json, localized, with_default

MAX_WATCHES = 100
VIAS = ("page", "web", "app")
LIVE = ("FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
        "WHERE a.shopper_id = ? AND r.tag IS NULL")
# The check-in's statement: the gtins this shopper watches at this store (hub/profile.py).
# A watch lasts while the item it was made for is on the wishlist: some add of it older than the
# watch is still live (removed, and saved again later, the old watch does not come back).
STILL_WANTED = ("EXISTS (SELECT 1 FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag "
                "AND r.shopper_id = a.shopper_id WHERE a.shopper_id = w.shopper_id AND a.gtin = w.gtin "
                "AND r.tag IS NULL AND a.received_at <= w.created_at)")
WATCHED_HERE_SQL = "SELECT w.gtin FROM shelf_watches w WHERE w.shopper_id=? AND w.store_id=? AND " + STILL_WANTED


def _invalid(why: str) -> HubFailure:
    return HubFailure(api.P_INVALID, why, 422)


def _missing(why: str) -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, why, 404)


def gtin_of(value) -> str:
    """A GTIN-8/12/13/14 (check digit included) as its 14 digits; 422 otherwise."""
    try:
        return brands.normalise_gtin(value)
    except brands.RowError as exc:
        raise _invalid(f"gtin {exc.reason}") from None


def _live_shopper(store: HubStore, shopper_id: str) -> None:
    if not isinstance(shopper_id, str) or store.one(
            "SELECT 1 FROM shoppers WHERE id=? AND erased=0 AND role='shopper'", (shopper_id,)) is None:
        raise _missing("no such shopper")


def add_watch(store: HubStore, shopper_id: str, gtin: str, store_id: str, via: str = "page") -> bool:
    """Watch a live wishlist item at a store of its brand. True when new, False when it was
    watched already (nothing changed)."""
    if via not in VIAS:
        raise _invalid("via must be one of " + ", ".join(VIAS))
    gtin = gtin_of(gtin)
    if not isinstance(store_id, str) or not 0 < len(store_id) <= 80:
        raise _invalid("store must be a store id")
    _live_shopper(store, shopper_id)
    with store.transaction() as conn:
        found = conn.execute("SELECT s.brand_id, p.brand_id FROM stores s LEFT JOIN products p ON p.gtin=? AND p.deleted=0 "
                             "WHERE s.id=?", (gtin, store_id)).fetchone()
        if found is None:
            raise _missing("no such store")
        if found[1] is None:
            raise _missing("no such product")
        if found[0] != found[1]:
            raise _invalid("that store does not sell this product: choose a store of the product's brand")
        if conn.execute("SELECT 1 " + LIVE + " AND a.gtin=?", (shopper_id, gtin)).fetchone() is None:
            raise _invalid("save the item to the wishlist first")
        if conn.execute("SELECT 1 FROM shelf_watches WHERE shopper_id=? AND gtin=? AND store_id=?",
                        (shopper_id, gtin, store_id)).fetchone():
            return False
        if conn.execute("SELECT COUNT(*) FROM shelf_watches WHERE shopper_id=?", (shopper_id,)).fetchone()[0] \
                >= MAX_WATCHES:
            raise HubFailure(credentials.P_CONFLICT, f"at most {MAX_WATCHES} shelf watches; remove one first", 409)
        inserted = conn.execute("INSERT INTO shelf_watches(shopper_id, gtin, store_id, created_at, via) "
                                "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING gtin",
                                (shopper_id, gtin, store_id, time.time(), via)).fetchone()
    return inserted is not None


def remove_watch(store: HubStore, shopper_id: str, gtin: str, store_id: str) -> bool:
    """Stop watching; True when there was such a watch."""
    gtin = gtin_of(gtin)
    if not isinstance(store_id, str) or len(store_id) > 80:
        raise _invalid("store must be a store id")
    _live_shopper(store, shopper_id)
    with store.transaction() as conn:
        gone = conn.execute("DELETE FROM shelf_watches WHERE shopper_id=? AND gtin=? AND store_id=? RETURNING gtin",
                            (shopper_id, gtin, store_id)).fetchall()
    return bool(gone)


WATCHES_SQL = ("SELECT w.gtin, w.store_id, w.created_at, w.via, s.code, s.name, s.brand_id, b.name, p.title, p.texts, "
               "p.description, b.default_language, p.deleted, i.quantity, i.location "
               "FROM shelf_watches w JOIN stores s ON s.id = w.store_id JOIN brands b ON b.id = s.brand_id "
               "LEFT JOIN products p ON p.gtin = w.gtin "
               "LEFT JOIN inventory i ON i.gtin = w.gtin AND i.store_id = w.store_id "
               "WHERE w.shopper_id=? AND " + STILL_WANTED + " {brand} ORDER BY w.created_at, w.gtin, w.store_id")


def _title(title, texts, description, default_language, lang: str) -> str:
    texts = with_default(_json(texts or "{}"), default_language, {"title": title or "", "description": description or ""})
    return localized(texts, lang, "title", title or "")


def watches_of(store: HubStore, shopper_id: str, lang: str = "en", brand_id: str | None = None) -> list[dict]:
    """The shopper's watches, oldest first: the product's title (in `lang` where the brand wrote
    one), the store's name, and whether it is on that store's shelf now (quantity > 0).
    `brand_id`: only the watches at that brand's stores (what a brand's web shop may see)."""
    sql = WATCHES_SQL.format(brand="AND s.brand_id=?" if brand_id is not None else "")
    params = (shopper_id, brand_id) if brand_id is not None else (shopper_id,)
    out = []
    for (gtin, store_id, created, via, code, store_name, owner, brand_name, title, texts, description, default_language,
         deleted, quantity, location) in store.all(sql, params):
        quantity = 0 if deleted or quantity is None else quantity
        out.append({"gtin": gtin, "title": _title(title, texts, description, default_language, lang) if title else gtin,
                    "brand_id": owner, "brand_name": brand_name, "store_id": store_id, "store_code": code,
                    "store_name": store_name, "created_at": created, "via": via, "on_shelf": quantity > 0,
                    "quantity": max(0, quantity), "location": (location or "") if quantity > 0 else ""})
    return out


def watch_choices(store: HubStore, shopper_id: str, lang: str = "en") -> list[dict]:
    """For the page's "Tell me when it is on the shelf" form: each live wishlist item with the
    stores of its brand, and which of them are watched already."""
    watched = {(g, s) for g, s in store.all("SELECT gtin, store_id FROM shelf_watches WHERE shopper_id=?", (shopper_id,))}
    items: dict[str, dict] = {}
    rows = store.all("SELECT DISTINCT a.gtin, p.brand_id, b.name, p.title, p.texts, p.description, b.default_language "
                     + LIVE.replace("WHERE", "JOIN products p ON p.gtin = a.gtin AND p.deleted = 0 "
                                             "JOIN brands b ON b.id = p.brand_id WHERE", 1) + " ORDER BY a.gtin",
                     (shopper_id,))
    for gtin, brand_id, brand_name, title, texts, description, default_language in rows:
        items[gtin] = {"gtin": gtin, "title": _title(title, texts, description, default_language, lang),
                       "brand_id": brand_id, "brand_name": brand_name, "stores": []}
    if not items:
        return []
    stores: dict[str, list[tuple[str, str, str]]] = {}
    for store_id, brand_id, code, name in store.all("SELECT id, brand_id, code, name FROM stores ORDER BY name, id"):
        stores.setdefault(brand_id, []).append((store_id, code, name))
    for item in items.values():
        item["stores"] = [{"store_id": s, "store_code": c, "store_name": n, "watched": (item["gtin"], s) in watched}
                          for s, c, n in stores.get(item["brand_id"], [])]
    return sorted(items.values(), key=lambda i: (i["brand_name"], i["title"], i["gtin"]))


def store_of(store: HubStore, brand_id: str, store_code: str) -> str:
    """The id of the brand's store with this code; 404 for a store of another brand or none."""
    if not isinstance(store_code, str) or not brands.STORE_CODE.fullmatch(store_code):
        raise _invalid("store_code must be 1-32 letters, digits, '_' or '-'")
    row = store.one("SELECT id FROM stores WHERE brand_id=? AND code=?", (brand_id, store_code))
    if row is None:
        raise _missing("no such store of this brand")
    return row[0]
