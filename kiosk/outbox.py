"""The outbox: events not yet acknowledged by the hub, durable before the screen says "done".

Its own SQLite file (WAL, synchronous=FULL on every connection), apart from the cache so a
damaged cache never costs a queued event. `seq` is AUTOINCREMENT so per-kiosk order survives
a drained queue. Rows leave only when the hub acknowledged them or by a logged technician
purge; rejected ones are parked with the reason and never block the ones behind them.

An offline check-in carries its raw credential (the hub verifies it on sync): the file is
0600 in a 0700 directory, deleted rows are overwritten (secure_delete) and the WAL is
truncated once such a row is acknowledged, so the credential leaves the disk with its row.

    outbox = Outbox(path)
    event = outbox.append("wishlist_add", {"checkin": checkin_id, "shopper_id": "s1", "gtin": "0..."})
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import sqlite_utils

from kiosk.api import uuid7
from kiosk.errors import DiskFull, StorageError
from kiosk.files import private_database, private_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PENDING, PARKED = "pending", "parked"

DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_state_seq ON events(state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(path: Path, synchronous: str = "FULL") -> sqlite_utils.Database:
    """A connection with the pragmas every kiosk database needs, set on every connection."""
    private_dir(path.parent)
    private_database(path)  # 0600 before SQLite writes: its -wal and -shm take the same mode
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA secure_delete=ON")
    private_database(path)  # an -wal or -shm left by an older kiosk with a looser mode
    return sqlite_utils.Database(conn)


def storage_error(exc: sqlite3.Error) -> StorageError:
    text = str(exc).lower()
    if "full" in text or "disk i/o" in text:
        return DiskFull(f"the kiosk's disk is full ({exc})")
    return StorageError(f"local storage failed ({exc})")


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = connect(self.path)
        self.conn = self.db.conn
        self._lock = threading.RLock()
        with self._lock:
            self.conn.executescript(DDL)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # -- writing -----------------------------------------------------------------
    def append(self, event_type: str, body: dict) -> dict:
        """Durably queue one event (fsync'd before return) and give it back with its id."""
        event = {"event_id": uuid7(), "type": event_type,
                 "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **body}
        try:
            with self._lock:
                cur = self.conn.execute(
                    "INSERT INTO events(event_id, type, body, schema_version, created_at) VALUES (?,?,?,?,?)",
                    (event["event_id"], event_type, json.dumps(event, separators=(",", ":")), SCHEMA_VERSION,
                     time.time()))
                event["seq"] = cur.lastrowid
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc
        return event

    def batch(self, limit: int) -> list[dict]:
        """The oldest pending events, each with its `seq`."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT seq, body FROM events WHERE state = ? ORDER BY seq LIMIT ?", (PENDING, limit)).fetchall()
        return [{**json.loads(body), "seq": seq} for seq, body in rows]

    def settle(self, acknowledged: list[str], rejected: dict[str, str]) -> None:
        """In one transaction: delete acknowledged events, park rejected ones with reasons."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                secrets_gone = any(self.conn.execute(
                    "SELECT 1 FROM events WHERE event_id = ? AND json_extract(body, '$.credential') IS NOT NULL",
                    (i,)).fetchone() for i in acknowledged)
                self.conn.executemany("DELETE FROM events WHERE event_id = ?", [(i,) for i in acknowledged])
                self.conn.executemany("UPDATE events SET state = ?, reason = ? WHERE event_id = ?",
                                      [(PARKED, reason[:500], i) for i, reason in rejected.items()])
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise storage_error(exc) from exc
            if secrets_gone:  # the credential's old page must not linger in the WAL either
                try:
                    self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    log.warning("outbox checkpoint failed", exc_info=True)
        for event_id, reason in rejected.items():
            log.warning("event %s parked: %s", event_id, reason[:200])

    def requeue(self, event_ids: list[str] | None = None) -> int:
        """Send parked events again (all of them when no ids are given)."""
        with self._lock:
            if event_ids is None:
                cur = self.conn.execute("UPDATE events SET state=?, reason='' WHERE state=?", (PENDING, PARKED))
            else:
                cur = self.conn.executemany("UPDATE events SET state=?, reason='' WHERE state=? AND event_id=?",
                                            [(PENDING, PARKED, i) for i in event_ids])
            count = cur.rowcount
        log.info("technician re-queued %d parked event(s)", count)
        return count

    def purge_parked(self) -> int:
        with self._lock:
            count = self.conn.execute("DELETE FROM events WHERE state=?", (PARKED,)).rowcount
        log.warning("technician purged %d parked event(s)", count)
        return count

    # -- reading -----------------------------------------------------------------
    def depth(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT count(*) FROM events WHERE state=?", (PENDING,)).fetchone()[0]

    def parked_count(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT count(*) FROM events WHERE state=?", (PARKED,)).fetchone()[0]

    def parked(self) -> list[dict]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT event_id, type, reason, body FROM events WHERE state=? ORDER BY seq", (PARKED,)).fetchall()
        return [{"event_id": i, "type": t, "reason": r, "event": json.loads(b)} for i, t, r, b in rows]

    def pending_for(self, key: str, value: str) -> list[dict]:
        """Events waiting for the hub whose body field `key` equals `value`, oldest first (parked
        ones are not: the hub refused them, so they will never show)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT body FROM events WHERE state = ? AND json_extract(body, '$.' || ?) = ? ORDER BY seq",
                (PENDING, key, value)).fetchall()
        return [json.loads(b) for (b,) in rows]

    def all_event_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT event_id FROM events ORDER BY seq")]

    # -- small persistent state of the sync worker --------------------------------
    def get_meta(self, key: str, default: str = "") -> str:
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        try:
            with self._lock:
                self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                                  "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc
