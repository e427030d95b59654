"""A test-side RF field for nfcpy's udp transport: tags and phones for the real nfcpy stack.

    with UdpField() as field:
        field.place(Ntag213(ndef=message))
        reader = drivers.open_reader(field.spec, targets=["106A"])

nfcpy's `udp:<host>:<port>` reader sends each frame as one datagram of ASCII
`"<bitrate> <hex>"` (no CRC), and `RFOFF` when it mutes the field (FIELD-NOTES.md). This is
the other end: a plain loopback socket served by one thread (nfcpy's listen side re-binds
its socket between activations and loses frames). It plays one card at a time:

| card | technology | what it speaks |
| --- | --- | --- |
| `Ntag213` | 106A, Type 2 | anticollision (7-byte UID), READ, WRITE (lock bits honoured), GET_VERSION, READ_SIG |
| `Felica` | 212F, Type 3 | polling, read/write without encryption (nfcpy's own Type 3 card logic), NDEF attribute block |
| `IsoDepA` | 106A, ISO-DEP | RATS/ATS, I-blocks with chaining both ways, R(ACK)/R(NAK), S(DESELECT); APDUs go to an app |
| `type4_tag()` | 106A, Type 4 | `IsoDepA` + `WritableType4` (tests/emulators/type4.py plus UPDATE BINARY) |
| `phone()` | 106A, ISO-DEP | `IsoDepA` + `drivers.hce_phone.Phone`, random 4-byte UID, Android-like ATS |

Hostile knobs: `vanish_after=N` (the card answers N data commands, then leaves the field
for good), `stall_at=N, stall_s=S` (the Nth data command is answered S seconds late), raw memory / attribute blocks / capability containers for bad TLVs, oversized
lengths and bad CCs, and `UdpField.fail()` (every frame comes back undecodable, which
makes nfcpy's stack raise: the closest udp comes to a broken or unplugged reader).

A poll that no card answers is held for `poll_hold` seconds (a real reader's poll
timeout), then answered with a frame that does not decode (`"<bitrate>"` alone), which
nfcpy takes at once as "no target" instead of sitting out its fixed 1 s. A card placed
while a poll is held answers it at once, as a tag entering a polling reader's field does;
`place()` returns that moment (`time.perf_counter()`) for latency measurements.

The field is half-duplex like a real link: when this thread answers late (a loaded
machine) and nfcpy has already timed out and retried, the stale answer is never read as
the answer to the reader's next command (over plain udp it would be: a silently wrong
Type 2 page, or an ISO-DEP block-number error). See `_reply`.
"""
from __future__ import annotations

import logging
import os
import select
import socket
import struct
import threading
import time

from nfc.clf import LocalTarget
from nfc.tag.tt3 import Type3TagEmulation

from drivers.hce_phone import Phone
from tests.emulators.type4 import CC_FILE, NDEF_FILE, OK, Type4NdefCard

log = logging.getLogger(__name__)

NTAG213_VERSION = bytes.fromhex("0004040201000F03")
T4_ATS = bytes.fromhex("0578807002")  # FSCI 8 (256 bytes), FWI 7 (about 39 ms), like NTAG 424 / Android
FELICA_PMM = bytes.fromhex("00019f9f9f9f9f9f")  # IC 01: FeliCa Standard RC-S915; ~58 ms timeouts
NDEF_SYSTEM = b"\x12\xfc"
SO_TIMESTAMPNS = 35  # Linux: the kernel stamps each datagram's arrival
LATE_S = 0.003  # below nfcpy's shortest timeout (3.6 ms FeliCa polling): no retry can follow


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


def _is_poll(brty: str, data: bytes) -> bool:
    if brty.endswith("A"):
        return data in (b"\x26", b"\x52")
    if brty.endswith("B"):
        return data[:1] == b"\x05"
    return len(data) >= 2 and data[1] == 0x00


def _free_udp_socket(host: str) -> socket.socket:
    """A bound UDP socket on a port with no /etc/services name: nfcpy's udp device turns
    the port into a service name and then fails on int("discard") and the like."""
    for _ in range(100):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        try:
            socket.getservbyport(sock.getsockname()[1], "udp")
        except OSError:
            return sock
        sock.close()
    raise RuntimeError("no UDP port without a service name")


class UdpField:
    """The RF field of one nfcpy udp reader: place and remove cards, count frames."""

    def __init__(self, poll_hold: float | None = 0.05, host: str = "127.0.0.1") -> None:
        self.host, self.poll_hold = host, poll_hold
        self.frames = 0
        self.late_answers = 0  # late answers dropped or retries they served (see _reply)
        self._late: tuple | None = None  # (addr, command) of the last answer sent late
        self.card: Card | None = None
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._held: tuple | None = None  # (addr, brty, data, deadline) of an unanswered poll
        self._polling = threading.Event()
        self._failing = False
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def spec(self) -> str:
        return f"nfcpy:udp:{self.host}:{self.port}"

    def start(self) -> "UdpField":
        self._sock = _free_udp_socket(self.host)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._thread = threading.Thread(target=self._serve, name="udp-field", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing = True
        self._wake_w.send(b"x")
        if self._thread:
            self._thread.join(2)
        for sock in (self._sock, self._wake_r, self._wake_w):
            if sock:
                sock.close()

    def __enter__(self) -> "UdpField":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what a test does ------------------------------------------------------------
    def place(self, card: Card) -> float:
        """The card enters the field; returns the moment it did (time.perf_counter())."""
        with self._lock:
            self.card = card
            self._polling.clear()
            entered = time.perf_counter()
            self._answer_held(time.monotonic())
        return entered

    def remove(self) -> None:
        with self._lock:
            if self.card:
                self.card.power_off()
            self.card = None
            self._polling.clear()

    def wait_polling(self, timeout: float = 2.0) -> bool:
        """True once the reader polls a field that has no card answering (it saw the removal)."""
        return self._polling.wait(timeout)

    def fail(self) -> None:
        """From now on every frame comes back undecodable (a broken reader)."""
        self._failing = True

    def recover(self) -> None:
        self._failing = False

    # -- the field's thread ----------------------------------------------------------
    def _serve(self) -> None:
        while not self._closing:
            with self._lock:
                deadline = self._held[3] if self._held else None
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = select.select([self._sock, self._wake_r], [], [], timeout)[0]
            if self._wake_r in ready:
                self._wake_r.recv(64)
            if self._sock in ready:
                try:
                    datagram, ancillary, _, addr = self._sock.recvmsg(4096, socket.CMSG_SPACE(16))
                except OSError as exc:  # e.g. an ICMP error from a reader socket that closed
                    log.debug("udp field receive failed: %s", exc)
                    continue
                arrived = next((sec + nsec / 1e9 for level, kind, raw in ancillary
                                if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS)
                                for sec, nsec in [struct.unpack("ll", raw[:16])]), time.time())
                with self._lock:
                    self._frame(datagram, addr, arrived)
            with self._lock:
                self._answer_held(time.monotonic())

    def _frame(self, datagram: bytes, addr, arrived: float) -> None:
        self.frames += 1
        if datagram.startswith(b"RFOFF"):
            if self.card:
                self.card.power_off()
            if self._held and self._held[0] == addr:
                self._held = None
            return
        try:
            brty_raw, hex_data = datagram.split()
            brty, data = brty_raw.decode("ascii"), bytes.fromhex(hex_data.decode("ascii"))
        except ValueError:
            log.debug("udp field ignored an undecodable frame")
            return
        if self._failing:
            self._send(brty + " zz", addr)
            return
        late, self._late = self._late, None
        if late and late[0] == addr and self.card and self.card.is_retry(data, late[1]):
            self.late_answers += 1  # the late answer, already on its way, serves this retry
            return
        response = self._card_answer(brty, data)
        if response is not None:
            self._reply(f"{brty} {response.hex()}", addr, data, arrived)
        elif _is_poll(brty, data) and self.poll_hold is not None:
            self._held = (addr, brty, data, time.monotonic() + self.poll_hold)
            self._polling.set()

    def _card_answer(self, brty: str, data: bytes) -> bytes | None:
        card = self.card
        if card is None or card.gone or brty not in card.bitrates:
            return None
        return card.answer(data)

    def _answer_held(self, now: float) -> None:
        if not self._held:
            return
        addr, brty, data, deadline = self._held
        response = self._card_answer(brty, data)
        if response is not None:
            self._held = None
            self._send(f"{brty} {response.hex()}", addr)
        elif now >= deadline:
            self._held = None
            self._send(brty, addr)  # no hex: nfcpy's "no data" TransmissionError, i.e. no target

    def _reply(self, text: str, addr, command: bytes, arrived: float) -> None:
        """Answer `command` like a half-duplex card. Loopback loses nothing: a reader only
        repeats itself when this thread was late, and a late answer must never be read as
        the answer to the reader's *next* command (on a real link it cannot be)."""
        if self._reader_moved_on(addr):  # it timed out and already sent something newer
            self.late_answers += 1
            return
        self._send(text, addr)
        if time.time() - arrived > LATE_S:  # it may time out and retry just after this lands
            self._late = (addr, command)

    def _send(self, text: str, addr) -> None:
        try:
            self._sock.sendto(text.encode("ascii"), addr)
        except OSError as exc:
            log.debug("udp field send failed: %s", exc)

    def _reader_moved_on(self, addr) -> bool:
        if not select.select([self._sock], [], [], 0)[0]:
            return False
        try:
            return self._sock.recvfrom(1, socket.MSG_PEEK)[1] == addr
        except OSError:
            return False
