"""What one tap gives, through the real stack: PcscReader -> pyscard -> pcscd -> vpcd ->
the virtual card. Nothing here is mocked."""
from __future__ import annotations

import logging
import random
import statistics
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers import hce
from drivers.base import HCE, MALFORMED, MAX_NDEF_BYTES, MOVED, TYPE2, TYPE4, UID_ONLY, ReaderState
from drivers.hce_phone import Phone
from kiosk import api
from tests.emulators.type4 import Type4NdefCard, capability_container
from tests.emulators.vpcd_card import ATR_ULTRALIGHT, PulledAway, Type2Card, UidOnlyCard

log = logging.getLogger(__name__)

UID7 = bytes.fromhex("04a1b2c3d4e5f6")
# NDEF: one well-known URI record, https://id.example/s/tok123
MESSAGE = bytes.fromhex("d1010f5504") + b"id.example/s/tok"


def tap(pcscd, card, recorder, count: int):
    """Insert, wait for the read, remove, and wait until pcscd has seen the card leave."""
    card.insert()
    read = recorder.wait_read(count)
    card.remove()
    pcscd.wait_card(pcscd.READER, present=False)
    return read


def test_phone_answers_the_signed_challenge(pcscd, cards, start_reader):
    phone = Phone.generate("cred-123")
    reader, recorder = start_reader(kiosk_id="store-7-door")
    read = tap(pcscd, cards(phone, uid=b"\x08\x12\x34\x56"), recorder, 1)
    assert (read.technology, read.problem, read.uid) == (HCE, None, b"\x08\x12\x34\x56")
    answer = read.hce
    assert answer.credential_id == "cred-123" and answer.kiosk_id == "store-7-door"
    assert len(answer.nonce) == hce.NONCE_BYTES
    public_key = Ed25519PublicKey.from_public_bytes(phone.public_key_bytes())
    public_key.verify(answer.signature, api.hce_signed_message(answer.nonce, "store-7-door"))
    assert 0 < read.read_ms < 200


def test_phone_app_wins_over_an_ndef_application(pcscd, cards, start_reader):
    phone = Phone.generate("cred-9")
    logic = Type4NdefCard(MESSAGE, extra_apps={hce.AID: phone.process_apdu})
    reader, recorder = start_reader()
    read = tap(pcscd, cards(logic), recorder, 1)
    assert read.technology == HCE and read.hce.credential_id == "cred-9"


def test_type4_ndef_card(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    read = tap(pcscd, cards(Type4NdefCard(MESSAGE), uid=UID7), recorder, 1)
    assert (read.technology, read.ndef, read.uid, read.problem) == (TYPE4, MESSAGE, UID7, None)
    assert read.tag_type.startswith("NFC Forum Type 4")


def test_type4_long_message_in_chunks(pcscd, cards, start_reader):
    message = bytes(range(256)) * 4  # 1 KiB: several READ BINARY of MLe bytes
    reader, recorder = start_reader()
    card = cards(Type4NdefCard(message))
    read = tap(pcscd, card, recorder, 1)
    assert read.ndef == message
    assert sum(1 for apdu in card.apdus if apdu[1] == 0xB0) >= 5


def test_uid_only_card(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    read = tap(pcscd, cards(UidOnlyCard(), uid=b"\x11\x22\x33\x44"), recorder, 1)
    assert (read.technology, read.uid, read.ndef, read.problem) == (UID_ONLY, b"\x11\x22\x33\x44", None, None)


def test_type2_tag_through_read_binary(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    card = cards(Type2Card(UID7, MESSAGE), uid=UID7, atr=ATR_ULTRALIGHT)
    read = tap(pcscd, card, recorder, 1)
    assert (read.technology, read.ndef, read.uid) == (TYPE2, MESSAGE, UID7)
    assert read.tag_type == "MIFARE Ultralight / NTAG"
    # the storage-card ATR skips the ISO-DEP attempts: nothing but GET UID and FF B0
    assert {apdu[:2] for apdu in card.apdus} == {b"\xff\xca", b"\xff\xb0"}


def test_one_read_per_insert_and_insert_remove_events(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    card = cards(Type4NdefCard(MESSAGE))
    card.insert()
    recorder.wait_read(1)
    time.sleep(1.2)  # three pcscd polls with the card lying there: still one read
    assert len(recorder.reads) == 1
    card.remove()
    pcscd.wait_card(pcscd.READER, present=False)
    card.insert()
    assert recorder.wait_read(2).ndef == MESSAGE
    assert [s.state for s in recorder.states].count(ReaderState.CONNECTED) == 1


def test_default_spec_picks_a_contactless_reader(pcscd, cards, start_reader):
    reader, recorder = start_reader("pcsc")
    assert reader.reader_name in pcscd.ports and "PICC" in reader.reader_name
    assert recorder.states[-1].detail == f"reader {reader.reader_name!r}"
    cards(UidOnlyCard(), reader=reader.reader_name).insert()
    assert recorder.wait_read().technology == UID_ONLY


def test_glob_pattern_and_no_matching_reader(pcscd, start_reader):
    reader, recorder = start_reader("pcsc:kiosk*PICC 00 01")
    assert reader.reader_name == pcscd.OTHER_READER
    reader, recorder = start_reader("pcsc:no such reader", wait=False)
    status, _ = recorder.wait_state(ReaderState.DISCONNECTED)
    assert status.detail == "no PC/SC reader matching 'no such reader'"


def _cc(**patch) -> bytes:
    cc = bytearray(capability_container(0x7FFF))
    for offset, value in patch.items():
        cc[int(offset[1:])] = value
    return bytes(cc)


HOSTILE_TYPE4 = {
    "short CC": (dict(cc=capability_container()[:10]), "asked 15 bytes, got 10"),
    "mapping 4.0": (dict(cc=_cc(b2=0x40)), "unsupported mapping version 4.0"),
    "reserved file id": (dict(cc=_cc(b9=0xE1, b10=0x03)), "reserved"),
    "MLe below 15": (dict(cc=_cc(b3=0, b4=2)), "MLe 2"),
    "no NDEF TLV": (dict(cc=_cc(b7=0x05)), "no NDEF File Control TLV"),
    "lying NLEN": (dict(nlen=600), "got"),
    "NLEN past the file": (dict(nlen=0x0900), "exceeds the NDEF file size"),
}


@pytest.mark.parametrize("case", HOSTILE_TYPE4)
def test_hostile_type4_is_malformed(pcscd, cards, start_reader, case):
    kwargs, reason = HOSTILE_TYPE4[case]
    reader, recorder = start_reader()
    read = tap(pcscd, cards(Type4NdefCard(MESSAGE, **kwargs)), recorder, 1)
    assert (read.technology, read.problem, read.ndef) == (TYPE4, MALFORMED, None)
    assert reason in read.detail


def test_oversized_ndef_is_refused_before_reading_it(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    card = cards(Type4NdefCard(b"\x00" * (MAX_NDEF_BYTES + 1)))
    read = tap(pcscd, card, recorder, 1)
    assert read.problem == MALFORMED and f"exceeds the {MAX_NDEF_BYTES}-byte limit" in read.detail
    assert [apdu[4] for apdu in card.apdus if apdu[1] == 0xB0] == [15, 2]  # CC and NLEN only


@pytest.mark.parametrize("tlv, reason", [
    (b"\x03\xff\x7f\xff", "exceeds the 8192-byte limit"),  # 32 KiB NDEF TLV
    (b"\x03\xff\x01\x00", "runs past the 144-byte data area"),
    (b"\x01\x03\xa0", "runs past the end of the data area"),  # TLV cut at the end
])
def test_hostile_type2_is_malformed(pcscd, cards, start_reader, tlv, reason):
    memory = bytearray(Type2Card(UID7, MESSAGE).memory)
    if tlv[0] == 0x01:
        memory[16:16 + 144] = b"\x00" * 141 + tlv
    else:
        memory[16:16 + len(tlv)] = tlv
    reader, recorder = start_reader()
    read = tap(pcscd, cards(Type2Card(UID7, memory=memory), atr=ATR_ULTRALIGHT), recorder, 1)
    assert (read.technology, read.problem) == (TYPE2, MALFORMED)
    assert reason in read.detail


def test_card_pulled_mid_apdu_is_moved(pcscd, cards, start_reader):
    reader, recorder = start_reader()
    card = cards(PulledAway(Type4NdefCard(MESSAGE), after=3))
    card.insert()
    read = recorder.wait_read()
    assert (read.problem, read.technology) == (MOVED, TYPE4)
    assert read.uid == card.uid and "left the field" in read.detail
    assert read.read_ms < 500
    pcscd.wait_card(pcscd.READER, present=False)
    cards(Type4NdefCard(MESSAGE)).insert()
    assert recorder.wait_read(2).ndef == MESSAGE


def test_insert_to_read_latency(pcscd, cards, start_reader):
    phone = Phone.generate("cred-latency")
    kinds = {"phone": lambda: cards(phone), "type4": lambda: cards(Type4NdefCard(MESSAGE)),
             "uid": lambda: cards(UidOnlyCard()),
             "type2": lambda: cards(Type2Card(UID7, MESSAGE), atr=ATR_ULTRALIGHT)}
    reader, recorder = start_reader()
    for kind, make in kinds.items():
        latency, read_ms = [], []
        for _ in range(5):
            card = make()
            time.sleep(random.uniform(0, 0.4))  # any phase of pcscd's 400 ms presence poll
            inserted = time.perf_counter()
            read = tap(pcscd, card, recorder, len(recorder.reads) + 1)
            assert read.problem is None
            latency.append((recorder.read_times[-1] - inserted) * 1000)
            read_ms.append(read.read_ms)
        log.info("%s: insert->TagRead median %.0f ms (max %.0f), read_ms median %.2f ms",
                 kind, statistics.median(latency), max(latency), statistics.median(read_ms))
        assert statistics.median(latency) < 700  # pcscd polls card presence every 400 ms
        assert statistics.median(read_ms) < 50
