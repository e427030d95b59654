"""Receiving kiosk events: idempotent on event_id, per-event outcomes, never all-or-nothing.

Idempotency is the database's job: `events.event_id` is the primary key and the insert is
`ON CONFLICT DO NOTHING`; a conflict with the same payload hash is a duplicate, with a
different one a rejection (and a logged bug on the sender's side). One refused event never
takes its batch down with it. No clock on a kiosk decides anything: wishlist merges are an
observed-remove set, ordered by nothing.

A batch is one transaction. Its events are taken in order, in runs: a run of events whose
shopper is known from the event alone (an anonymous scan, a card token, UID or keyed hash, a
shopper id) is checked with one lookup per kind and written with one multi-row insert per
table, so a 200-event batch costs a handful of statements, not hundreds. An event carrying a
one-time proof (an HCE answer, a SUN message) or pointing at its visit's check-in is applied on
its own, in a savepoint, between the runs, after every event before it.
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
    """Apply a batch in one transaction (one fsync); the outcome of each event, in order."""
    for attempt in range(5):
        try:
            with store.transaction() as conn:
                results = _ingest_batch(store, conn, device, events)
            break
        except DBAPIError as exc:
            # SQLite: another writer held the lock past busy_timeout; PostgreSQL: two batches
            # crossed on a lock. Both: the batch is retried (its outcome is idempotent).
            if not _retryable(exc) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    if metrics:
        for result in results:
            metrics.count_event(result["status"])
    return results


def _ingest_batch(store: HubStore, conn, device: Device, events: list) -> list[dict]:
    results: list[dict | None] = [None] * len(events)
    run: list[int] = []
    for i, event in enumerate(events):
        refused = _malformed(event)
        if refused is not None:
            results[i] = refused
        elif _in_run(event):
            run.append(i)
        else:
            _apply_run(store, conn, device, events, run, results)
            run = []
            results[i] = _ingest_one(store, device, event)
    _apply_run(store, conn, device, events, run, results)
    return results  # type: ignore[return-value]


def _malformed(event) -> dict | None:
    """What can be refused from the event alone (no database), before anything is written."""
    event_id = event.get("event_id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not UUID_RE.match(event_id):
        return {"event_id": str(event_id), "status": api.REJECTED, "reason": "event_id must be a UUID"}
    kind = event.get("type")
    if kind not in api.EVENT_TYPES:
        return _refuse(event_id, f"unknown event type {kind!r}"[:300])
    try:
        if kind in (api.SCAN, api.WISHLIST_ADD):
            _gtin(event)
        elif kind == api.WISHLIST_REMOVE:
            _tags(event)
        elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
            _from_brand(event)
    except Rejected as exc:
        return _refuse(event_id, str(exc))
    return None


def _refuse(event_id: str, reason: str) -> dict:
    return {"event_id": event_id, "status": api.REJECTED, "reason": reason}


def _anonymous(event: dict) -> bool:
    """A product scan attached to nobody (no shopper, credential or visit named)."""
    return (event.get("type") == api.SCAN and not event.get("shopper_id") and not event.get("credential")
            and "checkin" not in event)


def _in_run(event: dict) -> bool:
    """Whose an event is can be looked up in bulk: no one-time proof to consume, no check-in to
    find (which may be earlier in this very batch)."""
    if "checkin" in event:
        return False
    credential = event.get("credential")
    return credential is None or (isinstance(credential, dict) and credential.get("kind") in _HASHED)


_HASHED = (api.CRED_TOKEN, api.CRED_UID, "hash")


def _credential_hash(store: HubStore, credential: dict) -> str | None:
    kind = credential.get("kind")
    field, limit = {api.CRED_TOKEN: ("token", 256), api.CRED_UID: ("uid", 20), "hash": ("hash", 64)}[kind]
    value = credential.get(field)
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    if kind == "hash":
        return value
    return store.credential_hash(f"{kind}:{value.lower() if kind == api.CRED_UID else value}")


def _apply_run(store: HubStore, conn, device: Device, events: list, run: list[int], results: list) -> None:
    """A run of events checked and written in bulk: one lookup per kind of fact, one pipelined
    insert of the receipts, one per table of effects. An event whose receipt is already held
    is answered from it (duplicate, or conflict when the payload differs), so an event accepted
    once stays accepted whatever changed since; refusal is not receipt."""
    if not run:
        return
    digests = {i: payload_hash(events[i]) for i in run}
    todo, first, repeats = [], {}, []
    for i in run:
        event_id = events[i]["event_id"]
        if event_id in first:  # the same event twice in one batch: answered as its first copy was
            repeats.append((i, first[event_id]))
        else:
            first[event_id] = i
            todo.append(i)
    _apply_new(store, conn, device, events, todo, digests, results)
    for i, j in repeats:
        if results[j]["status"] == api.REJECTED:
            results[i] = dict(results[j])
        else:
            results[i] = _seen(events[i]["event_id"], digests[j], digests[i])


def _apply_new(store: HubStore, conn, device: Device, events: list, todo: list[int], digests: dict,
               results: list) -> None:
    # Who each event belongs to, and whether what it names exists: one query per kind of fact.
    hashes = {i: _credential_hash(store, events[i]["credential"]) for i in todo
              if isinstance(events[i].get("credential"), dict)}
    claimed = {events[i].get("shopper_id") for i in todo if not _anonymous(events[i])}
    staff_ids = {events[i].get("staff_id") for i in todo if events[i]["type"] == api.STAFF_LOOKUP}
    asks = {
        "by_hash": conn.in_list("SELECT c.hash, c.shopper_id FROM credentials c JOIN shoppers s ON s.id = c.shopper_id "
                                "WHERE c.revoked=0 AND s.erased=0 AND c.hash IN (?*)", [h for h in hashes.values() if h]),
        "live": conn.in_list("SELECT id, 1 FROM shoppers WHERE erased=0 AND id IN (?*)",
                             [c for c in claimed if isinstance(c, str) and c]),
        "known": conn.in_list("SELECT gtin, 1 FROM products WHERE gtin IN (?*)",
                              [events[i]["gtin"] for i in todo if events[i]["type"] == api.WISHLIST_ADD]),
        "staff": conn.in_list("SELECT id, 1 FROM shoppers WHERE role IN ('staff','technician') AND id IN (?*)",
                              [s for s in staff_ids if isinstance(s, str)]),
    }
    asked = [name for name, statement in asks.items() if statement]
    found = {name: {} for name in asks}
    for name, rows in zip(asked, conn.all_of([asks[name] for name in asked]) if asked else []):
        found[name] = dict(rows)
    by_hash, live, known, staff = found["by_hash"], found["live"], found["known"], found["staff"]
    owners: dict[int, str | None] = {}
    refused: dict[int, str] = {}
    for i in todo:
        event = events[i]
        try:
            owners[i] = None if _anonymous(event) else _owner(event, hashes.get(i), by_hash, live)
            if event["type"] == api.WISHLIST_ADD and event["gtin"] not in known:
                raise Rejected("unknown product")
            if event["type"] == api.STAFF_LOOKUP and event.get("staff_id") not in staff:
                raise Rejected("staff_lookup needs the id of a staff member")
        except Rejected as exc:
            refused[i] = str(exc)
    # Sorted by event id, so two batches sharing new events lock them in the same order.
    accepted = sorted((i for i in todo if i not in refused), key=lambda i: events[i]["event_id"])
    now = time.time()
    inserted = {r[0] for r in conn.insert_returning(
        "INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING RETURNING event_id",
        [(events[i]["event_id"], device.id, events[i]["type"], digests[i], owners[i], now,
          json.dumps(events[i])[:20000]) for i in accepted])}
    # What was not inserted was received before (or by a request racing this one); a refused
    # event that was accepted before is answered from its receipt too.
    unseen = [events[i]["event_id"] for i in todo if i in refused or events[i]["event_id"] not in inserted]
    held = dict(conn.rows_in("SELECT event_id, body_hash FROM events WHERE event_id IN (?*)", unseen))
    visits, adds, removes, consents = [], [], [], []
    for i in todo:  # effects in the batch's order (a later consent wins)
        event, event_id = events[i], events[i]["event_id"]
        if event_id in held:
            results[i] = _seen(event_id, held[event_id], digests[i])
            continue
        if i in refused:
            results[i] = _refuse(event_id, refused[i])
            continue
        results[i] = {"event_id": event_id, "status": api.CREATED}
        kind, shopper_id = event["type"], owners[i]
        if kind == api.CHECKIN:
            visits.append((shopper_id, device.brand_id, now))
        elif kind == api.WISHLIST_ADD:
            adds.append((event_id, shopper_id, event["gtin"], now))
        elif kind == api.WISHLIST_REMOVE:
            removes += [(t, shopper_id) for t in event["tags"]]
        elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
            consents.append((shopper_id, _from_brand(event), device.brand_id,
                             api.GRANTED if kind == api.CONSENT_GRANT else api.REFUSED))
    for sql, rows in ((VISIT_SQL, visits), (ADD_SQL, adds), (REMOVE_SQL, removes), (CONSENT_SQL, consents)):
        if rows:
            conn.executemany(sql, rows)


VISIT_SQL = ("INSERT INTO visits(shopper_id, brand_id, count, last_at) VALUES (?,?,1,?) ON CONFLICT(shopper_id, brand_id) "
             "DO UPDATE SET count=visits.count+1, last_at=excluded.last_at")
ADD_SQL = "INSERT INTO wishlist_adds(tag, shopper_id, gtin, received_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
REMOVE_SQL = "INSERT INTO wishlist_removed(tag, shopper_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
CONSENT_SQL = ("INSERT INTO consents(shopper_id, from_brand, to_brand, state) VALUES (?,?,?,?) "
               "ON CONFLICT(shopper_id, from_brand, to_brand) DO UPDATE SET state=excluded.state")


def _owner(event: dict, digest: str | None, by_hash: dict, live: set) -> str:
    """The shopper of an event in a run: its credential's, which must agree with a shopper_id
    alongside it (the kiosk's cached guess); else a shopper id that exists."""
    claimed = event.get("shopper_id")
    if isinstance(event.get("credential"), dict):
        if digest is None:
            raise Rejected("credential is missing or invalid")
        shopper_id = by_hash.get(digest)
        if shopper_id is None:
            raise Rejected("this card or phone is not registered")
        if isinstance(claimed, str) and claimed and claimed != shopper_id:
            raise Rejected("the credential belongs to another shopper than the kiosk's cached view")
        return shopper_id
    if isinstance(claimed, str) and claimed:
        if claimed not in live:
            raise Rejected("unknown shopper")
        return claimed
    raise Rejected("event names no shopper and no credential")


def _seen(event_id: str, held_digest: str, digest: str) -> dict:
    if held_digest == digest:
        return {"event_id": event_id, "status": api.DUPLICATE}
    log.error("event %s re-sent with a different payload (sender bug)", event_id)
    return _refuse(event_id, "the same event_id was already received with a different payload")


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return "locked" in str(exc.orig) or code in ("40001", "40P01")


def _ingest_one(store: HubStore, device: Device, event: dict) -> dict:
    """An event with a one-time proof or a check-in reference, in its own savepoint: its receipt
    first (a re-sent event is a duplicate, its proof not consumed twice), then its effects."""
    event_id, digest = event["event_id"], payload_hash(event)
    conn = store.conn
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
        return _refuse(event_id, str(getattr(exc, "detail", exc))[:300])
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


def _gtin(event: dict) -> str:
    gtin = event.get("gtin")
    if not isinstance(gtin, str) or len(gtin) != 14 or not gtin.isdigit():
        raise Rejected("gtin must be 14 digits")
    return gtin


def _tags(event: dict) -> list[str]:
    tags = event.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) and UUID_RE.match(t) for t in tags):
        raise Rejected("tags must be the list of add event ids the remover had seen")
    return tags


def _from_brand(event: dict) -> str:
    from_brand = event.get("from_brand", ALL_BRANDS)
    if not isinstance(from_brand, str):
        raise Rejected("from_brand must be a brand id or '*'")
    return from_brand


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
    if _anonymous(event):
        return None  # an anonymous product scan: counted, attached to nobody
    shopper_id = _shopper(store, device, event)
    if kind == api.CHECKIN:
        conn.execute(VISIT_SQL, (shopper_id, device.brand_id, now))
    elif kind == api.SCAN:
        _gtin(event)
    elif kind == api.WISHLIST_ADD:
        gtin = _gtin(event)
        if not conn.execute("SELECT 1 FROM products WHERE gtin=?", (gtin,)).fetchone():
            raise Rejected("unknown product")
        conn.execute(ADD_SQL, (event["event_id"], shopper_id, gtin, now))
    elif kind == api.WISHLIST_REMOVE:
        tags = _tags(event)
        # A remove takes away exactly the adds it observed, even those not yet received here:
        # when such an add arrives later, it is already dead. Concurrent adds survive.
        conn.executemany(REMOVE_SQL, [(t, shopper_id) for t in tags])
    elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
        from_brand = _from_brand(event)
        state = api.GRANTED if kind == api.CONSENT_GRANT else api.REFUSED
        conn.execute(CONSENT_SQL, (shopper_id, from_brand, device.brand_id, state))
    elif kind == api.STAFF_LOOKUP:
        staff = event.get("staff_id")
        if not isinstance(staff, str) or not store.one("SELECT 1 FROM shoppers WHERE id=? AND role IN ('staff','technician')",
                                                       (staff,)):
            raise Rejected("staff_lookup needs the id of a staff member")
    return shopper_id
