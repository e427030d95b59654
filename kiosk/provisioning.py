"""Device identity: enrolling with a hub and keeping the result in a 0600 file.

    identity = enroll(config, code="DEMO")      # once, by a technician
    identity, hub_url = load_identity(config.device_file)   # every start
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from kiosk import api
from kiosk.errors import ConfigError, NotEnrolled
from kiosk.hubclient import HubClient

log = logging.getLogger(__name__)


def load_identity(path: Path) -> tuple[api.Enrollment, str]:
    """The stored identity and the hub URL it was enrolled with."""
    if not path.is_file():
        raise NotEnrolled()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        identity = api.Enrollment.from_json(data["enrollment"])
        return identity, data.get("hub_url", "")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the device identity file {path} is damaged ({exc}); re-enroll the kiosk") from None


def save_identity(path: Path, identity: api.Enrollment, hub_url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"enrollment": asdict(identity), "hub_url": hub_url}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def enroll(hub_url: str, code: str, name: str, path: Path, timeout: float = 5.0) -> api.Enrollment:
    """Trade a one-time enrollment code for a device identity and store it (mode 0600)."""
    client = HubClient(hub_url, timeout=timeout)
    try:
        identity = client.enroll(code, name)
    finally:
        client.close()
    save_identity(path, identity, hub_url)
    log.info("enrolled as device %s for store %s", identity.device_id, identity.store_id)
    return identity
