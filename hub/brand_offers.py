"""A brand's offers: the offers feed (brand-wide or one store's; for every shopper, for a first,
returning or lapsed visit, or for a product on the wishlist), when an offer is live in a
store's time zone, ending one, and listing them.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time

from hub.brand_rows import (CREATED, MAX_TITLE, REJECTED, STORE_CODE, UNCHANGED, UPDATED, RowError, _checked, _dupes,
                            _only_known, _result, _rows, _text, _texts, _version_block, normalise_gtin, not_found,
                            report)
from hub.brand_rules import live, window  # noqa: F401  (re-exported: brands.window, brands.live)
from hub.store import HubStore

OFFER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
OFFER_KINDS = ("brand", "first_visit", "returning", "lapsed", "wishlist_promo")
OFFER_FIELDS = {"id", "title", "titles", "kind", "store_code", "gtin", "discount_pct", "valid_from", "valid_until"}


def offer_key(brand_id: str, offer_id: str) -> str:
    return f"{brand_id}-{offer_id}"


def _when(value, field: str) -> str:
    """'' or an ISO 8601 date or date-time (a date-time without offset is the store's local time)."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > 40:
        raise RowError(field, "must be an ISO 8601 date or time")
    value = value.strip()
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            dt.date.fromisoformat(value)
        else:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(field, "must be an ISO 8601 date (2026-12-31) or time (2026-12-31T18:00:00+07:00)") from None
    return value


def check_offer(row: dict) -> dict:
    _only_known(row, OFFER_FIELDS)
    offer_id = row.get("id")
    if not isinstance(offer_id, str) or not OFFER_ID.fullmatch(offer_id.strip()):
        raise RowError("id", "must be 1-64 letters, digits, '_' or '-'")
    kind = row.get("kind")
    if kind not in OFFER_KINDS:
        raise RowError("kind", "must be one of " + ", ".join(OFFER_KINDS))
    code = row.get("store_code") or ""
    if code and (not isinstance(code, str) or not STORE_CODE.fullmatch(code.strip())):
        raise RowError("store_code", "must be 1-32 letters, digits, '_' or '-'")
    gtin = normalise_gtin(row["gtin"]) if row.get("gtin") not in (None, "") else ""
    if kind == "wishlist_promo" and not gtin:
        raise RowError("gtin", "is required for a wishlist_promo offer")
    pct = row.get("discount_pct")
    if pct in (None, ""):
        pct = 0
    if isinstance(pct, str) and re.fullmatch(r"\s*[0-9]{1,3}\s*", pct):
        pct = int(pct)
    if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
        raise RowError("discount_pct", "must be a whole number from 0 to 100")
    valid_from, valid_until = _when(row.get("valid_from"), "valid_from"), _when(row.get("valid_until"), "valid_until")
    start, end = window(valid_from, valid_until, "UTC")
    if start is not None and end is not None and end <= start:
        raise RowError("valid_until", "is not after valid_from")
    titles = _texts(row.get("titles"), ("title",), {"title": MAX_TITLE})
    return {"id": offer_id.strip(), "title": _text(row.get("title"), "title", MAX_TITLE, required=True), "kind": kind,
            "code": code.strip(), "gtin": gtin, "pct": pct, "valid_from": valid_from, "valid_until": valid_until,
            "titles": {lang: t["title"] for lang, t in titles.items()}}


def upsert_offers(store: HubStore, brand_id: str, rows) -> dict:
    good, results = _checked(_rows(rows, "offers"), check_offer, "id")
    good, twice = _dupes(good, lambda r: r["id"])
    results += twice
    now = time.time()
    with store.transaction() as conn:
        stores = {c: i for c, i in conn.execute("SELECT code, id FROM stores WHERE brand_id=?", (brand_id,)).fetchall()}
        products = {r[0] for r in conn.rows_in("SELECT gtin FROM products WHERE brand_id=? AND gtin IN (?*)",
                                                [row["gtin"] for _, row in good if row["gtin"]], (brand_id,))}
        existing = {r[0]: r for r in conn.rows_in(
            "SELECT id, store_id, title, kind, gtin, discount_pct, valid_from, valid_until, titles, deleted, brand_id "
            "FROM offers WHERE id IN (?*)", [offer_key(brand_id, row["id"]) for _, row in good])}
        for index, row in good:
            if row["code"] and row["code"] not in stores:
                results.append(_result(index, row["id"], REJECTED, [{"field": "store_code", "reason": "is not a store of this brand"}]))
                continue
            if row["gtin"] and row["gtin"] not in products:
                results.append(_result(index, row["id"], REJECTED, [{"field": "gtin", "reason": "is not a product of this brand"}]))
                continue
            key = offer_key(brand_id, row["id"])
            values = (stores.get(row["code"]) if row["code"] else None, row["title"], row["kind"], row["gtin"], row["pct"],
                      row["valid_from"], row["valid_until"], json.dumps(row["titles"], ensure_ascii=False, sort_keys=True))
            old = existing.get(key)
            if old is not None and old[10] != brand_id:
                results.append(_result(index, row["id"], REJECTED, [{"field": "id", "reason": "is taken"}]))
                continue
            if old is not None and tuple(old[1:9]) == values and not old[9]:
                results.append(_result(index, row["id"], UNCHANGED))
                continue
            version = _version_block(conn, "offers", 1)
            conn.execute("INSERT INTO offers(id, brand_id, store_id, title, kind, gtin, discount_pct, valid_from, "
                         "valid_until, titles, deleted, version, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,0,?,?) "
                         "ON CONFLICT(id) DO UPDATE SET store_id=excluded.store_id, title=excluded.title, "
                         "kind=excluded.kind, gtin=excluded.gtin, discount_pct=excluded.discount_pct, "
                         "valid_from=excluded.valid_from, valid_until=excluded.valid_until, titles=excluded.titles, "
                         "deleted=0, version=excluded.version, updated_at=excluded.updated_at",
                         (key, brand_id, *values, version, now))
            results.append(_result(index, row["id"], CREATED if old is None else UPDATED))
    return report(sorted(results, key=lambda r: r["index"]))


def end_offer(store: HubStore, brand_id: str, offer_id: str) -> None:
    """End an offer now: it leaves every answer, and kiosks drop it at their next pull."""
    with store.transaction() as conn:
        row = conn.execute("SELECT deleted FROM offers WHERE id=? AND brand_id=?",
                           (offer_key(brand_id, offer_id), brand_id)).fetchone()
        if row is None:
            raise not_found("offer")
        if not row[0]:
            conn.execute("UPDATE offers SET deleted=1, version=?, updated_at=? WHERE id=? AND brand_id=?",
                         (_version_block(conn, "offers", 1), time.time(), offer_key(brand_id, offer_id), brand_id))


def list_offers(store: HubStore, brand_id: str) -> list[dict]:
    rows = store.all("SELECT o.id, o.title, o.titles, o.kind, s.code, o.gtin, o.discount_pct, o.valid_from, o.valid_until, "
                     "o.deleted FROM offers o LEFT JOIN stores s ON s.id = o.store_id WHERE o.brand_id=? ORDER BY o.id",
                     (brand_id,))
    prefix = len(brand_id) + 1
    return [{"id": i[prefix:], "title": t, "titles": json.loads(ts or "{}"), "kind": k, "store_code": c or "",
             "gtin": g, "discount_pct": p, "valid_from": vf, "valid_until": vu, "ended": bool(d)}
            for i, t, ts, k, c, g, p, vf, vu, d in rows]
