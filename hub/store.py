"""The hub's storage: SQLite (embedded) or PostgreSQL (a fleet), a bounded pool, small transactions.

The hub is stateless HTTP over this store. One SQL text serves SQLite and PostgreSQL
(SQLAlchemy 2 Core `text()`, psycopg 3 underneath); the schema is Alembic migrations.

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
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

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


def _sqlite_connect(dbapi, _record) -> None:
    dbapi.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN IMMEDIATE itself
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
        dbapi.execute(f"PRAGMA {pragma}")


def _sqlite_begin(sa) -> None:
    if sa.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        sa.exec_driver_sql("BEGIN IMMEDIATE")


def _json(text_value: str) -> dict:
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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _named(sql: str) -> str:
    """One SQL text for both dialects: `?` placeholders become SQLAlchemy's `:p0, :p1, ...`."""
    parts = sql.split("?")
    return "".join(p + (f":p{i}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


_TEXT: dict[str, object] = {}


def q(sql: str):
    found = _TEXT.get(sql)
    if found is None:
        found = _TEXT[sql] = text(_named(sql))
    return found


def bind(params) -> dict:
    if isinstance(params, dict):
        return params
    return {f"p{i}": v for i, v in enumerate(params)}


def database_url(db: Path | str) -> str:
    """A file path (SQLite) or a URL: postgresql://user@host:port/db runs on psycopg 3."""
    db = str(db)
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if "://" in db:
        return db
    return "sqlite:///" + str(Path(db))


def safe_url(db: Path | str) -> str:
    """The database named without its password, for messages and logs."""
    if "://" not in str(db):
        return str(db)
    try:
        return make_url(database_url(db)).render_as_string(hide_password=True).replace("+psycopg", "")
    except Exception:  # noqa: BLE001 - an unparsable URL is named as given, minus anything after ':' '@'
        return re.sub(r"//[^@/]*@", "//***@", str(db))


class Conn:
    """The connection a transaction runs on, with the small sqlite3-like surface the hub uses."""

    def __init__(self, sa) -> None:
        self.sa = sa

    def execute(self, sql: str, params=()):
        return self.sa.execute(q(sql), bind(params))

    def executemany(self, sql: str, rows) -> None:
        if not rows:
            return
        if self.sa.dialect.name == "sqlite" and len(rows) > 50 and not isinstance(rows[0], dict):
            self.sa.exec_driver_sql(sql, [tuple(r) for r in rows])  # the driver's own `?`: no binding per row
            return
        self.sa.execute(q(sql), [bind(r) for r in rows])

    def insert_returning(self, sql: str, rows: list[tuple]) -> list[tuple]:
        """One `INSERT ... VALUES (?, ...) ... RETURNING` for many rows; every returned row.
        PostgreSQL: one pipelined executemany on psycopg (the statement prepared once, one
        round trip); SQLite, in process, runs it row by row. The same SQL text on both."""
        if not rows:
            return []
        if self.sa.dialect.name != "postgresql":  # multi-row VALUES, the row's group repeated
            head, group, tail = _values_group(sql)
            out = []
            for start in range(0, len(rows), 100):
                chunk = rows[start:start + 100]
                out += self.sa.execute(q(head + ",".join([group] * len(chunk)) + tail),
                                       bind([v for row in chunk for v in row])).fetchall()
            return out
        with _driver_errors(self.sa, sql):
            cur = self.sa.connection.driver_connection.cursor()
            try:
                cur.executemany(_pyformat(sql), rows, returning=True)
                out = []
                while True:
                    out += cur.fetchall()
                    if not cur.nextset():
                        return out
            finally:
                cur.close()

    def rows_in(self, sql: str, values, params: tuple = ()) -> list[tuple]:
        statement = in_list(self.sa.dialect.name, sql, values, params)
        if statement is None:
            return []
        if self.sa.dialect.name == "sqlite":  # thousands of `?`: the driver's own, no compiling
            return self.sa.exec_driver_sql(statement[0], tuple(statement[1])).fetchall()
        return all_of(self.sa, [statement])[0]

    def all_of(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        return all_of(self.sa, statements)

    def in_list(self, sql: str, values, params: tuple = ()):
        return in_list(self.sa.dialect.name, sql, values, params)


def in_list(dialect: str, sql: str, values, params: tuple = ()) -> tuple[str, tuple] | None:
    """`sql` whose one `IN (?*)` is filled from `values` (at most a batch's 1,000; SQLite takes
    32,766 parameters): on PostgreSQL `= ANY(?)` with one array parameter (one short statement,
    prepared once), on SQLite an IN list. `params` are the placeholders before the list (the
    list comes last in `sql`). None when there are no values (nothing to ask)."""
    values = sorted(set(values))
    if not values:
        return None
    if dialect == "postgresql":
        return sql.replace(" IN (?*)", " = ANY(?)"), (*params, values)
    return sql.replace("(?*)", "(" + ",".join("?" * len(values)) + ")"), (*params, *values)


def all_of(sa, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
    """Independent statements (none needs another's result), each one's rows. PostgreSQL: sent
    together in one psycopg pipeline, one round trip for all of them, which matters most when
    the machine is busy and every wake-up waits for a core. SQLite: one after the other."""
    if sa.dialect.name != "postgresql":
        out = []
        for sql, params in statements:
            result = sa.execute(q(sql), bind(params))
            out.append(result.fetchall() if result.returns_rows else [])
        return out
    with _driver_errors(sa, statements[0][0]):
        raw = sa.connection.driver_connection
        cursors = []
        try:
            with raw.pipeline():
                for sql, params in statements:
                    cursors.append(raw.cursor())
                    cursors[-1].execute(_pyformat(sql), tuple(params))
            return [c.fetchall() if c.description else [] for c in cursors]
        finally:
            for c in cursors:
                c.close()


@contextlib.contextmanager
def _driver_errors(sa, sql: str):
    """psycopg's own errors, for statements sent to the driver directly, as SQLAlchemy's (the
    app answers those with 503 and the pool drops a broken connection)."""
    import psycopg
    from sqlalchemy.exc import DBAPIError
    try:
        yield
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) or getattr(sa.connection.driver_connection, "broken", False):
            sa.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, connection_invalidated=sa.invalidated) from exc


def _values_group(sql: str) -> tuple[str, str, str]:
    """'INSERT ... VALUES (?,?) ON ...' as ('INSERT ... VALUES ', '(?,?)', ' ON ...')."""
    at = sql.index("VALUES (") + len("VALUES ")
    end = sql.index(")", at) + 1
    return sql[:at], sql[at:end], sql[end:]


def _pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's own `%s` (for a statement sent to the driver directly)."""
    return sql.replace("%", "%%").replace("?", "%s")


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


class HubStore:
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
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
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
        from hub.brands import code_hash
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
        from hub.brands import code_hash
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

    # -- catalogue deltas --------------------------------------------------------
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
        from hub.brands import window
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
        from hub.brands import window
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
