"""A brand's stock: the local inventory feed (rows of one store and product, newest `as_of`
wins), whole-store snapshots (rows absent become 0), idempotent replays of a feed call, and
reading one store's stock back.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
import time

from kiosk import api
from hub.brand_rows import (CREATED, REJECTED, STALE, STORE_CODE, UNCHANGED, UPDATED, RowError, _checked, _currency,
                            _newest, _only_known, _price, _result, _rows, _text, _version_block, normalise_gtin,
                            report)
from hub.brand_stores import _store_of
from hub.store import HubFailure, HubStore

MAX_LOCATION = 64
MAX_QUANTITY = 10 ** 9
AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")
STOCK_FIELDS = {"store_code", "id", "gtin", "quantity", "availability", "price", "instore_product_location", "as_of"}


_TIMES: dict[str, float] = {}  # a feed gives many rows the same as_of


def parse_time(value, field: str, now: float) -> float:
    """ISO 8601 with an offset (or Z), or unix seconds; not more than a day ahead of now."""
    if value in (None, ""):
        return now
    if isinstance(value, str) and value in _TIMES and _TIMES[value] <= now + 86400:
        return _TIMES[value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            at = float(value)
        except OverflowError:
            raise RowError(field, "is before 2000 or more than a day ahead") from None
        if not math.isfinite(at):
            raise RowError(field, "must be an ISO 8601 time or unix seconds")
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{9,11}(\.[0-9]{1,6})?", value.strip()):
        at = float(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RowError(field, "must be an ISO 8601 time such as 2026-12-03T09:30:00+07:00") from None
        if parsed.tzinfo is None:
            raise RowError(field, "needs a time zone offset (such as +07:00 or Z)")
        at = parsed.timestamp()
    else:
        raise RowError(field, "must be an ISO 8601 time or unix seconds")
    if not 946_684_800 <= at <= now + 86400:
        raise RowError(field, "is before 2000 or more than a day ahead")
    if isinstance(value, str):
        if len(_TIMES) > 10_000:
            _TIMES.clear()
        _TIMES[value] = at
    return at


def _quantity(value) -> int:
    if isinstance(value, bool):
        raise RowError("quantity", "must be a whole number")
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,12}\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise RowError("quantity", "must be a whole number")
    if value < 0:
        raise RowError("quantity", "must not be negative")
    if value > MAX_QUANTITY:
        raise RowError("quantity", f"must be at most {MAX_QUANTITY}")
    return value


def check_stock(row: dict, now: float) -> dict:
    _only_known(row, STOCK_FIELDS)
    code = row.get("store_code")
    if not isinstance(code, str) or not STORE_CODE.fullmatch(code.strip()):
        raise RowError("store_code", "must be 1-32 letters, digits, '_' or '-'")
    ident = row.get("id", row.get("gtin"))
    quantity = _quantity(row.get("quantity"))
    availability = _text(row.get("availability"), "availability", 32).lower()
    if availability and availability not in AVAILABILITY:
        raise RowError("availability", "must be one of " + ", ".join(AVAILABILITY))
    price = ""
    if row.get("price") not in (None, ""):
        raw = str(row["price"]).strip() if not isinstance(row["price"], bool) else "x"
        amount, _, currency = raw.partition(" ")
        price = _price(amount)
        if currency:
            price += " " + _currency(currency, "price")
    return {"code": code.strip(), "gtin": normalise_gtin(ident, "id"), "quantity": quantity,
            "availability": availability or ("in_stock" if quantity else "out_of_stock"), "price": price,
            "location": _text(row.get("instore_product_location"), "instore_product_location", MAX_LOCATION),
            "as_of": parse_time(row.get("as_of"), "as_of", now)}


FEED_KEEP_S = 24 * 3600  # how long an Idempotency-Key is remembered


def _feed(conn, brand_id: str, idempotency_key: str, body_hash: str) -> dict | None:
    """A feed call seen before under this key: its answer (the same body), or 422 (another)."""
    if secrets.randbelow(100) == 0:
        conn.execute("DELETE FROM feeds WHERE at < ?", (time.time() - FEED_KEEP_S,))
    conn.execute("DELETE FROM feeds WHERE brand_id=? AND idempotency_key=? AND at < ?",
                 (brand_id, idempotency_key, time.time() - FEED_KEEP_S))
    row = conn.execute("INSERT INTO feeds(brand_id, idempotency_key, body_hash, answer, at) VALUES (?,?,?,'',?) "
                       "ON CONFLICT(brand_id, idempotency_key) DO NOTHING RETURNING at",
                       (brand_id, idempotency_key, body_hash, time.time())).fetchone()
    if row is not None:
        return None
    old = conn.execute("SELECT body_hash, answer FROM feeds WHERE brand_id=? AND idempotency_key=?",
                       (brand_id, idempotency_key)).fetchone()
    if old[0] != body_hash:
        raise HubFailure(api.P_INVALID, "this Idempotency-Key was used for another request body", 422)
    return json.loads(old[1] or "{}")


def apply_stock(store: HubStore, brand_id: str, rows, snapshot: bool = False,
                idempotency_key: str = "", body_hash: str = "") -> dict:
    """Stock rows as a local inventory feed sends them. A row older (`as_of`) than what the
    hub has is `stale` and changes nothing; the same row again is `unchanged`. `snapshot`:
    the rows are one store's whole stock, rows absent become 0 (`report["zeroed"]`).
    With an idempotency key, a call sent again returns its first answer (`report["replayed"]`)."""
    now = time.time()
    rows = _rows(rows, "rows")
    if idempotency_key:  # a call sent again: its first answer, before any row is looked at
        seen = store.one("SELECT body_hash, answer FROM feeds WHERE brand_id=? AND idempotency_key=? AND at >= ?",
                         (brand_id, idempotency_key, now - FEED_KEEP_S))
        if seen is not None and seen[1]:
            if seen[0] != body_hash:
                raise HubFailure(api.P_INVALID, "this Idempotency-Key was used for another request body", 422)
            return {**json.loads(seen[1]), "replayed": True}
    good, results = _checked(rows, lambda r: check_stock(r, now), "id")
    good, twice = _newest(good)
    results += twice
    codes = {row["code"] for _, row in good}
    if snapshot:
        all_codes = {r.get("store_code", "").strip() for r in rows if isinstance(r, dict) and isinstance(r.get("store_code"), str)}
        if len(all_codes) != 1:
            raise HubFailure(api.P_INVALID, "a snapshot is the stock of one store: every row names the same store_code", 422)
    with store.transaction() as conn:
        if idempotency_key:
            seen = _feed(conn, brand_id, idempotency_key, body_hash)
            if seen is not None:
                return {**seen, "replayed": True}
        stores = {c: (i, tz) for c, i, tz in conn.execute("SELECT code, id, timezone FROM stores WHERE brand_id=?",
                                                          (brand_id,)).fetchall()}
        if snapshot and next(iter(all_codes)) not in stores:
            raise HubFailure(api.P_INVALID, "the snapshot's store_code is not a store of this brand", 422)
        products = {r[0] for r in conn.rows_in("SELECT gtin FROM products WHERE brand_id=? AND deleted=0 AND gtin IN (?*)",
                                                [row["gtin"] for _, row in good], (brand_id,))}
        current: dict[tuple[str, str], tuple] = {}
        for code in codes & set(stores):
            sid = stores[code][0]
            wanted = [row["gtin"] for _, row in good if row["code"] == code]
            if snapshot:
                found = conn.execute("SELECT gtin, quantity, availability, price, location, as_of FROM inventory "
                                     "WHERE store_id=?", (sid,)).fetchall()
            else:
                found = conn.rows_in("SELECT gtin, quantity, availability, price, location, as_of FROM inventory "
                                     "WHERE store_id=? AND gtin IN (?*)", wanted, (sid,))
            for r in found:
                current[(code, r[0])] = r
        writes, as_ofs = [], []
        for index, row in good:
            key = row["gtin"]
            if row["code"] not in stores:
                results.append(_result(index, key, REJECTED, [{"field": "store_code", "reason": "is not a store of this brand"}]))
                continue
            if row["gtin"] not in products:
                results.append(_result(index, key, REJECTED, [{"field": "id", "reason": "is not a product of this brand"}]))
                continue
            old = current.get((row["code"], row["gtin"]))
            values = (row["quantity"], row["availability"], row["price"], row["location"])
            as_ofs.append(row["as_of"])
            if old is not None and old[5] > row["as_of"]:
                results.append(_result(index, key, STALE))
            elif old is not None and tuple(old[1:5]) == values:
                results.append(_result(index, key, UNCHANGED))
            else:
                writes.append((stores[row["code"]][0], row["gtin"], *values, row["as_of"]))
                results.append(_result(index, key, CREATED if old is None else UPDATED))
        zeroed = 0
        if snapshot:
            code = next(iter(all_codes))
            given = {row["gtin"] for _, row in good if row["code"] == code} | _named_gtins(rows)
            at = max(as_ofs, default=now)
            for (c, gtin), old in current.items():
                if c == code and gtin not in given and (old[1] or old[2] != "out_of_stock") and old[5] <= at:
                    writes.append((stores[code][0], gtin, 0, "out_of_stock", old[3], old[4], at))
                    zeroed += 1
        if writes:
            first = _version_block(conn, "inventory", len(writes))
            # the as_of guard holds between concurrent feeds too (PostgreSQL, READ COMMITTED)
            conn.executemany("INSERT INTO inventory(store_id, gtin, quantity, availability, price, location, as_of, version) "
                             "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(store_id, gtin) DO UPDATE SET "
                             "quantity=excluded.quantity, availability=excluded.availability, price=excluded.price, "
                             "location=excluded.location, as_of=excluded.as_of, version=excluded.version "
                             "WHERE excluded.as_of >= inventory.as_of",
                             [(*w, first + n) for n, w in enumerate(writes)])
        answer = report(sorted(results, key=lambda r: r["index"]))
        answer["zeroed"] = zeroed
        refused = [r for r in answer["results"] if r["status"] == REJECTED]
        if snapshot and refused:  # a snapshot is one store's whole stock: all of it, or nothing
            first = refused[0]
            raise HubFailure(api.P_INVALID, f"the snapshot was refused whole ({len(refused)} bad rows; row "
                             f"{first['index']}: {first['errors'][0]['field']} {first['errors'][0]['reason']}); "
                             "nothing changed", 422)
        if idempotency_key and refused:  # sent again once its cause is fixed, it must land then
            conn.execute("DELETE FROM feeds WHERE brand_id=? AND idempotency_key=?", (brand_id, idempotency_key))
        elif idempotency_key:
            conn.execute("UPDATE feeds SET answer=? WHERE brand_id=? AND idempotency_key=?",
                         (json.dumps(answer), brand_id, idempotency_key))
    return answer


def _named_gtins(rows: list) -> set[str]:
    """The GTINs a snapshot's rows name, refused rows too: a row refused for its price leaves
    that product's stock alone instead of zeroing it as if it were absent."""
    out = set()
    for row in rows:
        if isinstance(row, dict):
            try:
                out.add(normalise_gtin(row.get("id", row.get("gtin")), "id"))
            except RowError:
                pass
    return out


def list_stock(store: HubStore, brand_id: str, code: str, after: str = "", limit: int = 1000) -> tuple[list[dict], str | None]:
    limit = max(1, min(int(limit), 5000))
    with store.reading():
        sid = _store_of(store.conn, brand_id, code)[0]
        rows = store.all("SELECT gtin, quantity, availability, price, location, as_of FROM inventory "
                         "WHERE store_id=? AND gtin>? ORDER BY gtin LIMIT ?", (sid, after or "", limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return [{"store_code": code, "id": g, "quantity": q, "availability": a or ("in_stock" if q else "out_of_stock"),
             "price": p, "instore_product_location": loc, "as_of": at or None} for g, q, a, p, loc, at in rows], \
        (rows[-1][0] if more else None)
