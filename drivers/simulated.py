"""A reader fed from a queue: the demo's on-screen buttons, `kiosk tap` and the tests.

    reader = SimulatedReader()
    reader.start(on_read=service.on_tag)
    reader.present(TagRead(reader="simulated", technology=UID_ONLY, uid=b"\\x04\\x01"))

It honours the same contract as the hardware backends (own thread, stop event,
one read per presented tag), so the service cannot tell it apart from a real reader.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace

from drivers.base import Reader, ReaderState, ReaderTimeout, TagRead

_STOP = object()


class SimulatedReader(Reader):
    spec = "simulated"

    def __init__(self, connected: bool = True) -> None:
        super().__init__()
        self._queue: queue.Queue = queue.Queue()
        self._connected = connected

    def present(self, read: TagRead) -> None:
        """A tag enters the field (thread-safe)."""
        self._queue.put(read)

    def present_ndef(self, message: bytes, uid: bytes = b"\x04\x53\x49\x4d\x00\x00\x01",
                     technology: str = "type2") -> None:
        self.present(TagRead(reader=self.spec, technology=technology, uid=uid, ndef=message,
                             tag_type="simulated NTAG213"))

    def unplug(self) -> None:
        self._connected = False
        self._set_state(ReaderState.DISCONNECTED, "simulated reader unplugged")

    def plug(self) -> None:
        self._connected = True
        self._set_state(ReaderState.CONNECTED, "simulated reader")

    def read_once(self, timeout: float = 10.0) -> TagRead:
        try:
            read = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise ReaderTimeout("no tag presented") from None
        if read is _STOP:
            raise ReaderTimeout("reader stopped")
        return read

    def _wake(self) -> None:
        self._queue.put(_STOP)

    def _run(self, stop: threading.Event) -> None:
        if self._connected:
            self._set_state(ReaderState.CONNECTED, "simulated reader")
        while not stop.is_set():
            item = self._queue.get()
            if item is _STOP or stop.is_set():
                break
            started = time.perf_counter()
            if not self._connected:
                continue  # an unplugged reader sees nothing
            if not item.read_ms:
                item = replace(item, read_ms=(time.perf_counter() - started) * 1000)
            self._emit(item)


def init(spec: str, **options) -> SimulatedReader:
    return SimulatedReader()
