"""Pulled tags, hostile tags, a failing reader, and a clean stop."""
from __future__ import annotations

import threading
import time

import pytest

import drivers
from drivers.base import MALFORMED, MOVED, ReaderState
from drivers.hce_phone import Phone
from tests.drivers.nfcpy.conftest import Taps, settle, uri_message
from tests.emulators.nfc_udp import (
    Felica, IsoDepA, Ntag213, WritableType4, felica_attributes, ndef_tlv, phone, type4_tag,
)
from tests.emulators.type4 import capability_container

CARD = uri_message("https://id.example/s/4f1c9a0b7e2d")
NEXT = uri_message("https://id.gs1.org/01/09506000134352")


def _bad_version_cc() -> bytes:
    cc = bytearray(capability_container())
    cc[2] = 0x40
    return bytes(cc)


PULLED = {  # leaves the field after answering this many data commands: mid-read
    "ntag213": ("106A", lambda: Ntag213(CARD, vanish_after=1)),
    "felica": ("212F", lambda: Felica(CARD, vanish_after=1)),
    "type4": ("106A", lambda: type4_tag(CARD, vanish_after=4)),
    "phone": ("106A", lambda: phone(Phone.generate("cred-1"), vanish_after=1)),
}


@pytest.mark.parametrize("kind", PULLED)
def test_pulled_tag_is_moved_and_the_next_tap_reads(field, start_reader, kind):
    brty, make = PULLED[kind]
    reader, taps = start_reader([brty])
    tag = make()
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert tag.gone, "the emulated tag should have left mid-read"
    assert read.problem == MOVED and read.ndef is None and read.hce is None
    assert read.uid == getattr(tag, "uid", getattr(tag, "idm", None))
    settle(field)
    field.place(Felica(NEXT) if brty == "212F" else Ntag213(NEXT))
    assert taps.wait_reads(2)[1].ndef == NEXT


@pytest.mark.parametrize("make", [lambda: Ntag213(CARD, stall_at=2, stall_s=0.008),  # READ waits 5 ms
                                  lambda: type4_tag(CARD, stall_at=2, stall_s=0.08)],  # ISO-DEP ~42 ms
                         ids=["ntag213", "type4"])
def test_late_answer_is_retried_not_misread(field, start_reader, make):
    reader, taps = start_reader(["106A"])
    field.place(make())
    (read,) = taps.wait_reads(1)
    assert (read.problem, read.ndef) == (None, CARD)  # nfcpy asked again; nothing stale was misread


HOSTILE = {
    "t2 TLV longer than memory": ("106A", lambda: Ntag213(tlv_area=b"\x03\xff\x0f\xff"), "runs past"),
    "t2 oversized NDEF": ("106A", lambda: Ntag213(tlv_area=b"\x03\xff\xff\xf0"), "8192-byte limit"),
    "t2 TLV off the end": ("106A", lambda: Ntag213(tlv_area=bytes(142) + b"\x05\x10"), "runs past the end"),
    "t2 bad CC": ("106A", lambda: Ntag213(CARD, cc=b"\xe1\x20\x12\x00"), "mapping version 2.0"),
    "t2 broken record": ("106A", lambda: Ntag213(tlv_area=ndef_tlv(b"\xd1\x01\x30\x55\x04abc")),
                         "runs past the end of the message"),
    "t4 oversized NLEN": ("106A", lambda: type4_tag(CARD, nlen=0xFFF0, cc=capability_container(0xFFFE)),
                          "8192-byte limit"),
    "t4 NLEN beyond file": ("106A", lambda: type4_tag(CARD, nlen=500), "got"),
    "t4 bad CC": ("106A", lambda: type4_tag(CARD, cc=_bad_version_cc()), "mapping version 4.0"),
    "t3 bad checksum": ("212F", lambda: Felica(CARD, attributes=felica_attributes(len(CARD), checksum=7)),
                        "checksum"),
    "t3 length beyond data area": ("212F", lambda: Felica(CARD, attributes=felica_attributes(4000)),
                                   "data area"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_tag_is_malformed_and_the_reader_keeps_working(field, start_reader, case):
    brty, make, reason = HOSTILE[case]
    reader, taps = start_reader([brty])
    tag = make()
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert read.problem == MALFORMED and reason in read.detail and read.ndef is None
    field.remove()
    settle(field)
    field.place(Felica(NEXT) if brty == "212F" else Ntag213(NEXT))
    second = taps.wait_reads(2)[1]
    assert second.problem is None and second.ndef == NEXT


def test_tag_that_breaks_activation_is_reported_once_and_the_reader_stays_up(field, start_reader):
    reader, taps = start_reader(["106A"])
    tag = IsoDepA(WritableType4(CARD), ats=b"\x02\x78")  # an ATS too short for nfcpy
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert (read.problem, read.uid) == (MALFORMED, tag.uid) and "activation" in read.detail
    time.sleep(0.5)  # still in the field: not reported again, and the reader is not "unplugged"
    assert len(taps.reads) == 1
    assert all(s.state != ReaderState.DISCONNECTED for s in taps.states)
    field.remove()
    settle(field)
    field.place(Ntag213(NEXT))
    assert taps.wait_reads(2)[1].ndef == NEXT


def test_failing_reader_is_disconnected_then_comes_back(field, start_reader):
    reader, taps = start_reader(["106A"])
    seen = len(taps.states)
    failed_at = time.monotonic()
    field.fail()
    status = taps.wait_state(ReaderState.DISCONNECTED, timeout=2.0, after=seen)
    assert time.monotonic() - failed_at < 2.0 and field.spec.split(":", 1)[1] in status.detail
    seen = len(taps.states)
    field.recover()
    taps.wait_state(ReaderState.CONNECTED, timeout=3.0, after=seen)
    field.place(Ntag213(CARD))
    assert taps.wait_reads(1)[0].ndef == CARD


def test_no_reader_plugged_in_says_what_to_do():
    before = set(threading.enumerate())
    reader = drivers.open_reader("nfcpy:usb:ffff:fffe", retry_s=0.2)
    taps = Taps()
    reader.start(taps.on_read, taps.on_state)
    status = taps.wait_state(ReaderState.DISCONNECTED, timeout=2.0)
    assert "no supported NFC reader found on usb:ffff:fffe" in status.detail
    assert "pn533_usb" in status.detail
    time.sleep(0.5)  # a few retries
    assert reader.status.state == ReaderState.DISCONNECTED
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0
    assert set(threading.enumerate()) == before


@pytest.mark.parametrize("tag_in_field", [False, True])
def test_stop_leaves_no_thread_and_no_open_frontend(field, tag_in_field):
    before = set(threading.enumerate())
    reader = drivers.open_reader(field.spec, targets=["106A"])
    taps = Taps()
    reader.start(taps.on_read, taps.on_state)
    field.place(Ntag213(CARD))
    taps.wait_reads(1)
    if not tag_in_field:
        field.remove()
        settle(field)
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0
    assert set(threading.enumerate()) == before
    assert reader.status.state == ReaderState.STOPPED and not reader.running
    time.sleep(0.05)  # let the field take in what was sent before stop() returned
    frames = field.frames
    time.sleep(0.3)
    assert field.frames == frames, "something still talks to the field after stop()"
