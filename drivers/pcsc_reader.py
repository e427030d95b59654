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

The backend is three modules; this one imports the other two, which import neither it
nor each other:

- this one: which reader, the `SCardGetStatusChange` loop on a monitoring context that never
  touches a card, the reader lifecycle and states, the technician tools, `init()`;
- `drivers.pcsc_card`: what is said to one card (UID, phone / Type 4 / Type 2, write);
- `drivers.pcsc_link`: one card's own context and thread, every call under the watchdog
  (why a thread per card: see there). When a call overruns, the read is `MOVED` and the
  reader thread goes back to monitoring; the stuck thread cleans up after itself.

This module never logs UIDs, NDEF contents or credentials.
"""
from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
from dataclasses import replace

from drivers import hce, ndef_apdu, pcsc_card, pcsc_link
from drivers.base import (
    MALFORMED, MOVED, UNSUPPORTED, Reader, ReaderError, ReaderState, ReaderTimeout,
    ReaderUnavailable, TagRead,
)
from drivers.pcsc_card import Attempt
from drivers.pcsc_link import CONTEXT_LOST, CardGone, CardSilent, Link, PcscError, Stopped

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
        self._links: set[Link] = set()

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
            except PcscError as exc:
                self._set_state(ReaderState.DISCONNECTED, str(exc))
                log.info("PC/SC: %s; retrying", exc)
                stop.wait(RETRY_S)
            except Stopped:
                break
            finally:
                self._close_context()

    # -- monitoring -------------------------------------------------------------------
    def _open_context(self) -> None:
        rc, ctx = pcsc_link.establish_context()
        if rc:
            raise PcscError(rc, "SCardEstablishContext")
        with self._ctx_lock:
            self._ctx = ctx

    def _close_context(self) -> None:
        with self._ctx_lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            pcsc_link.release_context(ctx)

    def _choose_reader(self, current: str | None, first: bool) -> str | None:
        rc, readers = scard.SCardListReaders(self._ctx, [])
        if rc not in (0, scard.SCARD_E_NO_READERS_AVAILABLE):
            raise PcscError(rc, "SCardListReaders")
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
        the deadline passes or stop is set (-> False). Raises PcscError when pcscd fails."""
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
                raise PcscError(rc, "SCardGetStatusChange")
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
        TagRead problems. Raises PcscError only when pcscd itself is gone."""
        attempt = Attempt(timings={})
        link = Link(reader)
        self._links.add(link)
        try:
            with attempt.step("connect"):
                link.call(link.connect, reader, timeout=self.apdu_timeout, stop=stop)
            transceive = self._transceiver(link, stop)
            with attempt.step("uid"):
                attempt.uid = pcsc_card.get_uid(transceive)
            read = work(transceive, attempt, atr)
        except (CardGone, CardSilent) as exc:
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=MOVED, detail=str(exc))
        except ndef_apdu.MalformedTag as exc:
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=MALFORMED, detail=str(exc))
        except PcscError as exc:
            if exc.rc in CONTEXT_LOST:
                raise
            read = TagRead(self.spec, attempt.technology, attempt.uid, problem=UNSUPPORTED, detail=str(exc))
        finally:
            link.close()
            self._links = {live for live in self._links if live.thread.is_alive()}
        read_ms = (time.perf_counter() - seen) * 1000
        log.info("PC/SC %s read in %.1f ms%s", read.technology, read_ms, f" ({read.problem})" if read.problem else "")
        return replace(read, read_ms=read_ms, timings=attempt.timings)

    def _transceiver(self, link: Link, stop: threading.Event):
        def send(apdu: bytes) -> bytes:
            return link.call(link.transmit, apdu, timeout=self.apdu_timeout, stop=stop)
        return pcsc_card.transceiver(send)

    def _identify(self, transceive, attempt: Attempt, atr: bytes) -> TagRead:
        """The work of a tap: phone, Type 4, Type 2 or UID only (`pcsc_card.identify`)."""
        return pcsc_card.identify(transceive, attempt, atr, self.spec, self.kiosk_id)

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
        except PcscError as exc:
            raise ReaderUnavailable(str(exc)) from exc
        except Stopped:
            raise ReaderTimeout("reader stopped") from None
        finally:
            self._close_context()
        return box[0]

    def read_once(self, timeout: float = 10.0) -> TagRead:
        return self._once(timeout, self._identify)

    def write_ndef(self, message: bytes, lock: bool = False, timeout: float = 10.0) -> TagRead:
        def work(transceive, attempt: Attempt, atr: bytes) -> TagRead:
            return pcsc_card.write(transceive, attempt, atr, self.spec, message, lock)

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
        link, never = Link(name), threading.Event()
        try:
            link.call(link.connect, name, timeout=0.5, stop=never)
            link.call(link.transmit, apdu, timeout=0.5, stop=never)
        except (PcscError, CardGone, CardSilent) as exc:
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
