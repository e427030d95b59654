"""Memory cards for the udp field (tests/emulators/nfc_udp.py): Type A framing, an NTAG213
(Type 2) and a FeliCa card (Type 3), each answering raw frames the way the real chip does.

    card = Ntag213(ndef=message, vanish_after=3)   # leaves the field after 3 READ/WRITEs
    field.place(card)

A card is only a state machine over frames: `answer(data) -> bytes | None` (None is
silence). It holds no socket, no thread and no clock beyond the `stall_s` sleep, so the
field (`UdpField`) decides who hears what; ISO-DEP cards (Type 4, phones) build on
`TypeA` in tests/emulators/nfc_udp_isodep.py. Hostile knobs, on every card:
`vanish_after=N` (the card answers N data commands, then leaves the field for good),
`stall_at=N, stall_s=S` (the Nth data command is answered S seconds late), and raw memory
/ attribute blocks / capability containers for bad TLVs, oversized lengths and bad CCs.
"""
from __future__ import annotations

import os
import struct
import time

from nfc.clf import LocalTarget
from nfc.tag.tt3 import Type3TagEmulation

NTAG213_VERSION = bytes.fromhex("0004040201000F03")
FELICA_PMM = bytes.fromhex("00019f9f9f9f9f9f")  # IC 01: FeliCa Standard RC-S915; ~58 ms timeouts
NDEF_SYSTEM = b"\x12\xfc"


def ndef_tlv(message: bytes) -> bytes:
    """A Type 2 NDEF TLV followed by the terminator TLV."""
    n = len(message)
    head = bytes([0x03, n]) if n < 0xFF else b"\x03\xff" + struct.pack(">H", n)
    return head + message + b"\xfe"


def _bcc(part: bytes) -> int:
    return part[0] ^ part[1] ^ part[2] ^ part[3]


class Card:
    """One card. `answer(data)` gets every frame at the card's bitrate and returns the
    response frame or None (silence)."""

    bitrates: tuple[str, ...] = ()

    def __init__(self, vanish_after: int | None = None, stall_at: int | None = None,
                 stall_s: float = 0.0) -> None:
        self.vanish_after, self.stall_at, self.stall_s = vanish_after, stall_at, stall_s
        self.data_commands = 0
        self.gone = False

    def power_off(self) -> None:
        """The reader muted its field."""

    def is_retry(self, data: bytes, previous: bytes) -> bool:
        """Does `data` ask again for the answer to `previous`?"""
        return data == previous

    def answer(self, data: bytes) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _data_command(self) -> bool:
        """Count one data command; False (and gone) once the card has left the field."""
        if self.vanish_after is not None and self.data_commands >= self.vanish_after:
            self.gone = True
            return False
        self.data_commands += 1
        if self.data_commands == self.stall_at:
            time.sleep(self.stall_s)  # answer this one late: the reader times out and retries
        return True


class TypeA(Card):
    """ISO/IEC 14443-3 Type A: REQA/WUPA, cascaded anticollision and select, HLTA."""

    bitrates = ("106A",)

    def __init__(self, uid: bytes, atqa: bytes, sak: int, **knobs) -> None:
        super().__init__(**knobs)
        if len(uid) not in (4, 7, 10):
            raise ValueError("uid must be 4, 7 or 10 bytes")
        self.uid, self.atqa, self.sak = bytes(uid), atqa, sak
        u = self.uid
        self._levels = {4: [u], 7: [b"\x88" + u[:3], u[3:]],
                        10: [b"\x88" + u[:3], b"\x88" + u[3:6], u[6:]]}[len(u)]
        self.state = "idle"

    def power_off(self) -> None:
        self.state = "idle"

    def answer(self, data: bytes) -> bytes | None:
        if data in (b"\x26", b"\x52"):
            if self.state == "halt" and data == b"\x26":
                return None
            self.state = "ready"
            return self.atqa
        if len(data) >= 2 and data[0] in (0x93, 0x95, 0x97) and self.state == "ready":
            level = (0x93, 0x95, 0x97).index(data[0])
            if level >= len(self._levels):
                return None
            part = self._levels[level]
            if data[1] == 0x20:
                return part + bytes([_bcc(part)])
            if data[1] == 0x70 and data[2:7] == part + bytes([_bcc(part)]):
                if level + 1 < len(self._levels):
                    return bytes([self.sak | 0x04])
                self.state = "active"
                return bytes([self.sak & ~0x04 & 0xFF])
            return None
        if data[:2] == b"\x50\x00":
            self.state = "halt"
            return None
        if self.state == "active":
            return self.command(data)
        return None

    def command(self, data: bytes) -> bytes | None:
        return None


class Ntag213(TypeA):
    """An NXP NTAG213: 45 pages of 4 bytes, 144 bytes of user memory (pages 4-39)."""

    PAGES = 45
    ACK, NAK = b"\x0a", b"\x00"

    def __init__(self, ndef: bytes | None = b"", uid: bytes | None = None, cc: bytes = b"\xe1\x10\x12\x00",
                 tlv_area: bytes | None = None, **knobs) -> None:
        """`ndef` None: no NDEF TLV; `tlv_area` replaces the whole TLV area (hostile tags)."""
        uid = uid or b"\x04" + os.urandom(6)
        super().__init__(uid, atqa=b"\x44\x00", sak=0x00, **knobs)
        self.memory = mem = bytearray(self.PAGES * 4)
        mem[0:3], mem[3] = uid[:3], 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
        mem[4:8], mem[8], mem[9] = uid[3:7], _bcc(uid[3:7]), 0x48
        mem[12:16] = cc
        area = tlv_area if tlv_area is not None else (ndef_tlv(ndef) if ndef is not None else b"")
        if len(area) > 144:
            raise ValueError("TLV area larger than the NTAG213's 144 bytes")
        mem[16:16 + len(area)] = area
        mem[164:168] = b"\x04\x00\x00\xff"  # CFG0: AUTH0 = FF, no password protection
        mem[168:172] = b"\x00\x05\x00\x00"  # CFG1
        mem[172:176] = b"\xff\xff\xff\xff"  # PWD (reads back as zeros)

    def ndef(self) -> bytes | None:
        """The NDEF message in memory (a plain walk, enough for checking writes)."""
        area, i = bytes(self.memory[16:160]), 0
        while i < len(area) and area[i] not in (0x03, 0xFE):
            i += 1 if area[i] == 0 else 2 + area[i + 1]
        if i >= len(area) or area[i] == 0xFE:
            return None
        n, start = area[i + 1], i + 2
        if n == 0xFF:
            n, start = struct.unpack(">H", area[i + 2:i + 4])[0], i + 4
        return area[start:start + n]

    def _page_locked(self, page: int) -> bool:
        lock0, lock1 = self.memory[10], self.memory[11]
        if page == 3:
            return bool(lock0 & 0x08)
        if 4 <= page <= 7:
            return bool(lock0 & (1 << page))  # bits 4..7
        if 8 <= page <= 15:
            return bool(lock1 & (1 << (page - 8)))
        if 16 <= page <= 39:
            dyn = self.memory[160] | self.memory[161] << 8
            return bool(dyn & (1 << ((page - 16) // 2)))
        return False

    def command(self, data: bytes) -> bytes | None:
        cmd = data[0]
        if cmd == 0x30 and len(data) == 2:
            if not self._data_command():
                return None
            page = data[1]
            if page >= self.PAGES:
                self.state = "idle"
                return self.NAK
            out = bytearray()
            for p in range(page, page + 4):
                p %= self.PAGES
                out += b"\x00" * 4 if p in (43, 44) else self.memory[p * 4:p * 4 + 4]
            return bytes(out)
        if cmd == 0xA2 and len(data) == 6:
            if not self._data_command():
                return None
            return self._write(data[1], data[2:6])
        if data == b"\x60":
            return NTAG213_VERSION
        if data[:2] == b"\x3c\x00":
            return bytes(32)
        self.state = "idle"  # an NTAG goes mute on a command it does not know (AUTH, ...)
        return None

    def _write(self, page: int, value: bytes) -> bytes:
        if page < 2 or page >= self.PAGES or self._page_locked(page):
            return self.NAK
        at = page * 4
        if page == 2:  # serial number and internal byte are read-only; lock bits are OTP
            self.memory[at + 2] |= value[2]
            self.memory[at + 3] |= value[3]
        elif page in (3, 40):  # the CC and the dynamic lock bytes are one-time programmable
            for i in range(4):
                self.memory[at + i] |= value[i]
        else:
            self.memory[at:at + 4] = value
        return self.ACK


def felica_attributes(length: int, nmaxb: int = 13, nbr: int = 4, nbw: int = 1, writef: int = 0,
                      rwflag: int = 1, version: int = 0x10, checksum: int | None = None) -> bytes:
    """The NDEF attribute information block (block 0) of a Type 3 tag."""
    block = bytearray(16)
    block[0:5] = bytes([version, nbr, nbw]) + struct.pack(">H", nmaxb)
    block[9], block[10], block[11:14] = writef, rwflag, struct.pack(">I", length)[1:]
    block[14:16] = struct.pack(">H", sum(block[:14]) if checksum is None else checksum)
    return bytes(block)


class Felica(Card):
    """A FeliCa Standard card with the NDEF system 12FC; the card side is nfcpy's own
    Type3TagEmulation logic, driven without a frontend."""

    bitrates = ("212F", "424F")

    def __init__(self, ndef: bytes | None = b"", idm: bytes | None = None, pmm: bytes = FELICA_PMM,
                 attributes: bytes | None = None, nmaxb: int = 13, **knobs) -> None:
        super().__init__(**knobs)
        self.idm = idm or b"\x03\xfe" + os.urandom(6)
        message = ndef or b""
        self.blocks = [bytearray(attributes or felica_attributes(len(message), nmaxb=nmaxb))]
        padded = message + bytes(-len(message) % 16)
        self.blocks += [bytearray(padded[i:i + 16]) for i in range(0, len(padded), 16)]
        self.blocks += [bytearray(16) for _ in range(max(0, nmaxb + 1 - len(self.blocks)))]
        target = LocalTarget("212F", sensf_res=b"\x01" + self.idm + pmm + NDEF_SYSTEM, tt3_cmd=b"")
        self._card = Type3TagEmulation(None, target)
        for service in (0x0009, 0x000B):
            self._card.add_service(service, self._read_block, self._write_block)

    def ndef(self) -> bytes:
        length = struct.unpack(">I", b"\x00" + bytes(self.blocks[0][11:14]))[0]
        return b"".join(bytes(b) for b in self.blocks[1:])[:length]

    def _read_block(self, number: int, rb: bool, re: bool) -> bytes | None:
        return bytes(self.blocks[number]) if number < len(self.blocks) else None

    def _write_block(self, number: int, data: bytes, wb: bool, we: bool) -> bool:
        if number >= len(self.blocks):
            return False
        self.blocks[number][:] = data
        return True

    def answer(self, data: bytes) -> bytes | None:
        if len(data) < 2 or data[0] != len(data):
            return None
        if data[1] in (0x06, 0x08) and not self._data_command():
            return None
        response = self._card.process_command(bytearray(data))
        return bytes(response) if response is not None else None
