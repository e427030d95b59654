"""A reference phone: the card side of the kiosk's HCE credential exchange.

Useful to app developers (it is the spec, executable) and used by the tests behind
nfcpy's udp transport and behind pcscd's virtual reader.

    phone = Phone.generate("cred-123")
    hub_registers(phone.credential_id, phone.public_key_bytes())
    response = phone.process_apdu(command_apdu)
"""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers import hce

SW_OK = b"\x90\x00"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CONDITIONS = b"\x69\x85"
SW_WRONG_LENGTH = b"\x67\x00"


class Phone:
    """Answers SELECT AID and the challenge; anything else is refused like a real app would."""

    def __init__(self, credential_id: str, private_key: Ed25519PrivateKey) -> None:
        self.credential_id = credential_id
        self._key = private_key
        self._selected = False

    @classmethod
    def generate(cls, credential_id: str) -> "Phone":
        return cls(credential_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, credential_id: str, seed: bytes) -> "Phone":
        return cls(credential_id, Ed25519PrivateKey.from_private_bytes(seed))

    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def reset(self) -> None:
        self._selected = False

    def process_apdu(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        if cla == 0x00 and ins == 0xA4 and p1 == 0x04:
            lc = apdu[4] if len(apdu) > 4 else 0
            aid = apdu[5:5 + lc]
            self._selected = aid == hce.AID
            return bytes([hce.PROTOCOL_VERSION]) + SW_OK if self._selected else SW_FILE_NOT_FOUND
        if cla == hce.CLA_PROPRIETARY and ins == hce.INS_CHALLENGE:
            if not self._selected:
                return SW_CONDITIONS
            if len(apdu) < 5 or len(apdu) < 5 + apdu[4]:
                return SW_WRONG_LENGTH
            data = apdu[5:5 + apdu[4]]
            nonce, kiosk_id = data[:hce.NONCE_BYTES], data[hce.NONCE_BYTES:].decode("utf-8", "replace")
            if len(nonce) != hce.NONCE_BYTES:
                return SW_WRONG_LENGTH
            # DOMAIN || nonce || kiosk id: kiosk.api.hce_signed_message, which the hub verifies
            signature = self._key.sign(hce.DOMAIN + nonce + kiosk_id.encode("utf-8"))
            cid = self.credential_id.encode("ascii")
            return bytes([len(cid)]) + cid + signature + SW_OK
        return SW_INS_NOT_SUPPORTED
