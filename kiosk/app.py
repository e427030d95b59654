"""Assembling the kiosk: `build_service(config)` wires the core's parts into a KioskService.

    config = load_config()
    ensure_enrolled(config, "http://127.0.0.1:8080", code="DEMO")
    service = build_service(config)

The device token is pinned to the hub that issued it: `build_service` talks to the enrolled
hub URL only. A configured `hub_url` (TOML file, environment) naming another hub is logged and
ignored (kiosk/config.py decides the precedence: the enrolled hub always wins), so no setting or
environment variable can send the token elsewhere, and a kiosk re-enrolled with a new hub on
the technician screen keeps talking to that one after a restart. Moving a kiosk to another
hub is a re-enrollment.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from kiosk import errors as E
from kiosk import logs
from kiosk.cache import Cache
from kiosk.config import Config, same_url, settle
from kiosk.files import private_dir
from kiosk.hubclient import HubClient
from kiosk.images import ImageStore
from kiosk.outbox import Outbox
from kiosk.provisioning import cache_key, enroll, load_identity
from kiosk.service import KioskService
from kiosk.sync import SyncWorker

__all__ = ["Core", "KioskService", "build_core", "build_service", "ensure_enrolled", "open_service", "pinned_hub_url",
           "same_url"]
log = logging.getLogger(__name__)


def ensure_enrolled(config: Config, hub_url: str, code: str):
    """Use the stored identity for `hub_url`, or enroll with `code` when there is none."""
    try:
        identity, enrolled_url = load_identity(config.device_file)
    except E.NotEnrolled:
        return enroll(hub_url, code, config.device_name, config.device_file, allow_insecure=config.allow_insecure_hub)
    if not same_url(enrolled_url, hub_url):
        outbox = Outbox(config.outbox_path)
        try:
            waiting = outbox.depth() + outbox.parked_count()
        finally:
            outbox.close()
        if waiting:
            raise E.ConfigError(f"this kiosk is enrolled with {enrolled_url} and still has {waiting} event(s) for it; "
                                f"use another --data-dir for {hub_url}")
        return enroll(hub_url, code, config.device_name, config.device_file, allow_insecure=config.allow_insecure_hub)
    return identity


def pinned_hub_url(config: Config, enrolled_url: str) -> str:
    """The hub this kiosk's token was issued by: the only one it talks to. A configured hub_url
    naming another hub does not move it (kiosk/config.py logs that and ignores it)."""
    if not enrolled_url:
        raise E.ConfigError(f"the device file {config.device_file} does not say which hub issued its token: "
                            "re-enroll the kiosk (`kiosk enroll --hub URL --code CODE` or the technician screen)")
    return enrolled_url.strip().rstrip("/")


@dataclass
class Core:
    """The parts of an enrolled kiosk: what KioskService works with, rebuilt on re-enrollment."""

    config: Config
    identity: object
    hub: HubClient
    outbox: Outbox
    cache: Cache
    sync: SyncWorker
    images: ImageStore
    hub_url: str
    cache_key: bytes

    def close(self) -> None:
        self.sync.stop()
        self.hub.close()
        self.outbox.close()
        self.cache.close()


def build_core(config: Config) -> Core:
    """The enrolled kiosk's parts (raises NotEnrolled without a device file)."""
    logs.protect_privacy()
    identity, enrolled_url = load_identity(config.device_file)
    hub_url = pinned_hub_url(config, enrolled_url)
    key, _ = cache_key(config.device_file)
    config = settle(config)  # device settings from the technician screen, then the enrolled hub (config.py)
    private_dir(config.data_dir)
    hub = HubClient(hub_url, identity.device_token, timeout=config.hub_timeout_s,
                    max_retry_after=config.max_retry_after_s, allow_insecure=config.allow_insecure_hub)
    outbox = Outbox(config.outbox_path)
    cache = Cache(config.cache_path)
    cache.use_key(key)  # views cached under another key (an older kiosk's, the hub's old one) are dropped
    cache.purge_expired(config.cache_ttl_s)
    sync = SyncWorker(outbox, cache, hub, config, identity)
    return Core(config, identity, hub, outbox, cache, sync, ImageStore(cache, hub, config.images_dir), hub_url, key)


def open_reader(config: Config, core: Core | None):
    """The reader named in the configuration (built, not started); phones sign the kiosk's id."""
    import drivers
    return drivers.open_reader(config.reader, kiosk_id=core.identity.device_id if core else "")


def build_service(config: Config, reader=None, dispatch: Callable | None = None, with_reader: bool = True) -> KioskService:
    """An enrolled kiosk's service (raises NotEnrolled, ConfigError)."""
    core = build_core(config)
    if reader is None and with_reader:
        reader = open_reader(core.config, core)
    return KioskService(core.config, core, reader=reader, dispatch=dispatch, build_core=build_core,
                        open_reader=open_reader if with_reader else None)


def open_service(config: Config, reader=None, dispatch: Callable | None = None) -> KioskService:
    """The kiosk's service, enrolled or not: a kiosk that is not (or whose device file names no
    hub) starts with only the technician's Set up and settings, and `reenroll` completes it."""
    try:
        return build_service(config, reader=reader, dispatch=dispatch)
    except E.NotEnrolled:
        log.warning("this kiosk is not enrolled: only the technician screen can help")
    except E.ConfigError as exc:  # e.g. a device file that names no hub: a technician re-enrolls
        log.error("the kiosk cannot start: %s", exc.detail)
    private_dir(config.data_dir)
    return KioskService(settle(config), None, reader=reader, dispatch=dispatch, build_core=build_core,
                        open_reader=open_reader)
