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
from typing import Callable

from kiosk import errors as E
from kiosk import logs
from kiosk.cache import Cache
from kiosk.config import Config, same_url, settle
from kiosk.files import private_dir
from kiosk.hubclient import HubClient
from kiosk.outbox import Outbox
from kiosk.provisioning import cache_key, enroll, load_identity
from kiosk.service import KioskService
from kiosk.sync import SyncWorker

__all__ = ["KioskService", "build_service", "ensure_enrolled", "pinned_hub_url", "same_url"]
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


def build_service(config: Config, reader=None, dispatch: Callable | None = None, with_reader: bool = True) -> KioskService:
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
    if reader is None and with_reader:
        import drivers
        reader = drivers.open_reader(config.reader, kiosk_id=identity.device_id)
    service = KioskService(config, identity, hub, outbox, cache, sync, reader=reader, dispatch=dispatch,
                           hub_url=hub_url, cache_key=key)
    sync.heartbeat_extra = lambda: {"reader_state": service.reader_status.state.value}
    return service
