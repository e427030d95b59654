"""The hub's storage: one SQLite file, a connection per thread, small transactions.

The hub is stateless HTTP over this store; everything here is plain SQL that PostgreSQL
would take with few changes (DESIGN section 11).

    store = HubStore(Path("hub.db"))
    device = store.enroll("DEMO", "kiosk-1")
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)


class HubFailure(Exception):
    """A request the hub refuses; `kind` is the api.P_* problem type."""

    def __init__(self, kind: str, detail: str, status: int) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status = kind, detail, status


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    brand_id: str
    store_id: str


def search_key(text: str) -> str:
    """The case- and accent-insensitive form staff search stores and looks names up by:
    'Nguyễn Thị Lan' -> 'nguyen thi lan'."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not 0x300 <= ord(c) <= 0x36F)
    return unicodedata.normalize("NFC", bare).casefold()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HubStore:
    def __init__(self, path: Path | str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self.conn
        conn.executescript(resources.files("hub").joinpath("schema.sql").read_text())
        if not self.get_setting("pepper"):
            self.set_setting("pepper", secrets.token_hex(32))
        self.pepper = bytes.fromhex(self.get_setting("pepper"))

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def transaction(self):
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def one(self, sql: str, params=()) -> tuple | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params=()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    # -- settings and hashes -----------------------------------------------------
    def get_setting(self, key: str) -> str:
        row = self.one("SELECT value FROM settings WHERE key=?", (key,))
        return row[0] if row else ""

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO settings(key, value) VALUES (?,?) "
                          "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def credential_hash(self, stable_id: str) -> str:
        """The keyed hash kiosks compute with the `credential_key` they got at enrollment."""
        return hmac.new(self.pepper, stable_id.encode(), hashlib.sha256).hexdigest()

    def next_version(self, conn: sqlite3.Connection, name: str) -> int:
        conn.execute("INSERT INTO counters(name, value) VALUES (?, 1) "
                     "ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
        return conn.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    # -- devices -----------------------------------------------------------------
    def add_enrollment_code(self, code: str, brand_id: str, store_id: str, reusable: bool = False) -> None:
        self.conn.execute("INSERT OR REPLACE INTO enrollment_codes(code, brand_id, store_id, reusable) VALUES (?,?,?,?)",
                          (code, brand_id, store_id, int(reusable)))

    def enroll(self, code: str, name: str) -> dict:
        from kiosk import api
        device_id = "dev-" + secrets.token_hex(6)
        token = secrets.token_urlsafe(32)
        with self.transaction() as conn:
            row = conn.execute("SELECT brand_id, store_id, reusable, used_by FROM enrollment_codes WHERE code=?",
                               (code,)).fetchone()
            if row is None or (not row[2] and row[3]):
                raise HubFailure(api.P_ENROLLMENT_REFUSED, "unknown or already used enrollment code", 403)
            brand_id, store_id = row[0], row[1]
            if not row[2]:
                conn.execute("UPDATE enrollment_codes SET used_by=? WHERE code=?", (device_id, code))
            conn.execute("INSERT INTO devices(id, name, token_hash, brand_id, store_id, enrolled_at) VALUES (?,?,?,?,?,?)",
                         (device_id, name[:80], token_hash(token), brand_id, store_id, time.time()))
            brand_name = conn.execute("SELECT name FROM brands WHERE id=?", (brand_id,)).fetchone()
            store_name = conn.execute("SELECT name FROM stores WHERE id=?", (store_id,)).fetchone()
        log.info("device %s enrolled for store %s", device_id, store_id)
        return {"device_id": device_id, "device_token": token, "brand_id": brand_id,
                "brand_name": brand_name[0] if brand_name else "", "store_id": store_id,
                "store_name": store_name[0] if store_name else "", "credential_key": self.pepper.hex(),
                "config": {}}

    def device_by_token(self, token: str) -> Device | None:
        row = self.one("SELECT id, name, brand_id, store_id FROM devices WHERE token_hash=?", (token_hash(token),))
        return Device(*row) if row else None

    def heartbeat(self, device: Device, payload: dict) -> None:
        self.conn.execute("UPDATE devices SET heartbeat=?, last_seen=? WHERE id=?",
                          (json.dumps(payload)[:4000], time.time(), device.id))

    # -- check-in sessions ------------------------------------------------------
    SESSION_TTL_S = 15 * 60

    def open_session(self, device: Device, shopper_id: str) -> str:
        token = secrets.token_urlsafe(24)
        now = time.time()
        self.conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self.conn.execute("INSERT INTO sessions(token_hash, device_id, shopper_id, expires_at) VALUES (?,?,?,?)",
                          (token_hash(token), device.id, shopper_id, now + self.SESSION_TTL_S))
        return token

    def session_shopper(self, device: Device, token: str) -> str:
        from kiosk import api
        row = self.one("SELECT shopper_id FROM sessions WHERE token_hash=? AND device_id=? AND expires_at>?",
                       (token_hash(token), device.id, time.time()))
        if not row:
            raise HubFailure(api.P_NOT_FOUND, "this check-in session has ended", 404)
        return row[0]

    # -- catalogue deltas --------------------------------------------------------
    def inventory_delta(self, store_id: str, since: int) -> tuple[list[dict], int]:
        rows = self.all("SELECT i.gtin, i.quantity, i.location, p.title, p.price, p.currency, p.brand_id, b.name, "
                        "i.version FROM inventory i JOIN products p ON p.gtin = i.gtin JOIN brands b ON b.id = p.brand_id "
                        "WHERE i.store_id=? AND i.version>? ORDER BY i.version", (store_id, since))
        cursor = max([since] + [r[8] for r in rows])
        return [{"gtin": g, "quantity": q, "location": loc, "title": t, "price": pr, "currency": cur, "brand": b,
                 "brand_name": bn} for g, q, loc, t, pr, cur, b, bn, _ in rows], cursor

    def offers_delta(self, brand_id: str, store_id: str, since: int) -> tuple[list[dict], int]:
        rows = self.all("SELECT id, title, kind, gtin, discount_pct, valid_until, deleted, version, store_id "
                        "FROM offers WHERE brand_id=? AND version>? AND (store_id IS NULL OR store_id=?) "
                        "ORDER BY version", (brand_id, since, store_id))
        cursor = max([since] + [r[7] for r in rows])
        return [{"id": i, "title": t, "kind": k, "gtin": g, "discount_pct": d, "valid_until": v,
                 "deleted": bool(x), "personal": k != "brand"} for i, t, k, g, d, v, x, _, _ in rows], cursor

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
