"""Staff mode on the hub: badge + PIN unlock, shopper search and lookup for staff.

    add_routes(app, store, device_dependency)

The PIN is checked here, never on the kiosk: staff PINs are stored as scrypt hashes in
`shoppers.pin_hash`, compared in constant time, and a staff member is locked out for
`LOCK_S` after `MAX_FAILURES` wrong tries in a row (per person, whichever kiosk asked). An
unlock needs a badge tap on the same kiosk in the last `BADGE_WINDOW_S` (the check-in session
that tap opened is consumed), so a PIN alone unlocks nothing. An unlocked staff mode belongs to
the device (one row per device, short-lived): search and lookup need it and end with it.
Search only ever finds shoppers who allowed staff search. Refusals are RFC 9457 problems.
"""
from __future__ import annotations

import time

from fastapi import Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from kiosk import api
from hub import profile
from kiosk.pins import verify_pin
from hub.store import Device, HubFailure, HubStore, search_key

MAX_FAILURES = 5
LOCK_S = 300
BADGE_WINDOW_S = 120
STAFF_SESSION_S = 600
SEARCH_LIMIT = 20

P_BADGE_REQUIRED = api.PROBLEM_BASE + "staff-badge-required"
P_PIN_REFUSED = api.PROBLEM_BASE + "pin-refused"
P_PIN_LOCKED = api.PROBLEM_BASE + "pin-locked"
P_STAFF_LOCKED = api.PROBLEM_BASE + "staff-mode-locked"


def _failures(store: HubStore, staff_id: str) -> tuple[int, float]:
    row = store.one("SELECT failures, locked_until FROM staff_pin_failures WHERE staff_id=?", (staff_id,))
    return (row[0], row[1]) if row else (0, 0.0)


def unlock(store: HubStore, device: Device, staff_id: str, pin: str, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    row = store.one("SELECT display_name, role, pin_hash FROM shoppers WHERE id=? AND erased=0", (staff_id,))
    if not row or row[1] not in ("staff", "technician"):
        raise HubFailure(P_BADGE_REQUIRED, "tap a staff badge first", 403)
    name, role, stored = row
    badge = store.one("SELECT token_hash FROM sessions WHERE device_id=? AND shopper_id=? AND expires_at>? "
                      "ORDER BY expires_at DESC", (device.id, staff_id, now - BADGE_WINDOW_S + store.SESSION_TTL_S))
    if not badge:
        raise HubFailure(P_BADGE_REQUIRED, "tap your staff badge on this kiosk, then enter the PIN", 403)
    failures, locked_until = _failures(store, staff_id)
    if locked_until > now:
        minutes = max(1, round((locked_until - now) / 60))
        raise HubFailure(P_PIN_LOCKED, f"too many wrong PINs: locked, try again in {int(locked_until - now)} s "
                                       f"(about {minutes} min)", 403)
    if not stored or not verify_pin(pin, stored):
        failures += 1
        locked = now + LOCK_S if failures >= MAX_FAILURES else 0.0
        store.conn.execute("INSERT INTO staff_pin_failures(staff_id, failures, locked_until) VALUES (?,?,?) "
                           "ON CONFLICT(staff_id) DO UPDATE SET failures=excluded.failures, "
                           "locked_until=excluded.locked_until", (staff_id, 0 if locked else failures, locked))
        if locked:
            raise HubFailure(P_PIN_LOCKED, f"too many wrong PINs: locked, try again in {LOCK_S} s", 403)
        raise HubFailure(P_PIN_REFUSED, f"wrong PIN: {MAX_FAILURES - failures} tries left", 403)
    with store.transaction() as conn:
        conn.execute("DELETE FROM staff_pin_failures WHERE staff_id=?", (staff_id,))
        conn.execute("DELETE FROM sessions WHERE token_hash=?", (badge[0],))  # one badge tap, one unlock
        conn.execute("INSERT INTO staff_sessions(device_id, staff_id, role, expires_at) VALUES (?,?,?,?) "
                     "ON CONFLICT(device_id) DO UPDATE SET staff_id=excluded.staff_id, role=excluded.role, "
                     "expires_at=excluded.expires_at", (device.id, staff_id, role, now + STAFF_SESSION_S))
    return {"staff_id": staff_id, "role": role, "display_name": name, "expires_in": STAFF_SESSION_S}


def require_staff(store: HubStore, device: Device) -> str:
    row = store.one("SELECT staff_id FROM staff_sessions WHERE device_id=? AND expires_at>?", (device.id, time.time()))
    if not row:
        raise HubFailure(P_STAFF_LOCKED, "staff mode is locked on this kiosk: tap a staff badge and enter the PIN", 403)
    return row[0]


def search(store: HubStore, device: Device, query: str) -> list[dict]:
    require_staff(store, device)
    key = search_key(query.strip())
    if len(key) < 2:
        raise HubFailure(api.P_INVALID, "type at least two letters", 422)
    pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = store.all("SELECT s.id, s.display_name, d.full_name, s.locale FROM shoppers s "
                     "JOIN staff_directory d ON d.shopper_id = s.id "
                     "WHERE s.allow_staff_search=1 AND s.erased=0 AND s.role='shopper' AND d.search_key LIKE ? ESCAPE '\\' "
                     "ORDER BY d.full_name LIMIT ?", (pattern, SEARCH_LIMIT))
    return [{"id": i, "display_name": n, "full_name": f, "locale": loc} for i, n, f, loc in rows]


def lookup(store: HubStore, device: Device, shopper_id: str) -> dict:
    require_staff(store, device)
    if not store.one("SELECT 1 FROM shoppers WHERE id=? AND allow_staff_search=1 AND erased=0 AND role='shopper'",
                     (shopper_id,)):
        raise HubFailure(api.P_NOT_FOUND, "no shopper who allowed staff search has this id", 404)
    return profile.shopper_view(store, device, shopper_id)


class UnlockBody(BaseModel):
    staff_id: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=4, max_length=12, pattern=r"^\d+$")


def add_routes(app, store: HubStore, device) -> None:
    """Register the staff calls on `app`; `device` is the app's device-token dependency."""
    @app.post("/v1/staff/sessions")
    def staff_unlock(body: UnlockBody, dev: Device = Depends(device)) -> dict:
        return unlock(store, dev, body.staff_id, body.pin)

    @app.delete("/v1/staff/sessions", status_code=204)
    def staff_lock(dev: Device = Depends(device)):
        store.conn.execute("DELETE FROM staff_sessions WHERE device_id=?", (dev.id,))
        return Response(status_code=204)

    @app.get("/v1/staff/shoppers")
    def staff_search(q: str = Query(default="", max_length=64), dev: Device = Depends(device)) -> dict:
        return {"shoppers": search(store, dev, q)}

    @app.get("/v1/staff/shoppers/{shopper_id}")
    def staff_lookup(shopper_id: str, dev: Device = Depends(device)) -> dict:
        return lookup(store, dev, shopper_id)
