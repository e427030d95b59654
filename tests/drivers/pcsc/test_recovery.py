"""The PC/SC reader under trouble, through the real stack: a card that goes silent, pcscd
going away and coming back, stop() while a card hangs; plus the technician tools."""
from __future__ import annotations

import threading
import time

import pytest

from drivers import open_reader
from drivers.base import MOVED, TYPE2, TYPE4, ReaderError, ReaderState, ReaderTimeout, ReaderUnavailable
from tests.emulators.type4 import Type4NdefCard
from tests.emulators.vpcd_card import ATR_ULTRALIGHT, GoesSilent, Type2Card, UidOnlyCard, WritableType4

MESSAGE = bytes.fromhex("d1010f5504") + b"id.example/s/tok"
UID7 = bytes.fromhex("04a1b2c3d4e5f6")


def pcsc_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("reader:pcsc", "pcsc-"))]


def wait_until(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_silent_card_does_not_hang_the_reader(pcscd, cards, start_reader):
    reader, recorder = start_reader(apdu_timeout=0.8)
    silent = cards(GoesSilent(Type4NdefCard(MESSAGE), after=2))  # SELECT AID, SELECT NDEF, then nothing
    silent.insert()
    started = time.monotonic()
    read = recorder.wait_read(1, timeout=4)
    assert (read.problem, read.technology, read.detail) == (MOVED, TYPE4, "card stopped answering")
    assert 0.8 <= time.monotonic() - started < 2.5 and reader.running
    silent.remove()  # the stuck SCardTransmit returns now, and its thread cleans up
    pcscd.wait_card(pcscd.READER, present=False)
    cards(Type4NdefCard(MESSAGE)).insert()
    assert recorder.wait_read(2).ndef == MESSAGE
    reader.stop()
    assert wait_until(lambda: not pcsc_threads(), 2), pcsc_threads()


def test_stop_while_a_card_hangs(pcscd, cards, start_reader):
    reader, recorder = start_reader(apdu_timeout=30)
    silent = cards(GoesSilent(UidOnlyCard(), after=0))
    silent.insert()
    assert wait_until(lambda: len(silent.apdus) >= 2)  # GET UID answered, SELECT AID unanswered
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0 and not reader.running
    assert reader.status.state == ReaderState.STOPPED and not recorder.reads
    silent.remove()
    assert wait_until(lambda: not pcsc_threads(), 2), pcsc_threads()


def test_stop_leaves_no_thread_and_no_context(pcscd, cards, start_reader):
    assert wait_until(lambda: pcscd.client_contexts() == 0)
    reader, recorder = start_reader()
    card = cards(UidOnlyCard())
    card.insert()
    recorder.wait_read()
    reader.feedback(True)  # the virtual reader's name looks like an ACS one
    assert wait_until(lambda: any(apdu.startswith(b"\xff\x00\x40") for apdu in card.apdus))
    assert [a for a in card.apdus if a[:3] == b"\xff\x00\x40"][0].hex() == "ff0040ae0401010101"
    assert pcscd.client_contexts() >= 1
    reader.stop()
    assert not reader.running and reader.status.state == ReaderState.STOPPED
    assert wait_until(lambda: not pcsc_threads(), 2), pcsc_threads()
    assert wait_until(lambda: pcscd.client_contexts() == 0, 2), "a PC/SC context leaked"
    reader.stop()  # idempotent


def test_pcscd_restart_and_pcscd_absent(pcscd, cards, start_reader):
    running, seen = start_reader()
    mark = len(seen.states)
    pcscd.stop()
    status, when = seen.wait_state(ReaderState.DISCONNECTED, after=mark)
    assert when - pcscd.stopped_at < 2.0
    assert "pcscd" in status.detail or "0x80100013" in status.detail
    late, late_seen = start_reader(wait=False)  # started while pcscd is down
    status, _ = late_seen.wait_state(ReaderState.DISCONNECTED)
    assert status.detail == "SCardEstablishContext: pcscd not running (0x8010001D)"
    with pytest.raises(ReaderUnavailable, match="pcscd not running"):
        open_reader(f"pcsc:{pcscd.READER}").read_once(timeout=1)
    mark = len(seen.states)
    pcscd.start()
    back = time.perf_counter()
    for recorder, after in ((seen, mark), (late_seen, 0)):
        status, when = recorder.wait_state(ReaderState.CONNECTED, after=after, timeout=4)
        assert status.detail == f"reader {pcscd.READER!r}" and when - back < 2.0
    late.stop()
    cards(Type4NdefCard(MESSAGE)).insert()
    assert seen.wait_read().ndef == MESSAGE
    assert running.running


def test_read_once(pcscd, cards):
    reader = open_reader(f"pcsc:{pcscd.READER}", apdu_timeout=1.0)
    with pytest.raises(ReaderTimeout, match="no tag presented"):
        reader.read_once(timeout=0.3)
    cards(Type4NdefCard(MESSAGE)).insert()
    read = reader.read_once(timeout=3)
    assert (read.technology, read.ndef) == (TYPE4, MESSAGE)
    assert wait_until(lambda: not pcsc_threads(), 2), pcsc_threads()
    with pytest.raises(ReaderTimeout, match="no PC/SC reader"):
        open_reader("pcsc:absent reader").read_once(timeout=0.3)


def test_write_type4_then_lock(pcscd, cards):
    reader = open_reader(f"pcsc:{pcscd.READER}")
    tag = WritableType4(b"")
    card = cards(tag)
    card.insert()
    written = reader.write_ndef(MESSAGE, timeout=3)
    assert (written.technology, written.ndef, tag.message) == (TYPE4, MESSAGE, MESSAGE)
    reader.write_ndef(b"\xd0\x00\x00", lock=True, timeout=3)
    assert tag.files[b"\xe1\x03"][14] == 0xFF
    with pytest.raises(ReaderError, match="read-only"):
        reader.write_ndef(MESSAGE, timeout=3)
    assert reader.read_once(timeout=3).ndef == b"\xd0\x00\x00"


def test_write_type2_then_lock(pcscd, cards):
    reader = open_reader(f"pcsc:{pcscd.READER}")
    tag = Type2Card(UID7)
    cards(tag, uid=UID7, atr=ATR_ULTRALIGHT).insert()
    written = reader.write_ndef(MESSAGE, lock=True, timeout=3)
    assert (written.technology, written.uid) == (TYPE2, UID7)
    read = reader.read_once(timeout=3)
    assert (read.technology, read.ndef) == (TYPE2, MESSAGE)
    assert tag.memory[10:12] == b"\xff\xff" and tag.memory[15] == 0x0F
    assert tag.memory[4 * 0x28:4 * 0x28 + 3] == b"\xff\xff\xff"  # NTAG213 dynamic lock bytes
    with pytest.raises(ReaderError, match="read-only"):
        reader.write_ndef(MESSAGE, timeout=3)


def test_uid_only_card_cannot_be_written(pcscd, cards):
    cards(UidOnlyCard()).insert()
    with pytest.raises(ReaderError, match="cannot write this tag"):
        open_reader(f"pcsc:{pcscd.READER}").write_ndef(MESSAGE, timeout=3)
