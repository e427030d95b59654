"""NTAG 424 DNA Secure Unique NFC (SUN) messages, AES mode, as NXP AN12196 describes them.

The hub verifies a shopper card's URL here: it decrypts the PICC data (UID and read counter),
derives the session keys, checks the 8-byte SUN MAC in constant time, decrypts the encrypted
file data, and refuses a read counter that is not newer than the last one seen for that card.
The sign side (`make_sun_url`) does what a card does, for tests and the demo. The AES
primitives under both sides (session keys, the SUN MAC, the file data's IV) are
hub/sun_crypto.py's.

Pure functions and frozen values: no I/O, no database, no kiosk imports (the hub passes in its
keys and counter store). The kiosk holds no card keys and never calls this module.
`SunInvalid.reason` is for the hub's log, not for shoppers: the hub answers an unknown card
(`SunUnknownCard`) and a message that does not verify alike, after the same work.

    result = verify_url(url, layout=ENCRYPTED, meta_read_keys=[meta], file_read_key=keys.get, counters=store)
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from hub.sun_crypto import aes_cbc, file_iv, session_keys, sun_mac

log = logging.getLogger(__name__)

KEY_LEN = 16  # AES-128
UID_LEN = 7  # the only UID length the NTAG 424 DNA mirrors
MAC_LEN = 8  # the SUN MAC: odd-indexed bytes of the full CMAC
PICC_LEN = 16  # encrypted PICC data, AES mode (LRP mode would be 24: not supported)
MAX_COUNTER = 0xFFFFFF  # 3-byte SDMReadCtr
MAX_FILE_DATA = 256  # NTAG 424 DNA file 02 is 256 bytes; nothing longer can be mirrored
MAX_URL_CHARS = 1024  # a card URL is < 300 chars; a hostile one must not cost us more
PICC_DATA_TAG = 0xC7  # PICCDataTag: UID mirrored (bit 7), counter mirrored (bit 6), UID length 7
_HEX = re.compile(r"[0-9A-Fa-f]*")


class SunInvalid(Exception):
    """This card message is not a valid SUN message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SunUnknownCard(SunInvalid):
    """The message is well formed but the hub holds no key for this card."""


class SunReplay(SunInvalid):
    """This card message was seen before: its read counter is not newer than the last one."""

    def __init__(self, last_seen: int, counter: int) -> None:
        super().__init__(f"read counter {counter} is not newer than the last one seen ({last_seen})")
        self.last_seen, self.counter = last_seen, counter


@dataclass(frozen=True)
class SunLayout:
    """Where a card's SUN mirror puts each field in its URL (fixed when the card is personalised).

        SunLayout()                                  # ?picc_data=<32 hex>&cmac=<16 hex>
        SunLayout(picc_param=None)                   # ?uid=<14 hex>&ctr=<6 hex>&cmac=<16 hex>

    The MAC covers the URL text from the start of the `mac_from` parameter's value up to the
    start of the MAC value (AN12196: SDMMACInputOffset to SDMMACOffset). `mac_from` defaults to
    `enc_param`; with neither, the MAC input is empty.
    """

    picc_param: str | None = "picc_data"  # encrypted PICC data; None: UID and counter in clear
    uid_param: str = "uid"
    ctr_param: str = "ctr"
    enc_param: str | None = None  # encrypted file data (SDMENCFileData)
    cmac_param: str = "cmac"
    mac_from: str | None = None

    def __post_init__(self) -> None:
        names = self.params()
        if any(not n or "&" in n or "=" in n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"SUN layout needs distinct, non-empty parameter names: {names}")
        if self.mac_from is not None and self.mac_from not in names[:-1]:
            raise ValueError(f"mac_from {self.mac_from!r} must name a parameter before the MAC")

    def params(self) -> list[str]:
        """The parameter names this layout reads, in the order a card writes them."""
        first = [self.picc_param] if self.picc_param else [self.uid_param, self.ctr_param]
        return first + ([self.enc_param] if self.enc_param else []) + [self.cmac_param]

    @property
    def mac_start(self) -> str | None:
        return self.mac_from or self.enc_param


PLAIN = SunLayout(picc_param=None)
ENCRYPTED = SunLayout()
ENCRYPTED_FILE = SunLayout(enc_param="enc")


@dataclass(frozen=True)
class SunMessage:
    """What one tap's URL carries, as bytes; built by `parse_sun_url` or directly.

        SunMessage(cmac=mac, picc_data=picc)                       # encrypted PICC data
        SunMessage(cmac=mac, uid=uid, counter=6)                   # plain mirroring
    """

    cmac: bytes
    mac_input: bytes = b""
    picc_data: bytes | None = None
    uid: bytes | None = None
    counter: int | None = None
    enc_file_data: bytes | None = None

    def __post_init__(self) -> None:
        _need_bytes(self.cmac, "SUN MAC", MAC_LEN)
        if not isinstance(self.mac_input, bytes) or len(self.mac_input) > MAX_URL_CHARS:
            raise SunInvalid("MAC input must be at most 1024 bytes")
        if self.picc_data is not None:
            _need_bytes(self.picc_data, "encrypted PICC data", PICC_LEN)
            if self.uid is not None or self.counter is not None:
                raise SunInvalid("encrypted PICC data and a clear UID/counter cannot both be given")
        else:
            _need_bytes(self.uid, "UID", UID_LEN)
            _need_counter(self.counter)
        if self.enc_file_data is not None:
            data = self.enc_file_data
            if not isinstance(data, bytes) or not data or len(data) % 16 or len(data) > MAX_FILE_DATA:
                raise SunInvalid("encrypted file data must be 16 to 256 bytes, a multiple of 16")


@dataclass(frozen=True)
class SunResult:
    """A verified tap: the card's UID, its read counter and the decrypted file data, if any.

        verify(parse_sun_url(url, PLAIN), None, file_key).counter  # the card's read counter
    """

    uid: bytes
    counter: int
    file_data: bytes | None = None


class CounterStore(Protocol):
    """The hub's last read counter per card UID.

    `advance` must be atomic (a compare-and-set: `UPDATE ... SET last_counter = :c WHERE uid = :u
    AND (last_counter IS NULL OR last_counter < :c)`), so that two requests carrying the same URL
    cannot both pass.
    """

    def advance(self, uid: bytes, counter: int) -> None:
        """Store `counter` if it is newer than the stored one, else raise `SunReplay`."""


class MemoryCounterStore:
    """A thread-safe `CounterStore` in memory (tests, demo, a one-process hub).

        store = MemoryCounterStore({bytes.fromhex("04DE5F1EACC040"): 60})
        store.advance(bytes.fromhex("04DE5F1EACC040"), 61)
    """

    def __init__(self, initial: dict[bytes, int] | None = None) -> None:
        self._last, self._lock = dict(initial or {}), threading.Lock()

    def last(self, uid: bytes) -> int | None:
        with self._lock:
            return self._last.get(uid)

    def advance(self, uid: bytes, counter: int) -> None:
        with self._lock:
            check_counter(self._last.get(uid), counter)
            self._last[uid] = counter


def parse_sun_url(url: str, layout: SunLayout = ENCRYPTED) -> SunMessage:
    """Read the SUN fields of a card URL laid out as `layout`. Raises only `SunInvalid`.

    Offsets are taken from the raw text, never from a decoded and re-encoded query: the MAC
    covers the exact characters the card wrote. A parameter given twice is refused.
    """
    if not isinstance(url, str):
        raise SunInvalid("the card URL is not text")
    if len(url) > MAX_URL_CHARS or not url.isascii() or not url.isprintable():
        raise SunInvalid("the card URL is too long or holds non-ASCII characters")
    url = url.split("#", 1)[0]  # the fragment is after every offset we use
    start = url.find("?")
    if start < 0:
        raise SunInvalid("the card URL has no query string")
    found: dict[str, tuple[int, str]] = {}  # name -> (offset of value in url, value)
    pos = start + 1
    wanted = set(layout.params())
    for part in url[start + 1:].split("&"):
        name, eq, value = part.partition("=")
        if name in wanted:
            if name in found:
                raise SunInvalid(f"parameter {name!r} appears more than once")
            if not eq:
                raise SunInvalid(f"parameter {name!r} has no value")
            found[name] = (pos + len(name) + 1, value)
        pos += len(part) + 1
    missing = [n for n in layout.params() if n not in found]
    if missing:
        raise SunInvalid(f"missing parameter(s): {', '.join(missing)}")

    def field(name: str, nbytes: int | None = None) -> bytes:  # noqa: E306
        return _unhex(found[name][1], name, nbytes)

    mac_input = b""
    if layout.mac_start is not None:
        first, last = found[layout.mac_start][0], found[layout.cmac_param][0]
        if first > last:
            raise SunInvalid(f"parameter {layout.mac_start!r} must come before {layout.cmac_param!r}")
        mac_input = url[first:last].encode("ascii")
    enc = field(layout.enc_param) if layout.enc_param else None
    if layout.picc_param:
        return SunMessage(cmac=field(layout.cmac_param, MAC_LEN), mac_input=mac_input,
                          picc_data=field(layout.picc_param, PICC_LEN), enc_file_data=enc)
    counter = int.from_bytes(field(layout.ctr_param, 3), "big")  # shown MSB first in the URL
    return SunMessage(cmac=field(layout.cmac_param, MAC_LEN), mac_input=mac_input,
                      uid=field(layout.uid_param, UID_LEN), counter=counter, enc_file_data=enc)


def _unhex(text: str, what: str, nbytes: int | None) -> bytes:
    # bytes.fromhex would accept spaces: the card never writes any
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise SunInvalid(f"{what} is not hexadecimal")
    if nbytes is not None and len(text) != 2 * nbytes:
        raise SunInvalid(f"{what} must be {2 * nbytes} hex digits, got {len(text)}")
    return bytes.fromhex(text)


def _need_bytes(value: object, what: str, length: int) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise SunInvalid(f"{what} must be {length} bytes")


def _need_counter(counter: object) -> None:
    if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
        raise SunInvalid("read counter must be an integer from 0 to 16777215")


def verify(msg: SunMessage, meta_key: bytes | None,
           file_key: bytes | Callable[[bytes], bytes | None]) -> SunResult:
    """Verify one message; return the card's UID, counter and file data, or raise `SunInvalid`.

    `meta_key` (SDM meta read key) decrypts the PICC data; it is unused in plain mirroring.
    `file_key` (SDM file read key) is the key itself or a lookup by UID (None: unknown card ->
    `SunUnknownCard`). Keys that are not 16 bytes are a configuration error: `ValueError`.
    This checks the message only; replay is the caller's part (`check_counter`, `verify_url`).
    """
    if msg.picc_data is not None:
        uid, counter = _decrypt_picc(msg, _key(meta_key, "SDM meta read key"))
    else:
        uid, counter = msg.uid, msg.counter
    key = file_key(uid) if callable(file_key) else file_key
    if key is None:
        # spend the time a MAC check would, so an unknown card and a wrong MAC look alike
        sun_mac(session_keys(bytes(KEY_LEN), uid, counter)[0], msg.mac_input)
        raise SunUnknownCard(f"no SDM file read key for card {uid.hex().upper()}")
    mac_key, enc_key = session_keys(_key(key, "SDM file read key"), uid, counter)
    if not hmac.compare_digest(sun_mac(mac_key, msg.mac_input), msg.cmac):
        raise SunInvalid("SUN MAC does not match (wrong key, or the message was altered)")
    file_data = None
    if msg.enc_file_data is not None:
        file_data = aes_cbc(enc_key, file_iv(enc_key, counter), msg.enc_file_data, decrypt=True)
    return SunResult(uid=uid, counter=counter, file_data=file_data)


def check_counter(last_seen: int | None, counter: int) -> None:
    """Refuse (`SunReplay`) a counter that is not strictly newer than the last one seen."""
    _need_counter(counter)
    if last_seen is not None and counter <= last_seen:
        raise SunReplay(last_seen, counter)


def verify_url(url: str, *, layout: SunLayout, meta_read_keys: Sequence[bytes],
               file_read_key: Callable[[bytes], bytes | None], counters: CounterStore) -> SunResult:
    """The hub's check-in step: parse, verify, then advance the card's counter (replay refused).

    `meta_read_keys` are tried in order (the current key first, an old one during a rotation):
    the meta key is shared by a batch of cards because the UID is unknown until it is used.
    `file_read_key(uid)` returns that card's own key, or None. Raises only `SunInvalid` and its
    subclasses `SunUnknownCard` and `SunReplay` (plus `ValueError` for a malformed key).
    """
    msg = parse_sun_url(url, layout)
    if msg.picc_data is None:
        result = verify(msg, None, file_read_key)
    else:
        if not meta_read_keys:
            raise ValueError("encrypted PICC data needs at least one SDM meta read key")
        first_error: SunInvalid | None = None
        for meta_key in meta_read_keys:
            try:
                result = verify(msg, meta_key, file_read_key)
                break
            except SunInvalid as exc:
                first_error = first_error or exc
        else:
            raise first_error
    counters.advance(result.uid, result.counter)
    log.debug("SUN message verified (counter %d)", result.counter)
    return result


def _decrypt_picc(msg: SunMessage, meta_key: bytes) -> tuple[bytes, int]:
    plain = aes_cbc(meta_key, bytes(16), msg.picc_data, decrypt=True)
    if plain[0] != PICC_DATA_TAG:
        # spend the time a MAC check would, so a wrong key and a wrong MAC look alike
        sun_mac(session_keys(bytes(16), bytes(UID_LEN), 0)[0], msg.mac_input)
        raise SunInvalid("PICC data did not decrypt to a UID and read counter "
                         "(wrong SDM meta read key, or the card mirrors less than both)")
    return plain[1:1 + UID_LEN], int.from_bytes(plain[1 + UID_LEN:4 + UID_LEN], "little")


def _key(key: object, what: str) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_LEN:
        raise ValueError(f"{what} must be {KEY_LEN} bytes")
    return key



def make_sun_url(base_url: str, uid: bytes, counter: int, meta_key: bytes | None, file_key: bytes,
                 *, layout: SunLayout = ENCRYPTED, file_data: bytes | None = None,
                 picc_random: bytes | None = None) -> str:
    """Build the URL a card personalised with `layout` would write for this read (tests, demo).

    `file_data` (a multiple of 16 bytes) is needed when the layout has `enc_param`.
    `picc_random` fills the 5 spare bytes of the PICC data (random when None).
    """
    _need_value(isinstance(uid, bytes) and len(uid) == UID_LEN, "uid must be 7 bytes")
    _need_value(type(counter) is int and 0 <= counter <= MAX_COUNTER, "counter must be 0..16777215")
    _need_value("#" not in base_url, "base_url must not have a fragment")
    file_key = _key(file_key, "SDM file read key")
    mac_key, enc_key = session_keys(file_key, uid, counter)
    values: dict[str, str] = {}
    if layout.picc_param:
        rand = os.urandom(5) if picc_random is None else picc_random
        _need_value(isinstance(rand, bytes) and len(rand) == 5, "picc_random must be 5 bytes")
        plain = bytes([PICC_DATA_TAG]) + uid + counter.to_bytes(3, "little") + rand
        values[layout.picc_param] = aes_cbc(_key(meta_key, "SDM meta read key"), bytes(16), plain,
                                         decrypt=False).hex().upper()
    else:
        values[layout.uid_param] = uid.hex().upper()
        values[layout.ctr_param] = counter.to_bytes(3, "big").hex().upper()
    if layout.enc_param:
        _need_value(isinstance(file_data, bytes) and 0 < len(file_data) <= MAX_FILE_DATA
                    and len(file_data) % 16 == 0, "file_data must be 16 to 256 bytes, a multiple of 16")
        values[layout.enc_param] = aes_cbc(enc_key, file_iv(enc_key, counter), file_data,
                                        decrypt=False).hex().upper()
    url = base_url + ("&" if "?" in base_url else "?")
    mac_start = None
    for name in layout.params()[:-1]:
        if name == layout.mac_start:
            mac_start = len(url) + len(name) + 1
        url += f"{name}={values[name]}&"
    url += layout.cmac_param + "="
    mac_input = url[mac_start:].encode("ascii") if mac_start is not None else b""
    return url + sun_mac(mac_key, mac_input).hex().upper()


def _need_value(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
