"""The catalogue as it is read: a product's texts in the reader's language, a store's price
over the product's, and what a kiosk pulls with its sync (its store's stock rows and its
brand's offers changed since a cursor). The brand's side, the feeds that write it, is the
brand API's (hub/brands.py).

    price, currency = store_price(here, product_price, product_currency)
    items, cursor = store.inventory_delta(store_id, since)
"""
from __future__ import annotations

import json
import time

from hub.brand_rules import window


def _json(text_value: str) -> dict:
    """A JSON column read back as an object: {} when it is empty, broken or not an object."""
    try:
        value = json.loads(text_value or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def store_price(here: str, price: str, currency: str) -> tuple[str, str]:
    """A stock row's price ("12.90" or "12.90 VND"; "" = the product's) over the product's."""
    if not here:
        return price, currency
    amount, _, other = here.partition(" ")
    return amount, other or currency


def with_default(texts: dict, language: str, default: dict) -> dict:
    """`texts` with the brand's default language's own entry, so a screen switched to it
    shows it (a title already given in the shopper's language has no way back otherwise)."""
    if not language or language in texts:
        return texts
    return {**texts, language: {k: v for k, v in default.items() if v}}


def localized(texts: dict, lang: str, field: str, default: str) -> str:
    """texts[lang] -> texts[primary subtag of lang] -> the brand's default-language text."""
    for tag in (lang, (lang or "").split("-")[0]):
        entry = texts.get(tag)
        if isinstance(entry, dict) and entry.get(field):
            return entry[field]
        if isinstance(entry, str) and field == "title" and entry:
            return entry
    return default


class CatalogueDeltas:
    """HubStore's catalogue reads and writes for kiosks (a mixin, so the store stays the one
    object the routes call). Needs from the host class: one, all, transaction, next_version."""

    def inventory_delta(self, store_id: str, since: int) -> tuple[list[dict], int]:
        """This store's stock rows changed since `since`, each with its product's texts (every
        language: the kiosk shows the shopper's) and the store's price where the feed set one."""
        rows = self.all("SELECT i.gtin, i.quantity, i.location, p.title, p.price, p.currency, p.brand_id, b.name, "
                        "i.version, p.texts, p.description, i.availability, i.price, p.deleted, b.default_language "
                        "FROM inventory i JOIN products p ON p.gtin = i.gtin JOIN brands b ON b.id = p.brand_id "
                        "WHERE i.store_id=? AND i.version>? ORDER BY i.version", (store_id, since))
        cursor = max([since] + [r[8] for r in rows])
        out = []
        for (g, qty, loc, title, price, currency, brand, brand_name, _, texts, description, availability, here, gone,
             default) in rows:
            price, currency = store_price(here, price, currency)
            texts = with_default(_json(texts), default, {"title": title, "description": description})
            qty = 0 if gone else qty
            out.append({"gtin": g, "quantity": qty, "location": loc, "title": title, "price": price, "currency": currency,
                        "brand": brand, "brand_name": brand_name, "description": description, "texts": texts,
                        "availability": "out_of_stock" if gone else availability or ("in_stock" if qty else "out_of_stock")})
        return out, cursor

    def offers_delta(self, brand_id: str, store_id: str, since: int, now: float | None = None) -> tuple[list[dict], int]:
        """Offers changed since `since`. One that ended, that is past its valid_until in this
        store's time zone, or that no longer concerns this store (moved to another) arrives
        as deleted; one that starts later arrives with its valid_from (the kiosk shows it from
        then on, also offline). An offer whose dates have passed everywhere is ended by the
        hub itself (a new version), so it arrives as deleted at the next pull after that; in
        between, the kiosk hides it by its valid_until."""
        now = time.time() if now is None else now
        self._end_passed_offers(brand_id, now)
        zone = self.one("SELECT timezone FROM stores WHERE id=?", (store_id,))
        zone = zone[0] if zone else "UTC"
        default = self.one("SELECT default_language FROM brands WHERE id=?", (brand_id,))
        default = default[0] if default else ""
        rows = self.all("SELECT id, title, kind, gtin, discount_pct, valid_until, deleted, version, store_id, valid_from, "
                        "titles FROM offers WHERE brand_id=? AND version>? ORDER BY version", (brand_id, since))
        cursor = max([since] + [r[7] for r in rows])
        out = []
        for i, t, k, g, d, until, gone, _, where, start, titles in rows:
            end = window(start, until, zone)[1]
            if gone or (end is not None and end <= now) or (where is not None and where != store_id):
                out.append({"id": i, "deleted": True})
                continue
            out.append({"id": i, "title": t, "kind": k, "gtin": g, "discount_pct": d, "valid_until": until,
                        "valid_from": start, "deleted": False, "personal": k != "brand",
                        "titles": {**({default: t} if default else {}), **_json(titles)}})
        return out, cursor

    def _end_passed_offers(self, brand_id: str, now: float) -> None:
        """Offers of this brand past their valid_until in every time zone (a date ends latest
        at UTC-12) are ended: a new version, so every kiosk drops them at its next pull."""
        rows = self.all("SELECT id, valid_from, valid_until FROM offers WHERE brand_id=? AND deleted=0 "
                        "AND valid_until <> ''", (brand_id,))
        passed = [i for i, start, until in rows if (window(start, until, "Etc/GMT+12")[1] or now + 1) <= now]
        if not passed:
            return
        with self.transaction() as conn:
            for offer_id in passed:
                version = self.next_version(conn, "offers")
                conn.execute("UPDATE offers SET deleted=1, version=? WHERE id=? AND deleted=0", (version, offer_id))

    def set_stock(self, store_id: str, gtin: str, quantity: int, location: str = "") -> None:
        with self.transaction() as conn:
            version = self.next_version(conn, "inventory")
            conn.execute("INSERT INTO inventory(store_id, gtin, quantity, location, version) VALUES (?,?,?,?,?) "
                         "ON CONFLICT(store_id, gtin) DO UPDATE SET quantity=excluded.quantity, "
                         "location=excluded.location, version=excluded.version",
                         (store_id, gtin, quantity, location, version))

    def image(self, gtin: str) -> bytes | None:
        row = self.one("SELECT png FROM images WHERE gtin=?", (gtin,))
        return bytes(row[0]) if row else None
