"""ISO-DEP cards for the udp field (tests/emulators/nfc_udp.py): ISO/IEC 14443-4 on Type A,
a writable Type 4 NDEF tag, and an Android phone running the kiosk app.

    tag = type4_tag(message, vanish_after=4)
    handset = phone(Phone.generate("cred-1"))

`IsoDepA` does the block protocol (RATS/ATS, I-blocks with chaining both ways,
R(ACK)/R(NAK), S(DESELECT)) and hands whole APDUs to an app: `WritableType4`
(tests/emulators/type4.py plus UPDATE BINARY) or `drivers.hce_phone.Phone`. Like every
card here it is a state machine over frames, with no socket or thread of its own.
"""
from __future__ import annotations

import os
import struct

from drivers.hce_phone import Phone
from tests.emulators.nfc_udp_cards import TypeA
from tests.emulators.type4 import CC_FILE, NDEF_FILE, OK, Type4NdefCard

T4_ATS = bytes.fromhex("0578807002")  # FSCI 8 (256 bytes), FWI 7 (about 39 ms), like NTAG 424 / Android


class IsoDepA(TypeA):
    """ISO/IEC 14443-4 on Type A. `app` has process_apdu(bytes) -> bytes and reset()."""

    def __init__(self, app, uid: bytes | None = None, ats: bytes = T4_ATS,
                 atqa: bytes = b"\x44\x03", sak: int = 0x20, **knobs) -> None:
        super().__init__(uid or b"\x04" + os.urandom(6), atqa=atqa, sak=sak, **knobs)
        self.app, self.ats = app, ats
        self.apdus: list[bytes] = []  # every command APDU the app received, for tests
        self._protocol = False

    def power_off(self) -> None:
        super().power_off()
        self._protocol = False
        self.app.reset()

    def command(self, data: bytes) -> bytes | None:
        if not self._protocol:
            if data[0] == 0xE0 and len(data) == 2:
                fsd = (16, 24, 32, 40, 48, 64, 96, 128, 256)[min(data[1] >> 4, 8)]
                self._inf = fsd - 3  # largest INF in a response frame (PCB + 2 CRC bytes)
                self._protocol, self._bn, self._rx, self._tx = True, 1, bytearray(), b""
                self._last = b""
                return self.ats
            self.state = "idle"
            return None
        pcb = data[0]
        if pcb & 0xE2 == 0x02:  # I-block
            if not self._data_command():
                return None
            bn = pcb & 1
            self._rx += data[1:]
            self._bn = bn
            if pcb & 0x10:  # the reader chains: acknowledge and wait for the rest
                return self._send(bytes([0xA2 | bn]))
            apdu, self._rx = bytes(self._rx), bytearray()
            self.apdus.append(apdu)
            self._tx = self.app.process_apdu(apdu)
            return self._next_block()
        if pcb & 0xE6 == 0xA2:  # R-block
            bn = pcb & 1
            if pcb & 0x10:  # R(NAK): presence check or lost frame
                return self._last if bn == self._bn else bytes([0xA2 | self._bn])
            if self._tx and bn != self._bn:  # R(ACK) of our chained block: the next one
                self._bn = bn
                return self._next_block()
            return self._last
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self.state, self._protocol = "halt", False
            return b"\xc2"
        return None

    def is_retry(self, data: bytes, previous: bytes) -> bool:
        nak_for_last = self._protocol and data[:1] == bytes([0xB2 | self._bn])
        return nak_for_last or super().is_retry(data, previous)

    def _next_block(self) -> bytes:
        chunk, self._tx = self._tx[:self._inf], self._tx[self._inf:]
        return self._send(bytes([0x02 | self._bn | (0x10 if self._tx else 0)]) + chunk)

    def _send(self, frame: bytes) -> bytes:
        self._last = frame
        return frame


class WritableType4(Type4NdefCard):
    """tests/emulators/type4.py plus UPDATE BINARY, honouring the CC's write-access byte.
    `cc_writable` lets the CC's write-access byte itself be set (the NDEF read-only flag)."""

    def __init__(self, message: bytes = b"", cc_writable: bool = True, **knobs) -> None:
        super().__init__(message, **knobs)
        self.files = {fid: bytearray(content) for fid, content in self.files.items()}
        self.cc_writable = cc_writable

    def ndef(self) -> bytes:
        content = self.files[NDEF_FILE]
        return bytes(content[2:2 + struct.unpack(">H", content[:2])[0]])

    def process_apdu(self, apdu: bytes) -> bytes:
        if apdu[1:2] != b"\xd6" or self.app != "ndef" or not self.file:
            return super().process_apdu(apdu)
        offset, data = (apdu[2] << 8) | apdu[3], apdu[5:5 + apdu[4]]
        cc = self.files[CC_FILE]
        if self.file == CC_FILE:
            if not (self.cc_writable and offset == 14 and len(data) == 1):
                return b"\x69\x82"
        elif self.file != NDEF_FILE or cc[14] != 0x00:
            return b"\x69\x82"
        elif offset + len(data) > struct.unpack(">H", cc[11:13])[0]:
            return b"\x6a\x84"
        content = self.files[self.file]
        content[len(content):] = bytes(max(0, offset + len(data) - len(content)))
        content[offset:offset + len(data)] = data
        return OK


def type4_tag(message: bytes = b"", uid: bytes | None = None, **knobs) -> IsoDepA:
    """A Type 4A NDEF tag (an NTAG 424-like card). Knobs: cc, nlen, cc_writable, and the
    card's vanish_after, stall_at, stall_s."""
    card = {k: knobs.pop(k) for k in ("vanish_after", "stall_at", "stall_s") if k in knobs}
    return IsoDepA(WritableType4(message, **knobs), uid=uid, **card)


def phone(handset: Phone, uid: bytes | None = None, **knobs) -> IsoDepA:
    """An Android phone running the kiosk app: a random 4-byte UID (08 ...) per tap."""
    return IsoDepA(handset, uid=uid or b"\x08" + os.urandom(3), atqa=b"\x04\x00", sak=0x20, **knobs)
