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
The cards live in tests/emulators/nfc_udp_cards.py (Type A, NTAG213, FeliCa) and
tests/emulators/nfc_udp_isodep.py (ISO-DEP, Type 4, phone) and are re-exported here;
this module is the field only: the socket, its thread, held polls and late answers.

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
import select
import socket
import struct
import threading
import time

from tests.emulators.nfc_udp_cards import (
    FELICA_PMM, NDEF_SYSTEM, NTAG213_VERSION, Card, Felica, Ntag213, TypeA, felica_attributes,
    ndef_tlv,
)
from tests.emulators.nfc_udp_isodep import T4_ATS, IsoDepA, WritableType4, phone, type4_tag

__all__ = [  # the cards are re-exported: tests import everything from here
    "FELICA_PMM", "LATE_S", "NDEF_SYSTEM", "NTAG213_VERSION", "SO_TIMESTAMPNS", "T4_ATS",
    "Card", "Felica", "IsoDepA", "Ntag213", "TypeA", "UdpField", "WritableType4",
    "felica_attributes", "ndef_tlv", "phone", "type4_tag",
]

log = logging.getLogger(__name__)

SO_TIMESTAMPNS = 35  # Linux: the kernel stamps each datagram's arrival
LATE_S = 0.003  # below nfcpy's shortest timeout (3.6 ms FeliCa polling): no retry can follow


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
