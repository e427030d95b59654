"""Card-side Type 4 NDEF application (NFC Forum T4T 2.0) speaking APDUs.

Shared by the nfcpy udp emulator and the vpcd virtual card. Knobs make it hostile:
`cc` overrides the capability container, `nlen` lies about the NDEF length.
"""
from __future__ import annotations

import struct

NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE = b"\xe1\x03"
NDEF_FILE = b"\xe1\x04"
OK = b"\x90\x00"
NOT_FOUND = b"\x6a\x82"
WRONG_P1P2 = b"\x6b\x00"
NOT_SUPPORTED = b"\x6d\x00"


def capability_container(max_ndef: int = 0x0800, mle: int = 0x00FF, mlc: int = 0x00FF,
                         read_only: bool = False) -> bytes:
    return (struct.pack(">HBHH", 15, 0x20, mle, mlc)
            + bytes([0x04, 0x06]) + NDEF_FILE + struct.pack(">H", max_ndef)
            + bytes([0x00, 0xFF if read_only else 0x00]))


class Type4NdefCard:
    def __init__(self, message: bytes, cc: bytes | None = None, nlen: int | None = None,
                 extra_apps: dict | None = None) -> None:
        n = len(message) if nlen is None else nlen
        self.files = {CC_FILE: cc if cc is not None else capability_container(max(0x0800, len(message) + 2)),
                      NDEF_FILE: struct.pack(">H", n) + message}
        self.extra_apps = extra_apps or {}  # AID -> handler(apdu) -> response (e.g. a phone)
        self.app = None
        self.file = None

    def reset(self) -> None:
        self.app = self.file = None

    def process_apdu(self, apdu: bytes) -> bytes:
        if self.app not in (None, "ndef"):
            if apdu[:2] == b"\x00\xa4" and apdu[2] == 0x04:
                self.app = None
            else:
                return self.extra_apps[self.app](apdu)
        cla, ins, p1, p2 = apdu[:4]
        if ins == 0xA4:
            lc = apdu[4]
            data = apdu[5:5 + lc]
            if p1 == 0x04:
                if data == NDEF_AID:
                    self.app, self.file = "ndef", None
                    return OK
                if data in self.extra_apps:
                    self.app = data
                    return self.extra_apps[data](apdu)
                self.app = None
                return NOT_FOUND
            if p1 == 0x00 and self.app == "ndef" and data in self.files:
                self.file = data
                return OK
            return NOT_FOUND
        if ins == 0xB0 and self.app == "ndef" and self.file:
            offset = (p1 << 8) | p2
            le = apdu[4] if len(apdu) > 4 else 0
            le = le or 256
            content = self.files[self.file]
            if offset > len(content):
                return WRONG_P1P2
            return content[offset:offset + le] + OK
        return NOT_SUPPORTED
