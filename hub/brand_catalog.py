"""A brand's catalog: the products feed (title, price, texts in other languages, image URL),
reading and deleting products, and the product images the hub keeps for kiosks.
"""
from __future__ import annotations

import json
import time

from hub.brand_rows import (CREATED, MAX_DESCRIPTION, MAX_TITLE, REJECTED, UNCHANGED, UPDATED, RowError, _bool,
                            _checked, _currency, _dupes, _image_url, _only_known, _price, _result, _rows, _text,
                            _texts, _version_block, normalise_gtin, not_found, report)
from hub.store import HubStore

PRODUCT_FIELDS = {"gtin", "sku", "title", "description", "price", "currency", "online", "image_url", "texts"}


def check_product(row: dict) -> dict:
    _only_known(row, PRODUCT_FIELDS)
    return {"gtin": normalise_gtin(row.get("gtin")), "sku": _text(row.get("sku"), "sku", 64),
            "title": _text(row.get("title"), "title", MAX_TITLE, required=True),
            "description": _text(row.get("description"), "description", MAX_DESCRIPTION),
            "price": _price(row.get("price")), "currency": _currency(row.get("currency")),
            "online": _bool(row.get("online"), "online", True), "image_url": _image_url(row.get("image_url")),
            "texts": _texts(row.get("texts"), ("title", "description"),
                            {"title": MAX_TITLE, "description": MAX_DESCRIPTION})}


def upsert_products(store: HubStore, brand_id: str, rows) -> dict:
    """Create or change products; a changed title, price or text reaches kiosks with their
    next inventory pull (the product's stock rows get new versions). Returns the report;
    rows whose image_url is new are in report["fetch"] (gtin, url) for the caller to fetch."""
    good, results = _checked(_rows(rows, "products"), check_product, "gtin")
    good, twice = _dupes(good, lambda r: r["gtin"])
    results += twice
    fetch, now = [], time.time()
    with store.transaction() as conn:
        existing = {r[0]: r for r in conn.rows_in(
            "SELECT gtin, brand_id, sku, title, description, price, currency, online, image_url, texts, deleted, "
            "image_state FROM products WHERE gtin IN (?*)", [row["gtin"] for _, row in good])}
        inserts, updates, touched = [], [], []
        for index, row in good:
            values = (row["sku"], row["title"], row["description"], row["price"], row["currency"], int(row["online"]),
                      row["image_url"], json.dumps(row["texts"], ensure_ascii=False, sort_keys=True))
            old = existing.get(row["gtin"])
            if old is not None and old[1] != brand_id:
                results.append(_result(index, row["gtin"], REJECTED,
                                       [{"field": "gtin", "reason": "this GTIN is in another brand's catalog"}]))
                continue
            if old is None:
                inserts.append((row["gtin"], brand_id, *values, now))
                results.append(_result(index, row["gtin"], CREATED))
            elif tuple(old[2:10]) == values and not old[10]:
                results.append(_result(index, row["gtin"], UNCHANGED))
                if row["image_url"] and (old[11] or "").startswith("failed"):  # sent again: fetched again
                    fetch.append((row["gtin"], row["image_url"]))
                continue
            else:
                updates.append((*values, now, row["gtin"], brand_id))
                touched.append(row["gtin"])
                results.append(_result(index, row["gtin"], UPDATED))
            if row["image_url"] and (old is None or old[8] != row["image_url"]):
                fetch.append((row["gtin"], row["image_url"]))
        conn.executemany("INSERT INTO products(gtin, brand_id, sku, title, description, price, currency, online, "
                         "image_url, texts, updated_at, image_state) VALUES (?,?,?,?,?,?,?,?,?,?,?,'')", inserts)
        conn.executemany("UPDATE products SET sku=?, title=?, description=?, price=?, currency=?, online=?, "
                         "image_url=?, texts=?, updated_at=?, deleted=0 WHERE gtin=? AND brand_id=?", updates)
        if fetch:
            conn.executemany("UPDATE products SET image_state='pending' WHERE gtin=? AND brand_id=?",
                             [(g, brand_id) for g, _ in fetch])
        _bump_stock(conn, touched)
    out = report(sorted(results, key=lambda r: r["index"]))
    out["fetch"] = fetch
    return out


def _bump_stock(conn, gtins: list[str]) -> None:
    """New versions for every stock row of these products (their title or price changed), so
    kiosks pull them again; one version for them all (they arrive in one answer)."""
    for start in range(0, len(gtins), 1000):
        chunk = gtins[start:start + 1000]
        version = _version_block(conn, "inventory", 1)
        statement = conn.in_list("UPDATE inventory SET version=? WHERE gtin IN (?*)", chunk, (version,))
        conn.execute(*statement)


def _product_json(row) -> dict:
    gtin, sku, title, description, price, currency, online, image_url, texts, image_state, deleted, updated = row
    return {"gtin": gtin, "sku": sku, "title": title, "description": description, "price": price,
            "currency": currency, "online": bool(online), "image_url": image_url, "texts": json.loads(texts or "{}"),
            "image": f"/v1/images/{gtin}.png" if image_state in ("", "fetched", "uploaded") else "",
            "image_state": image_state or "", "deleted": bool(deleted), "updated_at": updated}


_PRODUCT_COLUMNS = "gtin, sku, title, description, price, currency, online, image_url, texts, image_state, deleted, updated_at"


def list_products(store: HubStore, brand_id: str, after: str = "", limit: int = 500) -> tuple[list[dict], str | None]:
    limit = max(1, min(int(limit), 5000))
    rows = store.all(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE brand_id=? AND gtin>? ORDER BY gtin LIMIT ?",
                     (brand_id, after or "", limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_product_json(r) for r in rows], (rows[-1][0] if more else None)


def get_product(store: HubStore, brand_id: str, gtin: str) -> dict:
    row = store.one(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE brand_id=? AND gtin=?", (brand_id, _path_gtin(gtin)))
    if row is None:
        raise not_found("product")
    return _product_json(row)


def _path_gtin(gtin: str) -> str:
    try:
        return normalise_gtin(gtin)
    except RowError:
        raise not_found("product") from None


def delete_product(store: HubStore, brand_id: str, gtin: str) -> None:
    """The product leaves the catalog: kiosks stop showing it as in stock (its stock rows
    arrive as quantity 0 at their next pull); a wishlist keeps it, as unavailable."""
    gtin = _path_gtin(gtin)
    with store.transaction() as conn:
        found = conn.execute("UPDATE products SET deleted=1, updated_at=? WHERE gtin=? AND brand_id=? RETURNING gtin",
                             (time.time(), gtin, brand_id)).fetchone()
        if found is None:
            raise not_found("product")
        version = _version_block(conn, "inventory", 1)
        conn.execute("UPDATE inventory SET quantity=0, availability='out_of_stock', version=? WHERE gtin=?",
                     (version, gtin))


def set_image(store: HubStore, brand_id: str, gtin: str, png: bytes, state: str = "uploaded") -> None:
    """Keep a prepared (downscaled, re-encoded) image for a product of this brand."""
    gtin = _path_gtin(gtin)
    with store.transaction() as conn:
        if conn.execute("UPDATE products SET image_state=? WHERE gtin=? AND brand_id=? RETURNING gtin",
                        (state, gtin, brand_id)).fetchone() is None:
            raise not_found("product")
        conn.execute("INSERT INTO images(gtin, png) VALUES (?,?) ON CONFLICT(gtin) DO UPDATE SET png=excluded.png",
                     (gtin, png))


def image_failed(store: HubStore, brand_id: str, gtin: str, reason: str) -> None:
    store.conn.execute("UPDATE products SET image_state=? WHERE gtin=? AND brand_id=?",
                       ("failed: " + reason[:200], gtin, brand_id))
