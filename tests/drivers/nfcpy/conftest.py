"""The nfcpy driver against emulated tags: nfcpy's real ContactlessFrontend over its udp
transport, the RF field played by tests/emulators/nfc_udp.py in a thread.

Readers are given explicit targets (nfcpy spends a fixed 1 s on every technology nobody
answers on udp; the emulated field answers "nothing here" after 50 ms instead).
"""
from __future__ import annotations

import threading
import time

import ndef
import pytest

import drivers
from drivers.base import ReaderState, ReaderStatus, TagRead
from tests.emulators.nfc_udp import UdpField

KIOSK_ID = "kiosk-test-7"


def uri_message(uri: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))


class Taps:
    """What a started reader reported, with waits that fail loudly."""

    def __init__(self) -> None:
        self.reads: list[TagRead] = []
        self.states: list[ReaderStatus] = []
        self._changed = threading.Condition()

    def on_read(self, read: TagRead) -> None:
        with self._changed:
            self.reads.append(read)
            self._changed.notify_all()

    def on_state(self, status: ReaderStatus) -> None:
        with self._changed:
            self.states.append(status)
            self._changed.notify_all()

    def wait_reads(self, count: int, timeout: float = 3.0) -> list[TagRead]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.reads) >= count, timeout):
                raise AssertionError(f"expected {count} reads within {timeout} s, got {self.reads}")
            return list(self.reads)

    def wait_state(self, state: ReaderState, timeout: float = 3.0, after: int = 0) -> ReaderStatus:
        """The first status `state` reported at index >= `after`."""
        def found():
            return next((s for s in self.states[after:] if s.state == state), None)
        with self._changed:
            if not self._changed.wait_for(found, timeout):
                raise AssertionError(f"no {state} within {timeout} s: {self.states}")
            return found()


@pytest.fixture
def field():
    with UdpField() as running:
        yield running


@pytest.fixture
def start_reader(field):
    """start_reader(targets=("106A",), **options) -> (reader, taps); stopped at teardown."""
    started = []

    def start(targets=("106A",), **options):
        options.setdefault("kiosk_id", KIOSK_ID)
        reader = drivers.open_reader(field.spec, targets=list(targets), **options)
        taps = Taps()
        reader.start(taps.on_read, taps.on_state)
        started.append(reader)
        taps.wait_state(ReaderState.CONNECTED)
        return reader, taps

    yield start
    for reader in started:
        reader.stop()


def settle(field, timeout: float = 2.0) -> None:
    """Wait until the reader polls an empty field again (it noticed the tag left)."""
    assert field.wait_polling(timeout), "the reader never noticed that the tag left"


def no_new_reads(taps: Taps, count: int, seconds: float) -> bool:
    time.sleep(seconds)
    return len(taps.reads) == count
