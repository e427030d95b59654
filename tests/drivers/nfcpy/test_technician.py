"""Technician tools: read one tag, write (and lock) NDEF, with the reader not started."""
from __future__ import annotations

import time

import pytest

import drivers
from drivers.base import MOVED, TYPE2, TYPE4, ReaderError, ReaderTimeout
from tests.drivers.nfcpy.conftest import uri_message
from tests.emulators.nfc_udp import Felica, Ntag213, type4_tag

CARD = uri_message("https://id.example/s/4f1c9a0b7e2d")
PRODUCT = uri_message("https://id.gs1.org/01/09506000134352")
LONG = uri_message("https://id.example/s/" + "k" * 610)


@pytest.fixture
def reader(field):
    return drivers.open_reader(field.spec, targets=["106A"])


def test_write_then_read_back_ntag213(field, reader):
    tag = Ntag213(CARD)
    field.place(tag)
    written = reader.write_ndef(PRODUCT, timeout=3)
    assert (written.technology, written.uid, written.ndef) == (TYPE2, tag.uid, PRODUCT)
    assert tag.ndef() == PRODUCT
    assert reader.read_once(timeout=3).ndef == PRODUCT


def test_locked_ntag213_refuses_the_next_write(field, reader):
    tag = Ntag213(CARD)
    field.place(tag)
    assert reader.write_ndef(PRODUCT, lock=True, timeout=3).ndef == PRODUCT
    assert tag.memory[15] == 0x0F and tag.memory[10:12] == b"\xff\xff"  # CC read-only + lock bits
    assert tag.memory[168] & 0x40  # CFGLCK: nobody can set a password on the card later
    with pytest.raises(ReaderError, match="read-only"):
        reader.write_ndef(CARD, timeout=3)
    assert reader.read_once(timeout=3).ndef == PRODUCT


def test_message_too_large_leaves_the_tag_alone(field, reader):
    tag = Ntag213(CARD)
    field.place(tag)
    with pytest.raises(ReaderError, match="does not fit"):
        reader.write_ndef(LONG, timeout=3)
    assert tag.ndef() == CARD


def test_write_lock_type4(field, reader):
    tag = type4_tag(CARD)
    field.place(tag)
    written = reader.write_ndef(LONG, lock=True, timeout=3)
    assert (written.technology, written.ndef) == (TYPE4, LONG)
    assert tag.app.ndef() == LONG and tag.app.files[b"\xe1\x03"][14] == 0xFF
    with pytest.raises(ReaderError, match="read-only"):
        reader.write_ndef(CARD, timeout=3)


def test_type4_that_cannot_be_locked_says_so(field, reader):
    field.place(type4_tag(CARD, cc_writable=False))
    with pytest.raises(ReaderError, match="cannot be locked"):
        reader.write_ndef(PRODUCT, lock=True, timeout=3)


def test_tag_pulled_during_write_is_moved(field, reader):
    tag = Ntag213(CARD, vanish_after=3)
    field.place(tag)
    assert reader.write_ndef(PRODUCT, timeout=3).problem == MOVED


def test_felica_is_not_written(field):
    field.place(Felica(CARD))
    with pytest.raises(ReaderError, match="not supported"):
        drivers.open_reader(field.spec, targets=["212F"]).write_ndef(PRODUCT, timeout=3)


def test_read_once_times_out_without_a_tag(reader):
    started = time.monotonic()
    with pytest.raises(ReaderTimeout):
        reader.read_once(timeout=0.3)
    assert time.monotonic() - started < 1.0


def test_tools_refuse_a_started_reader(field, reader):
    reader.start(lambda read: None)
    try:
        with pytest.raises(ReaderError, match="stop the reader"):
            reader.read_once(timeout=0.3)
        with pytest.raises(ReaderError, match="stop the reader"):
            reader.write_ndef(CARD, timeout=0.3)
    finally:
        reader.stop()
