"""Resolving a credential to a shopper: tokens and UIDs by keyed hash, phones by their
Ed25519 signature over a fresh challenge, NTAG 424 DNA cards by their SUN message.

    shopper_id = resolve(store, device, {"kind": "token", "token": "..."})
"""
from __future__ import annotations

import logging
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk import api
from hub.store import Device, HubFailure, HubStore

log = logging.getLogger(__name__)


def unknown() -> HubFailure:
    return HubFailure(api.P_UNKNOWN_CREDENTIAL, "this card or phone is not registered", 404)


def refused(why: str) -> HubFailure:
    return HubFailure(api.P_CREDENTIAL_REFUSED, why, 403)


def invalid(why: str) -> HubFailure:
    return HubFailure(api.P_INVALID, why, 422)


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
    if kind == "hash":  # queued offline events carry only the keyed hash of a token or UID
        return by_hash(store, _str(wire, "hash", 64))
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
    if len(public_key) != 32:
        raise invalid("an Ed25519 public key is 32 bytes")
    if not credential_id.isascii() or not credential_id.isprintable() or not 1 <= len(credential_id) <= 64:
        raise invalid("credential id must be 1-64 printable ASCII characters")
    if not store.one("SELECT 1 FROM shoppers WHERE id=?", (shopper_id,)):
        raise HubFailure(api.P_NOT_FOUND, "no such shopper", 404)
    store.conn.execute("INSERT INTO phone_keys(credential_id, shopper_id, public_key) VALUES (?,?,?) "
                       "ON CONFLICT(credential_id) DO UPDATE SET shopper_id=excluded.shopper_id, "
                       "public_key=excluded.public_key, revoked=0", (credential_id, shopper_id, public_key))


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
    if not row:
        raise unknown()
    try:
        Ed25519PublicKey.from_public_bytes(bytes(row[1])).verify(signature, api.hce_signed_message(nonce, kiosk_id))
    except (InvalidSignature, ValueError):
        log.warning("phone credential refused: bad signature")
        raise refused("the phone's answer does not verify") from None
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


def register_sun_card(store: HubStore, shopper_id: str, uid: bytes, file_key: bytes) -> None:
    store.conn.execute("INSERT INTO sun_cards(uid, shopper_id, file_key) VALUES (?,?,?) "
                       "ON CONFLICT(uid) DO UPDATE SET shopper_id=excluded.shopper_id, file_key=excluded.file_key",
                       (uid.hex(), shopper_id, file_key.hex()))


def resolve_sun(store: HubStore, url: str) -> str:
    """Verify an NTAG 424 DNA SUN message (AN12196) and consume its read counter."""
    from hub import sun

    meta = store.get_setting("sun_meta_read_key")

    def file_key(uid: bytes) -> bytes | None:
        row = store.one("SELECT file_key FROM sun_cards WHERE uid=?", (uid.hex(),))
        return bytes.fromhex(row[0]) if row else None

    layout = sun.ENCRYPTED if "picc_data=" in url else sun.PLAIN
    try:
        result = sun.verify_url(url, layout=layout, meta_read_keys=[bytes.fromhex(meta)] if meta else [],
                                file_read_key=file_key, counters=SunCounters(store))
    except sun.SunUnknownCard:
        raise unknown() from None
    except sun.SunReplay:
        log.warning("secure card refused: replayed or old read counter")
        raise refused("this card's message was already used (copied card?)") from None
    except (sun.SunInvalid, ValueError) as exc:
        log.warning("secure card refused: %s", getattr(exc, "reason", exc))
        raise refused("this card's message does not verify") from None
    row = store.one("SELECT shopper_id FROM sun_cards WHERE uid=?", (result.uid.hex(),))
    if not row:
        raise unknown()
    return row[0]
