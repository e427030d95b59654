"""Assembling the kiosk: `build_service(config)` wires the core's parts into a KioskService.

    config = load_config()
    ensure_enrolled(config, "http://127.0.0.1:8080", code="DEMO")
    service = build_service(config)
"""
from __future__ import annotations

import logging
from typing import Callable

from kiosk import errors as E
from kiosk import logs
from kiosk.cache import Cache
from kiosk.config import Config
from kiosk.hubclient import HubClient
from kiosk.outbox import Outbox
from kiosk.provisioning import enroll, load_identity
from kiosk.service import KioskService
from kiosk.staff import DeviceSettings
from kiosk.sync import SyncWorker

__all__ = ["KioskService", "build_service", "ensure_enrolled"]
log = logging.getLogger(__name__)


def ensure_enrolled(config: Config, hub_url: str, code: str):
    """Use the stored identity for `hub_url`, or enroll with `code` when there is none."""
    try:
        identity, enrolled_url = load_identity(config.device_file)
    except E.NotEnrolled:
        return enroll(hub_url, code, config.device_name, config.device_file)
    if enrolled_url.rstrip("/") != hub_url.rstrip("/"):
        outbox = Outbox(config.outbox_path)
        try:
            waiting = outbox.depth() + outbox.parked_count()
        finally:
            outbox.close()
        if waiting:
            raise E.ConfigError(f"this kiosk is enrolled with {enrolled_url} and still has {waiting} event(s) for it; "
                                f"use another --data-dir for {hub_url}")
        return enroll(hub_url, code, config.device_name, config.device_file)
    return identity


def build_service(config: Config, reader=None, dispatch: Callable | None = None, with_reader: bool = True) -> KioskService:
    logs.protect_privacy()
    identity, enrolled_url = load_identity(config.device_file)
    config = DeviceSettings(config.data_dir / "settings.json").apply(config)  # set on the technician screen
    hub_url = config.hub_url or enrolled_url
    if not hub_url:
        raise E.ConfigError("no hub URL: set hub_url in the config or enroll the kiosk")
    hub = HubClient(hub_url, identity.device_token, timeout=config.hub_timeout_s,
                    max_retry_after=config.max_retry_after_s)
    outbox = Outbox(config.outbox_path)
    cache = Cache(config.cache_path)
    sync = SyncWorker(outbox, cache, hub, config, identity)
    if reader is None and with_reader:
        import drivers
        reader = drivers.open_reader(config.reader, kiosk_id=identity.device_id)
    service = KioskService(config, identity, hub, outbox, cache, sync, reader=reader, dispatch=dispatch,
                           hub_url=hub_url)
    sync.heartbeat_extra = lambda: {"reader_state": service.reader_status.state.value}
    return service
