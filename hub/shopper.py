"""The shopper's own page, the service side: claiming a card, passkeys, the profile as the
shopper sees it, sharing choices, who saw the data, export and erase, cards and phones.

    state, shopper_id = shopper.card_state(store, token)
    shopper_id = shopper.claim(store, token, passkey, "vi")
    page = shopper.profile(store, shopper_id, "vi")

The rules:

- Holding a card is never enough to see anything: a card's token only tells its state (new,
  unclaimed, claimed, revoked). The first passkey claims the card; from then on only a
  passkey signs in. Two claims racing for one card: one wins, the other is a 409.
- Check-ins of a card no profile owns (guest visits) are kept GUEST_VISIT_DAYS and counted
  as visits of the profile that claims the card.
- Sharing is per brand: whether brand B may see the items saved at other brands ("*" -> B),
  and whether B's staff may find the shopper by name. Each choice keeps when and where
  (kiosk, page, web, app) it was made. A refusal is published to the revocation feed for B
  in the same transaction, so B's kiosks purge their cached view at their next sync.
- The access log ("who saw my data") is the shopper's, apart from the operator's logs: every
  check-in, staff lookup and staff search hit, kept ACCESS_RETENTION_DAYS.
- Erase keeps no personal data: the shopper row stays as a tombstone (erased=1, no name),
  events stay with the shopper's id removed (counts per store stay true), every card and
  phone key is revoked, and every kiosk is told to forget the shopper.
- Names of cards and phones are 1-40 plain characters. Nothing here logs a name, a token or
  a wishlist; ids only.
Refusals are HubFailure: 404 for what is not this shopper's, 409 for conflicts, 422 for bad input.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import secrets
import time

from kiosk import api
from hub import credentials, inputs, revocations
from hub.profile import ALL_BRANDS
from hub.store import Device, HubFailure, HubStore, _json, in_list, localized, with_default

log = logging.getLogger(__name__)

CLAIM_NEW, UNCLAIMED, CLAIMED, REVOKED = "new", "unclaimed", "claimed", "revoked"
ACCESS_RETENTION_DAYS = 365
SCAN_DAYS = 90
GUEST_VISIT_DAYS = 90
DAY_S = 86400
NAME_MAX = 40
MAX_TAGS = 1000
NEARBY = 3
VIAS = ("kiosk", "page", "web", "app")
P_CONFLICT = credentials.P_CONFLICT
CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")


def not_yours(what: str = "no such thing for this shopper") -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, what, 404)


def conflict(why: str) -> HubFailure:
    return HubFailure(P_CONFLICT, why, 409)


def invalid(why: str) -> HubFailure:
    return HubFailure(api.P_INVALID, why, 422)


# -- the card and its claim -----------------------------------------------------------
STATE_SQL = ("SELECT c.revoked, c.shopper_id, s.id, s.erased, s.claimed_at, s.role FROM credentials c "
             "LEFT JOIN shoppers s ON s.id = c.shopper_id WHERE c.hash=?")


def _state(row) -> tuple[str, str | None]:
    if row is None:
        return CLAIM_NEW, None
    revoked, shopper_id, found, erased, claimed_at, role = row
    if revoked or found is None or erased or role != "shopper":  # a staff badge has no page
        return REVOKED, None
    return (CLAIMED if claimed_at is not None else UNCLAIMED), shopper_id


def _card_hash(store: HubStore, token: str) -> str | None:
    if not isinstance(token, str) or not api.TOKEN_RE.match(token):
        return None
    return store.credential_hash(f"token:{token}")


def card_state(store: HubStore, token: str) -> tuple[str, str | None]:
    """What a card's URL may show: new (no profile yet), unclaimed (a profile, no passkey),
    claimed (sign in with the passkey) or revoked (also: malformed, erased, a staff badge)."""
    digest = _card_hash(store, token)
    if digest is None:
        return REVOKED, None
    return _state(store.one(STATE_SQL, (digest,)))


def _passkey(passkey: dict) -> dict:
    if not isinstance(passkey, dict):
        raise invalid("a passkey is an object")
    key_id, public_key = passkey.get("id"), passkey.get("public_key")
    count, transports = passkey.get("sign_count", 0), passkey.get("transports") or []
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= 1024 or not re.fullmatch(r"[A-Za-z0-9_-]+", key_id):
        raise invalid("a passkey id is base64url text")
    if not isinstance(public_key, (bytes, bytearray)) or not 1 <= len(public_key) <= 2048:
        raise invalid("a passkey public key is at most 2048 bytes")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 2 ** 62:
        raise invalid("a passkey sign count is a non-negative integer")
    if not isinstance(transports, list) or len(transports) > 8 or not all(
            isinstance(t, str) and re.fullmatch(r"[a-z-]{1,32}", t) for t in transports):
        raise invalid("passkey transports are a short list of names")
    return {"id": key_id, "public_key": bytes(public_key), "sign_count": count, "transports": transports}


def _insert_passkey(conn, shopper_id: str, key: dict, now: float) -> None:
    if conn.execute("INSERT INTO passkeys(id, shopper_id, public_key, sign_count, transports, name, created_at) "
                    "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING RETURNING id",
                    (key["id"], shopper_id, key["public_key"], key["sign_count"], ",".join(key["transports"]), "",
                     now)).fetchone() is None:
        raise conflict("this passkey is already registered")


def _user_handle() -> str:
    return secrets.token_hex(32)  # WebAuthn user handle: random, no personal data (at most 64 bytes)


def claim(store: HubStore, token: str, passkey: dict, locale: str, user_handle: bytes | None = None) -> str:
    """Claim a card with its first passkey: a new card gets a profile, an unclaimed one keeps
    its own. One transaction; the card's state is checked again inside it. `user_handle` is
    the WebAuthn user id the passkey was made for: a new profile takes it; an existing one
    must already have it."""
    key = _passkey(passkey)
    handle = user_handle.hex() if user_handle else _user_handle()
    locale = locale if isinstance(locale, str) and LOCALE_RE.match(locale) else "en"
    digest = _card_hash(store, token)
    if digest is None:
        raise conflict("this card cannot be claimed")
    now = time.time()
    with store.transaction() as conn:
        state, shopper_id = _state(conn.execute(STATE_SQL, (digest,)).fetchone())
        if state == CLAIM_NEW:
            shopper_id = "shopper-" + secrets.token_hex(8)
            conn.execute("INSERT INTO shoppers(id, display_name, locale, role, created_at, webauthn_user) "
                         "VALUES (?,?,?,?,?,?)", (shopper_id, "", locale, "shopper", now, handle))
            if conn.execute(credentials.CARD_SQL + " ON CONFLICT(hash) DO NOTHING RETURNING hash",
                            credentials.card_row(digest, shopper_id, api.CRED_TOKEN, now)).fetchone() is None:
                raise conflict("this card was claimed a moment ago")
        elif state != UNCLAIMED:
            raise conflict("this card is already claimed, or no longer works")
        if conn.execute("UPDATE shoppers SET claimed_at=? WHERE id=? AND claimed_at IS NULL AND erased=0 RETURNING id",
                        (now, shopper_id)).fetchone() is None:
            raise conflict("this card was claimed a moment ago")
        conn.execute("UPDATE shoppers SET webauthn_user=? WHERE id=? AND webauthn_user=''", (handle, shopper_id))
        if user_handle and conn.execute("SELECT webauthn_user FROM shoppers WHERE id=?",
                                        (shopper_id,)).fetchone()[0] != handle:
            raise conflict("this passkey was made for another profile")
        _insert_passkey(conn, shopper_id, key, now)
        _attach_guest_visits(conn, digest, shopper_id, now)
    log.info("card claimed by shopper %s", shopper_id)
    return shopper_id


# -- guest visits ------------------------------------------------------------------------
GUEST_SQL = ("INSERT INTO guest_visits(event_id, card_hash, device_id, brand_id, store_id, at) "
             "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM credentials WHERE hash=?) "
             "ON CONFLICT(event_id) DO NOTHING")


def guest_row(digest: str, device: Device, event_id: str, at: float) -> tuple:
    """GUEST_SQL's parameters: a check-in of a card no credentials row knows at all."""
    return (event_id, digest, device.id, device.brand_id, device.store_id, at, digest)


def record_guest_visit(store: HubStore, device: Device, credential: dict, event_id: str) -> None:
    """An online check-in of an unknown token or UID card (it is still answered unknown)."""
    kind = credential.get("kind") if isinstance(credential, dict) else None
    value = credential.get("uid" if kind == api.CRED_UID else "token") if kind in (api.CRED_TOKEN, api.CRED_UID) else None
    if not isinstance(value, str) or not value or len(value) > 256 or not event_id:
        return
    digest = store.credential_hash(f"{kind}:{value.lower() if kind == api.CRED_UID else value}")
    now = time.time()
    store.conn.execute(GUEST_SQL, guest_row(digest, device, event_id, now))
    sweep_guest_visits(store, now)  # kept GUEST_VISIT_DAYS, claimed or not (an indexed range delete)


def sweep_guest_visits(store: HubStore, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return store.conn.execute("DELETE FROM guest_visits WHERE at<?", (now - GUEST_VISIT_DAYS * DAY_S,)).rowcount


def _attach_guest_visits(conn, digest: str, shopper_id: str, now: float) -> None:
    conn.execute("INSERT INTO visits(shopper_id, brand_id, count, last_at) "
                 "SELECT ?, brand_id, COUNT(*), MAX(at) FROM guest_visits WHERE card_hash=? AND at>? GROUP BY brand_id "
                 "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET count = visits.count + excluded.count, "
                 "last_at = CASE WHEN excluded.last_at > visits.last_at THEN excluded.last_at ELSE visits.last_at END",
                 (shopper_id, digest, now - GUEST_VISIT_DAYS * DAY_S))
    conn.execute("DELETE FROM guest_visits WHERE card_hash=? OR at<?", (digest, now - GUEST_VISIT_DAYS * DAY_S))


# -- passkeys ------------------------------------------------------------------------------
def _live(conn, shopper_id: str) -> None:
    if not isinstance(shopper_id, str) or not conn.execute(
            "SELECT 1 FROM shoppers WHERE id=? AND erased=0 AND role='shopper'", (shopper_id,)).fetchone():
        raise not_yours("no such shopper")


def webauthn_user(store: HubStore, shopper_id: str) -> bytes:
    """The shopper's stable WebAuthn user handle (made now if they have none yet)."""
    with store.transaction() as conn:
        _live(conn, shopper_id)
        conn.execute("UPDATE shoppers SET webauthn_user=? WHERE id=? AND webauthn_user=''", (_user_handle(), shopper_id))
        return bytes.fromhex(conn.execute("SELECT webauthn_user FROM shoppers WHERE id=?", (shopper_id,)).fetchone()[0])


def add_passkey(store: HubStore, shopper_id: str, passkey: dict) -> None:
    key = _passkey(passkey)
    with store.transaction() as conn:
        _live(conn, shopper_id)
        _insert_passkey(conn, shopper_id, key, time.time())


def passkeys(store: HubStore, shopper_id: str) -> list[dict]:
    rows = store.all("SELECT id, name, created_at, last_used_at, transports FROM passkeys WHERE shopper_id=? "
                     "ORDER BY created_at, id", (shopper_id,))
    return [{"id": i, "name": n, "created_at": c, "last_used_at": u or None,
             "transports": [t for t in (tr or "").split(",") if t]} for i, n, c, u, tr in rows]


def remove_passkey(store: HubStore, shopper_id: str, passkey_id: str) -> None:
    """Remove one of the shopper's passkeys; never the last one (409: they could not sign in)."""
    with store.transaction() as conn:
        # the shopper's row locked first: two tabs removing their two passkeys at once cannot
        # both see two and leave none (PostgreSQL; SQLite writes one transaction at a time)
        conn.execute("UPDATE shoppers SET created_at=created_at WHERE id=?", (shopper_id,))
        ids = [r[0] for r in conn.execute("SELECT id FROM passkeys WHERE shopper_id=?", (shopper_id,)).fetchall()]
        if passkey_id not in ids:
            raise not_yours("no such passkey for this shopper")
        if len(ids) == 1:
            raise conflict("this is your last passkey: add another one before removing it")
        conn.execute("DELETE FROM passkeys WHERE id=? AND shopper_id=?", (passkey_id, shopper_id))


def passkey_for_sign_in(store: HubStore, passkey_id: str) -> dict | None:
    if not isinstance(passkey_id, str) or len(passkey_id) > 1024:
        return None
    row = store.one("SELECT p.id, p.shopper_id, p.public_key, p.sign_count FROM passkeys p "
                    "JOIN shoppers s ON s.id = p.shopper_id WHERE p.id=? AND s.erased=0", (passkey_id,))
    if row is None:
        return None
    return {"id": row[0], "shopper_id": row[1], "public_key": bytes(row[2]), "sign_count": row[3]}


def passkey_used(store: HubStore, passkey_id: str, new_sign_count: int) -> None:
    store.conn.execute("UPDATE passkeys SET sign_count=?, last_used_at=? WHERE id=?",
                       (int(new_sign_count), time.time(), passkey_id))


# -- the profile ----------------------------------------------------------------------------
LIVE_ADDS = ("FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
             "WHERE a.shopper_id = ? AND r.tag IS NULL")
ADDS_SQL = ("SELECT a.gtin, a.tag, a.received_at, a.channel, a.brand_id, ab.name, a.store_id, st.name, p.brand_id, "
            "b.name, p.title, p.texts, p.description, b.default_language, p.deleted, r.tag "
            "FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
            "LEFT JOIN products p ON p.gtin = a.gtin LEFT JOIN brands b ON b.id = p.brand_id "
            "LEFT JOIN brands ab ON ab.id = a.brand_id LEFT JOIN stores st ON st.id = a.store_id "
            "WHERE a.shopper_id = ? ORDER BY a.received_at, a.tag")


def _shopper(store: HubStore, shopper_id: str) -> dict:
    row = store.one("SELECT id, display_name, locale, created_at, claimed_at FROM shoppers "
                    "WHERE id=? AND erased=0 AND role='shopper'", (shopper_id,)) if isinstance(shopper_id, str) else None
    if row is None:
        raise not_yours("no such shopper")
    return {"id": row[0], "display_name": row[1], "locale": row[2], "created_at": row[3] or None,
            "claimed_at": row[4]}


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


# -- choices --------------------------------------------------------------------------------
def _choice(store: HubStore, shopper_id: str, brand_id: str, via: str, require_met: bool = True) -> None:
    if via not in VIAS:
        raise invalid("via must be one of " + ", ".join(VIAS))
    _shopper(store, shopper_id)
    if not isinstance(brand_id, str) or brand_id not in ({b for b, _ in _met(store, shopper_id)} if require_met else
                                                         {b for (b,) in store.all("SELECT id FROM brands WHERE id=?", (brand_id,))}):
        raise not_yours("no such brand among the brands you have met")


def set_sharing(store: HubStore, shopper_id: str, brand_id: str, allow: bool, via: str = "page",
                require_met: bool = True) -> None:
    """Whether `brand_id` may see the items saved at other brands: one choice for all of them
    (the per-brand ones made before are replaced). A refusal reaches the brand's kiosks.
    `require_met=False`: the shopper meets the brand by making the choice (an OAuth consent
    screen of its web shop or app, hub/oauth.py); any existing brand then."""
    _choice(store, shopper_id, brand_id, via, require_met)
    state = api.GRANTED if allow else api.REFUSED
    with store.transaction() as conn:
        conn.execute("INSERT INTO consents(shopper_id, from_brand, to_brand, state, changed_at, via, store_id) "
                     "VALUES (?,?,?,?,?,?,?) ON CONFLICT(shopper_id, from_brand, to_brand) DO UPDATE SET "
                     "state=excluded.state, changed_at=excluded.changed_at, via=excluded.via, store_id=excluded.store_id",
                     (shopper_id, ALL_BRANDS, brand_id, state, time.time(), via, ""))
        conn.execute("DELETE FROM consents WHERE shopper_id=? AND to_brand=? AND from_brand<>?",
                     (shopper_id, brand_id, ALL_BRANDS))
        if not allow:
            revocations.publish(conn, shopper_id, revocations.CONSENT, brand_id)


def set_staff_search(store: HubStore, shopper_id: str, brand_id: str, allow: bool, via: str = "page") -> None:
    """Whether staff of `brand_id` may find the shopper by name; a "no" is kept with its time."""
    _choice(store, shopper_id, brand_id, via)
    now = time.time()
    with store.transaction() as conn:
        if allow:
            conn.execute("INSERT INTO staff_search(shopper_id, brand_id, changed_at, via) VALUES (?,?,?,?) "
                         "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET changed_at=excluded.changed_at, via=excluded.via",
                         (shopper_id, brand_id, now, via))
            conn.execute("DELETE FROM staff_search_refused WHERE shopper_id=? AND brand_id=?", (shopper_id, brand_id))
        else:
            conn.execute("DELETE FROM staff_search WHERE shopper_id=? AND brand_id=?", (shopper_id, brand_id))
            conn.execute("INSERT INTO staff_search_refused(shopper_id, brand_id, changed_at, via) VALUES (?,?,?,?) "
                         "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET changed_at=excluded.changed_at, via=excluded.via",
                         (shopper_id, brand_id, now, via))


def remove_items(store: HubStore, shopper_id: str, tags: list[str]) -> int:
    """The kiosk's observed remove: takes away exactly the named adds that are this shopper's
    and still live (any other tag is ignored). How many were removed."""
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise invalid(f"tags must be a list of at most {MAX_TAGS} add ids")
    _shopper(store, shopper_id)
    with store.transaction() as conn:
        live = [r[0] for r in conn.rows_in("SELECT a.tag " + LIVE_ADDS + " AND a.tag IN (?*)", tags, (shopper_id,))]
        conn.executemany("INSERT INTO wishlist_removes(tag, shopper_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(t, shopper_id) for t in live])
    return len(live)


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
STRIPPED = ("shopper_id", "credential", "checkin", "session")
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


# -- cards and phones ---------------------------------------------------------------------------
def card_name(name: str) -> str:
    """A card's or phone's name: 1-40 plain characters once stripped."""
    if not isinstance(name, str):
        raise invalid("a name is text")
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise invalid(f"a name is 1 to {NAME_MAX} characters")
    if not inputs.safe(name):
        raise invalid("a name may not hold control or direction characters")
    return name


def _sun_uid(store: HubStore, shopper_id: str, card_id: str) -> str | None:
    if not isinstance(card_id, str) or not card_id.startswith("sun-"):
        return None
    uids = [r[0] for r in store.all("SELECT uid FROM sun_cards WHERE shopper_id=?", (shopper_id,))]
    return next((uid for uid in uids if _sun_id(store, uid) == card_id), None)


def rename_card(store: HubStore, shopper_id: str, card_id: str, name: str) -> None:
    name = card_name(name)
    if isinstance(card_id, str) and store.one("UPDATE credentials SET name=? WHERE id=? AND shopper_id=? AND id<>'' "
                                              "RETURNING id", (name, card_id, shopper_id)):
        return
    uid = _sun_uid(store, shopper_id, card_id)
    if uid is None:
        raise not_yours("no such card for this shopper")
    store.conn.execute("UPDATE sun_cards SET name=? WHERE uid=? AND shopper_id=?", (name, uid, shopper_id))


def revoke_card(store: HubStore, shopper_id: str, card_id: str) -> None:
    """A lost card: unknown at every kiosk at once online, within one sync offline."""
    uid = _sun_uid(store, shopper_id, card_id)
    table, key, value = ("sun_cards", "uid", uid) if uid else ("credentials", "id", card_id)
    if not isinstance(value, str) or not value:
        raise not_yours("no such card for this shopper")
    with store.transaction() as conn:
        row = conn.execute(f"SELECT revoked FROM {table} WHERE {key}=? AND shopper_id=?", (value, shopper_id)).fetchone()
        if row is None:
            raise not_yours("no such card for this shopper")
        if not row[0]:
            conn.execute(f"UPDATE {table} SET revoked=1, revoked_at=? WHERE {key}=? AND shopper_id=?",
                         (time.time(), value, shopper_id))
            revocations.publish(conn, shopper_id, revocations.CREDENTIAL)


def rename_phone(store: HubStore, shopper_id: str, credential_id: str, name: str) -> None:
    name = card_name(name)
    if not isinstance(credential_id, str) or not store.one(
            "UPDATE phone_keys SET name=? WHERE credential_id=? AND shopper_id=? RETURNING credential_id",
            (name, credential_id, shopper_id)):
        raise not_yours("no such phone for this shopper")


def revoke_phone(store: HubStore, shopper_id: str, credential_id: str) -> None:
    credentials.revoke_phone(store, shopper_id, credential_id)


def add_phone(store: HubStore, shopper_id: str, credential_id: str, public_key: bytes) -> None:
    _shopper(store, shopper_id)
    credentials.register_phone(store, shopper_id, credential_id, public_key)
