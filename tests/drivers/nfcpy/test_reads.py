"""Each kind of tap gives the TagRead a shopper's tap should give, once per tap."""
from __future__ import annotations

import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import drivers
from drivers import hce
from drivers.base import HCE, TYPE2, TYPE3, TYPE4, UID_ONLY, UNSUPPORTED, ReaderState
from drivers.hce_phone import Phone
from drivers.nfcpy_reader import DEFAULT_TARGETS, NfcpyReader
from kiosk import api
from tests.drivers.nfcpy.conftest import KIOSK_ID, no_new_reads, settle, uri_message
from tests.emulators.nfc_udp import Felica, Ntag213, phone, type4_tag

CARD = uri_message("https://id.example/s/4f1c9a0b7e2d")
PRODUCT = uri_message("https://id.gs1.org/01/09506000134352")
LONG = uri_message("https://id.example/s/" + "k" * 610)  # > 253 bytes: ISO-DEP chaining both ways


def test_ntag213_gives_uid_and_ndef(field, start_reader):
    reader, taps = start_reader(["106A"])
    tag = Ntag213(CARD)
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert (read.technology, read.uid, read.ndef, read.tag_type) == (TYPE2, tag.uid, CARD, "NTAG213")
    assert read.problem is None and read.reader == field.spec
    assert 0 < read.read_ms < 500


def test_felica_gives_idm_and_ndef(field, start_reader):
    reader, taps = start_reader(["212F"])
    tag = Felica(PRODUCT)
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert (read.technology, read.uid, read.ndef) == (TYPE3, tag.idm, PRODUCT)
    assert read.tag_type.startswith("FeliCa Standard") and read.problem is None


def test_type4_tag_long_message(field, start_reader):
    reader, taps = start_reader(["106A"])
    tag = type4_tag(LONG)
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert (read.technology, read.uid, read.ndef, read.tag_type) == (TYPE4, tag.uid, LONG, "Type4Tag")
    assert tag.apdus[0] == hce.select_apdu()  # the kiosk app was asked for first


def test_phone_answer_verifies_against_its_key(field, start_reader):
    reader, taps = start_reader(["106A"])
    handset = Phone.generate("cred-31337")
    key = Ed25519PublicKey.from_public_bytes(handset.public_key_bytes())
    nonces = []
    for tap in (1, 2):
        card = phone(handset)
        field.place(card)
        read = taps.wait_reads(tap)[-1]
        assert (read.technology, read.uid, read.problem) == (HCE, card.uid, None)
        answer = read.hce
        assert (answer.credential_id, answer.kiosk_id) == ("cred-31337", KIOSK_ID)
        key.verify(answer.signature, api.hce_signed_message(answer.nonce, answer.kiosk_id))
        with pytest.raises(InvalidSignature):
            key.verify(answer.signature, api.hce_signed_message(answer.nonce, "another-kiosk"))
        nonces.append(answer.nonce)
        field.remove()
        settle(field)
    assert len(nonces[0]) == hce.NONCE_BYTES and nonces[0] != nonces[1]  # a fresh challenge per tap


def test_phone_without_app_is_not_a_credential(field, start_reader):
    reader, taps = start_reader(["106A"])
    field.place(_phone_without_app())
    (read,) = taps.wait_reads(1)
    assert read.problem == UNSUPPORTED and "kiosk app" in read.detail


def _phone_without_app():
    """An Android phone with no matching HCE service: every SELECT answers 6A82."""
    class NoApp:
        def process_apdu(self, apdu: bytes) -> bytes:
            return b"\x6a\x82"

        def reset(self) -> None:
            pass
    return phone(NoApp())


def test_tag_on_the_reader_is_read_once_and_again_after_a_new_tap(field, start_reader):
    reader, taps = start_reader(["106A"], repeat_guard_s=0.3)
    tag = Ntag213(CARD)
    field.place(tag)
    taps.wait_reads(1)
    assert no_new_reads(taps, 1, 1.0), "a tag left on the reader was read again"
    field.remove()
    settle(field)
    field.place(tag)  # back within the guard: field-edge flicker, not a new tap
    assert no_new_reads(taps, 1, 0.2)
    field.remove()
    settle(field)
    time.sleep(0.35)
    field.place(tag)  # a real second tap
    assert taps.wait_reads(2)[1].ndef == CARD


def test_default_targets_find_every_kind(field, start_reader):
    reader, taps = start_reader(DEFAULT_TARGETS)
    for n, tag in enumerate((Felica(PRODUCT), Ntag213(CARD), type4_tag(CARD)), start=1):
        field.place(tag)
        assert taps.wait_reads(n)[-1].ndef == (PRODUCT if n == 1 else CARD)
        field.remove()
        settle(field)


def test_blank_ntag_is_uid_only(field, start_reader):
    reader, taps = start_reader(["106A"])
    tag = Ntag213(ndef=None, cc=bytes(4))  # never NDEF formatted
    field.place(tag)
    (read,) = taps.wait_reads(1)
    assert (read.technology, read.uid, read.ndef, read.problem) == (UID_ONLY, tag.uid, None, None)


def test_feedback_is_harmless_on_udp(field, start_reader):
    reader, taps = start_reader(["106A"])
    field.place(Ntag213(CARD))
    taps.wait_reads(1)
    reader.feedback(True)
    reader.feedback(False)
    field.remove()
    settle(field)
    field.place(Ntag213(PRODUCT))
    assert taps.wait_reads(2)[1].ndef == PRODUCT
    assert reader.status.state == ReaderState.CONNECTED


def test_specs_and_options():
    assert isinstance(drivers.open_reader("nfcpy:usb"), NfcpyReader)
    assert drivers.open_reader("nfcpy:usb:054c:06c3").path == "usb:054c:06c3"
    assert drivers.open_reader("nfcpy:tty:/dev/ttyUSB0").path == "tty:USB0"
    assert drivers.open_reader("nfcpy:udp:localhost:50000").path == "udp:localhost:50000"
    for bad in ("nfcpy:bluetooth", "nfcpy:tty"):
        with pytest.raises(drivers.UnknownBackend):
            drivers.open_reader(bad)
    with pytest.raises(drivers.ReaderError, match="unknown targets"):
        drivers.open_reader("nfcpy:usb", targets=["106X"])
    with pytest.raises(drivers.ReaderError, match="kiosk_id"):
        drivers.open_reader("nfcpy:usb", kiosk_id="k" * 300)
