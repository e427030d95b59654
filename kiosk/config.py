"""Configuration: read in one place into one frozen object (DESIGN section 9).

Order of precedence: defaults < TOML file < `KIOSK_*` environment variables < explicit
overrides (CLI flags). No other module reads `os.environ`.

    config = load_config(path=None, overrides={"hub_url": "http://127.0.0.1:8080"})
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from kiosk.errors import ConfigError

LANGUAGES = ("en", "vi", "ru", "th")
ENV_PREFIX = "KIOSK_"


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path(platformdirs.user_data_dir("nfc-kiosk"))
    hub_url: str = ""  # only to check: the device token is pinned to the hub it was enrolled with
    allow_insecure_hub: bool = False  # plain http:// to a hub off loopback (a trusted network only)
    id_host: str = "id.nfc-kiosk.dev"
    reader: str = "simulated"
    device_name: str = "kiosk"
    language: str = "en"
    languages: tuple[str, ...] = LANGUAGES
    idle_warning_s: float = 20.0
    idle_timeout_s: float = 30.0
    staff_idle_timeout_s: float = 15.0
    cache_ttl_s: float = 24 * 3600.0
    hub_timeout_s: float = 1.5  # a shopper is waiting: check-ins fall back to cache quickly
    sync_timeout_s: float = 10.0
    sync_interval_s: float = 2.0
    pull_interval_s: float = 300.0
    revocations_interval_s: float = 30.0  # consent revoked or shopper erased elsewhere: forgotten here this soon
    heartbeat_interval_s: float = 60.0
    batch_size: int = 200
    max_retry_after_s: float = 300.0  # cap on a hub's Retry-After (a hub can't park us for hours)
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    low_disk_bytes: int = 200 * 1024 * 1024
    enrollment_code: str = ""  # used once by `kiosk enroll` / demo auto-enrollment
    fullscreen: bool = False
    notify_socket: str = ""  # systemd's NOTIFY_SOCKET (watchdog); read from the environment
    technician_pin_hash: str = ""  # scrypt hash (python -m kiosk.staff): technician mode offline and unenrolled
    input_provider: str = "mouse"  # exactly one Kivy input provider per device: mouse (SDL) | hidinput | mtdev

    @property
    def device_file(self) -> Path:
        return self.data_dir / "device.json"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache.db"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **_coerce(changes))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("nfc-kiosk")) / "kiosk.toml"


def _coerce(values: Mapping[str, Any]) -> dict:
    types = {f.name: f.type for f in fields(Config)}
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        kind = types[key]
        try:
            if kind == "Path":
                value = Path(value).expanduser()
            elif kind == "float":
                value = float(value)
            elif kind == "int":
                value = int(value)
            elif kind == "bool":
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif kind.startswith("tuple"):
                value = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {key!r} has an invalid value") from None
        out[key] = value
    return out


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    path = Path(path) if path else Path(environ.get(ENV_PREFIX + "CONFIG", "") or default_config_path())
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("kiosk", {}))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    names = {f.name for f in fields(Config)}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() in names:
            values[key[len(ENV_PREFIX):].lower()] = value
    if environ.get("NOTIFY_SOCKET"):
        values["notify_socket"] = environ["NOTIFY_SOCKET"]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = Config(**_coerce(values))
    if config.language not in config.languages:
        raise ConfigError(f"language {config.language!r} is not one of {', '.join(config.languages)}")
    if not 0 < config.idle_warning_s < config.idle_timeout_s:
        raise ConfigError("idle_warning_s must be positive and shorter than idle_timeout_s")
    return config
