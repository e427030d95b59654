"""What a brand's web shop or app does with the shopper's wishlist (issue 12), on the store:
read it as the brand may see it, add, remove what was seen, merge a guest list, read the
in-store scans. hub/channel_api.py puts it on HTTP behind the shopper's grant (hub/oauth.py).

The rules, the kiosk's own (hub/events.py):

- What a token sees: the items of its brand's products (scope `wishlist`), and the items of
  other brands only with scope `wishlist.other_brands` AND the ledger granting it now (the
  `consents` the kiosk and the shopper's page write): a stop at any door hides them at the
  next call, whatever the token says.
- Every write carries a client event id (a UUID): its receipt is a row in `events` (device
  "oauth:<client id>"), so the same id and body again changes nothing (200, "duplicate") and
  the same id with another body is a 409. An add's tag is its event id; the add keeps its
  channel ('web' or 'app') and the client's brand.
- A remove names the add tags the client had seen (from a read): only those, and only ones
  this token may see, are taken away; an add made concurrently elsewhere (a kiosk, an app)
  has another tag and survives.
- A merge is the guest list of a signed-out shop, a union keyed by GTIN: an item already live
  is not added twice, each item's receipt is kept, so the call sent again (at sign-in, at a
  first sign-up, or both) changes nothing.
- A read of the wishlist or the scans is written to the shopper's access log (who saw my
  data), at most once a minute per client and kind of read.
- Products named are the brand's own (another brand's product is 404, like one that does not
  exist). A refusal is a HubFailure (an RFC 9457 problem on HTTP), never a 500 for bad input.
"""
from __future__ import annotations

import json
import time

from kiosk import api
from hub import credentials, event_rules, events, shelf
from hub import shopper as shoppers
from hub.catalog import _json, localized, store_price, with_default
from hub.profile import ALL_BRANDS
from hub.sql import in_list
from hub.store import HubFailure, HubStore

MAX_MERGE = 200
MAX_TAGS = event_rules.MAX_TAGS
MAX_STORES = 50  # stock rows per item (a brand's stores, most stock first)
SCAN_LIMIT = 500
LOG_EVERY_S = 60.0  # an access-log row per client and kind of read at most this often
SCOPE_WISHLIST, SCOPE_OTHERS, SCOPE_SCANS = "wishlist", "wishlist.other_brands", "scans"
WHY_READ = "read by {client}"
WHY_SCANS = "scans read by {client}"


def invalid(detail: str) -> HubFailure:
    return HubFailure(api.P_INVALID, detail, 422)


def event_id_of(value: str, field: str = "event_id") -> str:
    value = value.lower() if isinstance(value, str) else value
    if not isinstance(value, str) or not event_rules.UUID_RE.fullmatch(value):
        raise invalid(f"{field} must be a UUID")
    return value


def _client_name(store: HubStore, access) -> str:
    name = getattr(access, "client_name", "")
    if name:
        return name
    row = store.one("SELECT name FROM oauth_clients WHERE id=?", (access.client_id,))
    return row[0] if row else access.client_id


def _digest(store: HubStore, access, kind: str, **fields) -> str:
    """What tells a re-sent write from another one with the same event id: keyed (the pepper)."""
    return events.payload_hash(store, {"type": kind, "shopper_id": access.shopper_id, "client_id": access.client_id,
                                       **fields})


def _receipt_row(access, event_id: str, kind: str, digest: str, now: float, body: dict) -> tuple:
    return (event_id, "oauth:" + access.client_id, kind, digest, access.shopper_id, now,
            json.dumps({"type": kind, "channel": access.channel, "client_id": access.client_id, **body}))


RECEIPT_SQL = ("INSERT INTO events(event_id, device_id, type, body_hash, shopper_id, received_at, body) "
               "VALUES (?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING RETURNING event_id")


def _held(conn, event_id: str) -> tuple | None:
    return conn.execute("SELECT body_hash, body FROM events WHERE event_id=?", (event_id,)).fetchone()


def _seen(held: tuple, digest: str) -> dict:
    if held[0] != digest:
        raise HubFailure(credentials.P_CONFLICT, "this event_id was already used for another request", 409)
    return _json(held[1])


def _lock_shopper(conn, shopper_id: str) -> None:
    """Writes of one shopper's channel calls one after another (a merge's union must not race
    another merge): PostgreSQL locks the shopper's row; SQLite's writers are serialised anyway."""
    if conn.sa.dialect.name == "postgresql":
        conn.execute("SELECT id FROM shoppers WHERE id=? FOR UPDATE", (shopper_id,))


# -- reading -----------------------------------------------------------------------------------
LIVE_SQL = ("SELECT a.gtin, a.tag, a.channel, a.received_at, p.brand_id, b.name, p.title, p.texts, p.description, "
            "b.default_language, p.price, p.currency, p.online, p.deleted "
            "FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
            "JOIN products p ON p.gtin = a.gtin JOIN brands b ON b.id = p.brand_id "
            "WHERE a.shopper_id = ? AND r.tag IS NULL ORDER BY a.received_at, a.tag")
STOCK_SQL = ("SELECT i.gtin, s.code, s.name, i.quantity, i.availability, i.location, i.price FROM inventory i "
             "JOIN stores s ON s.id = i.store_id WHERE s.brand_id = ? AND i.gtin IN ("
             "SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag "
             "AND r.shopper_id = a.shopper_id WHERE a.shopper_id = ? AND r.tag IS NULL) "
             "ORDER BY i.quantity DESC, s.code")


def _may_see(access, item_brand: str, consents: dict[str, str]) -> bool:
    """Own brand's items with scope wishlist; another brand's only with wishlist.other_brands
    and the ledger granting it now (a brand-specific choice wins over the "*" one)."""
    if item_brand == access.brand_id:
        return True
    if SCOPE_OTHERS not in access.scopes:
        return False
    sharing = consents.get(ALL_BRANDS, api.UNDECIDED)
    return consents.get(item_brand, sharing) == api.GRANTED


def answer_language(store_locale: str, lang: str) -> str:
    """The language of an answer: `lang` when the call names one, else the shopper's own."""
    if lang:
        if not shoppers.LOCALE_RE.fullmatch(lang):
            raise invalid("lang must be a language tag such as vi, ru, th or en-GB")
        return lang
    return store_locale or "en"


def read_wishlist(store: HubStore, access, lang: str = "") -> dict:
    with store.reading():
        who, consents, rows, stock = store.all_of([
            ("SELECT locale FROM shoppers WHERE id=? AND erased=0", (access.shopper_id,)),
            ("SELECT from_brand, state FROM consents WHERE shopper_id=? AND to_brand=?",
             (access.shopper_id, access.brand_id)),
            (LIVE_SQL, (access.shopper_id,)),
            (STOCK_SQL, (access.brand_id, access.shopper_id)),
        ])
    if not who:
        raise HubFailure(api.P_UNAUTHORIZED, "this shopper profile no longer exists", 401,
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    lang = answer_language(who[0][0], lang)
    ledger = {f: s for f, s in consents}
    items: dict[str, dict] = {}
    for (gtin, tag, channel, added_at, brand_id, brand_name, title, texts, description, default_language, price,
         currency, online, deleted) in rows:
        if gtin in items:
            items[gtin]["tags"].append(tag)
            continue
        if not _may_see(access, brand_id, ledger):
            continue
        texts = with_default(_json(texts), default_language, {"title": title, "description": description or ""})
        items[gtin] = {"gtin": gtin, "title": localized(texts, lang, "title", title), "brand": brand_id,
                       "brand_name": brand_name, "description": localized(texts, lang, "description", description or ""),
                       "price": price, "currency": currency, "online": bool(online) and not deleted,
                       "image": f"/v1/images/{gtin}.png", "tags": [tag], "channel": channel, "added_at": added_at,
                       "stock": [], "_gone": bool(deleted)}
    for gtin, code, name, quantity, availability, location, here_price in stock:
        item = items.get(gtin)
        if item is None or item["_gone"] or len(item["stock"]) >= MAX_STORES:
            continue
        price, currency = store_price(here_price or "", item["price"], item["currency"])
        item["stock"].append({"store_code": code, "store_name": name, "quantity": max(0, quantity or 0),
                              "availability": availability or ("in_stock" if (quantity or 0) > 0 else "out_of_stock"),
                              "location": (location or "") if (quantity or 0) > 0 else "", "price": price,
                              "currency": currency})
    for item in items.values():
        del item["_gone"]
    _log_read(store, access, "brand_read", WHY_READ.format(client=_client_name(store, access)))
    return {"items": list(items.values()), "lang": lang}


def _log_read(store: HubStore, access, what: str, why: str) -> None:
    """The shopper's access log: one row per client and kind of read a minute (a shop reading
    the list on every page view leaves one line, not hundreds)."""
    now, device = time.time(), "oauth:" + access.client_id
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM access_log WHERE shopper_id=? AND at>? AND device_id=? AND why=?",
                        (access.shopper_id, now - LOG_EVERY_S, device, why)).fetchone():
            return
        conn.execute(shoppers.ACCESS_SQL, (access.shopper_id, now, what, access.brand_id, "", device,
                                           access.channel, why))


def read_scans(store: HubStore, access, lang: str = "") -> dict:
    since = time.time() - shoppers.SCAN_DAYS * shoppers.DAY_S
    with store.reading():
        who, rows = store.all_of([
            ("SELECT locale FROM shoppers WHERE id=? AND erased=0", (access.shopper_id,)),
            ("SELECT e.received_at, e.body, s.code, s.name FROM events e JOIN devices d ON d.id = e.device_id "
             "JOIN stores s ON s.id = d.store_id WHERE e.shopper_id=? AND e.type='scan' AND d.brand_id=? "
             "AND e.received_at>=? ORDER BY e.received_at DESC LIMIT ?",
             (access.shopper_id, access.brand_id, since, SCAN_LIMIT)),
        ])
        if not who:
            raise HubFailure(api.P_UNAUTHORIZED, "this shopper profile no longer exists", 401,
                             headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        lang = answer_language(who[0][0], lang)
        gtins = sorted({g for g in (_json(b).get("gtin") for _, b, _, _ in rows) if isinstance(g, str)})
        titles = {}
        statement = in_list(store.dialect, "SELECT p.gtin, p.title, p.texts, p.description, b.default_language "
                            "FROM products p JOIN brands b ON b.id = p.brand_id WHERE p.brand_id=? AND p.gtin IN (?*)",
                            gtins, (access.brand_id,))
        for gtin, title, texts, description, default_language in (store.all(*statement) if statement else []):
            texts = with_default(_json(texts), default_language, {"title": title, "description": description or ""})
            titles[gtin] = localized(texts, lang, "title", title)
    out = []
    for at, body, code, name in rows:
        gtin = _json(body).get("gtin")
        gtin = gtin if isinstance(gtin, str) else ""
        out.append({"at": at, "gtin": gtin, "title": titles.get(gtin, ""), "store_code": code, "store_name": name})
    _log_read(store, access, "brand_read", WHY_SCANS.format(client=_client_name(store, access)))
    return {"scans": out, "lang": lang}


# -- writing -----------------------------------------------------------------------------------
def own_product(conn, access, gtin: str) -> None:
    """404 unless `gtin` is a live product of the token's brand (another brand's is as unknown as none)."""
    row = conn.execute("SELECT brand_id, deleted FROM products WHERE gtin=?", (gtin,)).fetchone()
    if row is None or row[1] or row[0] != access.brand_id:
        raise HubFailure(api.P_NOT_FOUND, "no such product of this brand", 404)


def add_item(store: HubStore, access, event_id: str, gtin: str) -> tuple[int, dict]:
    event_id, gtin = event_id_of(event_id), shelf.gtin_of(gtin)
    digest = _digest(store, access, api.WISHLIST_ADD, gtin=gtin)
    now = time.time()
    with store.transaction() as conn:
        held = _held(conn, event_id)
        if held is not None:
            _seen(held, digest)
            return 200, {"event_id": event_id, "status": api.DUPLICATE, "tag": event_id, "gtin": gtin}
        own_product(conn, access, gtin)
        if conn.execute(RECEIPT_SQL, _receipt_row(access, event_id, api.WISHLIST_ADD, digest, now, {"gtin": gtin})
                        ).fetchone() is None:  # a request racing this one got there first
            _seen(_held(conn, event_id), digest)
            return 200, {"event_id": event_id, "status": api.DUPLICATE, "tag": event_id, "gtin": gtin}
        conn.execute(events.ADD_SQL, (event_id, access.shopper_id, gtin, now, access.channel, access.brand_id, ""))
    return 201, {"event_id": event_id, "status": api.CREATED, "tag": event_id, "gtin": gtin}


def remove_items(store: HubStore, access, event_id: str, tags: list[str]) -> dict:
    event_id = event_id_of(event_id)
    if len(tags) > MAX_TAGS:
        raise invalid(f"a remove names at most {MAX_TAGS} tags")
    tags = sorted({event_id_of(t, "each tag") for t in tags})
    digest = _digest(store, access, api.WISHLIST_REMOVE, tags=tags)
    now = time.time()
    with store.transaction() as conn:
        held = _held(conn, event_id)
        if held is not None:
            return {"event_id": event_id, "status": api.DUPLICATE, "removed": int(_seen(held, digest).get("removed", 0))}
        ledger = dict(conn.execute("SELECT from_brand, state FROM consents WHERE shopper_id=? AND to_brand=?",
                                   (access.shopper_id, access.brand_id)).fetchall())
        live = conn.rows_in("SELECT a.tag, p.brand_id FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag "
                            "AND r.shopper_id = a.shopper_id JOIN products p ON p.gtin = a.gtin "
                            "WHERE a.shopper_id = ? AND r.tag IS NULL AND a.tag IN (?*)", tags,
                            (access.shopper_id,)) if tags else []
        seen = sorted(t for t, brand in live if _may_see(access, brand, ledger))
        if conn.execute(RECEIPT_SQL, _receipt_row(access, event_id, api.WISHLIST_REMOVE, digest, now,
                                                  {"tags": tags, "removed": len(seen)})).fetchone() is None:
            return {"event_id": event_id, "status": api.DUPLICATE,
                    "removed": int(_seen(_held(conn, event_id), digest).get("removed", 0))}
        if seen:
            conn.executemany(events.REMOVE_SQL, [(t, access.shopper_id) for t in seen])
    return {"event_id": event_id, "status": api.CREATED, "removed": len(seen)}


ALREADY = "already_saved"


def merge(store: HubStore, access, items: list) -> dict:
    """The guest list, in one transaction: a union by GTIN, each item's receipt kept."""
    wanted = []
    for index, item in enumerate(items):
        try:
            wanted.append((event_id_of(item.event_id, f"items[{index}].event_id"), shelf.gtin_of(item.gtin)))
        except HubFailure as failure:
            raise invalid(failure.detail if failure.detail.startswith("items[") else
                          f"items[{index}].{failure.detail}") from None
    now = time.time()
    results: list[dict] = []
    with store.transaction() as conn:
        _lock_shopper(conn, access.shopper_id)
        ids = sorted({e for e, _ in wanted})
        held = {r[0]: (r[1], r[2]) for r in conn.rows_in("SELECT event_id, body_hash, body FROM events "
                                                          "WHERE event_id IN (?*)", ids)} if ids else {}
        gtins = sorted({g for _, g in wanted})
        products = {r[0]: (r[1], r[2]) for r in conn.rows_in("SELECT gtin, brand_id, deleted FROM products "
                                                              "WHERE gtin IN (?*)", gtins)} if gtins else {}
        live = {r[0] for r in conn.rows_in("SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r "
                                           "ON r.tag = a.tag AND r.shopper_id = a.shopper_id WHERE a.shopper_id = ? "
                                           "AND r.tag IS NULL AND a.gtin IN (?*)", gtins, (access.shopper_id,))} \
            if gtins else set()
        receipts, adds, mine = [], [], {}
        for event_id, gtin in wanted:
            digest = _digest(store, access, api.WISHLIST_ADD, gtin=gtin)
            if event_id in held:
                _seen(held[event_id], digest)
                results.append({"event_id": event_id, "gtin": gtin, "status": api.DUPLICATE})
                continue
            if event_id in mine:  # the same item twice in one call
                if mine[event_id] != digest:
                    raise HubFailure(credentials.P_CONFLICT, "one event_id is used for two items of the list", 409)
                results.append({"event_id": event_id, "gtin": gtin, "status": api.DUPLICATE})
                continue
            product = products.get(gtin)
            if product is None or product[1] or product[0] != access.brand_id:
                results.append({"event_id": event_id, "gtin": gtin, "status": api.REJECTED,
                                "reason": "no such product of this brand"})
                continue
            mine[event_id] = digest
            status = ALREADY if gtin in live else api.CREATED
            receipts.append(_receipt_row(access, event_id, api.WISHLIST_ADD, digest, now,
                                         {"gtin": gtin, "merge": status}))
            if status == api.CREATED:
                live.add(gtin)
                adds.append((event_id, access.shopper_id, gtin, now, access.channel, access.brand_id, ""))
            results.append({"event_id": event_id, "gtin": gtin, "status": status})
        if receipts:
            inserted = {r[0] for r in conn.insert_returning(RECEIPT_SQL, receipts)}
            if len(inserted) != len(receipts):  # another call took some of these ids meanwhile
                raise HubFailure(credentials.P_CONFLICT, "some event ids were received meanwhile; send the list again",
                                 409)
        if adds:
            conn.executemany(events.ADD_SQL, adds)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"results": results, "counts": counts}
