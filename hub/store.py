"""The hub's storage: SQLite (embedded) or PostgreSQL (a fleet), a bounded pool, small transactions.

The hub is stateless HTTP over this store. One SQL text serves SQLite and PostgreSQL
(SQLAlchemy 2 Core `text()`, psycopg 3 underneath: hub/sql.py); the schema is Alembic
migrations. Here: the engine and its transactions, settings and keyed hashes, kiosks (their
enrollment, identity and heartbeats) and their check-in sessions; what kiosks pull of the
catalogue is hub/catalog.py's, mixed in.

    store = HubStore(Path("hub.db"))
    device = store.enroll("DEMO", "kiosk-1")
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from hub.brand_rules import code_hash
from hub.catalog import CatalogueDeltas
from hub.sql import Conn, all_of, bind, database_url, q, safe_url, sqlite_begin, sqlite_connect
# The rest of the hub imports these from here (they live in hub/catalog.py and hub/sql.py):
from hub.catalog import _json, localized, store_price, with_default  # noqa: F401
from hub.sql import in_list  # noqa: F401

log = logging.getLogger(__name__)


class HubFailure(Exception):
    """A request the hub refuses; `kind` is the api.P_* problem type. `extra`: RFC 9457
    extension members of the answer (e.g. api.M_RETRY_AFTER_S), the numbers a client reads
    instead of the human `detail`."""

    def __init__(self, kind: str, detail: str, status: int, headers: dict | None = None,
                 extra: dict | None = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.headers = kind, detail, status, headers
        self.extra = dict(extra or {})


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    brand_id: str
    store_id: str
    revoked: bool = False  # taken out of its brand's fleet: every call is refused (device-revoked)
    predecessor: str = ""  # the revoked device this kiosk was (its old token proved it at enrollment)


def search_key(text: str) -> str:
    """The case- and accent-insensitive form staff search stores and looks names up by:
    'Nguyễn Thị Lan' -> 'nguyen thi lan'."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not 0x300 <= ord(c) <= 0x36F)
    return unicodedata.normalize("NFC", bare).casefold()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Auto:
    """`store.conn` outside a transaction: each statement is its own short transaction."""

    def __init__(self, store: "HubStore") -> None:
        self.store = store

    def execute(self, sql: str, params=()):
        current = self.store._current()
        if current is not None:
            return current.execute(sql, params)
        held = getattr(self.store._local, "read", None)
        if held is not None:  # inside `store.reading()`: the request's one connection
            return _Done(held.execute(q(sql), bind(params)))
        with self.store.autocommit.connect() as sa:  # one statement, atomic by itself: no BEGIN/COMMIT
            return _Done(sa.execute(q(sql), bind(params)))

    def executemany(self, sql: str, rows) -> None:
        with self.store.transaction() as conn:
            conn.executemany(sql, rows)


class _Done:
    """A finished statement's result, read before its connection went back to the pool."""

    def __init__(self, result) -> None:
        self.rowcount = result.rowcount
        self._rows = result.fetchall() if result.returns_rows else []

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return self._rows


class HubStore(CatalogueDeltas):
    """The hub's database: SQLite (a file; the embedded default) or PostgreSQL (a URL), through
    SQLAlchemy 2 Core with a bounded connection pool. The schema is Alembic's (hub/migrations):
    `migrate=True` brings the database up to date, otherwise a database that is behind is refused."""

    def __init__(self, db: Path | str, migrate: bool = True, pool_size: int = 10, max_overflow: int = 10,
                 pool_timeout_s: float = 5.0) -> None:
        self.url = database_url(db)
        self.safe_url = safe_url(db)
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            path = Path(make_url(self.url).database or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.path = str(path)
            self.engine = create_engine(self.url, poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow,
                                        pool_timeout=pool_timeout_s, connect_args={"timeout": 30.0, "check_same_thread": False})
            event.listen(self.engine, "connect", sqlite_connect)
            event.listen(self.engine, "begin", sqlite_begin)
        else:
            self.path = self.safe_url
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=max_overflow,
                                        pool_timeout=pool_timeout_s, pool_pre_ping=False,
                                        connect_args={"connect_timeout": 5,
                                                      "options": "-c statement_timeout=10000"})
        # Statements outside a transaction (most reads) run on an autocommit twin of the engine:
        # no BEGIN IMMEDIATE taking SQLite's write lock for a read, no BEGIN/COMMIT round trips.
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._local = threading.local()
        self._devices: dict[str, tuple[Device, float]] = {}
        from hub import migrations
        if migrate:
            migrations.upgrade(self.engine)
        else:
            migrations.require_current(self.engine, self.safe_url)
        if not self.get_setting("pepper"):
            self.conn.execute("INSERT INTO settings(key, value) VALUES (?,?) ON CONFLICT(key) DO NOTHING",
                              ("pepper", secrets.token_hex(32)))
        self.pepper = bytes.fromhex(self.get_setting("pepper"))

    @staticmethod
    def engine_for(db: Path | str):
        return create_engine(database_url(db), poolclass=NullPool)

    @property
    def conn(self):
        return self._current() or _Auto(self)

    def _current(self) -> Conn | None:
        return getattr(self._local, "tx", None)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def reading(self):
        """Statements outside a transaction share one autocommit connection for this block (one
        pool checkout and one liveness ping for a request, not one per statement). A
        transaction inside the block still runs on a connection of its own."""
        if getattr(self._local, "read", None) is not None or self._current() is not None:
            yield
            return
        with self.autocommit.connect() as sa:
            self._local.read = sa
            try:
                yield
            finally:
                self._local.read = None

    @contextlib.contextmanager
    def transaction(self):
        """One transaction on one pooled connection; nested use joins the outer one."""
        current = self._current()
        if current is not None:
            yield current
            return
        with self.engine.connect() as sa:
            with sa.begin():
                self._local.tx = Conn(sa)
                try:
                    yield self._local.tx
                finally:
                    self._local.tx = None

    def all_of(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        """Independent statements at once (see `all_of`): in the transaction, on the block's
        `reading()` connection, or on one autocommit connection of their own."""
        current = self._current()
        if current is not None:
            return all_of(current.sa, statements)
        held = getattr(self._local, "read", None)
        if held is not None:
            return all_of(held, statements)
        with self.autocommit.connect() as sa:
            return all_of(sa, statements)

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
        """The keyed hash the hub finds a card token or UID by. Its key (the pepper) never
        leaves the hub: a kiosk keys its own cache with a key of its own."""
        return hmac.new(self.pepper, stable_id.encode(), hashlib.sha256).hexdigest()

    def next_version(self, conn, name: str) -> int:
        return conn.execute("INSERT INTO counters(name, value) VALUES (?, 1) "
                            "ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                            (name,)).fetchone()[0]

    # -- devices -----------------------------------------------------------------
    def add_enrollment_code(self, code: str, brand_id: str, store_id: str, reusable: bool = False) -> None:
        """A code for a store id as the tests and benches make them (brands use
        brands.create_code, by store code, with an expiry)."""
        digest = code_hash(code)
        self.conn.execute("INSERT INTO enrollment_codes(code, brand_id, store_id, reusable, id, created_at) "
                          "VALUES (?,?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET brand_id=excluded.brand_id, "
                          "store_id=excluded.store_id, reusable=excluded.reusable, used_by=NULL, revoked=0",
                          (digest, brand_id, store_id, int(reusable), "code-" + digest[:10], time.time()))

    def enroll(self, code: str, name: str, previous_token: str = "") -> dict:
        """A kiosk enrolled with a brand's code (kept as its SHA-256; one-time codes are used
        up, expire and can be revoked): its id and token, the only time the token is seen.
        `previous_token`: the token of the device this kiosk was until its brand revoked it
        (same brand): its queued events may then still point at that device's check-ins."""
        from kiosk import api
        device_id = "dev-" + secrets.token_hex(6)
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT brand_id, store_id, reusable, used_by, revoked, expires_at FROM enrollment_codes "
                               "WHERE code=?", (code_hash(code),)).fetchone()
            if row is None or (not row[2] and row[3]) or row[4] or (row[5] is not None and row[5] <= now):
                raise HubFailure(api.P_ENROLLMENT_REFUSED, "unknown, expired or already used enrollment code", 403)
            brand_id, store_id = row[0], row[1]
            if not row[2]:
                used = conn.execute("UPDATE enrollment_codes SET used_by=? WHERE code=? AND used_by IS NULL RETURNING code",
                                    (device_id, code_hash(code))).fetchone()
                if used is None:  # another enrollment took it first
                    raise HubFailure(api.P_ENROLLMENT_REFUSED, "unknown, expired or already used enrollment code", 403)
            before = ""
            if previous_token:
                old = conn.execute("SELECT id FROM devices WHERE token_hash=? AND brand_id=? AND revoked_at IS NOT NULL",
                                   (token_hash(previous_token), brand_id)).fetchone()
                before = old[0] if old else ""
            conn.execute("INSERT INTO devices(id, name, token_hash, brand_id, store_id, enrolled_at, predecessor) "
                         "VALUES (?,?,?,?,?,?,?)", (device_id, name[:80], token_hash(token), brand_id, store_id, now, before))
            brand_name = conn.execute("SELECT name FROM brands WHERE id=?", (brand_id,)).fetchone()
            shop = conn.execute("SELECT name, timezone, languages FROM stores WHERE id=?", (store_id,)).fetchone()
        log.info("device %s enrolled for store %s", device_id, store_id)
        config = {"timezone": shop[1] or "UTC", "languages": [x for x in (shop[2] or "").split(",") if x]} if shop else {}
        return {"device_id": device_id, "device_token": token, "brand_id": brand_id,
                "brand_name": brand_name[0] if brand_name else "", "store_id": store_id,
                "store_name": shop[0] if shop else "", "config": config}

    # A kiosk's identity is looked up on every call. Found devices are kept for DEVICE_CACHE_S
    # in this process (unknown tokens never are: guesses cannot fill it); taking a device out
    # of service forgets it here at once and in every other process within that time.
    DEVICE_CACHE_S = 10.0
    DEVICE_CACHE_MAX = 20_000

    def cached_device(self, token: str) -> Device | None:
        hit = self._devices.get(token_hash(token))
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    _generation = 0  # moved by forget_devices: a lookup that raced a revocation is not cached

    def device_by_token(self, token: str) -> Device | None:
        digest = token_hash(token)
        generation = self._generation
        row = self.one("SELECT id, name, brand_id, store_id, revoked_at, predecessor FROM devices WHERE token_hash=?",
                       (digest,))
        if not row:
            self._devices.pop(digest, None)
            return None
        if len(self._devices) >= self.DEVICE_CACHE_MAX:
            self._devices.clear()
        found = Device(*row[:4], revoked=row[4] is not None, predecessor=row[5] or "")
        if generation == self._generation:
            self._devices[digest] = (found, time.monotonic() + self.DEVICE_CACHE_S)
        return found

    def forget_devices(self) -> None:
        self._generation += 1
        self._devices.clear()

    EPOCH_CHECK_S = 1.0
    _epoch: tuple[float, int] = (0.0, -1)

    def epoch_due(self) -> bool:
        return time.monotonic() >= self._epoch[0]

    def check_epoch(self) -> None:
        """Forget the cached devices when a kiosk was revoked in any process (the
        `devices_revoked` counter moved): called at most once a second, off the event loop."""
        row = self.one("SELECT value FROM counters WHERE name='devices_revoked'")
        value = row[0] if row else 0
        if value != self._epoch[1]:
            self.forget_devices()
        self._epoch = (time.monotonic() + self.EPOCH_CHECK_S, value)

    def seen(self, device: Device) -> None:
        self.conn.execute("UPDATE devices SET last_seen=? WHERE id=?", (time.time(), device.id))

    def heartbeat(self, device: Device, payload: dict) -> None:
        now = time.time()
        sent = payload.get("sent_at")
        payload = {k: v for k, v in payload.items() if not isinstance(v, float) or math.isfinite(v)}
        if isinstance(sent, (int, float)) and not isinstance(sent, bool) and abs(sent) < 1e12:
            payload["clock_skew_s"] = round(sent - now, 1)  # the kiosk's clock minus the hub's
        self.conn.execute("UPDATE devices SET heartbeat=?, last_seen=? WHERE id=?",
                          (json.dumps(payload)[:4000], now, device.id))

    # -- check-in sessions ------------------------------------------------------
    SESSION_TTL_S = 15 * 60

    def open_session(self, device: Device, shopper_id: str) -> str:
        token, statement = self.session_statement(device, shopper_id)
        self.conn.execute(*statement)
        return token

    def session_statement(self, device: Device, shopper_id: str) -> tuple[str, tuple[str, tuple]]:
        """A new check-in session's token and the statement that opens it (a check-in sends it
        with the shopper's view, in one trip)."""
        token = secrets.token_urlsafe(24)
        now = time.time()
        if secrets.randbelow(50) == 0:  # ended sessions are swept now and then, not on every check-in
            self.conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        return token, ("INSERT INTO sessions(token_hash, device_id, shopper_id, expires_at) VALUES (?,?,?,?)",
                       (token_hash(token), device.id, shopper_id, now + self.SESSION_TTL_S))

    LIVE_CHECKIN = {"type": "checkin", "via": "checkin-call"}

    def visit_statements(self, device: Device, shopper_id: str, checkin_id: str) -> list[tuple[str, tuple]]:
        """A check-in the hub accepted live, recorded by the hub: its receipt (the proof the
        visit's events point at), the visit counted only if this call inserted the receipt (a
        retried call counts nothing twice), and the receipt read back to check whose it is."""
        now = time.time()
        body = json.dumps({"event_id": checkin_id, **self.LIVE_CHECKIN})
        return [
            ("INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
             "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING",
             (checkin_id, device.id, "checkin", hashlib.sha256(body.encode()).hexdigest(), shopper_id, now, body)),
            ("INSERT INTO visits(shopper_id, brand_id, count, last_at) SELECT ?, ?, 1, ? WHERE EXISTS "
             "(SELECT 1 FROM events WHERE event_id=? AND device_id=? AND received_at=?) "
             "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET count=visits.count+1, last_at=excluded.last_at",
             (shopper_id, device.brand_id, now, checkin_id, device.id, now)),
            ("SELECT device_id, shopper_id, type FROM events WHERE event_id=?", (checkin_id,)),
        ]

    @staticmethod
    def check_visit(rows: list[tuple], device: Device, shopper_id: str) -> None:
        from kiosk import api
        if not rows or tuple(rows[0]) != (device.id, shopper_id, "checkin"):
            raise HubFailure(api.P_INVALID, "checkin_id is already the id of another event", 409)

    def session_shopper(self, device: Device, token: str) -> str:
        from kiosk import api
        row = self.one("SELECT shopper_id FROM sessions WHERE token_hash=? AND device_id=? AND expires_at>?",
                       (token_hash(token), device.id, time.time()))
        if not row:
            raise HubFailure(api.P_NOT_FOUND, "this check-in session has ended", 404)
        return row[0]
