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
"""
from __future__ import annotations

import collections
import errno
import logging
import threading
import time
from dataclasses import replace

try:
    import nfc
    import nfc.clf
    import nfc.tag
    from nfc.tag import tt2, tt3, tt4
except ImportError:  # reported by init(): the rest of the app works without nfcpy
    nfc = None

from drivers import hce, ndef_apdu
from drivers.base import (
    HCE, MALFORMED, MAX_NDEF_BYTES, MOVED, TYPE2, TYPE3, TYPE4, UID_ONLY, UNSUPPORTED, Reader,
    ReaderError, ReaderState, ReaderTimeout, ReaderUnavailable, TagRead, UnknownBackend,
)

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("106A", "106B", "212F")
KNOWN_TARGETS = {"106A", "212A", "424A", "106B", "212B", "424B", "212F", "424F"}
USB_HINT = ("plug one in; on Linux blacklist the kernel drivers pn533_usb and port100, "
            "install the udev rule, and make sure pcscd is not holding the reader")


class _QuietReopen(logging.Filter):
    """nfcpy logs every failed open at ERROR; a reader that stays unplugged and is retried
    each second would flood the log, so retries after the first are kept quiet."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_QUIET = _QuietReopen()
if nfc is not None:
    logging.getLogger("nfc.clf").addFilter(_QUIET)


class _Moved(Exception):
    """The tag left the field."""


class _Malformed(Exception):
    """The tag answered something that breaks its own specification."""


def nfcpy_path(spec: str) -> str:
    """``nfcpy:usb:054c:06c3`` -> ``usb:054c:06c3`` (nfcpy's own path syntax)."""
    prefix, _, rest = spec.partition(":")
    kind, _, args = rest.partition(":")
    if prefix.strip().lower() != "nfcpy" or kind not in ("usb", "tty", "udp", "com"):
        raise UnknownBackend(f"unknown nfcpy reader {spec!r}: use nfcpy:usb, nfcpy:usb:<vid>:<pid>, "
                             "nfcpy:tty:<port> or nfcpy:udp:<host>:<port>")
    if kind == "tty" and args.startswith("/dev/tty"):
        args = args[len("/dev/tty"):]
    if kind in ("tty", "com") and not args:
        raise UnknownBackend(f"{spec!r} needs a port, e.g. nfcpy:tty:USB0")
    return f"{kind}:{args}" if args else kind


def _error_detail(path: str, exc: BaseException | None) -> str:
    """What a technician reads when no reader could be opened."""
    if exc is None:
        if path.startswith("usb"):
            return f"no supported NFC reader found on {path}: {USB_HINT}"
        return f"no supported NFC reader answered on {path}"
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return f"permission denied opening {path}: install the udev rule for the reader"
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:
        return f"{path} is busy: another program (pcscd?) holds the reader"
    if path.startswith("udp") and isinstance(exc, ValueError):
        return f"nfcpy cannot use {path} (the port has a name in /etc/services): pick another port"
    return f"cannot open {path}: {exc}"


def _product(tag) -> str:
    product = tag.product
    return product[4:] if product.startswith("NXP ") else product


def _framing_problem(message: bytes) -> str | None:
    """Check the NDEF record framing (flags and lengths), not the content."""
    i, first = 0, True
    while i < len(message):
        header = message[i]
        if bool(header & 0x80) != first:
            return "NDEF message-begin flag misplaced"
        short, has_id = header & 0x10, header & 0x08
        fixed = 2 + (1 if short else 4) + (1 if has_id else 0)
        if i + fixed > len(message):
            return "NDEF record header runs past the end of the message"
        type_len = message[i + 1]
        payload_len = message[i + 2] if short else int.from_bytes(message[i + 2:i + 6], "big")
        id_len = message[i + fixed - 1] if has_id else 0
        i += fixed + type_len + payload_len + id_len
        if i > len(message):
            return "NDEF record runs past the end of the message"
        if header & 0x40:
            return None if i == len(message) else "data after the NDEF message-end record"
        first = False
    return None if first else "NDEF message has no end record"


def _command_failed(tag, exc: Exception) -> Exception:
    """Translate an nfcpy tag error: a timeout is a tag that left; a garbled frame is
    checked against the tag's presence; a status the tag chose to send is its fault."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, nfc.tag.TagCommandError) and code is not None and code > 0:
        return _Malformed(f"the tag refused a command ({exc})")
    if code == nfc.tag.TIMEOUT_ERROR or isinstance(exc, nfc.clf.TimeoutError):
        return _Moved(str(exc))
    try:
        present = tag.is_present
    except nfc.clf.CommunicationError:
        present = False
    return _Malformed(f"the tag broke the protocol ({exc})") if present else _Moved(str(exc))


def _type2_link(tag):
    """nfcpy's Type 2 READ/WRITE behind the PC/SC storage-card pseudo-APDUs that
    `drivers.ndef_apdu` speaks (`FF B0 00 p 10`, `FF D6 00 p 04`), failures translated."""
    def transceive(apdu: bytes) -> bytes:
        try:
            if apdu[1] == 0xB0:
                return bytes(tag.read(apdu[3])) + ndef_apdu.SW_OK
            tag.write(apdu[3], apdu[5:9])
            return ndef_apdu.SW_OK
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise _command_failed(tag, exc) from exc
    return transceive


def _read_type3(tag) -> bytes | None:
    """NDEF of a Type 3 tag (T3T 1.0): attribute block 0, then blocks 1.. in NBr steps."""
    if tag.sys != 0x12FC:
        try:
            tag.idm, tag.pmm = tag.polling(0x12FC)[:2]
            tag.sys = 0x12FC
        except tt3.Type3TagCommandError as exc:
            if tag.is_present:
                return None  # no NDEF system on this card
            raise _Moved(str(exc)) from exc
    attributes = bytes(tag.read_from_ndef_service(0))
    if sum(attributes[:14]) != int.from_bytes(attributes[14:16], "big"):
        raise _Malformed("the NDEF attribute block fails its checksum")
    version, nbr, nmaxb = attributes[0], attributes[1], int.from_bytes(attributes[3:5], "big")
    writing, length = attributes[9], int.from_bytes(attributes[11:14], "big")
    if version >> 4 != 1:
        raise _Malformed(f"unsupported Type 3 mapping version {version >> 4}.{version & 15}")
    if not nbr:
        raise _Malformed("the attribute block allows no block per read")
    if writing == 0x0F:
        raise _Malformed("an earlier write to the tag was interrupted")
    if length > MAX_NDEF_BYTES:
        raise _Malformed(f"NDEF message of {length} bytes exceeds the {MAX_NDEF_BYTES}-byte limit")
    if length > nmaxb * 16:
        raise _Malformed(f"NDEF length {length} exceeds the tag's {nmaxb * 16}-byte data area")
    blocks, step, data = (length + 15) // 16, min(nbr, 15), bytearray()
    for first in range(1, blocks + 1, step):
        data += tag.read_from_ndef_service(*range(first, min(first + step, blocks + 1)))
    return bytes(data[:length])


def _apdu_link(tag):
    """`transceive(apdu) -> response APDU` over nfcpy's ISO-DEP, failures translated."""
    def transceive(apdu: bytes) -> bytes:
        try:
            return bytes(tag.transceive(apdu) or b"")
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise _command_failed(tag, exc) from exc
    return transceive


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
        clf = nfc.ContactlessFrontend()
        _QUIET.local.active = quiet
        try:
            opened = clf.open(self.path)
        except (OSError, ValueError) as exc:
            raise ReaderUnavailable(_error_detail(self.path, exc)) from exc
        finally:
            _QUIET.local.active = False
        if not opened:
            raise ReaderUnavailable(_error_detail(self.path, None))
        return clf

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
        found = {"technology": UID_ONLY}
        try:
            try:
                found = self._content(tag, found)
            except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
                raise _command_failed(tag, exc) from exc
        except _Moved:
            found.update(problem=MOVED, detail="the tag moved away during the read")
        except (_Malformed, ndef_apdu.MalformedTag, hce.HceError) as exc:
            found.update(problem=MALFORMED, detail=str(exc))
        except OSError:
            raise  # the reader itself failed: nfcpy's connect() turns this into a reopen
        except Exception as exc:  # nfcpy choking on a hostile tag must not take the reader down
            log.exception("unexpected failure reading a %s tag", _product(tag))
            found.update(problem=MALFORMED,
                         detail=f"the tag's answer could not be parsed ({type(exc).__name__})")
        return self._done(TagRead(reader=self.spec, uid=bytes(tag.identifier), tag_type=_product(tag),
                                  **found), started)

    def _content(self, tag, found: dict) -> dict:
        """What the tag holds; `found` carries the technology so far for the error paths."""
        if isinstance(tag, tt2.Type2Tag):
            found["technology"] = TYPE2
            ndef = ndef_apdu.read_type2(_type2_link(tag)).ndef
        elif isinstance(tag, tt3.Type3Tag):
            found["technology"] = TYPE3
            ndef = _read_type3(tag)
        elif isinstance(tag, tt4.Type4Tag):
            found["technology"] = TYPE4
            transceive = _apdu_link(tag)
            try:
                return {"technology": HCE, "hce": hce.exchange(transceive, self.kiosk_id)}
            except hce.NotOurApp:
                pass  # a tag, or a phone without the app: read it as a Type 4 tag
            try:
                ndef = ndef_apdu.read_type4(transceive).ndef
            except ndef_apdu.NoNdefApp:
                ndef = None
        else:
            return found
        if ndef is None:
            uid = bytes(tag.identifier)
            if len(uid) == 4 and uid[0] == 0x08:  # a random UID: worthless as a credential
                return {"technology": UID_ONLY, "problem": UNSUPPORTED,
                        "detail": "this phone has no kiosk app (its serial number changes every tap)"}
            return {"technology": UID_ONLY}
        if reason := _framing_problem(ndef):
            raise _Malformed(reason)
        return {"technology": found["technology"], "ndef": ndef}

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
        if isinstance(tag, tt2.Type2Tag):
            technology, write, link = TYPE2, ndef_apdu.write_type2, _type2_link(tag)
        elif isinstance(tag, tt4.Type4Tag):
            technology, write, link = TYPE4, ndef_apdu.write_type4, _apdu_link(tag)
        else:
            raise ReaderError(f"writing {_product(tag)} tags is not supported: use a Type 2 or Type 4 tag")
        try:
            try:
                write(link, message, lock and technology != TYPE2)
                # nfcpy's protect() also sets an NTAG's CFGLCK, so no password can be set later
                if lock and technology == TYPE2 and not tag.protect():
                    raise ReaderError("the message was written but the tag could not be locked")
            except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
                raise _command_failed(tag, exc) from exc
        except _Moved:
            return TagRead(self.spec, technology, uid=bytes(tag.identifier), tag_type=_product(tag),
                           problem=MOVED, detail="the tag moved away during the write: write it again")
        except ndef_apdu.TagReadOnly as exc:
            raise ReaderError(f"the tag is read-only or cannot be locked: {exc}") from exc
        except ndef_apdu.TagTooSmall as exc:
            raise ReaderError(f"the message does not fit: {exc}") from exc
        except (ndef_apdu.NdefApduError, _Malformed) as exc:
            raise ReaderError(f"the tag cannot take this NDEF message: {exc}") from exc
        read = self._read(tag)
        if read.problem is None and read.ndef != message:
            raise ReaderError("the tag does not read back what was written")
        return read


def init(spec: str, **options) -> NfcpyReader:
    if nfc is None:
        raise ReaderUnavailable("nfcpy is not installed (pip install nfcpy)")
    return NfcpyReader(spec, **options)
