"""The phone credential exchange (Android host card emulation), reader side.

Backend-neutral: it needs only a `transceive(apdu: bytes) -> bytes` that returns the
response APDU including SW1 SW2. The full protocol is written down in
docs/phone-credential.md; `drivers.hce_phone` is the reference phone. The reader only frames
the APDUs and parses the answer: the hub verifies the signature, over the message whose format
is the kiosk's and the hub's contract (`kiosk.api.hce_signed_message`).

    answer = exchange(card.transceive, kiosk_id="dev-42")
"""
from __future__ import annotations

import os
import struct

from drivers.base import HceAnswer

# Proprietary AID (ISO 7816-5 category F): "F0" + "KIOSK" + version 01.
AID = bytes.fromhex("F04B494F534B01")
CLA_PROPRIETARY = 0x80
INS_CHALLENGE = 0x10
SIGNATURE_BYTES = 64
PROTOCOL_VERSION = 1
# The challenge's fresh random nonce, and the domain tag the phone signs first. Drivers do not
# import kiosk/, so these restate kiosk.api's HCE_NONCE_BYTES and HCE_DOMAIN (the hub checks and
# verifies against those); tests/test_hce_contract.py fails the day they disagree.
NONCE_BYTES = 16
DOMAIN = b"kiosk-hce-v1"

SW_OK = b"\x90\x00"


class HceError(Exception):
    """The phone did not complete the credential exchange."""


class NotOurApp(HceError):
    """The ISO-DEP target does not host the kiosk's app (SELECT AID refused)."""


def select_apdu() -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(AID)]) + AID + b"\x00"


def challenge_apdu(nonce: bytes, kiosk_id: str) -> bytes:
    data = nonce + kiosk_id.encode("utf-8")
    if len(data) > 255:
        raise ValueError("kiosk id too long for a short APDU")
    return bytes([CLA_PROPRIETARY, INS_CHALLENGE, 0x00, 0x00, len(data)]) + data + b"\x00"


def parse_challenge_response(data: bytes, nonce: bytes, kiosk_id: str) -> HceAnswer:
    """`data` is the response without SW1 SW2: len(1) credential-id, signature(64)."""
    if len(data) < 1 + 1 + SIGNATURE_BYTES:
        raise HceError(f"challenge answer too short ({len(data)} bytes)")
    (id_len,) = struct.unpack_from("B", data, 0)
    if len(data) != 1 + id_len + SIGNATURE_BYTES:
        raise HceError("challenge answer has the wrong length")
    try:
        credential_id = data[1:1 + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise HceError("credential id is not ASCII") from None
    if not credential_id.isprintable():
        raise HceError("credential id has control characters")
    return HceAnswer(credential_id=credential_id, nonce=nonce, kiosk_id=kiosk_id,
                     signature=data[1 + id_len:])


def exchange(transceive, kiosk_id: str, nonce: bytes | None = None) -> HceAnswer:
    """SELECT the kiosk AID, send a fresh challenge, return the phone's signed answer."""
    rapdu = transceive(select_apdu())
    if rapdu[-2:] != SW_OK:
        raise NotOurApp(f"SELECT AID answered {rapdu[-2:].hex()}")
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    rapdu = transceive(challenge_apdu(nonce, kiosk_id))
    if rapdu[-2:] != SW_OK:
        raise HceError(f"challenge answered {rapdu[-2:].hex()}")
    return parse_challenge_response(rapdu[:-2], nonce, kiosk_id)
