"""A brand's stores: the stores feed (code, name, city, currency, time zone, languages), and
the lookup of one store by its code that the per-store calls make (stock, enrollment codes).
"""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from hub.brand_rows import (CREATED, MAX_NAME, REJECTED, STORE_CODE, UNCHANGED, UPDATED, RowError, _checked,
                            _currency, _dupes, _language, _only_known, _result, _rows, _text, not_found, report)
from hub.store import HubStore

TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
STORE_FIELDS = {"store_code", "name", "city", "currency", "timezone", "languages"}


def store_id(brand_id: str, code: str) -> str:
    """The hub's id of a brand's store: brand ids hold no '-', so it never collides."""
    return f"{brand_id}-{code}"


def _timezone(value) -> str:
    value = _text(value, "timezone", 64) or "UTC"
    if not TIMEZONE.fullmatch(value) or ".." in value:
        raise RowError("timezone", "must be an IANA time zone such as Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, OSError):
        raise RowError("timezone", "is not a known IANA time zone") from None
    return value


def _languages(value) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = [v.strip() for v in re.split(r"[,; ]+", value) if v.strip()]
    if not isinstance(value, list) or len(value) > 8:
        raise RowError("languages", "must be at most 8 language tags")
    return ",".join(_language(v, "languages") for v in value)


def check_store(row: dict) -> dict:
    _only_known(row, STORE_FIELDS)
    code = row.get("store_code")
    if not isinstance(code, str) or not STORE_CODE.fullmatch(code.strip()):
        raise RowError("store_code", "must be 1-32 letters, digits, '_' or '-'")
    return {"code": code.strip(), "name": _text(row.get("name"), "name", MAX_NAME, required=True),
            "city": _text(row.get("city"), "city", MAX_NAME), "currency": _currency(row.get("currency")),
            "timezone": _timezone(row.get("timezone")), "languages": _languages(row.get("languages"))}


def upsert_stores(store: HubStore, brand_id: str, rows) -> dict:
    good, results = _checked(_rows(rows, "stores"), check_store, "store_code")
    good, twice = _dupes(good, lambda r: r["code"])
    results += twice
    with store.transaction() as conn:
        existing = {r[0]: r for r in conn.execute("SELECT code, name, city, currency, timezone, languages FROM stores "
                                                  "WHERE brand_id=?", (brand_id,)).fetchall()}
        taken = {r[0] for r in conn.rows_in("SELECT id FROM stores WHERE id IN (?*)",
                                             [store_id(brand_id, row["code"]) for _, row in good])}
        for index, row in good:
            values = (row["name"], row["city"], row["currency"], row["timezone"], row["languages"])
            old = existing.get(row["code"])
            if old is None and store_id(brand_id, row["code"]) in taken:  # an old store id of another shape
                results.append(_result(index, row["code"], REJECTED, [{"field": "store_code", "reason": "is taken"}]))
            elif old is None:
                conn.execute("INSERT INTO stores(id, brand_id, code, name, city, currency, timezone, languages) "
                             "VALUES (?,?,?,?,?,?,?,?)", (store_id(brand_id, row["code"]), brand_id, row["code"], *values))
                results.append(_result(index, row["code"], CREATED))
            elif tuple(old[1:]) == values:
                results.append(_result(index, row["code"], UNCHANGED))
            else:
                conn.execute("UPDATE stores SET name=?, city=?, currency=?, timezone=?, languages=? "
                             "WHERE brand_id=? AND code=?", (*values, brand_id, row["code"]))
                results.append(_result(index, row["code"], UPDATED))
    return report(sorted(results, key=lambda r: r["index"]))


def list_stores(store: HubStore, brand_id: str) -> list[dict]:
    return [{"store_code": c, "name": n, "city": ci, "currency": cu, "timezone": tz,
             "languages": [x for x in langs.split(",") if x]}
            for c, n, ci, cu, tz, langs in store.all("SELECT code, name, city, currency, timezone, languages FROM stores "
                                                     "WHERE brand_id=? ORDER BY code", (brand_id,))]


def _store_of(conn, brand_id: str, code: str) -> tuple[str, str, str]:
    """(store id, currency, time zone) of this brand's store, or 404."""
    row = conn.execute("SELECT id, currency, timezone FROM stores WHERE brand_id=? AND code=?",
                       (brand_id, code)).fetchone()
    if row is None:
        raise not_found("store")
    return row
