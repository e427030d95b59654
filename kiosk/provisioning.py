"""Device identity: enrolling with a hub and keeping the result in a 0600 file.

    identity = enroll(hub_url, "DEMO", name, config.device_file)   # once, by a technician
    identity, hub_url = load_identity(config.device_file)   # every start
    key, fresh = cache_key(config.device_file)   # this kiosk's own key for its shopper cache

The device file holds the enrollment (its token is pinned to the hub URL it was issued by:
`hub_url`, which kiosk/config.py puts over any configured one, so a kiosk re-enrolled with a
new hub talks to that hub from then on) and `cache_key`: 32 random bytes made on this kiosk at enrollment, never sent anywhere. The
cache finds a shopper's view by HMAC(cache_key, card or phone id); nothing in it can be
presented to a hub as a credential, by this kiosk or another.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict
from pathlib import Path

from kiosk import api
from kiosk.config import same_url
from kiosk.errors import ConfigError, NotEnrolled
from kiosk.files import private_dir
from kiosk.hubclient import HubClient

CACHE_KEY_BYTES = 32

log = logging.getLogger(__name__)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise NotEnrolled()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return data
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the device identity file {path} is damaged ({exc}); re-enroll the kiosk") from None


def load_identity(path: Path) -> tuple[api.Enrollment, str]:
    """The stored identity and the hub URL it was enrolled with (its token is for that hub only)."""
    data = _read(path)
    try:
        identity = api.Enrollment.from_json(data["enrollment"])
        return identity, data.get("hub_url", "")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the device identity file {path} is damaged ({exc}); re-enroll the kiosk") from None


def cache_key(path: Path) -> tuple[bytes, bool]:
    """This kiosk's own cache key, and whether it was made just now: a device file written
    before kiosks had their own key gets one here (saved at once, 0600); the caller then
    forgets the shopper views cached under the old, hub-wide key."""
    data = _read(path)
    try:
        key = bytes.fromhex(data.get("cache_key", ""))
    except (ValueError, TypeError):
        key = b""
    if len(key) == CACHE_KEY_BYTES:
        return key, False
    key = secrets.token_bytes(CACHE_KEY_BYTES)
    data["cache_key"] = key.hex()
    data.get("enrollment", {}).pop("credential_key", None)  # the hub's old shared secret leaves the disk
    _write(path, data)
    log.info("this kiosk made its own cache key; shopper views cached under the old key are dropped")
    return key, True


def _previous_token(path: Path, hub_url: str) -> str:
    """The stored token, if it was issued by `hub_url` (else "": a token stays with its hub)."""
    try:
        identity, enrolled_url = load_identity(path)
    except (NotEnrolled, ConfigError):
        return ""
    return identity.device_token if enrolled_url and same_url(enrolled_url, hub_url) else ""


def _write(path: Path, data: dict) -> None:
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a .tmp left behind by a crash
    os.replace(tmp, path)


def save_identity(path: Path, identity: api.Enrollment, hub_url: str, key: bytes | None = None) -> None:
    """Store an enrollment with a new cache key of this kiosk's own (a new identity never
    reads what an older one cached)."""
    key = key or secrets.token_bytes(CACHE_KEY_BYTES)
    _write(path, {"enrollment": asdict(identity), "hub_url": hub_url, "cache_key": key.hex()})


def enroll(hub_url: str, code: str, name: str, path: Path, timeout: float = 5.0,
           allow_insecure: bool = False) -> api.Enrollment:
    """Trade a one-time enrollment code for a device identity and store it (mode 0600).
    A plain http:// hub off loopback is refused (ConfigError) unless `allow_insecure`.
    Enrolling again with the hub this kiosk is enrolled with, the old token goes along
    (`previous_token`): if its brand revoked it, the hub then accepts the queued events that
    point at the old device's check-ins. It never goes to any other hub."""
    client = HubClient(hub_url, timeout=timeout, allow_insecure=allow_insecure)
    try:
        identity = client.enroll(code, name, previous_token=_previous_token(path, hub_url))
    finally:
        client.close()
    save_identity(path, identity, hub_url.strip().rstrip("/"))
    log.info("enrolled as device %s for store %s", identity.device_id, identity.store_id)
    return identity
