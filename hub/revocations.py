"""The revocation feed: what kiosks must forget, as a delta by version (like inventory).

    revocations.publish(conn, shopper_id, kind=CONSENT, brand_id="brand-b")   # in a transaction
    items, cursor = revocations.delta(store, device, since)

A consent revoked towards brand B concerns B's kiosks; a revoked credential or card, or an
erased shopper, concerns every kiosk (brand_id NULL). A kiosk pulls the feed with its
inventory and purges every cached view of the shoppers named, within one sync.
"""
from __future__ import annotations

import time

from hub.store import Device, HubStore

CONSENT = "consent_revoked"
CREDENTIAL = "credential_revoked"
ERASED = "shopper_erased"
KINDS = (CONSENT, CREDENTIAL, ERASED)
PAGE = 1000


def publish(conn, shopper_id: str, kind: str, brand_id: str | None = None) -> None:
    """Add a revocation; `conn` is the store's connection (call inside the change's transaction
    so the feed never names a change that was rolled back)."""
    assert kind in KINDS
    version = conn.execute("INSERT INTO counters(name, value) VALUES ('revocations', 1) "
                           "ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value").fetchone()[0]
    conn.execute("INSERT INTO revocations(version, shopper_id, brand_id, kind, at) VALUES (?,?,?,?,?)",
                 (version, shopper_id, brand_id, kind, time.time()))


def delta(store: HubStore, device: Device, since: int) -> tuple[list[dict], int]:
    """What this kiosk must forget since `since`. Versions are handed out under the counter
    row's lock, so they commit in order: the head read first bounds the rows read after it,
    and the cursor may jump past other brands' rows without skipping one of this brand's."""
    head_row = store.one("SELECT value FROM counters WHERE name='revocations'")
    head = head_row[0] if head_row else 0
    rows = store.all("SELECT version, shopper_id, kind FROM revocations WHERE version > ? AND version <= ? "
                     "AND (brand_id IS NULL OR brand_id = ?) ORDER BY version LIMIT ?",
                     (since, head, device.brand_id, PAGE))
    cursor = rows[-1][0] if len(rows) == PAGE else max(since, head)
    return [{"shopper_id": s, "kind": k} for _, s, k in rows], cursor
