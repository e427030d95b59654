"""The shopper's own data, as the page gives it to them: who saw it (the access log, kept
ACCESS_RETENTION_DAYS, apart from the operator's logs), everything the hub holds as a JSON
export (docs/shopper-export.md), the wishlist as CSV, and erase (a tombstone, events kept
without the shopper's id, every card and phone revoked, every kiosk told to forget them).
"""
from __future__ import annotations

import csv
import io
import logging
import time

from hub import revocations
from hub.shopper_account import DAY_S, _detach, _live, _shopper
from hub.shopper_claim import passkeys
from hub.shopper_profile import _adds, _scans, _wishlist, cards, phones
from hub.store import Device, HubStore

log = logging.getLogger(__name__)

ACCESS_RETENTION_DAYS = 365
CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


# -- who saw my data ------------------------------------------------------------------------------
ACCESS_SQL = ("INSERT INTO access_log(shopper_id, at, what, brand_id, store_id, device_id, actor, why) "
              "VALUES (?,?,?,?,?,?,?,?)")
WHATS = ("checkin", "staff_lookup", "staff_search", "brand_read")
WHY_CHECKIN = "check-in at the kiosk"
WHY_LOOKUP = "staff looked up the wishlist"
WHY_SEARCH = "found by name in a staff search"


def record_access_statement(shopper_id: str, what: str, device: Device | None, actor: str, why: str) -> tuple[str, tuple]:
    """The access log row's statement (to send with others, e.g. in a check-in's one trip)."""
    assert what in WHATS
    brand_id, store_id, device_id = (device.brand_id, device.store_id, device.id) if device else ("", "", "")
    return ACCESS_SQL, (shopper_id, time.time(), what, brand_id, store_id, device_id, actor, why)


def record_access(conn, shopper_id: str, what: str, device: Device | None, actor: str, why: str) -> None:
    conn.execute(*record_access_statement(shopper_id, what, device, actor, why))


def sweep_access_log(store: HubStore) -> None:
    store.conn.execute("DELETE FROM access_log WHERE at<?", (time.time() - ACCESS_RETENTION_DAYS * DAY_S,))


def access_log(store: HubStore, shopper_id: str, limit: int = 500) -> list[dict]:
    """Who saw the shopper's data, newest first; rows past the retention are swept first."""
    sweep_access_log(store)
    rows = store.all("SELECT l.at, l.what, l.brand_id, b.name, l.store_id, s.name, l.actor, l.why FROM access_log l "
                     "LEFT JOIN brands b ON b.id = l.brand_id LEFT JOIN stores s ON s.id = l.store_id "
                     "WHERE l.shopper_id=? ORDER BY l.at DESC, l.id DESC LIMIT ?", (shopper_id, int(limit)))
    return [{"at": at, "what": what, "brand_id": b, "brand_name": bn or "", "store_id": s, "store_name": sn or "",
             "actor": actor, "why": why} for at, what, b, bn, s, sn, actor, why in rows]


# -- take it with you --------------------------------------------------------------------------------
SCHEMA_VERSION = 1


def export(store: HubStore, shopper_id: str) -> dict:
    """Everything the hub holds about the shopper (docs/shopper-export.md): ids, names and
    dates of cards, phones and passkeys, never a hash, a key or a token."""
    with store.reading():
        shopper = _shopper(store, shopper_id)
        lang = shopper["locale"]
        names = dict(store.all("SELECT id, name FROM brands"))
        shops = dict(store.all("SELECT id, name FROM stores"))
        sharing = [{"from_brand": f, "to_brand": t, "to_brand_name": names.get(t, ""), "state": state,
                    "changed_at": c or None, "via": via, "store_id": s, "store_name": shops.get(s, "")}
                   for f, t, state, c, via, s in store.all(
                       "SELECT from_brand, to_brand, state, changed_at, via, store_id FROM consents WHERE shopper_id=? "
                       "ORDER BY to_brand, from_brand", (shopper_id,))]
        staff_search = [{"brand_id": b, "brand_name": names.get(b, ""), "allowed": bool(allowed),
                         "changed_at": c or None, "via": via}
                        for b, allowed, c, via in store.all(
                            "SELECT brand_id, 1, changed_at, via FROM staff_search WHERE shopper_id=? UNION ALL "
                            "SELECT brand_id, 0, changed_at, via FROM staff_search_refused WHERE shopper_id=? "
                            "ORDER BY 1", (shopper_id, shopper_id))]
        visits = [{"brand_id": b, "brand_name": names.get(b, ""), "count": n, "last_at": at}
                  for b, n, at in store.all("SELECT brand_id, count, last_at FROM visits WHERE shopper_id=? "
                                            "ORDER BY brand_id", (shopper_id,))]
        adds = [{k: a[k] for k in ("tag", "gtin", "title", "brand_id", "brand_name", "added_at", "channel",
                                   "added_brand_id", "added_brand_name", "store_id", "added_store_name", "removed")}
                for a in _adds(store, shopper_id, lang)]
        full = store.one("SELECT full_name FROM staff_directory WHERE shopper_id=?", (shopper_id,))
        profile = {**shopper, "full_name": full[0] if full else ""}  # what staff search matches
        return {"schema_version": SCHEMA_VERSION, "exported_at": time.time(), "profile": profile,
                "wishlist": adds, "scans": _scans(store, shopper_id, lang), "visits": visits, "sharing": sharing,
                "staff_search": staff_search, "access_log": access_log(store, shopper_id, limit=100_000),
                "apps": [{"grant_id": gid, "client_id": cid, "client_name": cn, "kind": kind, "brand_id": b,
                          "brand_name": names.get(b, ""), "scopes": (scope or "").split(), "created_at": c,
                          "updated_at": u, "revoked_at": r}
                         for gid, cid, cn, kind, b, scope, c, u, r in store.all(
                             "SELECT g.id, g.client_id, c.name, c.kind, g.brand_id, g.scope, g.created_at, g.updated_at, "
                             "g.revoked_at FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id "
                             "WHERE g.shopper_id=? ORDER BY g.created_at, g.id", (shopper_id,))],
                "shelf_watches": [{"gtin": g, "store_id": st, "store_name": shops.get(st, ""), "created_at": c, "via": v}
                                  for g, st, c, v in store.all("SELECT gtin, store_id, created_at, via FROM shelf_watches "
                                                               "WHERE shopper_id=? ORDER BY created_at, gtin",
                                                               (shopper_id,))],
                "cards": cards(store, shopper_id), "phones": phones(store, shopper_id),
                "passkeys": [{k: p[k] for k in ("id", "name", "created_at", "last_used_at")}
                             for p in passkeys(store, shopper_id)]}


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_RISKY) else text


def _iso(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at else ""


CSV_HEADER = ("gtin", "title", "brand", "added_at", "channel", "added_at_brand", "added_at_store", "stock_nearby")


def wishlist_csv(store: HubStore, shopper_id: str, lang: str) -> str:
    """The live wishlist as CSV (RFC 4180), one line per item, safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    _shopper(store, shopper_id)
    for item in _wishlist(store, shopper_id, lang):
        nearby = "; ".join(f"{n['store_name']} ({n['quantity']})" for n in item["nearby"])
        writer.writerow([csv_cell(v) for v in (item["gtin"], item["title"], item["brand_name"], _iso(item["added_at"]),
                                               item["channel"], item["added_brand_name"], item["added_store_name"],
                                               nearby)])
    return out.getvalue()


# -- erase -------------------------------------------------------------------------------------
ERASE_SQL = [
    "DELETE FROM wishlist_adds WHERE shopper_id=?",
    "DELETE FROM wishlist_removes WHERE shopper_id=?",
    "DELETE FROM consents WHERE shopper_id=?",
    "DELETE FROM staff_search WHERE shopper_id=?",
    "DELETE FROM staff_search_refused WHERE shopper_id=?",
    "DELETE FROM visits WHERE shopper_id=?",
    "DELETE FROM sessions WHERE shopper_id=?",
    "DELETE FROM access_log WHERE shopper_id=?",
    "DELETE FROM passkeys WHERE shopper_id=?",
    "DELETE FROM webauthn_challenges WHERE subject=?",
    "DELETE FROM web_sessions WHERE kind='shopper' AND subject=?",
    "DELETE FROM staff_directory WHERE shopper_id=?",
    "DELETE FROM shelf_watches WHERE shopper_id=?",
    "DELETE FROM oauth_codes WHERE shopper_id=?",  # which shops and apps they used goes with them
    "DELETE FROM oauth_tokens WHERE shopper_id=?",
    "DELETE FROM oauth_grants WHERE shopper_id=?",
]


def erase(store: HubStore, shopper_id: str) -> None:
    """Erase the shopper, in one transaction (see the module's rules); 404 if there is none."""
    now = time.time()
    with store.transaction() as conn:
        _live(conn, shopper_id)
        for sql in ERASE_SQL:
            conn.execute(sql, (shopper_id,))
        _detach(store, "SELECT event_id, body FROM events WHERE shopper_id=?", (shopper_id,))
        for table in ("credentials", "phone_keys", "sun_cards"):
            conn.execute(f"UPDATE {table} SET revoked_at=? WHERE shopper_id=? AND revoked_at IS NULL", (now, shopper_id))
            # the row keeps pointing at the tombstone (a foreign key): revoked, nameless, unknown at every kiosk
            conn.execute(f"UPDATE {table} SET revoked=1, name='' WHERE shopper_id=?", (shopper_id,))
        conn.execute("UPDATE shoppers SET erased=1, display_name='', pin_hash='', webauthn_user='', "
                     "allow_staff_search=0 WHERE id=?", (shopper_id,))
        revocations.publish(conn, shopper_id, revocations.ERASED)
    log.info("shopper %s erased", shopper_id)
