"""Brands: their accounts and API keys, catalog, stores, stock, offers and kiosk fleet.

The one way anything of a brand gets into the hub: the brand API (hub/brand_api.py), the
import command (through that API) and the demo world all call these functions.

    key_id, key = brands.create_brand(store, "lotus", "Lotus & Linen")
    who = brands.authenticate(store, "Bearer " + key)              # BrandKey, or HubFailure 401
    report = brands.upsert_products(store, who.brand_id, rows)     # per-row results

Every function takes the brand id the caller's key proved and touches only that brand's
rows. Feed rows are untrusted: each is checked on its own and refused with the field and the
reason; good rows land. A key is `bk_` + 32 random bytes (url-safe); the hub keeps its
SHA-256 (a high-entropy secret needs no slow hash) and finds it by that unique index.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from kiosk import api
from kiosk.api import gtin_check_digit
from hub import inputs
from hub.store import HubFailure, HubStore

BRAND_ID = re.compile(r"[a-z][a-z0-9]{1,31}")
STORE_CODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,31}")
OFFER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}")
CURRENCY = re.compile(r"[A-Z]{3}")
TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
SKU = re.compile(r"[^\s].{0,63}", re.S)
KEY_PREFIX = "bk_"
MAX_ROWS = 5000  # rows in one batch call
MAX_TITLE, MAX_DESCRIPTION, MAX_NAME, MAX_LOCATION, MAX_URL = 200, 2000, 120, 64, 2000
MAX_LANGUAGES = 40  # texts in one product
MAX_QUANTITY = 10 ** 9
MAX_KEYS = 10  # active keys of one brand
AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")
OFFER_KINDS = ("brand", "first_visit", "returning", "lapsed", "wishlist_promo")
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a screen, typed on a kiosk
CODE_MAX_S, CODE_DEFAULT_S = 90 * 86400, 7 * 86400
ONLINE_WITHIN_S = 300  # a kiosk seen this recently is online

CREATED, UPDATED, UNCHANGED, STALE, REJECTED = "created", "updated", "unchanged", "stale", "rejected"
STATUSES = (CREATED, UPDATED, UNCHANGED, STALE, REJECTED)


@dataclass(frozen=True)
class BrandKey:
    id: str
    brand_id: str


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def store_id(brand_id: str, code: str) -> str:
    """The hub's id of a brand's store: brand ids hold no '-', so it never collides."""
    return f"{brand_id}-{code}"


def offer_key(brand_id: str, offer_id: str) -> str:
    return f"{brand_id}-{offer_id}"


def not_found(what: str) -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, f"no such {what} in this brand", 404)


# -- accounts and keys -----------------------------------------------------------------
def create_brand(store: HubStore, brand_id: str, name: str, default_language: str = "en",
                 key: str | None = None) -> tuple[str, str]:
    """A new brand and its first admin key: (key id, key). ValueError for a bad or taken id.
    `key` is for the demo world only (a known key for a known brand)."""
    if not isinstance(brand_id, str) or not BRAND_ID.fullmatch(brand_id):
        raise ValueError("a brand id is 2-32 lowercase letters and digits, starting with a letter")
    name = _text(name, "name", MAX_NAME, required=True)
    if not LANGUAGE.fullmatch(default_language or ""):
        raise ValueError("the default language is a language tag such as en, vi, ru or th")
    with store.transaction() as conn:
        row = conn.execute("INSERT INTO brands(id, name, default_language, created_at) VALUES (?,?,?,?) "
                           "ON CONFLICT(id) DO NOTHING RETURNING id",
                           (brand_id, name, default_language, time.time())).fetchone()
        if row is None:
            raise ValueError(f"a brand with the id {brand_id!r} exists already")
        return create_key(store, brand_id, "admin", key=key)


def create_key(store: HubStore, brand_id: str, name: str, key: str | None = None) -> tuple[str, str]:
    name = _text(name or "key", "name", 64, required=True)
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = "key-" + secrets.token_hex(4)
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM brands WHERE id=?", (brand_id,)).fetchone() is None:
            raise ValueError(f"no brand {brand_id!r}")
        active = conn.execute("SELECT COUNT(*) FROM brand_keys WHERE brand_id=? AND revoked_at IS NULL",
                              (brand_id,)).fetchone()[0]
        if active >= MAX_KEYS:  # keys are rate-limited one by one: many keys must not mean many rates
            raise ValueError(f"a brand has at most {MAX_KEYS} active keys: revoke one first")
        conn.execute("INSERT INTO brand_keys(id, brand_id, name, key_hash, created_at) VALUES (?,?,?,?,?)",
                     (key_id, brand_id, name, _hash(key), time.time()))
    return key_id, key


def list_keys(store: HubStore, brand_id: str) -> list[dict]:
    return [{"id": i, "name": n, "created_at": c, "last_used_at": u or None, "revoked": r is not None}
            for i, n, c, u, r in store.all("SELECT id, name, created_at, last_used_at, revoked_at FROM brand_keys "
                                            "WHERE brand_id=? ORDER BY created_at, id", (brand_id,))]


def revoke_key(store: HubStore, brand_id: str, key_id: str) -> None:
    """Revoke a key of this brand for good (404 for another brand's); never the last active
    one (409: the brand would lock itself out; create another first)."""
    with store.transaction() as conn:
        rows = conn.execute("SELECT id, revoked_at FROM brand_keys WHERE brand_id=?", (brand_id,)).fetchall()
        mine = {i: r for i, r in rows}
        if key_id not in mine:
            raise not_found("key")
        if mine[key_id] is not None:
            return
        if sum(1 for r in mine.values() if r is None) <= 1:
            raise HubFailure(api.P_INVALID, "this is the brand's last active key: create another one first", 409)
        conn.execute("UPDATE brand_keys SET revoked_at=? WHERE id=? AND brand_id=?", (time.time(), key_id, brand_id))
        conn.execute("DELETE FROM web_sessions WHERE kind='brand' AND key_id=?", (key_id,))


_used: dict[str, float] = {}


def authenticate(store: HubStore, authorization: str) -> BrandKey:
    """The brand key in `Authorization: Bearer <key>` (or the bare key), or HubFailure 401."""
    scheme, _, key = (authorization or "").partition(" ")
    if not key and scheme.startswith(KEY_PREFIX):
        scheme, key = "bearer", scheme
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) > 128 or not key.isascii():
        raise HubFailure(api.P_UNAUTHORIZED, "a valid brand key is required", 401)
    row = store.one("SELECT id, brand_id FROM brand_keys WHERE key_hash=? AND revoked_at IS NULL", (_hash(key),))
    if row is None:
        raise HubFailure(api.P_UNAUTHORIZED, "a valid brand key is required", 401)
    now = time.time()
    if _used.get(row[0], 0) < now - 60:  # last use recorded at most once a minute per process
        _used[row[0]] = now
        store.conn.execute("UPDATE brand_keys SET last_used_at=? WHERE id=?", (now, row[0]))
    return BrandKey(row[0], row[1])


def brand_info(store: HubStore, who: BrandKey) -> dict:
    row = store.one("SELECT id, name, default_language FROM brands WHERE id=?", (who.brand_id,))
    return {"id": row[0], "name": row[1], "default_language": row[2], "key_id": who.id}


# -- checks shared by the feeds ------------------------------------------------------
def _text(value, field: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RowError(field, "must be text")
    value = value.strip()
    if required and not value:
        raise RowError(field, "is required")
    if len(value) > limit:
        raise RowError(field, f"is longer than {limit} characters ({len(value)})")
    if not inputs.safe(value):
        raise RowError(field, "holds control or bidi characters")
    return value


def normalise_gtin(value, field: str = "gtin") -> str:
    """GTIN-8/12/13/14 as its 14-digit form; RowError when it is not one (check digit included)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowError(field, "must be a GTIN (8, 12, 13 or 14 digits)")
    if len(value) <= 16:
        known = _GTINS.get(value)
        if known is not None:
            return known
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) in (8, 12, 13, 14)):
        raise RowError(field, "must be a GTIN (8, 12, 13 or 14 digits)")
    if gtin_check_digit(digits[:-1]) != int(digits[-1]):
        raise RowError(field, f"check digit is wrong (expected {gtin_check_digit(digits[:-1])})")
    if len(_GTINS) >= 200_000:
        _GTINS.clear()
    _GTINS[value] = digits.zfill(14)
    return digits.zfill(14)


_GTINS: dict[str, str] = {}  # GTINs seen valid (a feed names the same products store after store)


def _price(value, field: str = "price") -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise RowError(field, "is required")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError(field, "must be a number such as 12.90") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12"):
        raise RowError(field, "must be a number from 0 to 10^12")
    if amount.as_tuple().exponent < -4:
        raise RowError(field, "has more than 4 decimals")
    return format(amount.normalize(), "f") if amount == amount.to_integral() else format(amount, "f")


def _currency(value, field: str = "currency") -> str:
    if not isinstance(value, str) or not CURRENCY.fullmatch(value.strip().upper()):
        raise RowError(field, "must be an ISO 4217 code such as VND, RUB, THB or GBP")
    return value.strip().upper()


def _bool(value, field: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "y"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "n"):
        return False
    raise RowError(field, "must be true or false")


def _language(value, field: str) -> str:
    if not isinstance(value, str) or len(value) > 35 or not LANGUAGE.fullmatch(value):
        raise RowError(field, "is not a language tag (BCP 47, such as vi, th or pt-BR)")
    return value


def _texts(value, fields: tuple[str, ...], limits: dict) -> dict:
    """{"vi": {"title": ..., "description": ...}} (products) checked and trimmed."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LANGUAGES:
        raise RowError("texts", f"must be an object of at most {MAX_LANGUAGES} languages")
    out = {}
    for lang, entry in value.items():
        lang = _language(lang, f"texts[{echo(lang, 35)}]")
        if isinstance(entry, str):
            entry = {fields[0]: entry}
        if not isinstance(entry, dict) or set(entry) - set(fields):
            raise RowError(f"texts[{lang}]", f"must be an object of {', '.join(fields)}")
        clean = {f: _text(entry.get(f), f"{f}[{lang}]", limits[f]) for f in fields if entry.get(f) not in (None, "")}
        if clean:
            out[lang] = clean
    return dict(sorted(out.items()))


def _image_url(value) -> str:
    value = _text(value, "image_url", MAX_URL)
    if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise RowError("image_url", "must be an http(s) URL")
    return value


def _rows(body_rows, what: str) -> list:
    if not isinstance(body_rows, list):
        raise HubFailure(api.P_INVALID, f"{what} must be a list of rows", 422)
    if len(body_rows) > MAX_ROWS:
        raise HubFailure(api.P_INVALID, f"at most {MAX_ROWS} rows in one call; send the rest in another", 422)
    return body_rows


def echo(value, limit: int = 64) -> str:
    """Caller-given text repeated in an answer: cut, and escaped when it holds control, bidi or
    lone surrogate characters (which no UTF-8 answer can carry)."""
    value = str(value)[:limit]
    return value if inputs.safe(value) else value.encode("utf-8", "backslashreplace").decode("ascii", "replace")


def _result(index: int, key: str, status: str, errors: list | None = None) -> dict:
    return {"index": index, "key": echo(key), "status": status,
            "errors": [{"field": echo(e["field"], 80), "reason": echo(e["reason"], 300)} for e in errors or []]}


def report(results: list[dict]) -> dict:
    counts = {s: 0 for s in STATUSES}
    for r in results:
        counts[r["status"]] += 1
    return {"results": results, "counts": counts}


def _checked(rows: list, check, key_field: str) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(index, clean row) for the good rows and the results of the refused ones."""
    good, refused = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            refused.append(_result(index, "", REJECTED, [{"field": "", "reason": "a row must be an object"}]))
            continue
        try:
            good.append((index, check(row)))
        except RowError as exc:
            key = row.get(key_field)
            refused.append(_result(index, key[:64] if isinstance(key, str) else "", REJECTED,
                                   [{"field": exc.field, "reason": exc.reason}]))
    return good, refused


def _only_known(row: dict, allowed: set[str]) -> None:
    unknown = sorted(echo(k, 40) for k in row if k not in allowed)
    if unknown:
        raise RowError(unknown[0], "is not a field of this feed")


def _version_block(conn, name: str, n: int) -> int:
    """Reserve n versions of counter `name` (under its row lock until commit, so versions
    commit in order); the first of them."""
    top = conn.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                       "SET value = counters.value + excluded.value RETURNING value", (name, n)).fetchone()[0]
    return top - n + 1


def _newest(good: list[tuple[int, dict]]) -> tuple[list[tuple[int, dict]], list[dict]]:
    """The same store and product twice in one stock call: the row true latest (`as_of`; the
    later row on a tie) counts, the others are stale."""
    best: dict[tuple[str, str], tuple[int, dict]] = {}
    for index, row in good:
        key = (row["code"], row["gtin"])
        if key not in best or row["as_of"] >= best[key][1]["as_of"]:
            best[key] = (index, row)
    keep = {index for index, _ in best.values()}
    return ([(i, r) for i, r in good if i in keep],
            [_result(i, r["gtin"], STALE) for i, r in good if i not in keep])


def _dupes(good: list[tuple[int, dict]], key) -> tuple[list[tuple[int, dict]], list[dict]]:
    """A key given twice in one call: the last row wins, earlier ones are refused (named)."""
    last = {key(row): index for index, row in good}
    keep, refused = [], []
    for index, row in good:
        if last[key(row)] == index:
            keep.append((index, row))
        else:
            refused.append(_result(index, str(key(row)), REJECTED,
                                   [{"field": "", "reason": f"the same row key appears again at row {last[key(row)]}"}]))
    return keep, refused


# -- catalog -------------------------------------------------------------------------
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


# -- stores --------------------------------------------------------------------------
STORE_FIELDS = {"store_code", "name", "city", "currency", "timezone", "languages"}


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


# -- stock ---------------------------------------------------------------------------
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


# -- offers --------------------------------------------------------------------------
OFFER_FIELDS = {"id", "title", "titles", "kind", "store_code", "gtin", "discount_pct", "valid_from", "valid_until"}


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


def window(valid_from: str, valid_until: str, timezone: str) -> tuple[float | None, float | None]:
    """An offer's [start, end) in unix time: a date is a whole day in the store's time zone
    (valid_until 2026-12-31 ends at midnight after it); a time without offset is local too."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ValueError, KeyError, OSError):
        zone = dt.timezone.utc

    return api.offer_moment(valid_from, zone, False), api.offer_moment(valid_until, zone, True)


def live(valid_from: str, valid_until: str, timezone: str, now: float | None = None) -> bool:
    start, end = window(valid_from, valid_until, timezone)
    now = time.time() if now is None else now
    return (start is None or start <= now) and (end is None or now < end)


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


# -- the fleet -----------------------------------------------------------------------
def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))  # 16 of 31 symbols: 79 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8", "surrogatepass")).hexdigest()


def create_code(store: HubStore, brand_id: str, code_of_store: str, expires_in_s: int | None = CODE_DEFAULT_S,
                reusable: bool = False, code: str | None = None) -> dict:
    """A one-time enrollment code for a store of this brand (kept only as its hash). Reusable
    codes with a given value are the demo world's (DEMO)."""
    if expires_in_s is not None and (isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int)
                                     or not 60 <= expires_in_s <= CODE_MAX_S):
        raise HubFailure(api.P_INVALID, f"expires_in_s must be from 60 to {CODE_MAX_S} seconds", 422)
    code = code or new_code()
    digest, now = code_hash(code), time.time()
    with store.transaction() as conn:
        sid = _store_of(conn, brand_id, code_of_store)[0]
        expires = None if expires_in_s is None else now + expires_in_s
        conn.execute("INSERT INTO enrollment_codes(code, brand_id, store_id, reusable, id, created_at, expires_at) "
                     "VALUES (?,?,?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET brand_id=excluded.brand_id, "
                     "store_id=excluded.store_id, reusable=excluded.reusable, used_by=NULL, revoked=0, "
                     "expires_at=excluded.expires_at", (digest, brand_id, sid, int(reusable), "code-" + digest[:10], now, expires))
    return {"id": "code-" + digest[:10], "code": code, "store_code": code_of_store, "expires_at": expires,
            "reusable": reusable}


def list_codes(store: HubStore, brand_id: str) -> list[dict]:
    rows = store.all("SELECT e.id, s.code, e.created_at, e.expires_at, e.used_by, e.revoked, e.reusable "
                     "FROM enrollment_codes e JOIN stores s ON s.id = e.store_id WHERE e.brand_id=? "
                     "ORDER BY e.created_at, e.id", (brand_id,))
    return [{"id": i, "store_code": c, "created_at": at or None, "expires_at": ex, "used_by": u,
             "revoked": bool(r), "reusable": bool(re_)} for i, c, at, ex, u, r, re_ in rows]


def revoke_code(store: HubStore, brand_id: str, code_id: str) -> None:
    row = store.conn.execute("UPDATE enrollment_codes SET revoked=1 WHERE id=? AND brand_id=? RETURNING id",
                             (code_id, brand_id)).fetchone()
    if row is None:
        raise not_found("enrollment code")


def list_devices(store: HubStore, brand_id: str, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    rows = store.all("SELECT d.id, d.name, s.code, d.enrolled_at, d.last_seen, d.heartbeat, d.revoked_at "
                     "FROM devices d LEFT JOIN stores s ON s.id = d.store_id WHERE d.brand_id=? "
                     "ORDER BY s.code, d.name, d.id", (brand_id,))
    out = []
    for device_id, name, code, enrolled, seen, beat, revoked in rows:
        try:
            beat = json.loads(beat or "{}")
        except ValueError:
            beat = {}
        beat = beat if isinstance(beat, dict) else {}

        def number(key):
            value = beat.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e13
            return value if ok else None

        def word(key):
            value = beat.get(key)
            return value[:64] if isinstance(value, str) and inputs.safe(value) else ""
        out.append({"id": device_id, "name": name, "store_code": code or "", "enrolled_at": enrolled,
                    "last_seen": seen or None, "online": bool(seen) and revoked is None and now - seen < ONLINE_WITHIN_S,
                    "revoked": revoked is not None, "version": word("version"), "reader_state": word("reader_state"),
                    "outbox_depth": number("outbox_depth"), "parked": number("parked"), "last_sync": number("last_sync"),
                    "clock_skew_s": number("clock_skew_s"), "free_disk_mb": number("free_disk_mb")})
    return out


def revoke_device(store: HubStore, brand_id: str, device_id: str) -> None:
    """Take a kiosk out of the fleet: its token is refused at its next call (in this process
    at once, in every other within a second: the `devices` counter moves), its check-in and
    staff sessions end. It keeps its outbox; enrolled again, it delivers it."""
    with store.transaction() as conn:
        row = conn.execute("SELECT revoked_at FROM devices WHERE id=? AND brand_id=?", (device_id, brand_id)).fetchone()
        if row is None:
            raise not_found("kiosk")
        if row[0] is None:
            conn.execute("UPDATE devices SET revoked_at=? WHERE id=?", (time.time(), device_id))
            conn.execute("DELETE FROM sessions WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM staff_sessions WHERE device_id=?", (device_id,))
            _version_block(conn, "devices_revoked", 1)
    store.forget_devices()
