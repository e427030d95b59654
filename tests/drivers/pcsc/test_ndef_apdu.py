"""drivers.ndef_apdu and the PC/SC reader's pure helpers, with the card logic called
directly as the transceive function (no pcscd needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers import ndef_apdu, pcsc_card
from drivers.base import MAX_NDEF_BYTES
from drivers.ndef_apdu import (
    MalformedTag, NoNdefApp, TagReadOnly, TagTooSmall, parse_type4_cc, read_type2, read_type4,
    storage_card, write_type2, write_type4,
)
from drivers.pcsc_reader import init, pick_reader
from tests.emulators.type4 import Type4NdefCard, capability_container
from tests.emulators.vpcd_card import ATR_ISO_DEP, ATR_ULTRALIGHT, Type2Card, UidOnlyCard, WritableType4

UID7 = bytes.fromhex("04a1b2c3d4e5f6")
MESSAGE = bytes.fromhex("d1010f5504") + b"id.example/s/tok"


class Logged:
    """A transceive that records the command APDUs."""

    def __init__(self, card) -> None:
        self.card, self.apdus = card, []

    def __call__(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        return self.card.process_apdu(apdu)


# -- Type 4 ---------------------------------------------------------------------------
def test_type4_read():
    content = read_type4(Type4NdefCard(MESSAGE).process_apdu)
    assert (content.ndef, content.capacity, content.writable, content.version) == (MESSAGE, 0x07FE, True, "2.0")


def test_type4_empty_message_reads_as_empty_bytes():
    assert read_type4(Type4NdefCard(b"").process_apdu).ndef == b""


def test_type4_reads_in_mle_chunks():
    message = bytes(100)
    card = Logged(Type4NdefCard(message, cc=capability_container(mle=0x0F)))
    assert read_type4(card).ndef == message
    reads = [apdu for apdu in card.apdus if apdu[1] == 0xB0]
    assert [apdu[4] for apdu in reads] == [15, 2] + [15] * 6 + [10]


def test_type4_absent_is_no_ndef_app():
    with pytest.raises(NoNdefApp):
        read_type4(UidOnlyCard().process_apdu)


@pytest.mark.parametrize("cc, reason", [
    (capability_container()[:14], "too short"),
    (b"\x00\x0e" + capability_container()[2:], "CCLEN 14"),
    (capability_container(mlc=0), "MLc 0"),
    (capability_container()[:7] + b"\x06\x08" + bytes(8), "ENDEF"),
    (capability_container(max_ndef=3), "size 3 out of range"),
    (capability_container()[:9] + b"\x3f\x00" + capability_container()[11:], "reserved"),
])
def test_type4_cc_validation(cc, reason):
    with pytest.raises(MalformedTag, match=reason):
        parse_type4_cc(cc)


def test_type4_unreadable_file_is_malformed():
    cc = capability_container()[:13] + b"\x80\x00"
    with pytest.raises(MalformedTag, match="not readable"):
        read_type4(Type4NdefCard(MESSAGE, cc=cc).process_apdu)


def test_type4_write_zeroes_nlen_first_then_locks():
    card = WritableType4(b"old message")
    log = Logged(card)
    write_type4(log, MESSAGE)
    updates = [apdu for apdu in log.apdus if apdu[1] == 0xD6]
    assert updates[0] == b"\x00\xd6\x00\x00\x02\x00\x00"
    assert updates[-1] == b"\x00\xd6\x00\x00\x02\x00" + bytes([len(MESSAGE)])
    assert card.message == MESSAGE and read_type4(card.process_apdu).ndef == MESSAGE
    write_type4(card.process_apdu, b"\xd0\x00\x00", lock=True)
    assert read_type4(card.process_apdu).writable is False
    with pytest.raises(TagReadOnly):
        write_type4(card.process_apdu, MESSAGE)


def test_type4_write_refusals():
    with pytest.raises(TagTooSmall):
        write_type4(WritableType4(cc=capability_container(max_ndef=16)).process_apdu, bytes(20))
    with pytest.raises(TagReadOnly, match="cannot be locked"):
        write_type4(WritableType4(cc_writable=False).process_apdu, MESSAGE, lock=True)


# -- Type 2 ---------------------------------------------------------------------------
def test_type2_read_and_unformatted():
    assert read_type2(Type2Card(UID7, MESSAGE).process_apdu).ndef == MESSAGE
    blank = Type2Card(UID7)
    assert read_type2(blank.process_apdu).ndef is None  # formatted, no NDEF TLV
    blank.memory[12] = 0x00
    assert read_type2(blank.process_apdu).ndef is None  # no capability container


def test_type2_skips_null_and_reserved_bytes():
    card = Type2Card(UID7)
    # NULL, Memory Control TLV reserving bytes 24..27 (page 6), then the NDEF TLV across it
    tlvs = b"\x00\x02\x03\x60\x04\x02" + b"\x03" + bytes([len(MESSAGE)])
    body = tlvs + MESSAGE + b"\xfe"
    stream = body[:8] + b"\xee" * 4 + body[8:]  # bytes 16..23, reserved 24..27, rest
    card.memory[16:16 + len(stream)] = stream
    assert read_type2(card.process_apdu).ndef == MESSAGE


@pytest.mark.parametrize("patch, reason", [
    ({13: 0x20}, "mapping version 2.0"),
    ({14: 0x00}, "empty data area"),
    ({16: 0x03, 17: 0xFF, 18: 0x40, 19: 0x00}, f"exceeds the {MAX_NDEF_BYTES}-byte limit"),
    ({16: 0x03, 17: 0xA0}, "runs past"),
])
def test_type2_hostile(patch, reason):
    card = Type2Card(UID7, MESSAGE)
    for offset, value in patch.items():
        card.memory[offset] = value
    with pytest.raises(MalformedTag, match=reason):
        read_type2(card.process_apdu)


def test_type2_data_area_beyond_page_255_is_malformed():
    card = Type2Card(UID7, data_pages=510)
    card.memory[14] = 0xFF  # 2040-byte data area, as the CC allows
    card.memory[16:20] = b"\x03\xff\x05\xdc"  # a 1500-byte NDEF message, past page 255
    with pytest.raises(MalformedTag, match="out of reach"):
        read_type2(card.process_apdu)


def test_type2_not_a_storage_card():
    with pytest.raises(NoNdefApp):
        read_type2(UidOnlyCard().process_apdu)


def test_type2_short_block_is_malformed():
    with pytest.raises(MalformedTag, match="not 16"):
        read_type2(lambda apdu: b"\x00" * 4 + b"\x90\x00")


def test_type2_write_long_message_then_lock():
    card = Type2Card(UID7, data_pages=120)
    message = bytes(range(256)) + b"tail"  # 3-byte TLV length
    write_type2(card.process_apdu, message)
    assert read_type2(card.process_apdu).ndef == message
    write_type2(card.process_apdu, MESSAGE, lock=True)
    content = read_type2(card.process_apdu)
    assert (content.ndef, content.writable) == (MESSAGE, False)
    assert card.memory[10:12] == b"\xff\xff" and card.memory[15] == 0x0F
    with pytest.raises(TagReadOnly):
        write_type2(card.process_apdu, b"\xd0\x00\x00")
    with pytest.raises(TagTooSmall):
        write_type2(Type2Card(UID7).process_apdu, bytes(200))


# -- ATRs, reader names, specs --------------------------------------------------------------
def test_storage_card_atrs():
    assert storage_card(ATR_ULTRALIGHT) == ("MIFARE Ultralight / NTAG", True)
    assert storage_card(bytes.fromhex("3b8f8001804f0ca000000306030001000000006a")) == ("MIFARE Classic 1K", False)
    assert storage_card(ATR_ISO_DEP) is None
    assert storage_card(b"") is None


def test_pick_reader():
    readers = ["Alcor Micro AU9540 00 00", "ACS ACR1252 Dual Reader [ACR1252 Dual Reader SAM] 01 00",
               "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00"]
    assert pick_reader(readers, None) == readers[2]
    assert pick_reader(readers[:2], None) == readers[0]
    assert pick_reader(readers[1:2], None) is None
    assert pick_reader(readers, "alcor") == readers[0]
    assert pick_reader(readers, "*acr1252*sam*") == readers[1]
    assert pick_reader(readers, "omnikey") is None
    assert pick_reader([], None) is None


def test_init_refuses_a_kiosk_id_too_long_for_the_challenge():
    with pytest.raises(ValueError):
        init("pcsc", kiosk_id="k" * 300)


def test_init_parses_the_spec():
    assert init("pcsc").pattern is None
    reader = init("pcsc: ACR122 ", kiosk_id="k-1")
    assert (reader.pattern, reader.kiosk_id, reader.spec) == ("ACR122", "k-1", "pcsc: ACR122 ")
    assert ndef_apdu.select_ndef_app_apdu().hex() == "00a4040007d276000085010100"


def test_without_pyscard_the_backend_imports_and_init_says_what_is_missing():
    # in a fresh interpreter: None in sys.modules makes `from smartcard import scard` fail
    script = ("import sys; sys.modules['smartcard'] = None\n"
              "import drivers\n"
              "try:\n    drivers.open_reader('pcsc')\n"
              "except drivers.ReaderUnavailable as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    assert "pyscard is not installed" in done.stdout


def test_transceiver_resends_a_wrong_le_and_collects_t0_get_response():
    answers = {"00b0000000": "6c04", "00b0000004": "aabb6102", "00c0000002": "ccdd9000",
               "ffca000000": "010203049000"}
    sent: list[str] = []

    def send(apdu: bytes) -> bytes:
        sent.append(apdu.hex())
        return bytes.fromhex(answers[apdu.hex()])

    transceive = pcsc_card.transceiver(send)
    assert transceive(bytes.fromhex("00b0000000")) == bytes.fromhex("aabbccdd9000")
    assert sent == ["00b0000000", "00b0000004", "00c0000002"]
    assert pcsc_card.get_uid(transceive) == bytes.fromhex("01020304")
    assert pcsc_card.get_uid(lambda apdu: b"\x6a\x81") is None
