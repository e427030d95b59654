"""One card behind a PC/SC reader, talked to through its own context, from its own thread,
under a watchdog. Part of the ``pcsc`` backend (`drivers.pcsc_reader`): it knows nothing of
tags, NDEF or `TagRead`s; it runs pyscard calls and says how they failed.

    link = Link("ACS ACR122U PICC Interface 00 00")
    rapdu = link.call(link.transmit, apdu, timeout=2.0, stop=stop_event)

Why a thread per card: pcsc-lite cannot cancel `SCardTransmit`, and it serialises the
calls on one context, so not even `SCardDisconnect` or `SCardReleaseContext` gets through
while a transmit waits on a silent card. Each card is therefore talked to through its own
context, from its own thread. When a call overruns, the caller gets `CardSilent` and goes
back to its monitoring context (which never touches a card, so it is never blocked); the
stuck thread disconnects and releases its context itself once its call returns: when the
card leaves, or pcscd goes away.

The errors here stay inside the backend: `drivers.pcsc_reader` turns them into `TagRead`
problems or `ReaderError`s. This module never logs UIDs, APDUs or their answers.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

try:
    from smartcard import scard
except ImportError:  # pcsc_reader.init() says so; the rest of the app works without pyscard
    scard = None

log = logging.getLogger(__name__)

if scard is not None:
    CONTEXT_LOST = {scard.SCARD_E_NO_SERVICE, scard.SCARD_F_COMM_ERROR,
                    scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE}
    CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
                 scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_W_UNPOWERED_CARD,
                 scard.SCARD_E_READER_UNAVAILABLE}
else:  # still importable, so that pcsc_reader.init() can say what is missing
    CONTEXT_LOST = CARD_GONE = frozenset()


class PcscError(Exception):
    def __init__(self, rc: int, what: str) -> None:
        self.rc = rc
        reason = "pcscd not running" if rc == scard.SCARD_E_NO_SERVICE else scard.SCardGetErrorMessage(rc).strip()
        super().__init__(f"{what}: {reason} (0x{rc & 0xFFFFFFFF:08X})")


class CardGone(Exception):
    """The card left the field."""


class CardSilent(Exception):
    """The card stopped answering (the watchdog fired)."""


class Stopped(Exception):
    """stop() was called while waiting on the card."""


# pcsc-lite's client library (1.9.9 in Debian 12, and the releases around it) looks a card
# handle up in SCardDisconnect (SCardRemoveHandle) by walking its process-wide list of
# contexts by index *without* its own lock, while SCardEstablishContext and
# SCardReleaseContext in other threads append to and free from that list. With a thread per
# card that is a use-after-free: the process died of a segfault in SCardDisconnect during a
# test run. Those three calls therefore go through this one lock. SCardConnect must not:
# it can wait while another handle holds a transaction on the same reader, and that handle
# needs the lock to disconnect (tests/drivers/pcsc/test_threads.py hung at once that way).
# SCardTransmit, SCardGetStatusChange and SCardCancel never take it either: they may wait on
# a card or on pcscd for a long time.
_HANDLES = threading.Lock()


def establish_context() -> tuple[int, int]:
    with _HANDLES:
        return scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)


def release_context(context: int) -> int:
    with _HANDLES:
        return scard.SCardReleaseContext(context)


def check(rc: int, what: str) -> None:
    if rc in CARD_GONE:
        raise CardGone(f"card left the field during {what} (0x{rc & 0xFFFFFFFF:08X})")
    if rc:
        raise PcscError(rc, what)


class Link:
    """One PC/SC context and card handle, used only from their own thread.

        link = Link(reader); link.call(link.connect, reader, timeout=2.0, stop=stop)
    """

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
                raise Stopped()
            if time.monotonic() >= deadline:
                log.warning("PC/SC %s overran %.1f s: card abandoned", fn.__name__, timeout)
                raise CardSilent("card stopped answering")
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
            with _HANDLES:
                rc = scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
            log.debug("SCardDisconnect: 0x%08X", rc & 0xFFFFFFFF)
        if self.context is not None:
            log.debug("SCardReleaseContext: 0x%08X", release_context(self.context) & 0xFFFFFFFF)

    # -- run in the link's thread ------------------------------------------------------
    def connect(self, reader: str) -> None:
        rc, context = establish_context()
        check(rc, "SCardEstablishContext")
        self.context = context
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        rc, card, protocol = scard.SCardConnect(context, reader, scard.SCARD_SHARE_SHARED, protocols)
        check(rc, "SCardConnect")
        self.card = card
        self.pci = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        # no other application's APDUs between ours (it ends with SCardDisconnect)
        check(scard.SCardBeginTransaction(card), "SCardBeginTransaction")

    def transmit(self, apdu: bytes) -> bytes:
        rc, response = scard.SCardTransmit(self.card, self.pci, list(apdu))
        check(rc, "SCardTransmit")
        if len(response) < 2:  # pcsc-lite's answer when the card vanished (pyscard #44)
            raise CardGone("empty answer: card left the field mid-APDU")
        return bytes(response)
