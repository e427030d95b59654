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

This module holds the accounts and keys; each feed and the fleet have their own module, and
every function of theirs is importable from here too:

    hub/brand_rows.py      the checks of a feed row, the batch report, version counters
    hub/brand_catalog.py   products and their images
    hub/brand_stores.py    stores
    hub/brand_stock.py     stock rows, snapshots, idempotent replays
    hub/brand_offers.py    offers and when they are live
    hub/brand_fleet.py     enrollment codes and kiosks
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from kiosk import api
from hub.brand_rows import LANGUAGE, MAX_NAME, _text, not_found
from hub.store import HubFailure, HubStore

from hub.brand_catalog import (  # noqa: F401  (re-exported)
    check_product, delete_product, get_product, image_failed, list_products, set_image, upsert_products,
)
from hub.brand_fleet import (  # noqa: F401  (re-exported)
    CODE_DEFAULT_S, CODE_MAX_S, code_hash, create_code, list_codes, list_devices, new_code, revoke_code, revoke_device,
)
from hub.brand_offers import (  # noqa: F401  (re-exported)
    check_offer, end_offer, list_offers, live, offer_key, upsert_offers, window,
)
from hub.brand_rows import MAX_ROWS, STORE_CODE, RowError, echo, normalise_gtin, report  # noqa: F401  (re-exported)
from hub.brand_stock import apply_stock, check_stock, list_stock, parse_time  # noqa: F401  (re-exported)
from hub.brand_stores import check_store, list_stores, store_id, upsert_stores  # noqa: F401  (re-exported)

BRAND_ID = re.compile(r"[a-z][a-z0-9]{1,31}")
KEY_PREFIX = "bk_"
MAX_KEYS = 10  # active keys of one brand


@dataclass(frozen=True)
class BrandKey:
    id: str
    brand_id: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


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
