"""A virtual contactless card for pcscd's virtual reader (Debian `vsmartcard-vpcd`).

The card is a TCP client of vpcd: connecting the socket inserts the card, closing it
removes the card. Every message both ways is a 2-byte big-endian length and a payload;
a 1-byte message from vpcd is a control (00 power off, 01 power on, 02 reset, 04 get ATR,
only the last is answered), anything longer is a command APDU answered with a response APDU.

    card = VirtualCard(port, Type4NdefCard(message), uid=bytes.fromhex("04a1b2c3d4e5f6"))
    card.insert(); ...; card.remove()

The card logic is any object with `process_apdu(apdu) -> bytes | None` (None: say
nothing, the card went silent) and optionally `reset()`. GET UID (`FF CA 00 00 00`) is
answered here, as a contactless reader would, before the logic sees anything.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading

from tests.emulators.type4 import CC_FILE, NDEF_FILE, Type4NdefCard

log = logging.getLogger(__name__)

# PC/SC part 3 ATRs a contactless reader synthesises for the card in its field.
ATR_ISO_DEP = bytes.fromhex("3b8880010000000077817100f9")  # ISO 14443-4 A (phone, DESFire-like)
ATR_ULTRALIGHT = bytes.fromhex("3b8f8001804f0ca0000003060300030000000068")  # NTAG/Ultralight

OK = b"\x90\x00"
NOT_FOUND = b"\x6a\x82"
NOT_SUPPORTED = b"\x6d\x00"
WRONG_P1P2 = b"\x6b\x00"
ACS_FAILED = b"\x63\x00"  # what ACS readers answer when the tag refused a pseudo-APDU


class UidOnlyCard:
    """A plain card (an old loyalty card): it answers nothing but GET UID."""

    def process_apdu(self, apdu: bytes) -> bytes:
        return NOT_FOUND if apdu[1:2] == b"\xa4" else NOT_SUPPORTED


class WritableType4(Type4NdefCard):
    """`Type4NdefCard` plus UPDATE BINARY, honouring the CC's write-access byte for the NDEF
    file; `cc_writable` lets a test lock the tag by writing the CC."""

    def __init__(self, message: bytes = b"", cc_writable: bool = True, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.cc_writable = cc_writable

    def process_apdu(self, apdu: bytes) -> bytes:
        if apdu[1] != 0xD6 or self.app != "ndef" or not self.file:
            return super().process_apdu(apdu)
        offset = (apdu[2] << 8) | apdu[3]
        data = apdu[5:5 + apdu[4]]
        content = bytearray(self.files[self.file])
        if self.file == CC_FILE and not self.cc_writable:
            return b"\x69\x82"
        if self.file == NDEF_FILE and self.files[CC_FILE][14] != 0x00:
            return b"\x69\x82"
        if offset > len(content):
            return WRONG_P1P2
        content[offset:offset + len(data)] = data
        self.files[self.file] = bytes(content)
        return OK

    @property
    def message(self) -> bytes:
        content = self.files[NDEF_FILE]
        return content[2:2 + struct.unpack(">H", content[:2])[0]]


class Type2Card:
    """NTAG21x memory behind an ACS reader's pseudo-APDUs: READ BINARY `FF B0 00 p 10`
    (16 bytes from page p) and UPDATE BINARY `FF D6 00 p 04 <4 bytes>`. Lock bytes and the
    CC are one-time-programmable (bits only ever set) and static lock bits are enforced."""

    def __init__(self, uid: bytes, message: bytes | None = None, data_pages: int = 36,
                 memory: bytes | None = None) -> None:
        if memory is None:
            memory = bytearray(4 * (4 + data_pages + 5))
            memory[0:3] = uid[0:3]
            memory[4:8] = uid[3:7]
            memory[12:16] = bytes([0xE1, 0x10, data_pages * 4 // 8, 0x00])
            if message is not None:
                tlv = bytes([0x03, len(message)]) if len(message) < 0xFF else \
                    b"\x03\xff" + struct.pack(">H", len(message))
                body = tlv + message + b"\xfe"
                memory[16:16 + len(body)] = body
        self.memory = bytearray(memory)

    def _locked(self, page: int) -> bool:
        if 3 <= page <= 15:
            bits = self.memory[10] | (self.memory[11] << 8)
            return bool(bits & (1 << page))
        return False

    def process_apdu(self, apdu: bytes) -> bytes:
        if len(apdu) < 5 or apdu[0] != 0xFF:
            return NOT_SUPPORTED
        page = apdu[3]
        if apdu[1] == 0xB0:
            if 4 * page >= len(self.memory):
                return ACS_FAILED
            block = self.memory[4 * page:4 * page + apdu[4]]
            return bytes(block.ljust(apdu[4], b"\x00")) + OK
        if apdu[1] == 0xD6 and apdu[4] == 4 and len(apdu) == 9:
            if page < 2 or 4 * page >= len(self.memory) or self._locked(page):
                return ACS_FAILED
            data = apdu[5:9]
            if page in (2, 3):  # lock bytes and CC are OTP: bits are ORed in
                old = self.memory[4 * page:4 * page + 4]
                data = bytes(a | b for a, b in zip(old, data))
                if page == 2:
                    data = bytes(old[:2]) + data[2:]  # serial/internal bytes are read-only
            self.memory[4 * page:4 * page + 4] = data
            return OK
        return NOT_SUPPORTED


class GoesSilent:
    """Answers the first `after` APDUs through `inner`, then never answers again."""

    def __init__(self, inner, after: int) -> None:
        self.inner, self.after, self.seen = inner, after, 0

    def reset(self) -> None:
        getattr(self.inner, "reset", lambda: None)()

    def process_apdu(self, apdu: bytes) -> bytes | None:
        self.seen += 1
        return self.inner.process_apdu(apdu) if self.seen <= self.after else None


class PulledAway(GoesSilent):
    """Answers `after` APDUs, then leaves the field in the middle of the next one."""

    def process_apdu(self, apdu: bytes) -> bytes | None:
        answer = super().process_apdu(apdu)
        if answer is None:
            raise ConnectionAbortedError("card pulled mid-APDU")
        return answer


class VirtualCard:
    """One card in front of vpcd's reader (only one card fits in a vpcd slot at a time)."""

    def __init__(self, port: int, logic, uid: bytes | None = b"\x04\x11\x22\x33\x44\x55\x66",
                 atr: bytes = ATR_ISO_DEP, host: str = "127.0.0.1") -> None:
        self.port, self.logic, self.uid, self.atr, self.host = port, logic, uid, atr, host
        self.apdus: list[bytes] = []  # command APDUs seen, for assertions
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- insert / remove ---------------------------------------------------------
    def insert(self, timeout: float = 5.0) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        with self._lock:
            self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                        name=f"vpcd-card:{self.port}")
        self._thread.start()

    def remove(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # already reset by the peer
                log.debug("shutdown: %s", exc)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
            self._thread = None

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def __enter__(self) -> "VirtualCard":
        self.insert()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    # -- the wire ----------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                message = self._receive(sock)
                if message is None:
                    return
                answer = self._answer(message)
                if answer is not None:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
        except ConnectionAbortedError:
            log.debug("virtual card leaves the field mid-APDU")
            with self._lock:
                if self._sock is sock:
                    self._sock = None
            sock.close()
        except OSError as exc:  # removed by the test while serving
            log.debug("virtual card socket closed: %s", exc)

    @staticmethod
    def _receive(sock: socket.socket) -> bytes | None:
        header = _recv_exact(sock, 2)
        if header is None:
            return None
        return _recv_exact(sock, struct.unpack(">H", header)[0])

    def _answer(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            control = message[0]
            if control == 0x04:
                return self.atr
            if control in (0x01, 0x02) and hasattr(self.logic, "reset"):
                self.logic.reset()
            return None
        self.apdus.append(message)
        if message[:4] == b"\xff\xca\x00\x00":
            return self.uid + OK if self.uid else b"\x6a\x81"
        return self.logic.process_apdu(message)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        # vpcd writes the length and the payload separately (Nagle then holds the payload
        # until the length is ACKed): without QUICKACK after every receive each message
        # waits out our delayed ACK, about 40 ms. Linux clears the flag on its own.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data += chunk
    return data
