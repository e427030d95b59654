"""Assembling the kiosk: `build_service(config)` wires the core's parts into a KioskService.

    config = load_config()
    ensure_enrolled(config, "http://127.0.0.1:8080", code="DEMO")
    service = build_service(config)

The device token is pinned to the hub that issued it: `build_service` talks to the enrolled
hub URL only, and refuses to start (ConfigError) when the configured `hub_url` names another
one, so no setting or environment variable can send the token elsewhere. Moving a kiosk to
another hub is a re-enrollment.
"""
from __future__ import annotations

import logging
from typing import Callable

from kiosk import errors as E
from kiosk import logs
from kiosk.cache import Cache
from kiosk.config import Config
from kiosk.files import private_dir
from kiosk.hubclient import HubClient
from kiosk.outbox import Outbox
from kiosk.provisioning import cache_key, enroll, load_identity
from kiosk.service import KioskService
from kiosk.staff import DeviceSettings
from kiosk.sync import SyncWorker

__all__ = ["KioskService", "build_service", "ensure_enrolled", "pinned_hub_url"]
log = logging.getLogger(__name__)


def ensure_enrolled(config: Config, hub_url: str, code: str):
    """Use the stored identity for `hub_url`, or enroll with `code` when there is none."""
    try:
        identity, enrolled_url = load_identity(config.device_file)
    except E.NotEnrolled:
        return enroll(hub_url, code, config.device_name, config.device_file, allow_insecure=config.allow_insecure_hub)
    if enrolled_url.rstrip("/") != hub_url.rstrip("/"):
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


def same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def pinned_hub_url(config: Config, enrolled_url: str) -> str:
    """The hub this kiosk's token was issued by; a configured hub_url must be that one."""
    if not enrolled_url:
        raise E.ConfigError(f"the device file {config.device_file} does not say which hub issued its token: "
                            "re-enroll the kiosk (`kiosk enroll --hub URL --code CODE` or the technician screen)")
    if config.hub_url and not same_url(config.hub_url, enrolled_url):
        raise E.ConfigError(f"hub_url is set to {config.hub_url}, but this kiosk's device token was issued by "
                            f"{enrolled_url} and is only ever sent there: re-enroll the kiosk with the new hub "
                            f"(`kiosk enroll --hub {config.hub_url} --code CODE` or the technician screen), "
                            "or remove hub_url (KIOSK_HUB_URL) from the configuration")
    return enrolled_url.rstrip("/")


def build_service(config: Config, reader=None, dispatch: Callable | None = None, with_reader: bool = True) -> KioskService:
    logs.protect_privacy()
    identity, enrolled_url = load_identity(config.device_file)
    hub_url = pinned_hub_url(config, enrolled_url)
    key, _ = cache_key(config.device_file)
    config = DeviceSettings(config.data_dir / "settings.json").apply(config)  # set on the technician screen
    private_dir(config.data_dir)
    hub = HubClient(hub_url, identity.device_token, timeout=config.hub_timeout_s,
                    max_retry_after=config.max_retry_after_s, allow_insecure=config.allow_insecure_hub)
    outbox = Outbox(config.outbox_path)
    cache = Cache(config.cache_path)
    cache.use_key(key)  # views cached under another key (an older kiosk's, the hub's old one) are dropped
    cache.purge_expired(config.cache_ttl_s)
    sync = SyncWorker(outbox, cache, hub, config, identity)
    if reader is None and with_reader:
        import drivers
        reader = drivers.open_reader(config.reader, kiosk_id=identity.device_id)
    service = KioskService(config, identity, hub, outbox, cache, sync, reader=reader, dispatch=dispatch,
                           hub_url=hub_url, cache_key=key)
    sync.heartbeat_extra = lambda: {"reader_state": service.reader_status.state.value}
    return service
