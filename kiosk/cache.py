"""The cache: what the kiosk needs to keep serving offline (DESIGN section 6).

Its own SQLite file (0600). Shopper views are keyed by HMAC(this kiosk's own cache key, the
card's or phone's stable id): only for finding a view here, never sent to a hub (raw tokens
are never stored); rows expire after the TTL counted from when the hub last confirmed them,
and are purged at start and on every sync round; inventory and offers are kept as the hub's deltas left them;
every row knows when it was fetched. A damaged file is detected at start
(`PRAGMA quick_check`), moved aside and rebuilt; the outbox is a separate file and is
never touched by any of this. Purges end with a WAL checkpoint so deleted rows do not
linger on disk.

    cache = Cache(path)
    cache.put_shopper(key, view)
    view, age = cache.get_shopper(key, ttl_s=86400)
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from kiosk.api import ShopperView, parse_texts, texts_json
from kiosk.errors import HubProtocolError
from kiosk.outbox import connect, storage_error

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
MIGRATIONS = {
    1: """
    CREATE TABLE shoppers (key TEXT PRIMARY KEY, shopper_id TEXT NOT NULL, view TEXT NOT NULL,
                           fetched_at REAL NOT NULL);
    CREATE INDEX shoppers_by_id ON shoppers(shopper_id);
    CREATE TABLE inventory (gtin TEXT PRIMARY KEY, quantity INTEGER NOT NULL, location TEXT NOT NULL,
                            title TEXT NOT NULL DEFAULT '', fetched_at REAL NOT NULL);
    CREATE TABLE offers (offer_id TEXT PRIMARY KEY, body TEXT NOT NULL, fetched_at REAL NOT NULL);
    CREATE TABLE images (path TEXT PRIMARY KEY, file TEXT NOT NULL, fetched_at REAL NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # v2: a product saved offline shows its price and brand; the next pull refetches everything
    2: """
    ALTER TABLE inventory ADD COLUMN price TEXT NOT NULL DEFAULT '';
    ALTER TABLE inventory ADD COLUMN currency TEXT NOT NULL DEFAULT '';
    ALTER TABLE inventory ADD COLUMN brand TEXT NOT NULL DEFAULT '';
    ALTER TABLE inventory ADD COLUMN brand_name TEXT NOT NULL DEFAULT '';
    DELETE FROM meta WHERE key = 'inventory_cursor';
    """,
    # v3 (issue 10): texts per language, the description and the feed's availability; offers
    # the feed ended (so a cached shopper view never shows them again); both feeds refetched
    3: """
    ALTER TABLE inventory ADD COLUMN texts TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE inventory ADD COLUMN description TEXT NOT NULL DEFAULT '';
    ALTER TABLE inventory ADD COLUMN availability TEXT NOT NULL DEFAULT '';
    CREATE TABLE ended_offers (offer_id TEXT PRIMARY KEY, ended_at REAL NOT NULL);
    DELETE FROM meta WHERE key IN ('inventory_cursor', 'offers_cursor');
    """,
}
INVENTORY_FIELDS = ("quantity", "location", "title", "price", "currency", "brand", "brand_name", "fetched_at",
                    "texts", "description", "availability")


class Cache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self.rebuilt_from: Path | None = None
        self.db = self._open_checked()
        self.conn = self.db.conn

    # -- lifecycle ---------------------------------------------------------------
    def _open_checked(self):
        try:
            db = connect(self.path, synchronous="NORMAL")
            ok = db.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            if ok:
                self._migrate(db)
                return db
            db.conn.close()
            reason = "quick_check failed"
        except sqlite3.DatabaseError as exc:
            reason = str(exc)
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        log.error("cache file damaged (%s): moved aside to %s and rebuilt", reason, aside.name)
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.replace(Path(str(aside) + suffix))
        self.rebuilt_from = aside
        db = connect(self.path, synchronous="NORMAL")
        self._migrate(db)
        return db

    def _migrate(self, db) -> None:
        conn = db.conn
        conn.execute("PRAGMA secure_delete=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for target in sorted(v for v in MIGRATIONS if v > version):
            conn.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, MIGRATIONS[target].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={target}")
            conn.execute("COMMIT")
            log.info("cache schema migrated to version %d", target)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def _write(self, sql: str, params=()) -> int:
        try:
            with self._lock:
                return self.conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    # -- shoppers ----------------------------------------------------------------
    def put_shopper(self, key: str, view: ShopperView) -> None:
        self._write("INSERT INTO shoppers(key, shopper_id, view, fetched_at) VALUES (?,?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET shopper_id=excluded.shopper_id, view=excluded.view, "
                    "fetched_at=excluded.fetched_at",
                    (key, view.shopper_id, json.dumps(view.to_json()), time.time()))

    def get_shopper(self, key: str, ttl_s: float) -> tuple[ShopperView, float] | None:
        with self._lock:
            row = self.conn.execute("SELECT view, fetched_at FROM shoppers WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        age = max(0.0, time.time() - row[1])
        if age > ttl_s:
            self.purge_shopper_key(key)
            return None
        try:
            return ShopperView.from_json(json.loads(row[0])), age
        except (ValueError, HubProtocolError):
            log.warning("a cached shopper view was unreadable; dropped")
            self.purge_shopper_key(key)
            return None

    def purge_shopper_key(self, key: str) -> None:
        self._write("DELETE FROM shoppers WHERE key=?", (key,))
        self.checkpoint()

    def purge_shopper(self, shopper_id: str) -> int:
        """Forget a shopper (consent revoked, erase requested)."""
        count = self._write("DELETE FROM shoppers WHERE shopper_id=?", (shopper_id,))
        self.checkpoint()
        return count

    def purge_shoppers(self, shopper_ids: list[str]) -> int:
        """Forget several shoppers at once (the revocation feed), one checkpoint for all."""
        count = 0
        for start in range(0, len(shopper_ids), 500):
            chunk = shopper_ids[start:start + 500]
            count += self._write(f"DELETE FROM shoppers WHERE shopper_id IN ({','.join('?' * len(chunk))})",
                                 tuple(chunk))
        self.checkpoint()
        return count

    def purge_all_shoppers(self) -> int:
        """Forget every cached shopper view (a new cache key, a refused device token)."""
        count = self._write("DELETE FROM shoppers")
        self.checkpoint()
        return count

    def use_key(self, key: bytes) -> None:
        """Rows are found by HMAC under `key`; rows written under any other key are dropped."""
        mark = hmac.new(key, b"nfc-kiosk cache key id", hashlib.sha256).hexdigest()[:32]
        if self.get_meta("cache_key_id") != mark:
            dropped = self.purge_all_shoppers()
            self.set_meta("cache_key_id", mark)
            if dropped:
                log.info("dropped %d shopper view(s) cached under another key", dropped)

    def shopper_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self.conn.execute("SELECT DISTINCT shopper_id FROM shoppers")}

    def purge_expired(self, ttl_s: float) -> int:
        # an ended offer is remembered as long as a cached view could still hold it
        self._write("DELETE FROM ended_offers WHERE ended_at < ?", (time.time() - 2 * ttl_s,))
        count = self._write("DELETE FROM shoppers WHERE fetched_at < ?", (time.time() - ttl_s,))
        if count:
            self.checkpoint()
        return count

    def checkpoint(self) -> None:
        try:
            with self._lock:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            log.warning("cache checkpoint failed", exc_info=True)

    # -- inventory and offers (hub deltas) ---------------------------------------
    def apply_inventory(self, items: list[dict], cursor: str) -> None:
        """Items as `kiosk.api.inventory_item` checked them (texts as its tuples)."""
        now = time.time()
        rows = [(str(i["gtin"]), int(i.get("quantity", 0)), str(i.get("location", "")), str(i.get("title", "")),
                 str(i.get("price", "")), str(i.get("currency", "")), str(i.get("brand", "")),
                 str(i.get("brand_name", "")), now, json.dumps(texts_json(tuple(i.get("texts", ())))),
                 str(i.get("description", "")), str(i.get("availability", "")))
                for i in items if isinstance(i, dict) and "gtin" in i]
        try:
            with self._lock:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(
                    "INSERT INTO inventory(gtin, quantity, location, title, price, currency, brand, brand_name, "
                    "fetched_at, texts, description, availability) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(gtin) DO UPDATE SET "
                    "quantity=excluded.quantity, location=excluded.location, title=excluded.title, "
                    "price=excluded.price, currency=excluded.currency, brand=excluded.brand, "
                    "brand_name=excluded.brand_name, fetched_at=excluded.fetched_at, texts=excluded.texts, "
                    "description=excluded.description, availability=excluded.availability", rows)
                self._set_meta("inventory_cursor", cursor)
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise storage_error(exc) from exc

    def inventory(self, gtin: str) -> dict | None:
        """The cached stock row of `gtin` (texts as `kiosk.api` tuples), or None."""
        with self._lock:
            row = self.conn.execute(f"SELECT {', '.join(INVENTORY_FIELDS)} FROM inventory WHERE gtin=?",
                                    (gtin,)).fetchone()
        if row is None:
            return None
        found = dict(zip(INVENTORY_FIELDS, row))
        try:
            found["texts"] = parse_texts({"texts": json.loads(found["texts"] or "{}")}, "texts")
        except (ValueError, HubProtocolError):
            found["texts"] = ()
        return found

    def apply_offers(self, offers: list[dict], cursor: str) -> None:
        now = time.time()
        try:
            with self._lock:
                self.conn.execute("BEGIN IMMEDIATE")
                for offer in offers:
                    if offer.get("deleted"):
                        self.conn.execute("DELETE FROM offers WHERE offer_id=?", (str(offer["id"]),))
                        self.conn.execute("INSERT OR REPLACE INTO ended_offers(offer_id, ended_at) VALUES (?,?)",
                                          (str(offer["id"]), now))
                    else:
                        self.conn.execute("INSERT OR REPLACE INTO offers(offer_id, body, fetched_at) VALUES (?,?,?)",
                                          (str(offer["id"]), json.dumps(offer), now))
                        self.conn.execute("DELETE FROM ended_offers WHERE offer_id=?", (str(offer["id"]),))
                self._set_meta("offers_cursor", cursor)
                self.conn.execute("COMMIT")
        except (sqlite3.Error, KeyError) as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, KeyError):
                raise HubProtocolError("offer without an id") from None
            raise storage_error(exc) from exc

    def offers(self) -> list[dict]:
        with self._lock:
            return [json.loads(b) for (b,) in self.conn.execute("SELECT body FROM offers ORDER BY offer_id")]

    def ended_offers(self) -> set[str]:
        """Offers the feed said were ended (a cached shopper view may still hold them)."""
        with self._lock:
            return {r[0] for r in self.conn.execute("SELECT offer_id FROM ended_offers")}

    # -- images ------------------------------------------------------------------
    def put_image(self, path: str, file: Path) -> None:
        self._write("INSERT OR REPLACE INTO images(path, file, fetched_at) VALUES (?,?,?)",
                    (path, str(file), time.time()))

    def image_file(self, path: str) -> Path | None:
        with self._lock:
            row = self.conn.execute("SELECT file FROM images WHERE path=?", (path,)).fetchone()
        return Path(row[0]) if row and Path(row[0]).is_file() else None

    def image_files(self) -> list[tuple[str, Path]]:
        with self._lock:
            return [(p, Path(f)) for p, f in self.conn.execute("SELECT path, file FROM images")]

    # -- meta --------------------------------------------------------------------
    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                          (key, value))

    def set_meta(self, key: str, value: str) -> None:
        try:
            with self._lock:
                self._set_meta(key, value)
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    def get_meta(self, key: str, default: str = "") -> str:
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default
