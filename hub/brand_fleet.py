"""A brand's kiosk fleet: one-time enrollment codes for a store (kept only as their hash),
the enrolled kiosks with their last heartbeat, and taking a kiosk out of the fleet.
"""
from __future__ import annotations

import json
import secrets
import time

from kiosk import api
from hub import inputs
from hub.brand_rows import _version_block, not_found
from hub.brand_rules import code_hash  # noqa: F401  (re-exported: brands.code_hash)
from hub.brand_stores import _store_of
from hub.store import HubFailure, HubStore

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a screen, typed on a kiosk
CODE_MAX_S, CODE_DEFAULT_S = 90 * 86400, 7 * 86400
ONLINE_WITHIN_S = 300  # a kiosk seen this recently is online


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))  # 16 of 31 symbols: 79 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def create_code(store: HubStore, brand_id: str, code_of_store: str, expires_in_s: int | None = CODE_DEFAULT_S,
                reusable: bool = False, code: str | None = None) -> dict:
    """A one-time enrollment code for a store of this brand (kept only as its hash). Reusable
    codes with a given value are the demo world's (DEMO)."""
    if expires_in_s is not None and (isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int)
                                     or not 60 <= expires_in_s <= CODE_MAX_S):
        raise HubFailure(api.P_INVALID, f"expires_in_s must be from 60 to {CODE_MAX_S} seconds", 422)
    code = code or new_code()
    digest, now = code_hash(code), time.time()
    with store.transaction() as conn:
        sid = _store_of(conn, brand_id, code_of_store)[0]
        expires = None if expires_in_s is None else now + expires_in_s
        conn.execute("INSERT INTO enrollment_codes(code, brand_id, store_id, reusable, id, created_at, expires_at) "
                     "VALUES (?,?,?,?,?,?,?) ON CONFLICT(code) DO UPDATE SET brand_id=excluded.brand_id, "
                     "store_id=excluded.store_id, reusable=excluded.reusable, used_by=NULL, revoked=0, "
                     "expires_at=excluded.expires_at", (digest, brand_id, sid, int(reusable), "code-" + digest[:10], now, expires))
    return {"id": "code-" + digest[:10], "code": code, "store_code": code_of_store, "expires_at": expires,
            "reusable": reusable}


def list_codes(store: HubStore, brand_id: str) -> list[dict]:
    rows = store.all("SELECT e.id, s.code, e.created_at, e.expires_at, e.used_by, e.revoked, e.reusable "
                     "FROM enrollment_codes e JOIN stores s ON s.id = e.store_id WHERE e.brand_id=? "
                     "ORDER BY e.created_at, e.id", (brand_id,))
    return [{"id": i, "store_code": c, "created_at": at or None, "expires_at": ex, "used_by": u,
             "revoked": bool(r), "reusable": bool(re_)} for i, c, at, ex, u, r, re_ in rows]


def revoke_code(store: HubStore, brand_id: str, code_id: str) -> None:
    row = store.conn.execute("UPDATE enrollment_codes SET revoked=1 WHERE id=? AND brand_id=? RETURNING id",
                             (code_id, brand_id)).fetchone()
    if row is None:
        raise not_found("enrollment code")


def list_devices(store: HubStore, brand_id: str, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    rows = store.all("SELECT d.id, d.name, s.code, d.enrolled_at, d.last_seen, d.heartbeat, d.revoked_at "
                     "FROM devices d LEFT JOIN stores s ON s.id = d.store_id WHERE d.brand_id=? "
                     "ORDER BY s.code, d.name, d.id", (brand_id,))
    out = []
    for device_id, name, code, enrolled, seen, beat, revoked in rows:
        try:
            beat = json.loads(beat or "{}")
        except ValueError:
            beat = {}
        beat = beat if isinstance(beat, dict) else {}

        def number(key):
            value = beat.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e13
            return value if ok else None

        def word(key):
            value = beat.get(key)
            return value[:64] if isinstance(value, str) and inputs.safe(value) else ""
        out.append({"id": device_id, "name": name, "store_code": code or "", "enrolled_at": enrolled,
                    "last_seen": seen or None, "online": bool(seen) and revoked is None and now - seen < ONLINE_WITHIN_S,
                    "revoked": revoked is not None, "version": word("version"), "reader_state": word("reader_state"),
                    "outbox_depth": number("outbox_depth"), "parked": number("parked"), "last_sync": number("last_sync"),
                    "clock_skew_s": number("clock_skew_s"), "free_disk_mb": number("free_disk_mb")})
    return out


def revoke_device(store: HubStore, brand_id: str, device_id: str) -> None:
    """Take a kiosk out of the fleet: its token is refused at its next call (in this process
    at once, in every other within a second: the `devices` counter moves), its check-in and
    staff sessions end. It keeps its outbox; enrolled again, it delivers it."""
    with store.transaction() as conn:
        row = conn.execute("SELECT revoked_at FROM devices WHERE id=? AND brand_id=?", (device_id, brand_id)).fetchone()
        if row is None:
            raise not_found("kiosk")
        if row[0] is None:
            conn.execute("UPDATE devices SET revoked_at=? WHERE id=?", (time.time(), device_id))
            conn.execute("DELETE FROM sessions WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM staff_sessions WHERE device_id=?", (device_id,))
            _version_block(conn, "devices_revoked", 1)
    store.forget_devices()
