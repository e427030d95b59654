"""Secure-card keys sealed at rest: every SUN file read key (and the SDM meta read key) is kept in
the database only encrypted, AES-256-GCM under a card master key that lives outside it.

    box = cardkeys.for_store(store)          # loaded once per store, from the environment
    sealed = box.seal(file_key, uid.hex())   # "v1:<nonce hex>:<ciphertext+tag hex>"
    file_key = box.open(sealed, uid.hex())   # CardKeyError if it does not decrypt

The master key (32 bytes, hex) comes from KIOSK_HUB_CARD_KEY_FILE (a file), else
KIOSK_HUB_CARD_KEY (the environment). A SQLite hub with neither uses `<db>.cardkey` beside its
database, generating it (mode 0600) while the database holds no sealed key yet. The associated
data binds a sealed value to its row (the card's UID, or the setting's name): a sealed key moved
to another card does not open. Values from an older hub (in clear) are sealed when the box is
first loaded, and whenever one is met later (a compare-and-set: idempotent, safe across
processes). A box without the right key is `usable=False`: the hub refuses every secure card and
says why in its log, once; the key itself is never logged.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import weakref
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

TAG = "v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
META_SETTING = "sun_meta_read_key"
KEY_ID_SETTING = "card_key_id"  # an HMAC of a fixed text under the master key: which key sealed the rows
_KEY_ID_TEXT = b"kiosk-hub card master key id v1"
_boxes: "weakref.WeakKeyDictionary[object, CardBox]" = weakref.WeakKeyDictionary()


class CardKeyError(Exception):
    """A sealed value that does not open (wrong master key, or moved or altered)."""


def sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(TAG)


class CardBox:
    def __init__(self, key: bytes | None, source: str, problem: str = "") -> None:
        self._aead = AESGCM(key) if key is not None and not problem else None
        self.key_id = key_id(key) if key is not None else ""
        self.source, self.problem = source, problem

    @property
    def usable(self) -> bool:
        return self._aead is not None

    def seal(self, plain: bytes, ad: str) -> str:
        if self._aead is None:
            raise CardKeyError(self.problem)
        nonce = os.urandom(NONCE_BYTES)
        return f"{TAG}{nonce.hex()}:{self._aead.encrypt(nonce, plain, ad.encode()).hex()}"

    def open(self, value: str, ad: str) -> bytes:
        if self._aead is None:
            raise CardKeyError(self.problem)
        try:
            nonce_hex, _, body_hex = value[len(TAG):].partition(":") if sealed(value) else ("", "", "")
            return self._aead.decrypt(bytes.fromhex(nonce_hex), bytes.fromhex(body_hex), ad.encode())
        except (InvalidTag, ValueError):
            raise CardKeyError("a sealed card key does not open with this hub's card key") from None


def key_id(key: bytes) -> str:
    return hmac.new(key, _KEY_ID_TEXT, hashlib.sha256).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("the card key must be hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"the card key must be {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)")
    return key


def key_file_for(store) -> Path | None:
    """Where a SQLite hub keeps its card key when none is configured: beside the database."""
    return Path(store.path + ".cardkey") if store.dialect == "sqlite" else None


def for_store(store, environ=None) -> CardBox:
    """This store's box, loaded (and the database's clear keys sealed) on first use."""
    box = _boxes.get(store)
    if box is None:
        box = _boxes[store] = _load(store, os.environ if environ is None else environ)
    return box


def forget(store) -> None:
    """Drop the store's box (tests; a key file replaced while running)."""
    _boxes.pop(store, None)


def _load(store, environ) -> CardBox:
    recorded = store.get_setting(KEY_ID_SETTING)
    key, source, problem = None, "", ""
    try:
        if environ.get("KIOSK_HUB_CARD_KEY_FILE"):
            source = f"the card key file {environ['KIOSK_HUB_CARD_KEY_FILE']}"
            key = parse_key(Path(environ["KIOSK_HUB_CARD_KEY_FILE"]).read_text())
        elif environ.get("KIOSK_HUB_CARD_KEY"):
            source = "KIOSK_HUB_CARD_KEY"
            key = parse_key(environ["KIOSK_HUB_CARD_KEY"])
        elif (path := key_file_for(store)) is not None:
            source = f"the card key file {path}"
            key = _sqlite_key(path, may_create=not recorded)
            if key is None:
                problem = (f"{path} is missing, and this database's card keys are sealed under a card key: "
                           "restore that file or set KIOSK_HUB_CARD_KEY_FILE")
        else:
            source = "(none)"
            problem = "no card key: set KIOSK_HUB_CARD_KEY_FILE (a file with 64 hex digits) or KIOSK_HUB_CARD_KEY"
    except OSError as exc:
        problem = f"cannot read {source}: {exc.strerror}"
    except ValueError as exc:
        problem = f"{source}: {exc}"
    if key is not None and not problem:
        if not recorded:
            store.conn.execute("INSERT INTO settings(key, value) VALUES (?,?) ON CONFLICT(key) DO NOTHING",
                               (KEY_ID_SETTING, key_id(key)))
            recorded = store.get_setting(KEY_ID_SETTING)
        if not hmac.compare_digest(recorded, key_id(key)):
            problem = (f"{source} is not the card key this database's card keys are sealed with "
                       "(restore the right key file)")
    box = CardBox(key, source, problem)
    if box.usable:
        count = _seal_clear_values(store, box)
        if count:
            log.warning("hub: sealed %d secure-card key(s) an older hub kept in clear", count)
    elif recorded or _has_card_keys(store):
        log.error("hub: secure cards will be refused: %s", problem)
    else:
        log.info("hub: no card key (%s); secure cards cannot be registered until one is set", problem)
    return box


def _sqlite_key(path: Path, may_create: bool) -> bytes | None:
    try:
        return parse_key(path.read_text())
    except FileNotFoundError:
        if not may_create:
            return None
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another hub process made it first
        return parse_key(path.read_text())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    log.warning("hub: generated the card key file %s (mode 0600); keep it apart from the database's "
                "backups: the database alone cannot verify a card", path)
    return key


def _has_card_keys(store) -> bool:
    return bool(store.one("SELECT 1 FROM sun_cards LIMIT 1") or store.get_setting(META_SETTING))


def _seal_clear_values(store, box: CardBox) -> int:
    count = 0
    for uid, value in store.all("SELECT uid, file_key FROM sun_cards"):
        try:
            if not sealed(value) and seal_in_place_card(store, box, uid, value):
                count += 1
        except ValueError:
            log.error("hub: the card key of a secure card is neither sealed nor hexadecimal; that card is refused")
    meta = store.get_setting(META_SETTING)
    try:
        if meta and not sealed(meta) and seal_in_place_meta(store, box, meta):
            count += 1
    except ValueError:
        log.error("hub: the SDM meta read key is neither sealed nor hexadecimal; secure cards are refused")
    return count


def seal_in_place_card(store, box: CardBox, uid: str, clear_hex: str) -> bool:
    cur = store.conn.execute("UPDATE sun_cards SET file_key=? WHERE uid=? AND file_key=?",
                             (box.seal(bytes.fromhex(clear_hex), uid), uid, clear_hex))
    return cur.rowcount == 1


def seal_in_place_meta(store, box: CardBox, clear_hex: str) -> bool:
    cur = store.conn.execute("UPDATE settings SET value=? WHERE key=? AND value=?",
                             (box.seal(bytes.fromhex(clear_hex), META_SETTING), META_SETTING, clear_hex))
    return cur.rowcount == 1
