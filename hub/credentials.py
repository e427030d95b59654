"""Resolving a credential to a shopper: tokens and UIDs by keyed hash, phones by their
Ed25519 signature over a fresh challenge, NTAG 424 DNA cards by their SUN message.

    shopper_id = resolve(store, device, {"kind": "token", "token": "..."})

A keyed hash is not a credential: only the raw token or UID is (kind "hash" is refused).
Secure credentials give no oracle: an unknown, a revoked and a forged card (or phone answer)
get the one same answer (`not_verified`); only a replay of a genuine message is told apart.
Registering never re-binds nor un-revokes: the same registration again is a no-op, anything
else for an existing id is 409. SUN keys are sealed at rest (hub/cardkeys.py).
"""
from __future__ import annotations

import hmac
import logging
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk import api
from hub import cardkeys, revocations
from hub.store import Device, HubFailure, HubStore

log = logging.getLogger(__name__)


def unknown() -> HubFailure:
    return HubFailure(api.P_UNKNOWN_CREDENTIAL, "this card or phone is not registered", 404)


def refused(why: str) -> HubFailure:
    return HubFailure(api.P_CREDENTIAL_REFUSED, why, 403)


def invalid(why: str) -> HubFailure:
    return HubFailure(api.P_INVALID, why, 422)


P_CONFLICT = api.PROBLEM_BASE + "conflict"
CARD_NOT_VERIFIED = "this card could not be verified"
PHONE_NOT_VERIFIED = "the phone's answer does not verify"
# Work done for an unknown phone so that it costs what a known one does (no timing oracle).
_DUMMY_PHONE_KEY = Ed25519PublicKey.from_public_bytes(bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))


def conflict(why: str) -> HubFailure:
    return HubFailure(P_CONFLICT, why, 409)


def no_shopper() -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, "no such shopper", 404)


# A card (token or UID) row: its keyed hash, and the public id the shopper's page names it by.
CARD_SQL = "INSERT INTO credentials(hash, shopper_id, kind, id, created_at) VALUES (?,?,?,?,?)"


def new_card_id() -> str:
    return "card-" + secrets.token_hex(6)


def card_row(digest: str, shopper_id: str, kind: str, now: float | None = None, card_id: str = "") -> tuple:
    """CARD_SQL's parameters (a new public id unless one is given)."""
    return (digest, shopper_id, kind, card_id or new_card_id(), time.time() if now is None else now)


def _str(wire: dict, key: str, limit: int = 2048) -> str:
    value = wire.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise invalid(f"credential field '{key}' is missing or invalid")
    return value


def resolve(store: HubStore, device: Device, wire: dict) -> str:
    """The shopper id behind a credential, or HubFailure. Verifies SUN and HCE answers and
    consumes their one-time parts (counter, nonce) so a replay is refused."""
    if not isinstance(wire, dict):
        raise invalid("credential must be an object")
    kind = wire.get("kind")
    if kind == api.CRED_TOKEN:
        return by_hash(store, store.credential_hash(f"token:{_str(wire, 'token', 256)}"))
    if kind == api.CRED_UID:
        uid = _str(wire, "uid", 20).lower()
        return by_hash(store, store.credential_hash(f"uid:{uid}"))
    if kind == api.CRED_HCE:
        return resolve_phone(store, device, wire)
    if kind == api.CRED_SUN:
        return resolve_sun(store, _str(wire, "url"))
    raise invalid("unknown credential kind")


def by_hash(store: HubStore, digest: str) -> str:
    row = store.one("SELECT c.shopper_id FROM credentials c JOIN shoppers s ON s.id = c.shopper_id "
                    "WHERE c.hash=? AND c.revoked=0 AND s.erased=0", (digest,))
    if not row:
        raise unknown()
    return row[0]


def register_phone(store: HubStore, shopper_id: str, credential_id: str, public_key: bytes) -> None:
    """Bind a phone's key to a shopper. The same binding again is a no-op; a credential id
    already bound (to another shopper or key) or revoked is 409: keys never move."""
    if len(public_key) != 32:
        raise invalid("an Ed25519 public key is 32 bytes")
    if not credential_id.isascii() or not credential_id.isprintable() or not 1 <= len(credential_id) <= 64:
        raise invalid("credential id must be 1-64 printable ASCII characters")
    with store.transaction() as conn:
        if not conn.execute("SELECT 1 FROM shoppers WHERE id=? AND erased=0", (shopper_id,)).fetchone():
            raise no_shopper()
        if conn.execute("INSERT INTO phone_keys(credential_id, shopper_id, public_key, created_at) VALUES (?,?,?,?) "
                        "ON CONFLICT(credential_id) DO NOTHING RETURNING credential_id",
                        (credential_id, shopper_id, public_key, time.time())).fetchone():
            return
        row = conn.execute("SELECT shopper_id, public_key, revoked FROM phone_keys WHERE credential_id=?",
                           (credential_id,)).fetchone()
    if row and row[0] == shopper_id and hmac.compare_digest(bytes(row[1]), public_key) and not row[2]:
        return
    raise conflict("this credential id is already registered (or revoked); register a new one")


def revoke_phone(store: HubStore, shopper_id: str, credential_id: str) -> None:
    """Revoke a phone key for good; every kiosk is told to forget the shopper's cached views."""
    with store.transaction() as conn:
        row = conn.execute("SELECT revoked FROM phone_keys WHERE credential_id=? AND shopper_id=?",
                           (credential_id, shopper_id)).fetchone()
        if not row:
            raise HubFailure(api.P_NOT_FOUND, "no such phone key for this shopper", 404)
        if not row[0]:
            conn.execute("UPDATE phone_keys SET revoked=1, revoked_at=? WHERE credential_id=?", (time.time(), credential_id))
            revocations.publish(conn, shopper_id, revocations.CREDENTIAL)


def resolve_phone(store: HubStore, device: Device, wire: dict) -> str:
    credential_id = _str(wire, "credential_id", 64)
    try:
        nonce = bytes.fromhex(_str(wire, "nonce", 64))
        signature = bytes.fromhex(_str(wire, "signature", 128))
    except ValueError:
        raise invalid("nonce and signature must be hex") from None
    kiosk_id = _str(wire, "kiosk_id", 128)
    if kiosk_id != device.id:
        raise refused("the phone answered a challenge from another kiosk")
    if len(nonce) != api.HCE_NONCE_BYTES:
        raise invalid("the challenge nonce has the wrong length")
    row = store.one("SELECT shopper_id, public_key FROM phone_keys WHERE credential_id=? AND revoked=0",
                    (credential_id,))
    # unknown, revoked and forged answers alike: the same work, the same answer
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes(row[1])) if row else _DUMMY_PHONE_KEY
        key.verify(signature, api.hce_signed_message(nonce, kiosk_id))
        verified = row is not None
    except (InvalidSignature, ValueError):
        verified = False
    if not verified:
        log.warning("phone credential refused: %s", "bad signature" if row else "unknown or revoked key")
        raise refused(PHONE_NOT_VERIFIED)
    # A nonce is used once: a recorded answer to an old challenge is refused even when resent.
    cur = store.conn.execute("INSERT INTO hce_nonces(nonce, seen_at) VALUES (?, ?) "
                             "ON CONFLICT DO NOTHING RETURNING nonce", (f"{kiosk_id}:{nonce.hex()}", time.time()))
    if cur.fetchone() is None:
        raise refused("this phone answer was already used (replay)")
    return row[0]


class SunCounters:
    """The card's last accepted read counter, advanced atomically (compare-and-set in SQL):
    of two taps racing with the same URL, exactly one wins."""

    def __init__(self, store: HubStore) -> None:
        self.store = store

    def advance(self, uid: bytes, counter: int) -> None:
        from hub import sun

        cur = self.store.conn.execute("UPDATE sun_cards SET last_counter=? WHERE uid=? AND last_counter<?",
                                      (counter, uid.hex(), counter))
        if cur.rowcount != 1:
            row = self.store.one("SELECT last_counter FROM sun_cards WHERE uid=?", (uid.hex(),))
            raise sun.SunReplay(row[0] if row else -1, counter)


def set_meta_read_key(store: HubStore, meta_key: bytes) -> None:
    """Store the SDM meta read key of a card batch, sealed (hub/cardkeys.py)."""
    if len(meta_key) != 16:
        raise invalid("an SDM meta read key is 16 bytes")
    box = _usable_box(store)
    store.set_setting(cardkeys.META_SETTING, box.seal(meta_key, cardkeys.META_SETTING))


def register_sun_card(store: HubStore, shopper_id: str, uid: bytes, file_key: bytes) -> None:
    """Bind a secure card to a shopper, its file read key sealed. The same card, shopper and
    key again is a no-op; a UID already bound otherwise, or revoked, is 409: cards never move."""
    if len(uid) != 7 or len(file_key) != 16:
        raise invalid("a card UID is 7 bytes and its SDM file read key 16 bytes")
    box = _usable_box(store)
    with store.transaction() as conn:
        if not conn.execute("SELECT 1 FROM shoppers WHERE id=? AND erased=0", (shopper_id,)).fetchone():
            raise no_shopper()
        if conn.execute("INSERT INTO sun_cards(uid, shopper_id, file_key, created_at) VALUES (?,?,?,?) "
                        "ON CONFLICT(uid) DO NOTHING RETURNING uid",
                        (uid.hex(), shopper_id, box.seal(file_key, uid.hex()), time.time())).fetchone():
            return
        row = conn.execute("SELECT shopper_id, file_key, revoked FROM sun_cards WHERE uid=?", (uid.hex(),)).fetchone()
    if row and row[0] == shopper_id and not row[2] and hmac.compare_digest(_card_key(store, box, uid.hex(), row[1]) or b"",
                                                                            file_key):
        return
    raise conflict("this card is already registered (or revoked)")


def revoke_sun_card(store: HubStore, uid: bytes) -> str:
    """Revoke a card for good (it is answered like an unknown one from now on); every kiosk is
    told to forget its shopper's cached views. Returns the shopper id; unknown card: 404."""
    with store.transaction() as conn:
        row = conn.execute("SELECT shopper_id, revoked FROM sun_cards WHERE uid=?", (uid.hex(),)).fetchone()
        if not row:
            raise HubFailure(api.P_NOT_FOUND, "no such card", 404)
        if not row[1]:
            conn.execute("UPDATE sun_cards SET revoked=1, revoked_at=? WHERE uid=?", (time.time(), uid.hex()))
            revocations.publish(conn, row[0], revocations.CREDENTIAL)
        return row[0]


def revoke_card(store: HubStore, kind: str, value: str) -> str:
    """Revoke a token or UID card (lost, stolen, copied) by what is printed or read from it: it
    is answered like an unknown card from now on, and every kiosk is told to forget its
    shopper's cached views. Returns the shopper id; unknown card: 404."""
    if kind not in (api.CRED_TOKEN, api.CRED_UID) or not value or len(value) > 256:
        raise invalid("kind must be token or uid, with its value")
    digest = store.credential_hash(f"{kind}:{value.lower() if kind == api.CRED_UID else value}")
    with store.transaction() as conn:
        row = conn.execute("SELECT shopper_id, revoked FROM credentials WHERE hash=?", (digest,)).fetchone()
        if not row:
            raise HubFailure(api.P_NOT_FOUND, "no such card", 404)
        if not row[1]:
            conn.execute("UPDATE credentials SET revoked=1, revoked_at=? WHERE hash=?", (time.time(), digest))
            revocations.publish(conn, row[0], revocations.CREDENTIAL)
        return row[0]


def _usable_box(store: HubStore) -> cardkeys.CardBox:
    box = cardkeys.for_store(store)
    if not box.usable:
        raise HubFailure(api.PROBLEM_BASE + "unavailable", f"secure cards are unavailable: {box.problem}", 503)
    return box


def _card_key(store: HubStore, box: cardkeys.CardBox, uid_hex: str, value: str) -> bytes | None:
    """A card's file read key from its row; a row an older hub left in clear is sealed now."""
    try:
        if not cardkeys.sealed(value):
            key = bytes.fromhex(value)
            cardkeys.seal_in_place_card(store, box, uid_hex, value)
            return key
        return box.open(value, uid_hex)
    except (cardkeys.CardKeyError, ValueError):
        log.error("secure card refused: its stored file read key does not open with this hub's card key")
        return None


def _meta_key(store: HubStore, box: cardkeys.CardBox) -> bytes | None:
    value = store.get_setting(cardkeys.META_SETTING)
    if not value:
        return None
    try:
        if not cardkeys.sealed(value):
            key = bytes.fromhex(value)
            cardkeys.seal_in_place_meta(store, box, value)
            return key
        return box.open(value, cardkeys.META_SETTING)
    except (cardkeys.CardKeyError, ValueError):
        log.error("secure cards refused: the stored SDM meta read key does not open with this hub's card key")
        return None


def resolve_sun(store: HubStore, url: str) -> str:
    """Verify an NTAG 424 DNA SUN message (AN12196) and consume its read counter. An unknown
    card, a revoked one and a message that does not verify get one answer; a replay another."""
    from hub import sun

    box = cardkeys.for_store(store)
    if not box.usable:
        log.error("secure card refused: the hub has no usable card key (%s)", box.problem)
        raise refused(CARD_NOT_VERIFIED)
    layout = sun.ENCRYPTED if "picc_data=" in url else sun.PLAIN
    meta = _meta_key(store, box) if layout is sun.ENCRYPTED else None
    if layout is sun.ENCRYPTED and meta is None:
        log.error("secure card refused: no usable SDM meta read key (setting %s)", cardkeys.META_SETTING)
        raise refused(CARD_NOT_VERIFIED)
    owner: dict[bytes, str] = {}

    def file_key(uid: bytes) -> bytes | None:
        row = store.one("SELECT file_key, shopper_id FROM sun_cards WHERE uid=? AND revoked=0", (uid.hex(),))
        if not row:
            return None
        key = _card_key(store, box, uid.hex(), row[0])
        if key is not None:
            owner[uid] = row[1]
        return key

    try:
        result = sun.verify_url(url, layout=layout, meta_read_keys=[meta] if meta else [],
                                file_read_key=file_key, counters=SunCounters(store))
    except sun.SunReplay:
        log.warning("secure card refused: replayed or old read counter")
        raise refused("this card's message was already used (copied card?)") from None
    except (sun.SunInvalid, ValueError) as exc:  # SunUnknownCard (unknown or revoked) included
        log.warning("secure card refused: %s", getattr(exc, "reason", exc))
        raise refused(CARD_NOT_VERIFIED) from None
    shopper_id = owner.get(result.uid)
    if shopper_id is None:
        raise refused(CARD_NOT_VERIFIED)
    return shopper_id
