"""NDEF over APDUs, reader side: NFC Forum Type 4 tags (and phones) and Type 2 tags behind
a PC/SC reader's storage-card pseudo-APDUs.

Pure functions over a `transceive(apdu: bytes) -> bytes` that returns the response APDU
with SW1 SW2; they hold no state, open nothing and block only inside `transceive`, so any
backend can use them and the tests can drive them with a plain function.

    content = read_type4(card.transceive)   # or read_type2(...)
    content.ndef                            # raw NDEF message, b"" when empty

| tag | read | write | lock |
| --- | --- | --- | --- |
| Type 4 (T4T 2.0/3.0, short files) | SELECT, READ BINARY by MLe | UPDATE BINARY by MLc | CC write access FF |
| Type 2 (NTAG21x, Ultralight) | `FF B0 00 p 10`, TLV walk | `FF D6 00 p 04` | lock bits, CC 0F |

Everything a tag says is checked before it is used: the capability container, the file
sizes, every response length, and every NDEF length against `MAX_NDEF_BYTES`, so a
hostile tag gets a `MalformedTag` with a reason, never a huge allocation or a loop.
Transport failures are whatever `transceive` raises; they pass through untouched.
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Callable

from drivers.base import MAX_NDEF_BYTES, TYPE2, TYPE4

log = logging.getLogger(__name__)

Transceive = Callable[[bytes], bytes]

NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE = b"\xe1\x03"
SW_OK = b"\x90\x00"
RESERVED_FILE_IDS = {b"\x00\x00", b"\xe1\x02", b"\xe1\x03", b"\x3f\x00", b"\x3f\xff", b"\xff\xff"}


class NdefApduError(Exception):
    """The tag could not be read or written as an NDEF tag."""


class NoNdefApp(NdefApduError):
    """The target does not answer this tag type's commands (try the next technology)."""


class MalformedTag(NdefApduError):
    """The tag answered something that breaks its own specification."""


class TagReadOnly(NdefApduError):
    """The tag is write-protected."""


class TagTooSmall(NdefApduError):
    """The message does not fit on this tag."""


@dataclass(frozen=True)
class NdefContent:
    ndef: bytes | None  # None: not NDEF formatted; b"": formatted and empty
    capacity: int  # bytes available for an NDEF message
    writable: bool
    version: str  # mapping version from the CC, e.g. "2.0"


# -- Type 4 -----------------------------------------------------------------------
@dataclass(frozen=True)
class Type4CC:
    version: int
    mle: int
    mlc: int
    file_id: bytes
    max_size: int
    read_access: int
    write_access: int


def select_ndef_app_apdu() -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(NDEF_AID)]) + NDEF_AID + b"\x00"


def _check(rapdu: bytes, what: str) -> bytes:
    if len(rapdu) < 2:
        raise MalformedTag(f"{what}: answer shorter than a status word")
    if rapdu[-2:] != SW_OK:
        raise MalformedTag(f"{what} refused ({rapdu[-2:].hex()})")
    return rapdu[:-2]


def _select_file(transceive: Transceive, file_id: bytes, what: str) -> None:
    _check(transceive(b"\x00\xa4\x00\x0c\x02" + file_id), f"SELECT {what}")


def _read_binary(transceive: Transceive, offset: int, length: int, what: str) -> bytes:
    data = _check(transceive(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length & 0xFF])),
                  f"READ BINARY {what} at {offset}")
    if len(data) != length:
        raise MalformedTag(f"{what} at {offset}: asked {length} bytes, got {len(data)}")
    return data


def parse_type4_cc(cc: bytes) -> Type4CC:
    """Validate a Type 4 capability container (first 15 bytes are what we use)."""
    if len(cc) < 15:
        raise MalformedTag(f"capability container too short ({len(cc)} bytes)")
    cclen, version, mle, mlc = struct.unpack_from(">HBHH", cc, 0)
    t, length = cc[7], cc[8]
    if cclen < 15:
        raise MalformedTag(f"CCLEN {cclen} below 15")
    if version >> 4 not in (1, 2, 3):
        raise MalformedTag(f"unsupported mapping version {version >> 4}.{version & 15}")
    if mle < 0x0F or mlc < 0x01:
        raise MalformedTag(f"MLe {mle} / MLc {mlc} below the minimum")
    if t == 0x06:
        raise MalformedTag("extended NDEF file (ENDEF) is not supported")
    if t != 0x04 or length != 6:
        raise MalformedTag(f"no NDEF File Control TLV (T={t:02x} L={length})")
    file_id = cc[9:11]
    (max_size,) = struct.unpack_from(">H", cc, 11)
    if file_id in RESERVED_FILE_IDS:
        raise MalformedTag(f"NDEF file id {file_id.hex()} is reserved")
    if not 0x0005 <= max_size <= 0xFFFE:
        raise MalformedTag(f"NDEF file size {max_size} out of range")
    return Type4CC(version, mle, mlc, file_id, max_size, cc[13], cc[14])


def _open_type4(transceive: Transceive) -> Type4CC:
    rapdu = transceive(select_ndef_app_apdu())
    if rapdu[-2:] != SW_OK:
        raise NoNdefApp(f"SELECT NDEF application answered {rapdu[-2:].hex() or 'nothing'}")
    _select_file(transceive, CC_FILE, "CC file")
    cc = parse_type4_cc(_read_binary(transceive, 0, 15, "CC file"))
    if cc.read_access != 0x00:
        raise MalformedTag(f"NDEF file not readable (read access {cc.read_access:02x})")
    _select_file(transceive, cc.file_id, "NDEF file")
    return cc


def read_type4(transceive: Transceive) -> NdefContent:
    """Read the NDEF message of an NFC Forum Type 4 tag (or a phone emulating one)."""
    cc = _open_type4(transceive)
    (nlen,) = struct.unpack(">H", _read_binary(transceive, 0, 2, "NLEN"))
    if nlen > MAX_NDEF_BYTES:
        raise MalformedTag(f"NDEF message of {nlen} bytes exceeds the {MAX_NDEF_BYTES}-byte limit")
    if nlen > cc.max_size - 2:
        raise MalformedTag(f"NLEN {nlen} exceeds the NDEF file size {cc.max_size}")
    chunk = min(cc.mle, 0xFF)
    message = bytearray()
    while len(message) < nlen:
        n = min(chunk, nlen - len(message))
        message += _read_binary(transceive, 2 + len(message), n, "NDEF file")
    return NdefContent(bytes(message), cc.max_size - 2, cc.write_access == 0x00,
                       f"{cc.version >> 4}.{cc.version & 15}")


def write_type4(transceive: Transceive, message: bytes, lock: bool = False) -> NdefContent:
    """Write `message` (NLEN zeroed first, so a torn write leaves an empty tag, not a
    truncated message); `lock` then sets the CC's write-access byte to FF."""
    cc = _open_type4(transceive)
    if cc.write_access != 0x00:
        raise TagReadOnly(f"tag is read-only (write access {cc.write_access:02x})")
    if len(message) > min(cc.max_size - 2, MAX_NDEF_BYTES):
        raise TagTooSmall(f"message of {len(message)} bytes, tag holds {cc.max_size - 2}")
    chunk = min(cc.mlc, 0xFF)

    def update(offset: int, data: bytes) -> None:
        _check(transceive(bytes([0x00, 0xD6, offset >> 8, offset & 0xFF, len(data)]) + data),
               f"UPDATE BINARY at {offset}")

    update(0, b"\x00\x00")
    for start in range(0, len(message), chunk):
        update(2 + start, message[start:start + chunk])
    update(0, struct.pack(">H", len(message)))
    if lock:
        _select_file(transceive, CC_FILE, "CC file")
        try:
            update(14, b"\xff")
        except MalformedTag as exc:
            raise TagReadOnly(f"this tag cannot be locked: {exc}") from None
    return NdefContent(message, cc.max_size - 2, not lock, f"{cc.version >> 4}.{cc.version & 15}")


# -- Type 2 behind PC/SC storage-card pseudo-APDUs ---------------------------------------
# NTAG21x dynamic lock bytes by CC size byte: (page of the lock bytes, data pages they cover)
NTAG_DYNAMIC_LOCK = {0x12: 0x28, 0x3E: 0x82, 0x6D: 0xE2}


class _Type2Memory:
    """Byte-addressed view of the tag, read 16 bytes (4 pages) at a time and cached."""

    def __init__(self, transceive: Transceive) -> None:
        self._transceive = transceive
        self._blocks: dict[int, bytes] = {}

    def block(self, page: int) -> bytes:
        page -= page % 4
        if page > 0xFC:  # P2 is one byte: beyond that the tag needs sector select
            raise MalformedTag(f"page {page} is out of reach of READ BINARY")
        if page not in self._blocks:
            rapdu = self._transceive(bytes([0xFF, 0xB0, 0x00, page, 0x10]))
            if rapdu[-2:] != SW_OK:
                raise NoNdefApp(f"READ BINARY page {page} answered {rapdu[-2:].hex() or 'nothing'}")
            if len(rapdu) != 18:
                raise MalformedTag(f"READ BINARY page {page} returned {len(rapdu) - 2} bytes, not 16")
            self._blocks[page] = rapdu[:-2]
        return self._blocks[page]

    def __getitem__(self, address: int) -> int:
        return self.block(address // 4)[address % 16]

    def read(self, addresses: list[int]) -> bytes:
        return bytes(self[a] for a in addresses)


def _reserved_range(value: bytes, is_lock: bool) -> range:
    """Bytes a Lock/Memory Control TLV reserves inside the data area (T2T 1.0, 2.2/2.3)."""
    if len(value) != 3:
        raise MalformedTag("control TLV must be 3 bytes long")
    position, size, page_info = value
    start = (position >> 4) * (1 << (page_info & 0x0F)) + (position & 0x0F)
    n = ((size or 256) + 7) // 8 if is_lock else (size or 256)
    return range(start, start + n)


def _data_addresses(end: int, reserved: list[range]):
    """Addresses of the TLV area from page 4 up to `end`, skipping reserved bytes."""
    address = 16
    while address < end:
        if not any(address in r for r in reserved):
            yield address
        address += 1


def _type2_cc(memory: _Type2Memory) -> tuple[bytes, int]:
    cc = memory.block(0)[12:16]
    if cc[0] != 0xE1:
        return cc, 0
    if cc[1] >> 4 != 1:
        raise MalformedTag(f"unsupported Type 2 mapping version {cc[1] >> 4}.{cc[1] & 15}")
    if cc[2] == 0:
        raise MalformedTag("Type 2 CC declares an empty data area")
    return cc, cc[2] * 8


def _find_ndef_tlv(memory: _Type2Memory, end: int) -> tuple[list[int], int] | None:
    """Walk the TLVs; return (addresses of the NDEF TLV's value area to the end, length)."""
    reserved: list[range] = []
    stream = _data_addresses(end, reserved)
    for address in stream:
        tag = memory[address]
        if tag == 0x00:
            continue
        if tag == 0xFE:
            return None
        try:
            length = memory[next(stream)]
            if length == 0xFF:
                length = (memory[next(stream)] << 8) | memory[next(stream)]
            if tag == 0x03:
                return list(stream), length
            value = memory.read([next(stream) for _ in range(length)])
        except StopIteration:
            raise MalformedTag(f"TLV {tag:02x} runs past the end of the data area") from None
        if tag in (0x01, 0x02):
            reserved.append(_reserved_range(value, is_lock=tag == 0x01))
    return None


def read_type2(transceive: Transceive) -> NdefContent:
    """Read the NDEF message of a Type 2 tag through PC/SC READ BINARY (`FF B0`)."""
    memory = _Type2Memory(transceive)
    cc, size = _type2_cc(memory)
    if not size:
        return NdefContent(None, 0, True, "")
    version = f"{cc[1] >> 4}.{cc[1] & 15}"
    writable = cc[3] == 0x00
    found = _find_ndef_tlv(memory, 16 + size)
    if found is None:
        return NdefContent(None, size, writable, version)
    addresses, length = found
    if length > MAX_NDEF_BYTES:
        raise MalformedTag(f"NDEF message of {length} bytes exceeds the {MAX_NDEF_BYTES}-byte limit")
    if length > len(addresses):
        raise MalformedTag(f"NDEF TLV of {length} bytes runs past the {size}-byte data area")
    return NdefContent(memory.read(addresses[:length]), size, writable, version)


def write_type2(transceive: Transceive, message: bytes, lock: bool = False) -> NdefContent:
    """Write `message` as the only TLV (NDEF TLV + terminator), first page last so a torn
    write leaves the previous length; `lock` sets the lock bits and the CC to read-only."""
    memory = _Type2Memory(transceive)
    cc, size = _type2_cc(memory)
    if not size:
        raise MalformedTag("tag is not NDEF formatted (no E1 capability container)")
    if cc[3] != 0x00:
        raise TagReadOnly(f"tag is read-only (CC access {cc[3]:02x})")
    header = bytes([0x03, len(message)]) if len(message) < 0xFF else b"\x03\xff" + struct.pack(">H", len(message))
    body = header + message + b"\xfe"
    if len(body) > size or len(message) > MAX_NDEF_BYTES:
        raise TagTooSmall(f"message of {len(message)} bytes, tag holds {size - len(header) - 1}")
    body += b"\x00" * (-len(body) % 4)

    def write_page(page: int, data: bytes) -> None:
        if page > 0xFF:
            raise TagTooSmall(f"page {page} is out of reach of UPDATE BINARY")
        rapdu = transceive(bytes([0xFF, 0xD6, 0x00, page, 0x04]) + data)
        if rapdu[-2:] != SW_OK:
            raise TagReadOnly(f"page {page} refused the write ({rapdu[-2:].hex() or 'no answer'})")

    for i in range(4, len(body), 4):
        write_page(4 + i // 4, body[i:i + 4])
    write_page(4, body[:4])
    if lock:
        lock_page = NTAG_DYNAMIC_LOCK.get(cc[2])
        if lock_page is not None:
            write_page(lock_page, b"\xff\xff\xff\x00")
        write_page(3, cc[:3] + b"\x0f")
        write_page(2, memory.block(0)[8:10] + b"\xff\xff")
    return NdefContent(message, size, not lock, f"{cc[1] >> 4}.{cc[1] & 15}")


def write_ndef(transceive: Transceive, message: bytes, lock: bool = False,
               iso_dep: bool = True) -> tuple[str, NdefContent]:
    """Write to whichever tag this is: Type 4 (only tried when `iso_dep`), else Type 2.
    Returns (technology, content); raises NoNdefApp when it is neither."""
    if iso_dep:
        try:
            return TYPE4, write_type4(transceive, message, lock)
        except NoNdefApp as exc:  # not an NFC Forum Type 4 application: maybe Type 2 memory
            log.debug("no Type 4 application: %s", exc)
    return TYPE2, write_type2(transceive, message, lock)


# -- what the reader's ATR says ------------------------------------------------------
# PC/SC part 3: a contactless reader builds 3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN ...
# for storage cards (SS = standard, NN NN = card name); ISO-DEP cards get other ATRs.
PCSC_RID = bytes.fromhex("A000000306")
STORAGE_CARDS = {
    0x0001: "MIFARE Classic 1K", 0x0002: "MIFARE Classic 4K", 0x0003: "MIFARE Ultralight / NTAG",
    0x0026: "MIFARE Mini", 0x003A: "MIFARE Ultralight C", 0x003B: "FeliCa",
}
TYPE2_CARDS = {0x0003, 0x003A}


def storage_card(atr: bytes) -> tuple[str, bool] | None:
    """(card name, is a Type 2 tag) when the ATR is a PC/SC part 3 storage-card ATR."""
    i = atr.find(b"\x80\x4f")
    if i < 0 or len(atr) < i + 3 + 8 or atr[i + 3:i + 8] != PCSC_RID:
        return None
    name = int.from_bytes(atr[i + 9:i + 11], "big")
    return STORAGE_CARDS.get(name, f"storage card {name:04x}"), name in TYPE2_CARDS
