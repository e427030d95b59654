"""Receiving kiosk events: idempotent on event_id, per-event outcomes, never all-or-nothing.

Idempotency is the database's job: `events.event_id` is the primary key and the insert is
`ON CONFLICT DO NOTHING`; a conflict with the same payload hash is a duplicate, with a
different one a rejection (and a logged bug on the sender's side). One refused event never
takes its batch down with it. No clock on a kiosk decides anything: wishlist merges are an
observed-remove set, ordered by nothing.

Attribution is proved, never claimed (docs/security.md). An event that touches a shopper
carries one of:

- `credential`: a card token or UID, a phone's signed answer or a SUN message, verified with
  the event (an offline check-in queues its credential);
- `checkin`: the id of a check-in this same device had accepted (the visit's events point at
  it; a check-in the hub refused proves nothing, so its events are refused and stay parked);
- `session`: the live session a check-in answer handed this device for this shopper.

A `shopper_id` beside the proof is the kiosk's cached guess and must agree; alone it proves
nothing. A consent change also needs the shopper present: a live session, a check-in accepted
in the last 15 minutes (a session's life) or in the same batch, or a one-time proof verified
with it.

What the shopper's page shows is written with the effects (hub/shopper.py): each add keeps its
channel ('kiosk') and the kiosk's brand and store, each sharing choice when and at which store
it was made, each accepted check-in and staff lookup a row in the shopper's access log. A
queued check-in with a token or UID that no credentials row knows at all is refused as before
but kept as a guest visit (by its event id, once), counted when the card is claimed.

A batch is one transaction. Its events are taken in order, in runs: a run of events whose
proof can be checked in bulk (a card token or UID, a check-in reference, a session) costs one
lookup per kind of proof and one multi-row insert per table, so a 200-event batch costs a
handful of statements, not hundreds. An event carrying a one-time proof (an HCE answer, a SUN
message) is applied on its own, in a savepoint, between the runs, after every event before it.
What an event must be and prove before any of this is hub/event_rules.py.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from sqlalchemy.exc import DBAPIError

from kiosk import api
from hub import credentials, revocations, shopper
from hub.event_rules import (CHECKIN_PROOF_S, STAFF_RECENT_S, STAFF_SQL, Batch, Proofs, Rejected, anonymous, check_type,
                             from_brand_of, gtin_of, in_run, malformed, refuse, tags_of)
from hub.store import Device, HubFailure, HubStore, token_hash

log = logging.getLogger(__name__)

# Fields that vary between retries of the same event and so stay out of its payload hash.
TRANSIENT = ("seq", "attempt")


def payload_hash(store: HubStore, event: dict) -> str:
    """What tells a re-sent event from a different one with the same id. Keyed (the hub's
    pepper), so the hash kept beside a stored body does not let anyone test guesses of the
    credential or session left out of that body."""
    body = {k: v for k, v in event.items() if k not in TRANSIENT}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(store.pepper, canonical.encode(), hashlib.sha256).hexdigest()


def stored_body(event: dict) -> str:
    """What the hub keeps of an event: no credential material (a token, a UID, a signed answer,
    a SUN message or a session token lifted from a backup proves nothing later)."""
    body = {k: v for k, v in event.items() if k != "session"}
    if isinstance(body.get("credential"), dict):
        body["credential"] = {"kind": body["credential"].get("kind")}
    if "session" in event:
        body["session"] = True
    return json.dumps(body)[:20000]


def ingest(store: HubStore, device: Device, events: list, metrics=None) -> list[dict]:
    """Apply a batch in one transaction (one fsync); the outcome of each event, in order. A
    batch refused whole from its events alone (malformed, no proofs) never opens one."""
    early = [malformed(event) for event in events]
    if all(early):
        if metrics:
            for result in early:
                metrics.count_event(result["status"])
        return early  # type: ignore[return-value]
    for attempt in range(5):
        try:
            with store.transaction() as conn:
                results = _ingest_batch(store, conn, device, events, early)
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


def _ingest_batch(store: HubStore, conn, device: Device, events: list, early: list) -> list[dict]:
    """`early`: each event's refusal from `malformed`, or None."""
    results: list[dict | None] = [None] * len(events)
    batch = Batch()
    run: list[int] = []
    for i, event in enumerate(events):
        refused = early[i]
        if refused is not None:
            results[i] = refused
        elif in_run(event):
            run.append(i)
        else:
            _apply_run(store, conn, device, events, run, results, batch)
            run = []
            results[i] = _ingest_one(store, device, event, batch)
    _apply_run(store, conn, device, events, run, results, batch)
    return results  # type: ignore[return-value]


def _credential_hash(store: HubStore, credential: dict) -> str | None:
    kind = credential.get("kind")
    field, limit = {api.CRED_TOKEN: ("token", 256), api.CRED_UID: ("uid", 20)}[kind]
    value = credential.get(field)
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    return store.credential_hash(f"{kind}:{value.lower() if kind == api.CRED_UID else value}")


def _apply_run(store: HubStore, conn, device: Device, events: list, run: list[int], results: list,
               batch: Batch) -> None:
    """A run of events checked and written in bulk: one lookup per kind of fact, one pipelined
    insert of the receipts, one per table of effects. An event whose receipt is already held
    is answered from it (duplicate, or conflict when the payload differs), so an event accepted
    once stays accepted whatever changed since; refusal is not receipt."""
    if not run:
        return
    digests = {i: payload_hash(store, events[i]) for i in run}
    todo, first, repeats = [], {}, []
    for i in run:
        event_id = events[i]["event_id"]
        if event_id in first:  # the same event twice in one batch: answered as its first copy was
            repeats.append((i, first[event_id]))
        else:
            first[event_id] = i
            todo.append(i)
    _apply_new(store, conn, device, events, todo, digests, results, batch)
    for i, j in repeats:
        if results[j]["status"] == api.REJECTED:
            results[i] = dict(results[j])
        else:
            results[i] = _seen(events[i]["event_id"], digests[j], digests[i])


def _apply_new(store: HubStore, conn, device: Device, events: list, todo: list[int], digests: dict,
               results: list, batch: Batch) -> None:
    # What each event's proof names, and whether what it names exists: one query per kind.
    now = time.time()
    hashes = {i: _credential_hash(store, events[i]["credential"]) for i in todo if "credential" in events[i]}
    refs = [events[i]["checkin"] for i in todo if "checkin" in events[i]]
    sessions = [token_hash(events[i]["session"]) for i in todo if "session" in events[i]]
    staff_ids = {events[i].get("staff_id") for i in todo if events[i]["type"] == api.STAFF_LOOKUP}
    asks = {
        "by_hash": conn.in_list("SELECT c.hash, c.shopper_id FROM credentials c JOIN shoppers s ON s.id = c.shopper_id "
                                "WHERE c.revoked=0 AND s.erased=0 AND c.hash IN (?*)", [h for h in hashes.values() if h]),
        "checkins": conn.in_list("SELECT e.event_id, e.shopper_id, e.received_at FROM events e "
                                 "JOIN shoppers s ON s.id = e.shopper_id WHERE (e.device_id=? OR e.device_id=?) "
                                 "AND e.type='checkin' AND s.erased=0 AND e.received_at>? AND e.event_id IN (?*)",
                                 refs, (device.id, device.predecessor or device.id, now - CHECKIN_PROOF_S)),
        # check-ins of this run already received: only this device's same check-in proves anything
        "held_checkins": conn.in_list("SELECT event_id, device_id, body_hash FROM events WHERE event_id IN (?*)",
                                      [events[i]["event_id"] for i in todo if events[i]["type"] == api.CHECKIN]),
        "sessions": conn.in_list("SELECT token_hash, shopper_id FROM sessions WHERE device_id=? AND expires_at>? "
                                 "AND token_hash IN (?*)", sessions, (device.id, time.time())),
        "known": conn.in_list("SELECT gtin, 1 FROM products WHERE gtin IN (?*)",
                              [events[i]["gtin"] for i in todo if events[i]["type"] == api.WISHLIST_ADD]),
        "staff": conn.in_list(STAFF_SQL, [s for s in staff_ids if isinstance(s, str)],
                              (device.id, now - STAFF_RECENT_S, device.brand_id, device.store_id)),
    }
    asked = [name for name, statement in asks.items() if statement]
    found = {name: {} for name in asks}
    for name, rows in zip(asked, conn.all_of([asks[name] for name in asked]) if asked else []):
        found[name] = {row[0]: row[1:] if len(row) > 2 else row[1] for row in rows}
    proofs = Proofs(found["by_hash"], found["checkins"], found["sessions"], batch)
    known, staff = found["known"], found["staff"]
    owners: dict[int, str | None] = {}
    refused: dict[int, str] = {}
    for i in todo:
        event = events[i]
        try:
            if anonymous(event):
                owners[i] = None
            else:
                owners[i], present = proofs.owner(event, hashes.get(i))
                check_type(event, present, staff)
            if event["type"] == api.WISHLIST_ADD and event["gtin"] not in known:
                raise Rejected("unknown product")
            held = found["held_checkins"].get(event["event_id"])
            if event["type"] == api.CHECKIN and (held is None or tuple(held) == (device.id, digests[i])):
                batch.checkins[event["event_id"]] = owners[i]  # later events of this batch may point at it
        except Rejected as exc:
            refused[i] = str(exc)
    # Sorted by event id, so two batches sharing new events lock them in the same order.
    accepted = sorted((i for i in todo if i not in refused), key=lambda i: events[i]["event_id"])
    inserted = {r[0] for r in conn.insert_returning(
        "INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING RETURNING event_id",
        [(events[i]["event_id"], device.id, events[i]["type"], digests[i], owners[i], now,
          stored_body(events[i])) for i in accepted])}
    # What was not inserted was received before (or by a request racing this one); a refused
    # event that was accepted before is answered from its receipt too.
    unseen = [events[i]["event_id"] for i in todo if i in refused or events[i]["event_id"] not in inserted]
    held = dict(conn.rows_in("SELECT event_id, body_hash FROM events WHERE event_id IN (?*)", unseen))
    visits, adds, removes, consents, seen, guests = [], [], [], [], [], []
    for i in todo:  # effects in the batch's order (a later consent wins)
        event, event_id = events[i], events[i]["event_id"]
        if event_id in held:
            results[i] = _seen(event_id, held[event_id], digests[i])
            continue
        if i in refused:
            results[i] = refuse(event_id, refused[i])
            if event["type"] == api.CHECKIN and hashes.get(i) and hashes[i] not in found["by_hash"]:
                guests.append(shopper.guest_row(hashes[i], device, event_id, now))  # a card no profile owns yet
            continue
        results[i] = {"event_id": event_id, "status": api.CREATED}
        kind, shopper_id = event["type"], owners[i]
        if kind == api.CHECKIN:
            visits.append((shopper_id, device.brand_id, now))
            seen.append(_checkin_access(shopper_id, device))
        elif kind == api.STAFF_LOOKUP:
            seen.append(_lookup_access(shopper_id, device, staff.get(event.get("staff_id"))))
        elif kind == api.WISHLIST_ADD:
            adds.append((event_id, shopper_id, event["gtin"], now, "kiosk", device.brand_id, device.store_id))
        elif kind == api.WISHLIST_REMOVE:
            removes += [(t, shopper_id) for t in event["tags"]]
        elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
            consents.append((shopper_id, from_brand_of(event), device.brand_id,
                             api.GRANTED if kind == api.CONSENT_GRANT else api.REFUSED, now, "kiosk", device.store_id))
    for sql, rows in ((VISIT_SQL, visits), (ADD_SQL, adds), (REMOVE_SQL, removes), (CONSENT_SQL, consents),
                      (shopper.ACCESS_SQL, seen), (shopper.GUEST_SQL, guests)):
        if rows:
            conn.executemany(sql, rows)
    for shopper_id, _, to_brand, state, *_ in consents:
        if state == api.REFUSED:  # this brand's kiosks forget the shopper's cached view
            revocations.publish(conn, shopper_id, revocations.CONSENT, to_brand)


VISIT_SQL = ("INSERT INTO visits(shopper_id, brand_id, count, last_at) VALUES (?,?,1,?) ON CONFLICT(shopper_id, brand_id) "
             "DO UPDATE SET count=visits.count+1, last_at=excluded.last_at")
# Where an item was added: the kiosk's channel, brand and store (the shopper's page shows it).
ADD_SQL = ("INSERT INTO wishlist_adds(tag, shopper_id, gtin, received_at, channel, brand_id, store_id) "
           "VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING")
# A remove takes away only adds of its own shopper (the view joins on tag and shopper).
REMOVE_SQL = "INSERT INTO wishlist_removes(tag, shopper_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
# A sharing choice made at a kiosk: when, and at which store.
CONSENT_SQL = ("INSERT INTO consents(shopper_id, from_brand, to_brand, state, changed_at, via, store_id) "
               "VALUES (?,?,?,?,?,?,?) ON CONFLICT(shopper_id, from_brand, to_brand) DO UPDATE SET "
               "state=excluded.state, changed_at=excluded.changed_at, via=excluded.via, store_id=excluded.store_id")


def _checkin_access(shopper_id: str, device: Device) -> tuple:
    return shopper.record_access_statement(shopper_id, "checkin", device, "kiosk", shopper.WHY_CHECKIN)[1]


def _lookup_access(shopper_id: str, device: Device, role) -> tuple:
    actor = role if role in ("staff", "technician") else "staff"
    return shopper.record_access_statement(shopper_id, "staff_lookup", device, actor, shopper.WHY_LOOKUP)[1]


def _seen(event_id: str, held_digest: str, digest: str) -> dict:
    if held_digest == digest:
        return {"event_id": event_id, "status": api.DUPLICATE}
    log.error("event %s re-sent with a different payload (sender bug)", event_id)
    return refuse(event_id, "the same event_id was already received with a different payload")


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return "locked" in str(exc.orig) or code in ("40001", "40P01")


def _ingest_one(store: HubStore, device: Device, event: dict, batch: Batch) -> dict:
    """An event with a one-time proof (an HCE answer, a SUN message), in its own savepoint: its
    receipt first (a re-sent event is a duplicate, its proof not consumed twice), then the proof
    verified and consumed, then its effects."""
    event_id, digest = event["event_id"], payload_hash(store, event)
    conn = store.conn
    conn.execute("SAVEPOINT event")
    try:
        seen = _receipt(conn, device, event, event_id, digest)
        if seen is not None:
            return seen
        shopper_id = apply(store, device, event)
        conn.execute("UPDATE events SET shopper_id=? WHERE event_id=?", (shopper_id, event_id))
        if event["type"] == api.CHECKIN:
            batch.checkins[event_id] = shopper_id
        return {"event_id": event_id, "status": api.CREATED}
    except (Rejected, HubFailure) as exc:
        # A refused event is rolled back whole: refusal is not receipt, so the same event
        # re-sent after a fix (say, the card got registered) is applied then.
        conn.execute("ROLLBACK TO event")
        return refuse(event_id, str(getattr(exc, "detail", exc)))
    finally:
        conn.execute("RELEASE event")


def _receipt(conn, device: Device, event: dict, event_id: str, digest: str) -> dict | None:
    """Insert the receipt; None when it is new, else the duplicate or conflict outcome."""
    cur = conn.execute(
        "INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING RETURNING event_id",
        (event_id, device.id, str(event.get("type")), digest, None, time.time(), stored_body(event)))
    if cur.fetchone() is not None:  # what was inserted is counted from RETURNING, not a rowcount
        return None
    row = conn.execute("SELECT body_hash FROM events WHERE event_id=?", (event_id,)).fetchone()
    return _seen(event_id, row[0] if row else "", digest)


def apply(store: HubStore, device: Device, event: dict) -> str:
    """The effects of an event whose one-time proof is verified (and consumed) here: a phone's
    answer or a SUN message, which also shows the shopper present."""
    kind = event["type"]
    conn = store.conn
    now = time.time()
    shopper_id = credentials.resolve(store, device, event["credential"])
    claimed = event.get("shopper_id")
    if claimed and claimed != shopper_id:
        raise Rejected("the credential belongs to another shopper than the kiosk's cached view")
    staff = set()
    if kind == api.STAFF_LOOKUP and isinstance(event.get("staff_id"), str):
        staff = {r[0] for r in conn.rows_in(STAFF_SQL, [event["staff_id"]],
                                            (device.id, now - STAFF_RECENT_S, device.brand_id, device.store_id))}
    check_type(event, True, staff)
    if kind == api.CHECKIN:
        conn.execute(VISIT_SQL, (shopper_id, device.brand_id, now))
        conn.execute(shopper.ACCESS_SQL, _checkin_access(shopper_id, device))
    elif kind == api.STAFF_LOOKUP:
        role = conn.execute("SELECT role FROM staff_sessions WHERE device_id=? AND staff_id=?",
                            (device.id, event["staff_id"])).fetchone()
        conn.execute(shopper.ACCESS_SQL, _lookup_access(shopper_id, device, role[0] if role else "staff"))
    elif kind == api.WISHLIST_ADD:
        gtin = gtin_of(event)
        if not conn.execute("SELECT 1 FROM products WHERE gtin=?", (gtin,)).fetchone():
            raise Rejected("unknown product")
        conn.execute(ADD_SQL, (event["event_id"], shopper_id, gtin, now, "kiosk", device.brand_id, device.store_id))
    elif kind == api.WISHLIST_REMOVE:
        # A remove takes away exactly the adds it observed, even those not yet received here:
        # when such an add arrives later, it is already dead. Concurrent adds survive.
        conn.executemany(REMOVE_SQL, [(t, shopper_id) for t in tags_of(event)])
    elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
        state = api.GRANTED if kind == api.CONSENT_GRANT else api.REFUSED
        conn.execute(CONSENT_SQL, (shopper_id, from_brand_of(event), device.brand_id, state, now, "kiosk", device.store_id))
        if state == api.REFUSED:
            revocations.publish(conn, shopper_id, revocations.CONSENT, device.brand_id)
    return shopper_id
