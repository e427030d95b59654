"""A minimal software WebAuthn authenticator (and the browser's part of a ceremony) for the
shopper page's tests: EC P-256 keys, ES256 signatures, attestation "none".

    device = SoftAuthenticator("http://localhost:8080")
    answer = device.register(start)          # start: {"ceremony", "options"} from the hub
    answer = device.sign_in(start)           # the passkey made above (discoverable)

Both return what hub/static/passkey.js posts as `credential` (WebAuthn JSON, base64url
fields). Every part the hub must check can be tampered with: origin, rp_id, flags (drop UV),
counter, challenge, type, user handle, and a signature made with another key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
AAGUID = bytes(16)  # "none" attestation: all zeros


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0

    @property
    def id_b64(self) -> str:
        return b64url(self.id)


class SoftAuthenticator:
    """One authenticator (and the browser driving it) on one origin; it keeps its passkeys."""

    def __init__(self, origin: str, rp_id: str | None = None) -> None:
        self.origin = origin
        self.rp_id = rp_id or urlsplit(origin).hostname
        self.credentials: list[Credential] = []

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str, cross_origin: bool = False) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin},
                          separators=(",", ":")).encode()

    # -- navigator.credentials.create -----------------------------------------------------
    def register(self, start: dict, *, origin: str | None = None, rp_id: str | None = None,
                 flags: int = UP | UV | AT, counter: int = 0, challenge: str | None = None,
                 kind: str = "webauthn.create", key: ec.EllipticCurvePrivateKey | None = None,
                 credential_id: bytes | None = None, keep: bool = True) -> dict:
        options = start["options"]
        rp_id = rp_id if rp_id is not None else (options.get("rp", {}).get("id") or self.rp_id)
        key = key or new_key()
        credential_id = credential_id or os.urandom(32)
        user_handle = unb64url(options["user"]["id"])
        attested = AAGUID + struct.pack(">H", len(credential_id)) + credential_id + cose_key(key)
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", counter) + attested
        client_data = self.client_data(kind, challenge if challenge is not None else options["challenge"],
                                       origin or self.origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        if keep:
            self.credentials.append(Credential(credential_id, key, rp_id, user_handle, counter))
        return {
            "id": b64url(credential_id), "rawId": b64url(credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation),
                         "transports": ["internal", "hybrid"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    # -- navigator.credentials.get --------------------------------------------------------
    def sign_in(self, start: dict, credential: Credential | None = None, *, origin: str | None = None,
                rp_id: str | None = None, flags: int = UP | UV, counter: int | None = None,
                challenge: str | None = None, kind: str = "webauthn.get",
                sign_with: ec.EllipticCurvePrivateKey | None = None, user_handle: bytes | None = None,
                corrupt_signature: bool = False) -> dict:
        """An assertion by `credential` (default: the newest passkey). The counter moves
        forward by one unless `counter` is given."""
        options = start["options"]
        credential = credential or self.credentials[-1]
        if counter is None:
            counter = credential.counter + 1
        credential.counter = counter
        rp_id = rp_id if rp_id is not None else (options.get("rpId") or credential.rp_id)
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", counter)
        client_data = self.client_data(kind, challenge if challenge is not None else options["challenge"],
                                       origin or self.origin)
        signature = (sign_with or credential.key).sign(auth_data + hashlib.sha256(client_data).digest(),
                                                       ec.ECDSA(hashes.SHA256()))
        if corrupt_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        handle = credential.user_handle if user_handle is None else user_handle
        return {
            "id": credential.id_b64, "rawId": credential.id_b64, "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": b64url(handle) if handle else None},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }
