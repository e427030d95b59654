"""What every part of the shopper's page service checks and refuses with: whether an id is a
live shopper (not erased, not a staff badge) and its row, the refusals (404 for what is not
this shopper's, 409 for conflicts, 422 for bad input), and how an event loses its shopper
(older scans, an erase) while its row stays.
"""
from __future__ import annotations

import json

from kiosk import api
from hub import credentials
from hub.store import HubFailure, HubStore, _json

DAY_S = 86400
P_CONFLICT = credentials.P_CONFLICT
STRIPPED = ("shopper_id", "credential", "checkin", "session")


def not_yours(what: str = "no such thing for this shopper") -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, what, 404)


def conflict(why: str) -> HubFailure:
    return HubFailure(P_CONFLICT, why, 409)


def invalid(why: str) -> HubFailure:
    return HubFailure(api.P_INVALID, why, 422)


def _live(conn, shopper_id: str) -> None:
    if not isinstance(shopper_id, str) or not conn.execute(
            "SELECT 1 FROM shoppers WHERE id=? AND erased=0 AND role='shopper'", (shopper_id,)).fetchone():
        raise not_yours("no such shopper")


def _shopper(store: HubStore, shopper_id: str) -> dict:
    row = store.one("SELECT id, display_name, locale, created_at, claimed_at FROM shoppers "
                    "WHERE id=? AND erased=0 AND role='shopper'", (shopper_id,)) if isinstance(shopper_id, str) else None
    if row is None:
        raise not_yours("no such shopper")
    return {"id": row[0], "display_name": row[1], "locale": row[2], "created_at": row[3] or None,
            "claimed_at": row[4]}


def _detach(store: HubStore, select_sql: str, params: tuple) -> None:
    """Events keep their rows (counts per store stay true) without whose they were."""
    rows = store.all(select_sql, params)
    if not rows:
        return
    stripped = []
    for event_id, body in rows:
        kept = {k: v for k, v in _json(body).items() if k not in STRIPPED}
        stripped.append((json.dumps(kept), event_id))
    store.conn.executemany("UPDATE events SET shopper_id=NULL, body=? WHERE event_id=?", stripped)
