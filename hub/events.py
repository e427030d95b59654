"""Receiving kiosk events: idempotent on event_id, per-event outcomes, never all-or-nothing.

Idempotency is the database's job: `events.event_id` is the primary key and the insert is
`ON CONFLICT DO NOTHING`; a conflict with the same payload hash is a duplicate, with a
different one a rejection (and a logged bug on the sender's side). Each event is applied in
its own savepoint, so one refused event never takes its batch down with it. No clock on a
kiosk decides anything: wishlist merges are an observed-remove set, ordered by nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time

from sqlalchemy.exc import DBAPIError

from kiosk import api
from hub import credentials
from hub.profile import ALL_BRANDS
from hub.store import Device, HubFailure, HubStore

log = logging.getLogger(__name__)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BATCH = 1000
# Fields that vary between retries of the same event and so stay out of its payload hash.
TRANSIENT = ("seq", "attempt")


class Rejected(Exception):
    pass


def payload_hash(event: dict) -> str:
    body = {k: v for k, v in event.items() if k not in TRANSIENT}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def ingest(store: HubStore, device: Device, events: list, metrics=None) -> list[dict]:
    """Apply a batch in one transaction (one fsync), each event in its own savepoint."""
    for attempt in range(5):
        try:
            with store.transaction():
                results = [_ingest_one(store, device, event) for event in events]
            break
        except DBAPIError as exc:
            # SQLite: another writer held the lock past busy_timeout; PostgreSQL: two batches
            # with the same new event ids raced on the unique key. Both: the batch is retried.
            if not _retryable(exc) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    if metrics:
        for result in results:
            metrics.count_event(result["status"])
    return results


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return "locked" in str(exc.orig) or code in ("40001", "40P01", "23505")


def _ingest_one(store: HubStore, device: Device, event) -> dict:
    event_id = event.get("event_id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not UUID_RE.match(event_id):
        return {"event_id": str(event_id), "status": api.REJECTED, "reason": "event_id must be a UUID"}
    digest = payload_hash(event)
    conn = store.conn
    if event.get("type") == api.SCAN and not event.get("shopper_id") and not event.get("credential"):
        return _anonymous_scan(conn, device, event, event_id, digest)
    conn.execute("SAVEPOINT event")
    try:
        seen = _receipt(conn, device, event, event_id, digest)
        if seen is not None:
            return seen
        shopper_id = apply(store, device, event)
        if shopper_id:
            conn.execute("UPDATE events SET shopper_id=? WHERE event_id=?", (shopper_id, event_id))
        return {"event_id": event_id, "status": api.CREATED}
    except (Rejected, HubFailure) as exc:
        # A refused event is rolled back whole: refusal is not receipt, so the same event
        # re-sent after a fix (say, the card got registered) is applied then.
        conn.execute("ROLLBACK TO event")
        return {"event_id": event_id, "status": api.REJECTED, "reason": str(getattr(exc, "detail", exc))[:300]}
    finally:
        conn.execute("RELEASE event")


def _receipt(conn, device: Device, event: dict, event_id: str, digest: str, shopper_id=None) -> dict | None:
    """Insert the receipt; None when it is new, else the duplicate or conflict outcome."""
    cur = conn.execute(
        "INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING RETURNING event_id",
        (event_id, device.id, str(event.get("type")), digest, shopper_id, time.time(), json.dumps(event)[:20000]))
    if cur.fetchone() is not None:  # what was inserted is counted from RETURNING, not a rowcount
        return None
    row = conn.execute("SELECT body_hash FROM events WHERE event_id=?", (event_id,)).fetchone()
    if row and row[0] == digest:
        return {"event_id": event_id, "status": api.DUPLICATE}
    log.error("event %s re-sent with a different payload (sender bug)", event_id)
    return {"event_id": event_id, "status": api.REJECTED,
            "reason": "the same event_id was already received with a different payload"}


def _anonymous_scan(conn, device: Device, event: dict, event_id: str, digest: str) -> dict:
    """The bulk of a store's traffic: a product scan attached to nobody. Checked before its
    receipt is written, so it is one statement and needs no savepoint."""
    try:
        _gtin(event)
    except Rejected as exc:
        return {"event_id": event_id, "status": api.REJECTED, "reason": str(exc)}
    return _receipt(conn, device, event, event_id, digest) or {"event_id": event_id, "status": api.CREATED}


def _gtin(event: dict) -> str:
    gtin = event.get("gtin")
    if not isinstance(gtin, str) or len(gtin) != 14 or not gtin.isdigit():
        raise Rejected("gtin must be 14 digits")
    return gtin


def _shopper(store: HubStore, device: Device, event: dict) -> str:
    """Who an event belongs to. A credential or a check-in reference is verified and wins;
    a `shopper_id` alongside it (the kiosk's cached guess) must agree with it."""
    claimed = event.get("shopper_id")
    credential, checkin = event.get("credential"), event.get("checkin")
    if isinstance(credential, dict):
        shopper_id = credentials.resolve(store, device, credential)
    elif isinstance(checkin, str):
        row = store.one("SELECT shopper_id FROM events WHERE event_id=? AND device_id=? AND type=?",
                        (checkin, device.id, api.CHECKIN))
        if not row or not row[0]:
            raise Rejected("the visit's check-in was not accepted")
        shopper_id = row[0]
    elif isinstance(claimed, str) and claimed:
        if not store.one("SELECT 1 FROM shoppers WHERE id=? AND erased=0", (claimed,)):
            raise Rejected("unknown shopper")
        return claimed
    else:
        raise Rejected("event names no shopper and no credential")
    if isinstance(claimed, str) and claimed and claimed != shopper_id:
        raise Rejected("the credential belongs to another shopper than the kiosk's cached view")
    return shopper_id


def apply(store: HubStore, device: Device, event: dict) -> str | None:
    kind = event.get("type")
    conn = store.conn
    now = time.time()
    if kind not in api.EVENT_TYPES:
        raise Rejected(f"unknown event type {kind!r}")
    if kind == api.SCAN and not event.get("shopper_id") and not event.get("credential"):
        _gtin(event)
        return None  # an anonymous product scan: counted, attached to nobody
    shopper_id = _shopper(store, device, event)
    if kind == api.CHECKIN:
        conn.execute("INSERT INTO visits(shopper_id, brand_id, count, last_at) VALUES (?,?,1,?) "
                     "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET count=visits.count+1, last_at=excluded.last_at",
                     (shopper_id, device.brand_id, now))
    elif kind == api.SCAN:
        _gtin(event)
    elif kind == api.WISHLIST_ADD:
        gtin = _gtin(event)
        if not conn.execute("SELECT 1 FROM products WHERE gtin=?", (gtin,)).fetchone():
            raise Rejected("unknown product")
        conn.execute("INSERT INTO wishlist_adds(tag, shopper_id, gtin, received_at) VALUES (?,?,?,?) "
                     "ON CONFLICT DO NOTHING", (event["event_id"], shopper_id, gtin, now))
    elif kind == api.WISHLIST_REMOVE:
        tags = event.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) and UUID_RE.match(t) for t in tags):
            raise Rejected("tags must be the list of add event ids the remover had seen")
        # A remove takes away exactly the adds it observed, even those not yet received here:
        # when such an add arrives later, it is already dead. Concurrent adds survive.
        conn.executemany("INSERT INTO wishlist_removed(tag, shopper_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(t, shopper_id) for t in tags])
    elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
        from_brand = event.get("from_brand", ALL_BRANDS)
        if not isinstance(from_brand, str):
            raise Rejected("from_brand must be a brand id or '*'")
        state = api.GRANTED if kind == api.CONSENT_GRANT else api.REFUSED
        conn.execute("INSERT INTO consents(shopper_id, from_brand, to_brand, state) VALUES (?,?,?,?) "
                     "ON CONFLICT(shopper_id, from_brand, to_brand) DO UPDATE SET state=excluded.state", (shopper_id, from_brand, device.brand_id, state))
    elif kind == api.STAFF_LOOKUP:
        staff = event.get("staff_id")
        if not isinstance(staff, str) or not store.one("SELECT 1 FROM shoppers WHERE id=? AND role IN ('staff','technician')",
                                                       (staff,)):
            raise Rejected("staff_lookup needs the id of a staff member")
    return shopper_id
