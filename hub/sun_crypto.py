"""The AES primitives under SUN messages (NXP AN12196, AES mode), both sides (hub/sun.py): a
card's session keys from its file read key, UID and read counter (CMAC over SV2 and SV1), the
8-byte SUN MAC, the IV of the encrypted file data, AES-CBC. Pure functions, no state.

    mac_key, enc_key = session_keys(file_key, uid, counter)
"""
from __future__ import annotations

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_SV_MAC = bytes.fromhex("3CC300010080")  # SV2 prefix: session MAC key
_SV_ENC = bytes.fromhex("C33C00010080")  # SV1 prefix: session ENC key


def session_keys(file_key: bytes, uid: bytes, counter: int) -> tuple[bytes, bytes]:
    """(session MAC key, session ENC key): CMAC under the file read key over SV2 and SV1.

    SVx = prefix || UID || counter (3 bytes, least significant first), zero-padded to 16.
    """
    tail = uid + counter.to_bytes(3, "little")
    sv2, sv1 = _SV_MAC + tail, _SV_ENC + tail
    pad = bytes(-len(sv2) % 16)
    return _cmac(file_key, sv2 + pad), _cmac(file_key, sv1 + pad)


def sun_mac(mac_key: bytes, mac_input: bytes) -> bytes:
    """The 8-byte SUN MAC: bytes 1, 3, 5, ... 15 of the CMAC of `mac_input`."""
    return _cmac(mac_key, mac_input)[1::2]


def file_iv(enc_key: bytes, counter: int) -> bytes:
    """IV for the encrypted file data: AES-ECB(session ENC key, counter LSB first || 13 zeros)."""
    # one block under CBC with a zero IV is ECB
    return aes_cbc(enc_key, bytes(16), counter.to_bytes(3, "little") + bytes(13), decrypt=False)


def _cmac(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool) -> bytes:
    """AES-CBC without padding: what SUN encrypts is whole 16-byte blocks."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()
