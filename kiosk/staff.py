"""Staff and technician modes on the kiosk: the local technician PIN and its lockout, and
the settings a technician changes on the device (what a reader test shows: kiosk/tagtool.py).

    lock = PinLock(config.data_dir / "pin-lock.json")
    ok = lock.check(pin, stored_hash)          # StaffResult-free: True/False, raises PinLocked
    settings = DeviceSettings(config.settings_file); config = settings.apply(config)
    result, config = change_technician_pin(config, old, new, again)   # slow (scrypt): off the UI thread

Staff PINs are verified by the hub (hub/staff.py); only the technician PIN lives here,
hashed with scrypt, so a technician can get in while the hub is unreachable or before the
kiosk is enrolled. Nothing here touches Kivy or the screen; nothing here logs a PIN.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlsplit


from kiosk.config import DEVICE_SETTINGS, layer
from kiosk.pins import PIN_MAX_DIGITS, PIN_MIN_DIGITS, hash_pin, valid_pin, verify_pin  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCK_S = 300.0
SETTINGS_KEYS = DEVICE_SETTINGS  # the one list lives in kiosk/config.py, with the precedence


class PinLocked(Exception):
    """Too many wrong PINs: locked for a while."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"locked for {seconds:.0f} s")
        self.seconds = seconds


def _write_private(path: Path, data: dict) -> None:
    from kiosk.files import private_dir
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)  # a .tmp left by a crash keeps its old mode through O_CREAT
    os.replace(tmp, path)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; starting from defaults", path.name)
        return {}


class PinLock:
    """Wrong-PIN counting that survives a restart (pulling the plug does not reset it)."""

    def __init__(self, path: Path, max_failures: int = MAX_FAILURES, lock_s: float = LOCK_S, clock=time.time) -> None:
        self.path, self.max_failures, self.lock_s, self.clock = Path(path), max_failures, lock_s, clock

    def locked_for(self) -> float:
        return max(0.0, float(_read(self.path).get("locked_until", 0)) - self.clock())

    def check(self, pin: str, stored: str) -> bool:
        """True when the PIN matches; False (and counted) when not; PinLocked while locked."""
        remaining = self.locked_for()
        if remaining > 0:
            raise PinLocked(remaining)
        if stored and verify_pin(pin, stored):
            _write_private(self.path, {"failures": 0, "locked_until": 0})
            return True
        failures = int(_read(self.path).get("failures", 0)) + 1
        if failures >= self.max_failures:
            _write_private(self.path, {"failures": 0, "locked_until": self.clock() + self.lock_s})
            log.warning("technician PIN locked after %d wrong tries", failures)
            raise PinLocked(self.lock_s)
        _write_private(self.path, {"failures": failures, "locked_until": 0})
        return False

    def tries_left(self) -> int:
        return self.max_failures - int(_read(self.path).get("failures", 0))


class DeviceSettings:
    """What a technician sets on the kiosk's screen (language, timeouts, the technician PIN's
    hash), kept in a 0600 JSON file in the data dir; it wins over the TOML file and the
    environment because it was set on this device (kiosk/config.py, layer 5)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def values(self) -> dict:
        """What is stored, as stored (config.device_layer decides what of it applies)."""
        return {k: v for k, v in _read(self.path).items() if k in SETTINGS_KEYS}

    def apply(self, config):
        return layer(config, _read(self.path))

    def save(self, config, **changes):
        """Validate, store and return the new config; ValueError names what is wrong."""
        unknown = set(changes) - set(SETTINGS_KEYS)
        if unknown:
            raise ValueError(f"not a device setting: {', '.join(sorted(unknown))}")
        values = {k: SETTINGS_KEYS[k](v) for k, v in changes.items()}
        new = config.replace(**values)
        if new.language not in new.languages:
            raise ValueError("unknown language")
        timers = {"idle_warning_s", "idle_timeout_s", "staff_idle_timeout_s"} & set(values)
        if timers and (not 5 <= new.idle_warning_s < new.idle_timeout_s <= 600
                       or not 5 <= new.staff_idle_timeout_s <= 600):
            raise ValueError("the warning must come before the reset, both between 5 s and 10 min")
        if "technician_pin_hash" in values and not values["technician_pin_hash"].startswith("scrypt"):
            raise ValueError("the technician PIN is stored hashed only")
        _write_private(self.path, {**_read(self.path), **values})
        return new


def weak_pin(pin: str) -> bool:
    """One digit repeated (111111) or a straight run up or down (123456, 987654)."""
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:])}
    return len(steps) == 1 and steps <= {0, 1, 9}


def change_technician_pin(config, old: str, new: str, again: str, save=None):
    """The technician changes the local technician PIN: the current one (counted like an unlock:
    wrong tries lock it), the new one twice, 6 to 12 digits and not a run like 123456. The new
    PIN is stored hashed in the device settings, never in the TOML file. Slow (two scrypts):
    call it off the UI thread. `save(technician_pin_hash=...)` stores it (the service's
    update_settings, so the running service sees it); by default the settings file itself.

    Returns (StaffResult, config): `code` says why not: wrong_pin (tries_left) | locked
    (locked_for_s) | mismatch | weak_pin | same_pin; the config is the new one when ok."""
    from kiosk.results import StaffResult

    def refused(code: str, **extra):
        return StaffResult(False, "technician", code=code, **extra), config

    if config.technician_pin_hash:
        lock = PinLock(config.data_dir / "pin-lock.json")
        try:
            if not lock.check(old, config.technician_pin_hash):
                return refused("wrong_pin", tries_left=lock.tries_left())
        except PinLocked as exc:
            return refused("locked", locked_for_s=exc.seconds)
    if new != again:
        return refused("mismatch")
    if not valid_pin(new) or weak_pin(new):
        return refused("weak_pin")
    if config.technician_pin_hash and verify_pin(new, config.technician_pin_hash):
        return refused("same_pin")
    stored = hash_pin(new)
    if save is None:
        updated = DeviceSettings(config.settings_file).save(config, technician_pin_hash=stored)
    else:
        updated = save(technician_pin_hash=stored)
    log.info("the technician PIN was changed on this kiosk")
    return StaffResult(True, "technician", "local-technician"), updated


def valid_hub_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


if __name__ == "__main__":  # python -m kiosk.staff: print the hash of a technician PIN for kiosk.toml
    import getpass

    pin = getpass.getpass("technician PIN (6-12 digits): ")
    if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
        raise SystemExit("a PIN is 6 to 12 digits")
    print(f'technician_pin_hash = "{hash_pin(pin)}"')
