"""Staff mode on the hub: badge + PIN unlock, shopper search and lookup for staff.

    add_routes(app, store, device_dependency)

Staff are people of a brand: a `staff_roles` row ties a staff member to a brand and to one of
its stores, or to every store of it (store_id ''). An unlock is possible only on a kiosk of
that brand (and store); anywhere else the answer is the one an unknown staff id gets, so a
kiosk cannot tell who works elsewhere. An unlock needs a badge tap on the same kiosk in the
last `BADGE_WINDOW_S` (the check-in session that tap opened is consumed), so a PIN alone
unlocks nothing.

PINs are 6 to 12 digits, stored as scrypt hashes in `shoppers.pin_hash`, checked here, never
on the kiosk. Guessing is bounded three ways:

- per staff member and kiosk (`staff_pin_tries`): from the `MAX_FAILURES`th wrong PIN on, the
  kiosk is locked for that person for LOCK_S * 2^(failures - MAX_FAILURES), at most
  `MAX_LOCK_S`; the count is reset only by a right PIN on that kiosk, never by locking. A try
  is counted before its PIN is checked, so parallel requests cannot get extra guesses;
- per kiosk, whoever the staff member (`DEVICE_TRIES` PIN tries per `WINDOW_S`);
- per staff member, hub-wide (`STAFF_WRONG` wrong PINs per `WINDOW_S` over all kiosks): then
  429 until the window ends. That window is the most an attacker with a cloned badge at
  another kiosk can keep someone out of their own kiosks, whose count is their own.
The limits are counters in the database (hub/ratelimit.py), shared by every hub process.

An unlocked staff mode belongs to the device (one row per device, short-lived): search and
lookup need it, end with it, and see only the device's brand. Search finds only shoppers who
allowed staff search for that brand (`staff_search`) and have a relationship with it (a visit,
or a wishlist item of its products); lookup the same. A lookup is recorded by the hub as a
`staff_lookup` event; every lookup and every search hit also goes to the shopper's own
access log (hub/shopper.py), with the staff role and why. Refusals are RFC 9457 problems; the
numbers in them are extension members, for kiosks to read (never out of `detail`): a wrong
PIN's `tries_left`, a lock-out's or a PIN rate limit's `retry_after_s` (api.M_*).
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid

from fastapi import Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from kiosk import api
from hub import inputs, profile, ratelimit, shopper
from kiosk.pins import PIN_PATTERN, verify_pin
from hub.store import Device, HubFailure, HubStore, search_key

MAX_FAILURES = 5
LOCK_S = 300
MAX_LOCK_S = 24 * 3600
WINDOW_S = 15 * 60
DEVICE_TRIES = 20  # PIN tries per kiosk and window, any staff member
STAFF_WRONG = 10  # wrong PINs per staff member and window, over every kiosk
BADGE_WINDOW_S = 120
STAFF_SESSION_S = 600
SEARCH_LIMIT = 20
MAX_ID = 64
MAX_QUERY = 64

P_BADGE_REQUIRED = api.P_BADGE_REQUIRED
P_PIN_REFUSED = api.P_PIN_REFUSED  # with `tries_left` (api.M_TRIES_LEFT)
P_PIN_LOCKED = api.P_PIN_LOCKED  # with `retry_after_s` (api.M_RETRY_AFTER_S)
P_STAFF_LOCKED = api.PROBLEM_BASE + "staff-mode-locked"

# One answer for an unknown id, a staff member of another brand or store, and a missing tap.
NOT_HERE = "tap your staff badge on this kiosk, then enter the PIN"

# A staff member of this device's brand, at every store of it or at this one.
ROLE_HERE = ("EXISTS (SELECT 1 FROM staff_roles r WHERE r.staff_id = {staff} AND r.brand_id = ? "
             "AND (r.store_id = '' OR r.store_id = ?))")
# A shopper who allowed staff search for this brand and has a relationship with it: a visit,
# or a live wishlist item (an add no remove of theirs took away) of one of its products.
FINDABLE = ("s.erased = 0 AND s.role = 'shopper' "
            "AND EXISTS (SELECT 1 FROM staff_search p WHERE p.shopper_id = s.id AND p.brand_id = ?) "
            "AND (EXISTS (SELECT 1 FROM visits v WHERE v.shopper_id = s.id AND v.brand_id = ?) "
            "OR EXISTS (SELECT 1 FROM wishlist_adds a JOIN products pr ON pr.gtin = a.gtin "
            "LEFT JOIN wishlist_removes w ON w.tag = a.tag AND w.shopper_id = a.shopper_id "
            "WHERE a.shopper_id = s.id AND pr.brand_id = ? AND w.tag IS NULL))")


def plain_text(value: str) -> bool:
    """No C0/C1 control characters (DEL included) and no bidi controls (hub/inputs.py)."""
    return inputs.safe(value)


def lock_for(failures: int) -> float:
    """How long a kiosk stays locked for someone after their `failures`th wrong PIN there."""
    if failures < MAX_FAILURES:
        return 0.0
    return float(min(MAX_LOCK_S, LOCK_S * 2 ** min(failures - MAX_FAILURES, 20)))


def is_staff_here(store: HubStore, device: Device, staff_id: str) -> bool:
    """A staff member of `device`'s brand (and store). For staff_lookup events too."""
    return store.one("SELECT 1 FROM shoppers s WHERE s.id = ? AND s.erased = 0 AND s.role IN ('staff','technician') "
                     "AND " + ROLE_HERE.format(staff="s.id"),
                     (staff_id, device.brand_id, device.store_id)) is not None


def _locked(seconds: float) -> HubFailure:
    """The lock-out's seconds travel as the `retry_after_s` member; the text is for people."""
    seconds = max(1, int(seconds))
    minutes = max(1, round(seconds / 60))
    return HubFailure(P_PIN_LOCKED, f"too many wrong PINs: locked, try again in {seconds} s (about {minutes} min)", 403,
                      extra={api.M_RETRY_AFTER_S: seconds})


def _wrong(tries_left: int) -> HubFailure:
    tries_left = max(0, tries_left)
    return HubFailure(P_PIN_REFUSED, f"wrong PIN: {tries_left} tries left", 403, extra={api.M_TRIES_LEFT: tries_left})


def _too_many(what: str, now: float) -> HubFailure:
    """A PIN rate limit (429 with Retry-After), its wait also as the `retry_after_s` member."""
    failure = ratelimit.refused(WINDOW_S, what, now)
    failure.extra[api.M_RETRY_AFTER_S] = ratelimit.retry_in(WINDOW_S, now)
    return failure


def _staff_bucket(staff_id: str) -> str:
    return f"pin:staff:{staff_id}"


def unlock(store: HubStore, device: Device, staff_id: str, pin: str, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    row = store.one("SELECT s.display_name, s.role, s.pin_hash FROM shoppers s WHERE s.id = ? AND s.erased = 0 "
                    "AND s.role IN ('staff','technician') AND " + ROLE_HERE.format(staff="s.id"),
                    (staff_id, device.brand_id, device.store_id))
    badge = row and store.one("SELECT token_hash FROM sessions WHERE device_id=? AND shopper_id=? AND expires_at>? "
                              "ORDER BY expires_at DESC",
                              (device.id, staff_id, now - BADGE_WINDOW_S + store.SESSION_TTL_S))
    if not row or not badge:
        raise HubFailure(P_BADGE_REQUIRED, NOT_HERE, 403)
    name, role, stored = row
    if not ratelimit.allow(store, f"pin:device:{device.id}", DEVICE_TRIES, WINDOW_S, now):
        raise _too_many("too many PIN tries on this kiosk", now)
    with store.transaction() as conn:
        # The try is counted before its PIN is checked; a locked kiosk counts nothing more.
        counted = conn.execute(
            "INSERT INTO staff_pin_tries(staff_id, device_id, failures, locked_until) VALUES (?,?,1,0) "
            "ON CONFLICT(staff_id, device_id) DO UPDATE SET failures = staff_pin_tries.failures + 1 "
            "WHERE staff_pin_tries.locked_until <= ? RETURNING failures", (staff_id, device.id, now)).fetchone()
        if counted is None:
            until = conn.execute("SELECT locked_until FROM staff_pin_tries WHERE staff_id=? AND device_id=?",
                                 (staff_id, device.id)).fetchone()
            locked = _locked((until[0] if until else now + LOCK_S) - now)
        else:
            locked = None
            if ratelimit.hit(store, _staff_bucket(staff_id), WINDOW_S, now) > STAFF_WRONG:
                # rolled back with the transaction: a refused try counts nowhere
                raise _too_many("too many PIN tries for this badge", now)
            failures = counted[0]
            lock = lock_for(failures)
            if lock:  # locked from now on unless this very PIN is right
                conn.execute("UPDATE staff_pin_tries SET locked_until=? WHERE staff_id=? AND device_id=?",
                             (now + lock, staff_id, device.id))
    if locked is not None:
        raise locked
    if not stored or not verify_pin(pin, stored):
        if lock:
            raise _locked(lock)
        raise _wrong(MAX_FAILURES - failures)
    with store.transaction() as conn:
        if conn.execute("DELETE FROM sessions WHERE token_hash=? RETURNING token_hash", (badge[0],)).fetchone() is None:
            raise HubFailure(P_BADGE_REQUIRED, NOT_HERE, 403)  # one badge tap, one unlock
        conn.execute("DELETE FROM staff_pin_tries WHERE staff_id=? AND device_id=?", (staff_id, device.id))
        # a right PIN is not a wrong one: it leaves the hub-wide count as it was (the slot is
        # ratelimit.hit's window number for this `now`)
        conn.execute("UPDATE rate_limits SET count = count - 1 WHERE bucket=? AND slot=? AND count > 0",
                     (_staff_bucket(staff_id), int(now // WINDOW_S)))
        conn.execute("INSERT INTO staff_sessions(device_id, staff_id, role, expires_at) VALUES (?,?,?,?) "
                     "ON CONFLICT(device_id) DO UPDATE SET staff_id=excluded.staff_id, role=excluded.role, "
                     "expires_at=excluded.expires_at", (device.id, staff_id, role, now + STAFF_SESSION_S))
    return {"staff_id": staff_id, "role": role, "display_name": name, "expires_in": STAFF_SESSION_S}


def require_staff(store: HubStore, device: Device) -> str:
    """The staff member unlocked on this device, still of its brand (and store)."""
    row = store.one("SELECT t.staff_id FROM staff_sessions t WHERE t.device_id=? AND t.expires_at>? AND "
                    + ROLE_HERE.format(staff="t.staff_id"), (device.id, time.time(), device.brand_id, device.store_id))
    if not row:
        raise HubFailure(P_STAFF_LOCKED, "staff mode is locked on this kiosk: tap a staff badge and enter the PIN", 403)
    return row[0]


def search(store: HubStore, device: Device, query: str) -> list[dict]:
    if not plain_text(query):
        raise HubFailure(api.P_INVALID, "a search may not contain control or direction characters", 422)
    require_staff(store, device)
    key = search_key(query.strip())
    if len(key) < 2:
        raise HubFailure(api.P_INVALID, "type at least two letters", 422)
    pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    brand = device.brand_id
    rows = store.all("SELECT s.id, s.display_name, d.full_name, s.locale FROM shoppers s "
                     "JOIN staff_directory d ON d.shopper_id = s.id "
                     "WHERE d.search_key LIKE ? ESCAPE '\\' AND " + FINDABLE + " ORDER BY d.full_name LIMIT ?",
                     (pattern, brand, brand, brand, SEARCH_LIMIT))
    if rows:  # every hit is in the shopper's access log
        actor = _role(store, device)
        store.conn.executemany(shopper.ACCESS_SQL, [
            shopper.record_access_statement(i, "staff_search", device, actor, shopper.WHY_SEARCH)[1] for i, *_ in rows])
    return [{"id": i, "display_name": n, "full_name": f, "locale": loc} for i, n, f, loc in rows]


def _role(store: HubStore, device: Device) -> str:
    row = store.one("SELECT role FROM staff_sessions WHERE device_id=?", (device.id,))
    return row[0] if row else "staff"


def lookup(store: HubStore, device: Device, shopper_id: str) -> dict:
    staff_id = require_staff(store, device)
    brand = device.brand_id
    if not plain_text(shopper_id) or not store.one("SELECT 1 FROM shoppers s WHERE s.id = ? AND " + FINDABLE,
                                                   (shopper_id, brand, brand, brand)):
        raise HubFailure(api.P_NOT_FOUND, "no shopper who allowed staff search here has this id", 404)
    view = profile.shopper_view(store, device, shopper_id)
    record_lookup(store, device, staff_id, shopper_id)
    return view


def record_lookup(store: HubStore, device: Device, staff_id: str, shopper_id: str) -> str:
    """The receipt of a lookup made through search: who looked whom up, on which kiosk; no
    names. The shopper's access log gets its row in the same transaction."""
    event_id = str(uuid.uuid4())
    body = {"event_id": event_id, "type": api.STAFF_LOOKUP, "staff_id": staff_id, "via": "search"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    with store.transaction() as conn:
        conn.execute("INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
                     "VALUES (?,?,?,?,?,?,?)",
                     (event_id, device.id, api.STAFF_LOOKUP, digest, shopper_id, time.time(), json.dumps(body)))
        shopper.record_access(conn, shopper_id, "staff_lookup", device, _role(store, device), shopper.WHY_LOOKUP)
    return event_id


class UnlockBody(BaseModel):
    staff_id: str = Field(min_length=1, max_length=MAX_ID)
    pin: str = Field(pattern=PIN_PATTERN, description="6 to 12 digits")


def add_routes(app, store: HubStore, device) -> None:
    """Register the staff calls on `app`; `device` is the app's device-token dependency."""
    @app.post("/v1/staff/sessions")
    def staff_unlock(body: UnlockBody, dev: Device = Depends(device)) -> dict:
        if not plain_text(body.staff_id):
            raise HubFailure(P_BADGE_REQUIRED, NOT_HERE, 403)  # no such staff id, like any unknown one
        return unlock(store, dev, body.staff_id, body.pin)

    @app.delete("/v1/staff/sessions", status_code=204)
    def staff_lock(dev: Device = Depends(device)):
        # ended, not deleted: a lookup this staff member made before locking is still theirs
        now = time.time()
        store.conn.execute("UPDATE staff_sessions SET expires_at=? WHERE device_id=? AND expires_at>?", (now, dev.id, now))
        return Response(status_code=204)

    @app.get("/v1/staff/shoppers")
    def staff_search(q: str = Query(default="", max_length=MAX_QUERY), dev: Device = Depends(device)) -> dict:
        return {"shoppers": search(store, dev, q)}

    @app.get("/v1/staff/shoppers/{shopper_id}")
    def staff_lookup(shopper_id: str = Path(max_length=MAX_ID), dev: Device = Depends(device)) -> dict:
        return lookup(store, dev, shopper_id)
