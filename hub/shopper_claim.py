"""A shopper's card and passkeys: what a card's URL may show, claiming the card with its first
passkey (one transaction; two claims racing: one wins, the other is a 409), the card's guest
visits (check-ins before the claim, kept GUEST_VISIT_DAYS and counted as the claiming
profile's), and the passkeys that sign in from then on.
"""
from __future__ import annotations

import logging
import re
import secrets
import time

from kiosk import api
from hub import credentials
from hub.shopper_account import DAY_S, _live, conflict, invalid, not_yours
from hub.store import Device, HubStore

log = logging.getLogger(__name__)

CLAIM_NEW, UNCLAIMED, CLAIMED, REVOKED = "new", "unclaimed", "claimed", "revoked"
GUEST_VISIT_DAYS = 90
LOCALE_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")


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
