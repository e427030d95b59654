"""nfcpy readers (USB, serial, udp): one tap -> one `TagRead`, through nfcpy's own stack.

    reader = drivers.open_reader("nfcpy:usb", kiosk_id="dev-42")
    reader.start(on_read=service.on_tag, on_state=service.on_reader_state)

Specs: ``nfcpy:usb``, ``nfcpy:usb:<vid>:<pid>``, ``nfcpy:tty:<port>[:<driver>]`` (``USB0``,
``/dev/ttyAMA0``), ``nfcpy:udp:<host>:<port>`` (nfcpy's simulated reader: the tests).
Options: ``kiosk_id`` (signed by phones), ``targets`` (default 106A, 106B, 212F),
``retry_s`` (reopen period), ``poll_interval`` (least time between poll rounds),
``repeat_guard_s`` (a tag read fine that is back this soon after leaving is field-edge
flicker, not a new tap).

| capability | how | usb / tty | udp |
| --- | --- | --- | --- |
| Type 2 (NTAG21x, Ultralight) NDEF | nfcpy READ under `drivers.ndef_apdu`'s CC + TLV walk | yes | yes |
| Type 3 (FeliCa) NDEF | system 12FC, attribute block + read w/o encryption | yes | yes |
| Type 4 NDEF | `drivers.ndef_apdu` over ISO-DEP | yes | yes (4A) |
| phone (HCE) | SELECT kiosk AID + signed challenge (`drivers.hce`), else Type 4 NDEF | yes | yes |
| write NDEF | Type 2 and Type 4 (`ndef_apdu`; length zeroed first), read back to verify | yes | yes |
| lock | Type 2: nfcpy `tag.protect()` (lock bits, CC, NTAG CFGLCK); Type 4: CC write-access byte | yes | yes |
| removal / one tap one read | nfcpy presence check after the read | yes | yes |
| unplug / replug | DISCONNECTED on a device error, reopened every `retry_s` | yes | n/a (no device) |
| feedback | ACR122U buzzer + LED via nfcpy; a no-op elsewhere | ACR122U | no-op |

The frontend is opened, used and closed in the reader thread only (nfcpy's connect()
blocks; `stop()` takes effect between poll rounds or presence checks). A tag pulled
mid-read gives `MOVED`; a tag that answers nonsense gives `MALFORMED` with the reason;
neither ever raises out of the reader thread. This module never logs UIDs, NDEF
contents or credentials (keep the ``nfc`` logger above DEBUG in production: nfcpy's own
debug output has them).

This module is the reader's lifecycle: its thread, the poll loop, tap bookkeeping,
feedback and the one-shot technician tools. It opens devices through
`drivers.nfcpy_device` and hands each activated tag to `drivers.nfcpy_tags` (per tag
type reading and writing, which checks NDEF framing with `drivers.nfcpy_ndef`); it must
not talk to a tag itself.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import replace

try:
    import nfc
except ImportError:  # reported by init(): the rest of the app works without nfcpy
    nfc = None

from drivers import hce, nfcpy_tags
from drivers.base import (
    MALFORMED, MAX_NDEF_BYTES, UID_ONLY, Reader, ReaderError, ReaderState, ReaderTimeout,
    ReaderUnavailable, TagRead,
)
from drivers.nfcpy_device import USB_HINT, nfcpy_path, open_frontend

__all__ = ["DEFAULT_TARGETS", "KNOWN_TARGETS", "USB_HINT", "NfcpyReader", "init", "nfcpy_path"]

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("106A", "106B", "212F")
KNOWN_TARGETS = {"106A", "212A", "424A", "106B", "212B", "424B", "212F", "424F"}


class NfcpyReader(Reader):
    """A reader behind nfcpy (usually built by `drivers.open_reader`):

        reader = NfcpyReader("nfcpy:usb:054c:06c3", kiosk_id="dev-42", targets=["106A"])
        reader.start(on_read=service.on_tag)
    """

    def __init__(self, spec: str, kiosk_id: str = "", targets=DEFAULT_TARGETS, retry_s: float = 1.0,
                 poll_interval: float = 0.05, repeat_guard_s: float = 0.5) -> None:
        self.spec = spec
        super().__init__()
        self.path = nfcpy_path(spec)
        self.targets = [str(t).upper() for t in targets]
        unknown = set(self.targets) - KNOWN_TARGETS
        if unknown or not self.targets:
            raise ReaderError(f"unknown targets {sorted(unknown)}: use some of {sorted(KNOWN_TARGETS)}")
        try:
            hce.challenge_apdu(bytes(hce.NONCE_BYTES), kiosk_id)
        except ValueError as exc:
            raise ReaderError(f"kiosk_id: {exc}") from None
        self.kiosk_id = kiosk_id
        self.retry_s, self.poll_interval, self.repeat_guard_s = retry_s, poll_interval, repeat_guard_s
        self._feedback: collections.deque[bool] = collections.deque(maxlen=4)
        self._clf = None
        self._round_started: float | None = None
        self._in_field = False
        self._discovered = 0.0
        self._activating = None  # the target nfcpy is activating (between on-discover and on-connect)
        self._broken_uid: bytes | None = None  # a tag that crashed activation, reported once
        self._last_good: tuple[bytes, float] | None = None  # (uid, when it left the field)

    # -- public -------------------------------------------------------------------
    def feedback(self, ok: bool) -> None:
        self._feedback.append(ok)  # played by the reader thread, which owns the device

    def read_once(self, timeout: float = 10.0) -> TagRead:
        return self._once(self._read, timeout)

    def write_ndef(self, message: bytes, lock: bool = False, timeout: float = 10.0) -> TagRead:
        if len(message) > MAX_NDEF_BYTES:
            raise ReaderError(f"message of {len(message)} bytes exceeds the {MAX_NDEF_BYTES}-byte limit")
        return self._once(lambda tag: self._write(tag, bytes(message), lock), timeout)

    # -- the reader thread --------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        self._feedback.clear()  # nothing stale from before this start
        while not stop.is_set():
            try:
                self._clf = self._open(quiet=self._status.state == ReaderState.DISCONNECTED)
            except ReaderUnavailable as exc:
                if self._status.state != ReaderState.DISCONNECTED:
                    log.warning("%s; retrying every %g s", exc, self.retry_s)
                self._set_state(ReaderState.DISCONNECTED, str(exc))
                stop.wait(self.retry_s)
                continue
            try:
                self._poll(stop)
            finally:
                self._clf.close()
                self._clf = None
            if not stop.is_set():
                stop.wait(self.retry_s)

    def _open(self, quiet: bool = False):
        return open_frontend(self.path, quiet=quiet)

    def _poll(self, stop: threading.Event) -> None:
        options = {"targets": self.targets, "iterations": 1, "beep-on-connect": False,
                   "on-discover": self._on_discover, "on-connect": self._on_connect,
                   "on-release": self._on_release}
        while not stop.is_set():
            self._round_started, self._in_field, self._activating = None, False, None
            try:
                result = self._clf.connect(rdwr=options, terminate=self._terminate)
            except Exception as exc:  # nfcpy lets raw errors out when a device or a tag sends garbage
                if self._activating is not None:  # the tag's answer to activation broke nfcpy
                    self._activation_failed(self._activating, exc)
                    stop.wait(max(self.poll_interval, 0.05))
                    continue
                log.warning("reader %s failed: %r", self.path, exc)
                self._set_state(ReaderState.DISCONNECTED, f"reader error on {self.path}: {exc!r}")
                return
            if result is False and not stop.is_set():  # nfcpy caught an IOError or a target it cannot poll
                self._set_state(ReaderState.DISCONNECTED, f"reader on {self.path} stopped answering "
                                f"(unplugged, or it cannot poll {'/'.join(self.targets)}); retrying")
                return

    def _terminate(self) -> bool:
        """Called by nfcpy between poll rounds and presence checks: the only moments the
        reader thread is free, so feedback is played and the poll rate paced here."""
        while self._feedback:
            self._signal(self._feedback.popleft())
        if self._stop.is_set():
            return True
        self._activating = None
        if not self._in_field:
            now = time.monotonic()
            if self._round_started is not None:  # a whole poll round went through cleanly
                self._broken_uid = None
                self._set_state(ReaderState.CONNECTED, str(self._clf.device))
                pause = self.poll_interval - (now - self._round_started)
                if pause > 0 and self._stop.wait(pause):
                    return True
            self._round_started = time.monotonic()
        return False

    def _on_discover(self, target) -> bool:
        self._discovered = time.perf_counter()
        self._set_state(ReaderState.CONNECTED, str(self._clf.device))
        if target.sel_res and target.sel_res[0] & 0x60 == 0x40:
            return False  # NFC-DEP only (peer to peer); ISO-DEP phones that also offer it are read
        if target.sensf_res and target.sensf_res[1:3] == b"\x01\xfe":
            return False
        self._activating = target
        return True

    def _activation_failed(self, target, exc: Exception) -> None:
        uid = bytes(target.sdd_res or (target.sensf_res or b"")[1:9] or (target.sensb_res or b"")[1:5])
        if uid != self._broken_uid:  # once per tap, not once per poll round while it stays
            log.warning("nfcpy could not activate a tag: %r", exc)
            self._broken_uid = uid
            self._emit(TagRead(self.spec, UID_ONLY, uid=uid or None, problem=MALFORMED,
                               detail="the tag's answer to activation could not be parsed"))

    def _on_connect(self, tag) -> bool:
        self._in_field, self._activating = True, None
        uid = bytes(tag.identifier)
        if self._last_good and self._last_good[0] == uid and \
                time.monotonic() - self._last_good[1] < self.repeat_guard_s:
            log.debug("the same tag came back at once; not read again")
            return True
        read = self._read(tag)
        self._emit(read)
        self._last_good = (uid, float("inf")) if read.problem is None else None
        return True  # nfcpy now waits until the tag leaves: one tap, one read

    def _on_release(self, tag) -> bool:
        self._in_field = False
        if self._last_good and self._last_good[0] == bytes(tag.identifier):
            self._last_good = (self._last_good[0], time.monotonic())
        return True

    def _signal(self, ok: bool) -> None:
        device = self._clf.device if self._clf else None
        chipset = getattr(device, "chipset", None)
        try:
            if hasattr(chipset, "set_buzzer_and_led_to_active"):  # ACR122U
                chipset.set_buzzer_and_led_to_active(100 if ok else 600)
                chipset.set_buzzer_and_led_to_default()
            elif device is not None:
                device.turn_on_led_and_buzzer()
                device.turn_off_led_and_buzzer()
        except OSError as exc:
            log.warning("reader feedback failed: %s", exc)

    # -- one tag ------------------------------------------------------------------
    def _read(self, tag) -> TagRead:
        started = time.perf_counter()
        return self._done(nfcpy_tags.read(tag, self.spec, self.kiosk_id), started)

    def _done(self, read: TagRead, started: float) -> TagRead:
        read_ms = (time.perf_counter() - started) * 1000
        timings = {"read_ms": read_ms}
        if self._discovered and self._discovered <= started:
            timings["activate_ms"] = (started - self._discovered) * 1000  # sense -> on-connect
        log.debug("%s %s read in %.1f ms%s", read.technology, read.tag_type, read_ms,
                  f" ({read.problem})" if read.problem else "")
        return replace(read, read_ms=read_ms, timings=timings)

    # -- technician tools -----------------------------------------------------------
    def _once(self, handle, timeout: float) -> TagRead:
        """Open the frontend in the calling thread, handle the first tag, close."""
        if self.running:
            raise ReaderError("stop the reader before using it for a single read or write")
        clf = self._open()
        outcome: list = []
        deadline = time.monotonic() + timeout

        def on_connect(tag) -> bool:
            try:
                outcome.append(handle(tag))
            except ReaderError as exc:
                outcome.append(exc)
            return False  # done: do not wait for the tag to leave

        try:
            clf.connect(rdwr={"targets": self.targets, "iterations": 1, "beep-on-connect": False,
                              "on-connect": on_connect},
                        terminate=lambda: bool(outcome) or time.monotonic() > deadline)
        finally:
            clf.close()
        if not outcome:
            raise ReaderTimeout(f"no tag presented within {timeout:.0f} s")
        if isinstance(outcome[0], ReaderError):
            raise outcome[0]
        return outcome[0]

    def _write(self, tag, message: bytes, lock: bool) -> TagRead:
        return nfcpy_tags.write(tag, self.spec, message, lock, read_back=self._read)


def init(spec: str, **options) -> NfcpyReader:
    if nfc is None:
        raise ReaderUnavailable("nfcpy is not installed (pip install nfcpy)")
    return NfcpyReader(spec, **options)
