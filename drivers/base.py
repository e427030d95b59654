"""The reader contract: the `TagRead` value, the `Reader` interface and the error tree.

Standard library only. A driver turns one physical tap into one `TagRead`; it knows
nothing of shoppers, hubs or screens, and it never calls the UI.

    reader = drivers.open_reader("simulated")
    reader.start(on_read=print, on_state=print)

Threading contract (every backend honours it):

- `start()` returns at once; the backend reads in its own thread(s) and calls `on_read`
  and `on_state` from there. Callbacks must be quick and must not raise; an exception
  from a callback is logged and the reader keeps going.
- `stop()` is idempotent, returns within `timeout` seconds and leaves no thread or device
  handle behind.
- One tap is one read: a tag left in the field is not reported again until it has left.
- A read that failed because the tag moved away is reported as a `TagRead` whose
  `problem` is `MOVED` (the shopper is asked to hold still), never as an exception.
"""
from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

# Technologies a TagRead can report.
TYPE2 = "type2"  # NFC Forum Type 2 (NTAG21x, Ultralight)
TYPE3 = "type3"  # FeliCa
TYPE4 = "type4"  # ISO-DEP with the NFC Forum NDEF application
HCE = "hce"  # a phone answering the kiosk's AID
UID_ONLY = "uid"  # anything whose UID is all we could get

# Problems a TagRead can carry instead of content.
MOVED = "moved"  # tag left the field mid-read: "hold it still"
MALFORMED = "malformed"  # the tag answered nonsense (bad CC, oversized NDEF, ...)
UNSUPPORTED = "unsupported"  # a target we cannot talk to

# Largest NDEF message any backend accepts: bigger messages are refused with a reason
# (a shopper card holds < 1 KiB; a hostile tag must not make us allocate megabytes).
MAX_NDEF_BYTES = 8192


class ReaderError(Exception):
    """The reader failed."""


class ReaderUnavailable(ReaderError):
    """No reader could be opened (not plugged in, claimed by another driver, no permission)."""


class ReaderTimeout(ReaderError):
    """No tag was presented in time."""


class UnknownBackend(ReaderError):
    """No reader backend matches this name."""


class ReaderState(enum.Enum):
    STARTING = "starting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass(frozen=True)
class HceAnswer:
    """What a phone answered to the kiosk's challenge (see docs/phone-credential.md)."""

    credential_id: str
    nonce: bytes
    kiosk_id: str
    signature: bytes


@dataclass(frozen=True)
class TagRead:
    """One tap. `ndef` is the raw NDEF message: the core parses it, so a hostile message
    can never hurt a reader thread."""

    reader: str
    technology: str
    uid: bytes | None = None
    ndef: bytes | None = None
    hce: HceAnswer | None = None
    read_ms: float = 0.0
    tag_type: str = ""
    problem: str | None = None
    detail: str = ""
    timings: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ReaderStatus:
    state: ReaderState
    reader: str
    detail: str = ""


ReadCallback = Callable[[TagRead], None]
StateCallback = Callable[[ReaderStatus], None]


class Reader:
    """Base class of every backend. Subclasses implement `_run(stop_event)` (the reader
    thread's body) and may override `read_once` / `write_ndef` for technician tools."""

    spec = "reader"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_read: ReadCallback = lambda read: None
        self._on_state: StateCallback = lambda status: None
        self._status = ReaderStatus(ReaderState.STOPPED, self.spec)

    # -- lifecycle ---------------------------------------------------------------
    def start(self, on_read: ReadCallback, on_state: StateCallback | None = None) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._on_read = on_read
        self._on_state = on_state or (lambda status: None)
        self._stop.clear()
        self._set_state(ReaderState.STARTING)
        self._thread = threading.Thread(target=self._guarded_run, name=f"reader:{self.spec}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake()
        thread, self._thread = self._thread, None
        if thread and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("reader thread %s did not stop within %.1fs", thread.name, timeout)
        self._set_state(ReaderState.STOPPED)

    @property
    def status(self) -> ReaderStatus:
        return self._status

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    # -- technician tools (optional per backend) ----------------------------------
    def read_once(self, timeout: float = 10.0) -> TagRead:
        """Block until one tag is read (reader must not be started)."""
        raise ReaderError(f"{self.spec} cannot read on demand")

    def write_ndef(self, message: bytes, lock: bool = False, timeout: float = 10.0) -> TagRead:
        """Write an NDEF message to the next tag presented; `lock` makes it read-only for good."""
        raise ReaderError(f"{self.spec} cannot write tags")

    def feedback(self, ok: bool) -> None:
        """Beep / blink where the device can; a no-op elsewhere."""

    # -- for subclasses ----------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wake(self) -> None:
        """Interrupt a blocking wait in `_run` (override when the backend blocks)."""

    def _emit(self, read: TagRead) -> None:
        try:
            self._on_read(read)
        except Exception:  # a broken consumer must not kill the reader thread
            log.exception("on_read callback failed")

    def _set_state(self, state: ReaderState, detail: str = "") -> None:
        status = ReaderStatus(state, self.spec, detail)
        if status == self._status:
            return
        self._status = status
        try:
            self._on_state(status)
        except Exception:
            log.exception("on_state callback failed")

    def _guarded_run(self) -> None:
        try:
            self._run(self._stop)
        except Exception as exc:  # the thread reports, never dies silently
            log.exception("reader %s crashed", self.spec)
            self._set_state(ReaderState.DISCONNECTED, f"reader crashed: {exc}")
