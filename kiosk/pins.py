"""Staff and technician PINs, hashed: `scrypt:<n>:<r>:<p>$<salt hex>$<digest hex>`.

The one format both sides read: the hub checks staff PINs, the kiosk its local technician
PIN. The older `scrypt$<salt>$<digest>` form (n=2**12, r=8, p=1) is still read.
A staff PIN is 6 to 12 ASCII digits (`valid_pin`; the hub refuses anything else before it
counts a try); hashing and verifying take any string.

    stored = hash_pin("246813"); verify_pin("246813", stored) -> True
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

SCRYPT = (2**14, 8, 1)
MAXMEM = 128 * 1024 * 1024
PIN_MIN_DIGITS = 6
PIN_MAX_DIGITS = 12
# ASCII digits only: `\d` would also take Arabic-Indic, Thai or full-width digits.
PIN_PATTERN = rf"^[0-9]{{{PIN_MIN_DIGITS},{PIN_MAX_DIGITS}}}$"
_PIN = re.compile(PIN_PATTERN)


def valid_pin(pin: object) -> bool:
    """A staff PIN's shape: 6 to 12 ASCII digits."""
    return isinstance(pin, str) and _PIN.fullmatch(pin) is not None


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    n, r, p = SCRYPT
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM)
    return f"scrypt:{n}:{r}:{p}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """Constant-time compare; a malformed stored hash is simply a wrong PIN."""
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        name, *params = scheme.split(":")
        n, r, p = (int(v) for v in params) if params else (2**12, 8, 1)
        if name != "scrypt" or n > 2**20:
            return False
        digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=n, r=r, p=p, maxmem=MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)
