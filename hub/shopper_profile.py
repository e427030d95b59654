"""The profile as the shopper's page shows it: the live wishlist (one item a product, where and
when it was first added, stock nearby), in-store scans of the last SCAN_DAYS, the brands met
with the sharing and staff-search choices made for each, cards, phones and passkeys.
"""
from __future__ import annotations

import time

from kiosk import api
from hub.profile import ALL_BRANDS
from hub.shopper_account import DAY_S, _detach, _shopper
from hub.shopper_claim import passkeys
from hub.store import HubStore, _json, in_list, localized, with_default

SCAN_DAYS = 90
NEARBY = 3
LIVE_ADDS = ("FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
             "WHERE a.shopper_id = ? AND r.tag IS NULL")
ADDS_SQL = ("SELECT a.gtin, a.tag, a.received_at, a.channel, a.brand_id, ab.name, a.store_id, st.name, p.brand_id, "
            "b.name, p.title, p.texts, p.description, b.default_language, p.deleted, r.tag "
            "FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
            "LEFT JOIN products p ON p.gtin = a.gtin LEFT JOIN brands b ON b.id = p.brand_id "
            "LEFT JOIN brands ab ON ab.id = a.brand_id LEFT JOIN stores st ON st.id = a.store_id "
            "WHERE a.shopper_id = ? ORDER BY a.received_at, a.tag")


def _title(title, texts, description, default_language, lang: str) -> str:
    texts = with_default(_json(texts), default_language, {"title": title or "", "description": description or ""})
    return localized(texts, lang, "title", title or "")


def _adds(store: HubStore, shopper_id: str, lang: str) -> list[dict]:
    """Every add of the shopper (removed ones marked), with its product and where it was made."""
    out = []
    for (gtin, tag, at, channel, add_brand, add_brand_name, store_id, store_name, brand_id, brand_name, title,
         texts, description, default_language, _, removed) in store.all(ADDS_SQL, (shopper_id,)):
        out.append({"gtin": gtin, "tag": tag, "added_at": at, "channel": channel, "added_brand_id": add_brand,
                    "added_brand_name": add_brand_name or "", "store_id": store_id, "added_store_name": store_name or "",
                    "brand_id": brand_id or "", "brand_name": brand_name or "", "removed": removed is not None,
                    "title": _title(title, texts, description, default_language, lang) if brand_id else gtin})
    return out


def _nearby(store: HubStore, shopper_id: str) -> dict[str, list[dict]]:
    rows = store.all("SELECT i.gtin, s.name, i.quantity FROM inventory i JOIN stores s ON s.id = i.store_id "
                     "JOIN products p ON p.gtin = i.gtin WHERE i.quantity > 0 AND p.deleted = 0 "
                     "AND i.gtin IN (SELECT a.gtin " + LIVE_ADDS + ") ORDER BY i.quantity DESC, s.name",
                     (shopper_id,))
    out: dict[str, list[dict]] = {}
    for gtin, name, quantity in rows:
        if len(out.setdefault(gtin, [])) < NEARBY:
            out[gtin].append({"store_name": name, "quantity": quantity})
    return out


def _wishlist(store: HubStore, shopper_id: str, lang: str) -> list[dict]:
    """Live items, one per product: the first add says where and when it was added."""
    items: dict[str, dict] = {}
    for add in _adds(store, shopper_id, lang):
        if add["removed"] or not add["brand_id"]:
            continue
        if add["gtin"] in items:
            items[add["gtin"]]["tags"].append(add["tag"])
            continue
        items[add["gtin"]] = {k: add[k] for k in ("gtin", "title", "brand_id", "brand_name", "added_at", "channel",
                                                   "added_brand_id", "added_brand_name", "added_store_name")}
        items[add["gtin"]]["tags"] = [add["tag"]]
    nearby = _nearby(store, shopper_id) if items else {}
    for gtin, item in items.items():
        item["nearby"] = nearby.get(gtin, [])
    return list(items.values())


def _scans(store: HubStore, shopper_id: str, lang: str) -> list[dict]:
    """In-store scans of the last SCAN_DAYS, newest first. Older ones are detached now."""
    since = time.time() - SCAN_DAYS * DAY_S
    _detach(store, "SELECT event_id, body FROM events WHERE shopper_id=? AND type='scan' AND received_at<?",
            (shopper_id, since))
    rows = store.all("SELECT e.received_at, e.body, d.store_id, st.name FROM events e "
                     "LEFT JOIN devices d ON d.id = e.device_id LEFT JOIN stores st ON st.id = d.store_id "
                     "WHERE e.shopper_id=? AND e.type='scan' AND e.received_at>=? ORDER BY e.received_at DESC LIMIT 1000",
                     (shopper_id, since))
    gtins = {_json(body).get("gtin") for _, body, _, _ in rows} - {None}
    products = {}
    statement = in_list(store.dialect, "SELECT p.gtin, p.title, p.texts, p.description, b.default_language, "
                        "p.brand_id, b.name FROM products p JOIN brands b ON b.id = p.brand_id WHERE p.gtin IN (?*)",
                        [g for g in gtins if isinstance(g, str)])
    for gtin, title, texts, description, default_language, brand_id, brand_name in (store.all(*statement) if statement else []):
        products[gtin] = (_title(title, texts, description, default_language, lang), brand_id, brand_name)
    out = []
    for at, body, store_id, store_name in rows:
        gtin = _json(body).get("gtin")
        title, brand_id, brand_name = products.get(gtin, (gtin or "", "", ""))
        out.append({"at": at, "gtin": gtin or "", "title": title, "brand_id": brand_id, "brand_name": brand_name,
                    "store_id": store_id or "", "store_name": store_name or ""})
    return out


def _met(store: HubStore, shopper_id: str) -> list[tuple[str, str]]:
    """The brands the shopper has met: visits, wishlist items (their brand or the adding
    kiosk's), sharing and staff search choices. (id, name), by name."""
    return store.all(
        "SELECT b.id, b.name FROM brands b WHERE b.id IN ("
        "SELECT brand_id FROM visits WHERE shopper_id=? "
        "UNION SELECT p.brand_id FROM wishlist_adds a JOIN products p ON p.gtin = a.gtin WHERE a.shopper_id=? "
        "UNION SELECT brand_id FROM wishlist_adds WHERE shopper_id=? "
        "UNION SELECT to_brand FROM consents WHERE shopper_id=? "
        "UNION SELECT brand_id FROM staff_search WHERE shopper_id=? "
        "UNION SELECT brand_id FROM staff_search_refused WHERE shopper_id=?) ORDER BY b.name, b.id",
        (shopper_id,) * 6)


def _brands(store: HubStore, shopper_id: str, wishlist: list[dict]) -> list[dict]:
    sharing = {to: (state, changed, via) for to, state, changed, via in store.all(
        "SELECT to_brand, state, changed_at, via FROM consents WHERE shopper_id=? AND from_brand=?",
        (shopper_id, ALL_BRANDS))}
    allowed = {b: (c, v) for b, c, v in store.all("SELECT brand_id, changed_at, via FROM staff_search WHERE shopper_id=?",
                                                  (shopper_id,))}
    refused = {b: (c, v) for b, c, v in store.all(
        "SELECT brand_id, changed_at, via FROM staff_search_refused WHERE shopper_id=?", (shopper_id,))}
    holding = {}
    for item in wishlist:
        holding.setdefault(item["brand_id"], item["brand_name"])
    out = []
    for brand_id, name in _met(store, shopper_id):
        state, changed, via = sharing.get(brand_id, (api.UNDECIDED, None, None))
        search_changed, search_via = allowed.get(brand_id) or refused.get(brand_id) or (None, None)
        out.append({"brand_id": brand_id, "name": name,
                    "sees_others": state if state in (api.GRANTED, api.REFUSED) else api.UNDECIDED,
                    "other_brands": sorted(n for b, n in holding.items() if b != brand_id),
                    "staff_search": brand_id in allowed, "changed_at": changed or None,
                    "via": via if changed else None, "staff_search_changed_at": search_changed or None,
                    "staff_search_via": search_via if search_changed else None})
    return out


def _sun_id(store: HubStore, uid_hex: str) -> str:
    """A secure card's public id: keyed, so the page never shows (or takes) its UID."""
    return "sun-" + store.credential_hash(f"sun-id:{uid_hex}")[:12]


def cards(store: HubStore, shopper_id: str) -> list[dict]:
    rows = [{"id": i, "name": n, "kind": k, "created_at": c or None, "revoked": bool(r), "revoked_at": ra}
            for i, n, k, c, r, ra in store.all("SELECT id, name, kind, created_at, revoked, revoked_at FROM credentials "
                                               "WHERE shopper_id=? ORDER BY created_at, id", (shopper_id,))]
    rows += [{"id": _sun_id(store, uid), "name": n, "kind": "sun", "created_at": c or None, "revoked": bool(r),
              "revoked_at": ra}
             for uid, n, c, r, ra in store.all("SELECT uid, name, created_at, revoked, revoked_at FROM sun_cards "
                                               "WHERE shopper_id=? ORDER BY created_at, uid", (shopper_id,))]
    return rows


def phones(store: HubStore, shopper_id: str) -> list[dict]:
    return [{"id": i, "name": n, "created_at": c or None, "revoked": bool(r), "revoked_at": ra}
            for i, n, c, r, ra in store.all("SELECT credential_id, name, created_at, revoked, revoked_at FROM phone_keys "
                                            "WHERE shopper_id=? ORDER BY created_at, credential_id", (shopper_id,))]


def profile(store: HubStore, shopper_id: str, lang: str) -> dict:
    """Everything the page shows, in `lang` where a product has a title in it."""
    with store.reading():
        shopper = _shopper(store, shopper_id)
        wishlist = _wishlist(store, shopper_id, lang)
        return {"shopper": shopper, "wishlist": wishlist, "scans": _scans(store, shopper_id, lang),
                "brands": _brands(store, shopper_id, wishlist), "cards": cards(store, shopper_id),
                "phones": phones(store, shopper_id),
                "passkeys": [{k: p[k] for k in ("id", "name", "created_at", "last_used_at")}
                             for p in passkeys(store, shopper_id)]}
