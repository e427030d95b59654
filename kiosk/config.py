"""Configuration: read in one place into one frozen object (DESIGN section 9).

Order of precedence, lowest first (the README's Configuration section has the same table):

1. the defaults below;
2. the TOML file (`--config`, `KIOSK_CONFIG`, or the platform config dir);
3. `KIOSK_*` environment variables;
4. explicit overrides (command-line flags such as `--data-dir`, and tests);
5. device settings made on the technician screen (`settings.json` in the data dir): only the
   keys in DEVICE_SETTINGS (language, idle timers, the technician PIN's hash); an invalid one
   is ignored with a warning, never a reason not to start;
6. the hub the kiosk enrolled with (`device.json`): `hub_url` is always that hub once the kiosk
   is enrolled, because its device token is only ever sent to the hub that issued it. A
   `hub_url` in the file or the environment then only suggests where to enroll; when it names
   another hub it is logged and ignored (a kiosk re-enrolled on screen with a new hub keeps
   using the new one after a restart, whatever the TOML file still says).

`load_config` applies all six; `settle(config)` applies 5 and 6 again to a config changed
since (build_service does, so a re-enrollment or a new device setting is seen). No other
module reads `os.environ`, and no other module decides which layer wins.

    config = load_config(path=None, overrides={"hub_url": "http://127.0.0.1:8080"})
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from kiosk.errors import ConfigError

LANGUAGES = ("en", "vi", "ru", "th")
ENV_PREFIX = "KIOSK_"
# What a technician may set on the device's screen (layer 5), with each value's type.
DEVICE_SETTINGS: dict[str, type] = {"language": str, "idle_warning_s": float, "idle_timeout_s": float,
                                    "staff_idle_timeout_s": float, "technician_pin_hash": str}
SETTINGS_FILE = "settings.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path(platformdirs.user_data_dir("nfc-kiosk"))
    hub_url: str = ""  # once enrolled: the enrolled hub, always (layer 6); before: where to enroll
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
    technician_pin_hash: str = ""  # scrypt hash (python -m kiosk.staff, or changed on the technician screen)
    input_provider: str = "mouse"  # exactly one Kivy input provider per device: mouse (SDL) | hidinput | mtdev

    @property
    def device_file(self) -> Path:
        return self.data_dir / "device.json"

    @property
    def settings_file(self) -> Path:
        return self.data_dir / SETTINGS_FILE

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
    _check(config)
    return settle(config)


def _check(config: Config) -> None:
    if config.language not in config.languages:
        raise ConfigError(f"language {config.language!r} is not one of {', '.join(config.languages)}")
    if not 0 < config.idle_warning_s < config.idle_timeout_s:
        raise ConfigError("idle_warning_s must be positive and shorter than idle_timeout_s")


def same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def read_device_settings(path: Path) -> dict[str, Any]:
    """The device settings file as stored (a missing or damaged file is no settings)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; the device settings start from the configuration", Path(path).name)
        return {}


def device_layer(config: Config, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The valid device settings among `stored` (layer 5), as they would apply over `config`."""
    out: dict[str, Any] = {}
    for key, kind in DEVICE_SETTINGS.items():
        if key in stored:
            try:
                out[key] = kind(stored[key])
            except (TypeError, ValueError):
                log.warning("ignoring the invalid device setting %s", key)
    if out.get("language") is not None and out["language"] not in config.languages:
        log.warning("ignoring the device setting language: not one of %s", ", ".join(config.languages))
        out.pop("language")
    if "technician_pin_hash" in out and not out["technician_pin_hash"].startswith("scrypt"):
        log.warning("ignoring the device setting technician_pin_hash: not a PIN hash")
        out.pop("technician_pin_hash")
    warning = out.get("idle_warning_s", config.idle_warning_s)
    timeout = out.get("idle_timeout_s", config.idle_timeout_s)
    if not 0 < warning < timeout:
        out.pop("idle_warning_s", None)
        out.pop("idle_timeout_s", None)
    return out


def layer(config: Config, device: Mapping[str, Any] | None = None, enrolled_hub_url: str = "") -> Config:
    """Layers 5 and 6 over `config`: the device settings, then the enrolled hub. Pure."""
    values = device_layer(config, device or {})
    if enrolled_hub_url:
        enrolled = enrolled_hub_url.strip().rstrip("/")
        if config.hub_url and not same_url(config.hub_url, enrolled):
            log.warning("hub_url in the configuration is %s, but this kiosk is enrolled with %s: its device token "
                        "only goes there (re-enroll to move it)", config.hub_url, enrolled)
        values["hub_url"] = enrolled
    changed = {k: v for k, v in values.items() if getattr(config, k) != v}
    return config.replace(**changed) if changed else config


def enrolled_hub_url(config: Config) -> str:
    """The hub this kiosk's device token was issued by ("" when not enrolled or unreadable)."""
    try:
        data = json.loads(config.device_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    url = data.get("hub_url", "") if isinstance(data, dict) else ""
    return url if isinstance(url, str) else ""


def settle(config: Config) -> Config:
    """`config` with what this device knows on top: its settings file and its enrollment."""
    return layer(config, read_device_settings(config.settings_file), enrolled_hub_url(config))
