"""The phone credential's two halves agree: the driver and the reference phone (drivers/, which
may not import kiosk/) restate the nonce length and the domain tag of the signature format that
kiosk.api defines and the hub verifies (docs/phone-credential.md). Each test fails the day one
side changes without the other."""
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers import hce
from drivers.hce_phone import Phone
from kiosk import api

ROOT = Path(__file__).resolve().parents[1]


def test_the_driver_restates_the_contract():
    assert hce.NONCE_BYTES == api.HCE_NONCE_BYTES
    assert hce.DOMAIN == api.HCE_DOMAIN


def test_the_reference_phone_signs_the_message_the_hub_verifies():
    phone = Phone.from_seed("cred-contract", bytes(range(32)))
    key = Ed25519PublicKey.from_public_bytes(phone.public_key_bytes())
    answer = hce.exchange(phone.process_apdu, kiosk_id="dev-ĸiosk-7")  # a non-ASCII id: UTF-8 both sides
    assert len(answer.nonce) == api.HCE_NONCE_BYTES  # what the hub accepts
    key.verify(answer.signature, api.hce_signed_message(answer.nonce, "dev-ĸiosk-7"))
    with pytest.raises(InvalidSignature):  # bound to the kiosk that asked
        key.verify(answer.signature, api.hce_signed_message(answer.nonce, "dev-another"))


def test_the_hce_driver_and_phone_load_nothing_of_the_kiosk():
    code = "import sys, drivers.hce, drivers.hce_phone; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert not {m.split(".")[0] for m in out.split()} & {"kiosk", "ui", "hub"}
