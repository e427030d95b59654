"""PC/SC readers through pcscd and pyscard (ACR122U, ACR1252U, Identiv, HID Omnikey, ...).

    reader = drivers.open_reader("pcsc:ACR122", kiosk_id="dev-42")
    reader.start(on_read=service.on_tag, on_state=service.on_reader_state)

Specs: ``pcsc`` (the first reader whose name looks contactless, else the first reader that
is not a SAM slot) and ``pcsc:<pattern>`` (case-insensitive substring of the reader name,
or a glob when it has ``*?[``). Options: ``kiosk_id`` (bound into the phone's challenge),
``apdu_timeout`` (seconds, default 2).

| capability | how |
| --- | --- |
| UID | `FF CA 00 00 00` (an answer of 6A81, as contact readers give, means no UID) |
| phone (HCE) | SELECT the kiosk AID + signed challenge (`drivers.hce`) |
| Type 4 NDEF | read; write with UPDATE BINARY; lock via the CC write-access byte |
| Type 2 NDEF | PC/SC part 3 READ / UPDATE BINARY `FF B0` / `FF D6`; lock bits + CC |
| MIFARE Classic, FeliCa | UID only (told apart by the reader's PC/SC part 3 ATR) |
| reader plugged / unplugged | CONNECTED / DISCONNECTED within about 1 s (PnP + re-list) |
| pcscd stopped or restarted | DISCONNECTED with the reason; a new context is tried every second |
| silent card | every PC/SC call on a card runs under a watchdog (`apdu_timeout`) |
| feedback | ACS readers only: LED + buzzer pseudo-APDU `FF 00 40`, best effort |

Why a thread per card (`_Link`): pcsc-lite cannot cancel `SCardTransmit`, and it
serialises the calls on one context, so not even `SCardDisconnect` or
`SCardReleaseContext` gets through while a transmit waits on a silent card. Each card is
therefore talked to through its own context, from its own thread. When a call overruns,
the reader thread reports `MOVED` and goes back to its monitoring context (which never
touches a card, so it is never blocked); the stuck thread disconnects and releases its
context itself once its call returns: when the card leaves, or pcscd goes away.
This module never logs UIDs, NDEF contents or credentials.
"""
from __future__ import annotations

import contextlib
import fnmatch
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, replace

from drivers import hce, ndef_apdu
from drivers.base import (
    HCE, MALFORMED, MOVED, TYPE2, TYPE4, UID_ONLY, UNSUPPORTED, Reader, ReaderError,
    ReaderState, ReaderTimeout, ReaderUnavailable, TagRead,
)

try:
    from smartcard import scard
except ImportError:  # init() says so; the rest of the app works without pyscard
    scard = None

log = logging.getLogger(__name__)

PNP = "\\\\?PnP?\\Notification"
WAIT_MS = 1000  # GetStatusChange slice: also how often the reader list is re-read
RETRY_S = 1.0  # pcscd absent: how often to try again
CONTACTLESS_HINTS = ("picc", "contactless", "nfc", "acr122", "acr125", "acr1552", "rfid",
                     " cl ", "5022", "5422", "5427", "3700", "3720", "3721")
if scard is not None:
    CONTEXT_LOST = {scard.SCARD_E_NO_SERVICE, scard.SCARD_F_COMM_ERROR,
                    scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE}
    CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
                 scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_W_UNPOWERED_CARD,
                 scard.SCARD_E_READER_UNAVAILABLE}


class _PcscError(Exception):
    def __init__(self, rc: int, what: str) -> None:
        self.rc = rc
        reason = "pcscd not running" if rc == scard.SCARD_E_NO_SERVICE else scard.SCardGetErrorMessage(rc).strip()
        super().__init__(f"{what}: {reason} (0x{rc & 0xFFFFFFFF:08X})")


class _CardGone(Exception):
    """The card left the field."""


class _CardSilent(Exception):
    """The card stopped answering (the watchdog fired)."""


class _Stopped(Exception):
    """stop() was called while waiting on the card."""


def _check(rc: int, what: str) -> None:
    if rc in CARD_GONE:
        raise _CardGone(f"card left the field during {what} (0x{rc & 0xFFFFFFFF:08X})")
    if rc:
        raise _PcscError(rc, what)


class _Link:
    """One PC/SC context and card handle, used only from their own thread."""

    def __init__(self, name: str) -> None:
        self.context = self.card = self.pci = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name=f"pcsc-card:{name}", daemon=True)
        self.thread.start()

    def call(self, fn, *args, timeout: float, stop: threading.Event):
        """Run `fn(*args)` in the link's thread; wait at most `timeout` or until `stop`."""
        box: list = []
        done = threading.Event()
        self._jobs.put((fn, args, box, done))
        deadline = time.monotonic() + timeout
        while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if stop.is_set():
                raise _Stopped()
            if time.monotonic() >= deadline:
                log.warning("PC/SC %s overran %.1f s: card abandoned", fn.__name__, timeout)
                raise _CardSilent("card stopped answering")
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def close(self) -> None:
        """Disconnect and release as soon as the call in progress (if any) returns."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, box, done = job
            try:
                box.append(fn(*args))
            except Exception as exc:  # handed over to the waiting thread, which raises it
                box.append(exc)
            done.set()
        if self.card is not None:
            log.debug("SCardDisconnect: 0x%08X", scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD) & 0xFFFFFFFF)
        if self.context is not None:
            log.debug("SCardReleaseContext: 0x%08X", scard.SCardReleaseContext(self.context) & 0xFFFFFFFF)

    # -- run in the link's thread ------------------------------------------------------
    def connect(self, reader: str) -> None:
        rc, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(rc, "SCardEstablishContext")
        self.context = context
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        rc, card, protocol = scard.SCardConnect(context, reader, scard.SCARD_SHARE_SHARED, protocols)
        _check(rc, "SCardConnect")
        self.card = card
        self.pci = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        # no other application's APDUs between ours (it ends with SCardDisconnect)
        _check(scard.SCardBeginTransaction(card), "SCardBeginTransaction")

    def transmit(self, apdu: bytes) -> bytes:
        rc, response = scard.SCardTransmit(self.card, self.pci, list(apdu))
        _check(rc, "SCardTransmit")
        if len(response) < 2:  # pcsc-lite's answer when the card vanished (pyscard #44)
            raise _CardGone("empty answer: card left the field mid-APDU")
        return bytes(response)


@dataclass
class _Attempt:
    """How far a read got, for the TagRead that reports a failure; per-step timings."""

    technology: str = UID_ONLY
    uid: bytes | None = None
    timings: dict | None = None

    @contextlib.contextmanager
    def step(self, name: str, technology: str | None = None):
        self.technology = technology or self.technology
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{name}_ms"] = (time.perf_counter() - started) * 1000


def pick_reader(readers: list[str], pattern: str | None) -> str | None:
    """The reader a spec names: glob or case-insensitive substring, or the first
    contactless-looking reader (never a SAM slot) when there is no pattern."""
    if pattern:
        p = pattern.lower()
        glob = any(c in p for c in "*?[")
        return next((r for r in readers if (fnmatch.fnmatchcase(r.lower(), p) if glob else p in r.lower())), None)

    def score(name: str) -> int:
        lowered = f" {name.lower()} "
        return 0 if re.search(r"\bsam\b", lowered) else 2 if any(h in lowered for h in CONTACTLESS_HINTS) else 1

    best = max(readers, key=score, default=None)
    return best if best is not None and score(best) else None


class PcscReader(Reader):
    """A PC/SC reader watched through its own `SCardGetStatusChange` loop.

        reader = PcscReader("pcsc:ACR122", "ACR122", kiosk_id="dev-42"); reader.start(print)
    """

    def __init__(self, spec: str = "pcsc", pattern: str | None = None, kiosk_id: str = "",
                 apdu_timeout: float = 2.0) -> None:
        hce.challenge_apdu(bytes(hce.NONCE_BYTES), kiosk_id)  # ValueError now, not mid-tap
        self.spec = spec
        super().__init__()
        self.pattern, self.kiosk_id, self.apdu_timeout = pattern, kiosk_id, apdu_timeout
        self.reader_name: str | None = None
        self._ctx = None
        self._ctx_lock = threading.Lock()
        self._links: set[_Link] = set()

    # -- lifecycle --------------------------------------------------------------------
    def stop(self, timeout: float = 3.0) -> None:
        super().stop(timeout)
        for link in list(self._links):
            link.thread.join(max(0.1, timeout / 4))
            if link.thread.is_alive():
                log.warning("a card call is stuck in pcscd; its thread ends when the card leaves")

    def _wake(self) -> None:
        with self._ctx_lock:
            if self._ctx is not None:
                scard.SCardCancel(self._ctx)

    def _run(self, stop: threading.Event) -> None:
        def on_card(reader: str, atr: bytes, seen: float) -> bool:
            self._emit(self._session(reader, atr, seen, stop, self._identify))
            return False

        while not stop.is_set():
            try:
                self._open_context()
                self._watch(stop, on_card)
            except _PcscError as exc:
                self._set_state(ReaderState.DISCONNECTED, str(exc))
                log.info("PC/SC: %s; retrying", exc)
                stop.wait(RETRY_S)
            except _Stopped:
                break
            finally:
                self._close_context()

    # -- monitoring -------------------------------------------------------------------
    def _open_context(self) -> None:
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc:
            raise _PcscError(rc, "SCardEstablishContext")
        with self._ctx_lock:
            self._ctx = ctx

    def _close_context(self) -> None:
        with self._ctx_lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            scard.SCardReleaseContext(ctx)

    def _choose_reader(self, current: str | None, first: bool) -> str | None:
        rc, readers = scard.SCardListReaders(self._ctx, [])
        if rc not in (0, scard.SCARD_E_NO_READERS_AVAILABLE):
            raise _PcscError(rc, "SCardListReaders")
        chosen = pick_reader(list(readers) if rc == 0 else [], self.pattern)
        if chosen != current or first:
            if chosen:
                self._set_state(ReaderState.CONNECTED, f"reader {chosen!r}")
            elif current:
                self._set_state(ReaderState.DISCONNECTED, f"reader {current!r} is gone")
            else:
                self._set_state(ReaderState.DISCONNECTED, f"no PC/SC reader matching {self.pattern!r}"
                                if self.pattern else "no contactless PC/SC reader")
        self.reader_name = chosen
        return chosen

    def _watch(self, stop: threading.Event, on_card, deadline: float | None = None) -> bool:
        """Follow the chosen reader until `on_card(reader, atr, seen)` returns True (-> True),
        the deadline passes or stop is set (-> False). Raises _PcscError when pcscd fails."""
        reader, state, pnp, handled, first = None, scard.SCARD_STATE_UNAWARE, 0, None, True
        while not stop.is_set():
            chosen = self._choose_reader(reader, first)
            if chosen != reader:
                reader, state, handled = chosen, scard.SCARD_STATE_UNAWARE, None
            first, wait = False, WAIT_MS
            if deadline is not None:
                wait = int(min(wait, (deadline - time.monotonic()) * 1000))
                if wait <= 0:
                    return False
            watched = [(PNP, pnp)] + ([(reader, state)] if reader else [])
            rc, result = scard.SCardGetStatusChange(self._ctx, wait, watched)
            if rc == scard.SCARD_E_UNKNOWN_READER:  # it went between the listing and the wait
                stop.wait(0.05)
            if rc in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED, scard.SCARD_E_UNKNOWN_READER):
                continue
            if rc:
                raise _PcscError(rc, "SCardGetStatusChange")
            seen = time.perf_counter()
            pnp = result[0][1] & ~scard.SCARD_STATE_CHANGED
            for name, event, atr in result[1:]:
                state = event & ~scard.SCARD_STATE_CHANGED
                gone = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE | scard.SCARD_STATE_UNAVAILABLE
                # pcsc-lite counts insertions and removals in the high 16 bits: one read
                # per insertion, however long the card stays (a mute card too: its
                # connect fails and says so)
                if event & gone or not event & scard.SCARD_STATE_PRESENT or event >> 16 == handled:
                    continue
                handled = event >> 16
                if on_card(name, bytes(atr), seen):
                    return True
        return False

    # -- one card ---------------------------------------------------------------------
    def _session(self, reader: str, atr: bytes, seen: float, stop: threading.Event, work) -> TagRead:
        """Connect, read the UID, run `work(transceive, attempt, atr)`; failures become
        TagRead problems. Raises _PcscError only when pcscd itself is gone."""
        attempt = _Attempt(timings={})
        link = _Link(reader)
        self._links.add(link)
        try:
            with attempt.step("connect"):
                link.call(link.connect, reader, timeout=self.apdu_timeout, stop=stop)
            transceive = self._transceiver(link, stop)
            with attempt.step("uid"):
                attempt.uid = self._get_uid(transceive)
            read = work(transceive, attempt, atr)
        except (_CardGone, _CardSilent) as exc:
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=MOVED, detail=str(exc))
        except ndef_apdu.MalformedTag as exc:
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=MALFORMED, detail=str(exc))
        except _PcscError as exc:
            if exc.rc in CONTEXT_LOST:
                raise
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=UNSUPPORTED, detail=str(exc))
        finally:
            link.close()
            self._links = {live for live in self._links if live.thread.is_alive()}
        read_ms = (time.perf_counter() - seen) * 1000
        log.info("PC/SC %s read in %.1f ms%s", read.technology, read_ms, f" ({read.problem})" if read.problem else "")
        return replace(read, read_ms=read_ms, timings=attempt.timings)

    def _transceiver(self, link: _Link, stop: threading.Event):
        def send(apdu: bytes) -> bytes:
            return link.call(link.transmit, apdu, timeout=self.apdu_timeout, stop=stop)

        def transceive(apdu: bytes) -> bytes:
            rapdu = send(apdu)
            if rapdu[-2] == 0x6C and len(apdu) in (5, 6 + apdu[4]):  # wrong Le: resend with SW2
                rapdu = send(apdu[:-1] + rapdu[-1:])
            data = rapdu[:-2]
            while rapdu[-2] == 0x61 and len(data) <= ndef_apdu.MAX_NDEF_BYTES:  # T=0: GET RESPONSE
                rapdu = send(bytes([0x00, 0xC0, 0x00, 0x00, rapdu[-1]]))
                data += rapdu[:-2]
            return data + rapdu[-2:]
        return transceive

    @staticmethod
    def _get_uid(transceive) -> bytes | None:
        rapdu = transceive(b"\xff\xca\x00\x00\x00")
        if rapdu[-2:] == b"\x90\x00" and 1 <= len(rapdu) - 2 <= 10:
            return rapdu[:-2]
        log.debug("no UID from the reader (%s)", rapdu[-2:].hex())
        return None

    def _identify(self, transceive, attempt: _Attempt, atr: bytes) -> TagRead:
        """Phone, then Type 4, then Type 2, then UID only; a storage-card ATR skips ISO-DEP."""
        storage = ndef_apdu.storage_card(atr)
        uid = attempt.uid
        if storage is None:
            with attempt.step("hce", HCE):
                try:
                    answer = hce.exchange(transceive, self.kiosk_id)
                    return TagRead(self.spec, HCE, uid, hce=answer, tag_type="phone (HCE)")
                except hce.NotOurApp as exc:
                    log.debug("not the kiosk app: %s", exc)
                except hce.HceError as exc:
                    return TagRead(self.spec, HCE, uid, problem=MALFORMED, detail=str(exc), tag_type="phone (HCE)")
            with attempt.step("type4", TYPE4):
                try:
                    content = ndef_apdu.read_type4(transceive)
                    return TagRead(self.spec, TYPE4, uid, ndef=content.ndef,
                                   tag_type=f"NFC Forum Type 4 (mapping {content.version})")
                except ndef_apdu.NoNdefApp as exc:
                    log.debug("no NDEF application: %s", exc)
        if storage is None or storage[1]:
            with attempt.step("type2", TYPE2):
                try:
                    content = ndef_apdu.read_type2(transceive)
                    return TagRead(self.spec, TYPE2, uid, ndef=content.ndef,
                                   tag_type=storage[0] if storage else "NFC Forum Type 2")
                except ndef_apdu.NoNdefApp as exc:
                    log.debug("no Type 2 memory: %s", exc)
        attempt.technology = UID_ONLY
        if uid is None:
            return TagRead(self.spec, UID_ONLY, problem=UNSUPPORTED, detail="no UID, no NDEF, not the kiosk app")
        return TagRead(self.spec, UID_ONLY, uid, tag_type=storage[0] if storage else "ISO 14443")

    # -- technician tools -------------------------------------------------------------
    def _once(self, timeout: float, work) -> TagRead:
        if self.running:
            raise ReaderError("stop the reader before reading or writing on demand")
        self._stop.clear()
        box: list[TagRead] = []

        def on_card(reader: str, atr: bytes, seen: float) -> bool:
            box.append(self._session(reader, atr, seen, self._stop, work))
            return True

        try:
            self._open_context()
            if not self._watch(self._stop, on_card, time.monotonic() + timeout):
                raise ReaderTimeout("no tag presented" if self.reader_name else "no PC/SC reader found")
        except _PcscError as exc:
            raise ReaderUnavailable(str(exc)) from exc
        except _Stopped:
            raise ReaderTimeout("reader stopped") from None
        finally:
            self._close_context()
        return box[0]

    def read_once(self, timeout: float = 10.0) -> TagRead:
        return self._once(timeout, self._identify)

    def write_ndef(self, message: bytes, lock: bool = False, timeout: float = 10.0) -> TagRead:
        def work(transceive, attempt: _Attempt, atr: bytes) -> TagRead:
            storage = ndef_apdu.storage_card(atr)
            if storage is not None and not storage[1]:
                raise ReaderError(f"cannot write this tag: {storage[0]} holds no NDEF")
            try:
                with attempt.step("write", TYPE4 if storage is None else TYPE2):
                    technology, content = ndef_apdu.write_ndef(transceive, message, lock, iso_dep=storage is None)
            except (ndef_apdu.TagReadOnly, ndef_apdu.TagTooSmall, ndef_apdu.NoNdefApp) as exc:
                raise ReaderError(f"cannot write this tag: {exc}") from exc
            return TagRead(self.spec, technology, attempt.uid, ndef=content.ndef,
                           tag_type=storage[0] if storage else f"NFC Forum Type {technology[-1]}")

        read = self._once(timeout, work)
        if read.problem:
            raise ReaderError(f"write failed ({read.problem}): {read.detail}; present the tag again")
        return read

    def feedback(self, ok: bool) -> None:
        """Blink and beep on ACS readers, in the background. The pseudo-APDU goes through
        the card still in the field; with none, it would need the CCID escape, which
        libccid only allows with `ifdDriverOptions` 0x0001, so it is skipped."""
        name = self.reader_name or ""
        if re.search(r"\bacs\b|\bacr\d", name.lower()):
            # P2 = LED states and masks, then T1, T2, repetitions, buzzer:
            # green blink + one beep, or red blinks + two beeps
            apdu = bytes.fromhex("ff0040ae0401010101" if ok else "ff00405d0402020203")
            threading.Thread(target=self._beep, args=(name, apdu), name="pcsc-feedback", daemon=True).start()

    @staticmethod
    def _beep(name: str, apdu: bytes) -> None:
        link, never = _Link(name), threading.Event()
        try:
            link.call(link.connect, name, timeout=0.5, stop=never)
            link.call(link.transmit, apdu, timeout=0.5, stop=never)
        except (_PcscError, _CardGone, _CardSilent) as exc:
            log.debug("reader feedback failed: %s", exc)
        finally:
            link.close()


def init(spec: str, kiosk_id: str = "", apdu_timeout: float = 2.0, **options) -> PcscReader:
    if scard is None:
        raise ReaderUnavailable("pyscard is not installed (pip install pyscard; apt install pcscd)")
    if options:
        log.debug("pcsc ignores options %s", sorted(options))
    pattern = spec.partition(":")[2].strip() or None
    return PcscReader(spec, pattern, kiosk_id=kiosk_id, apdu_timeout=apdu_timeout)
