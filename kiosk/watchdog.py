"""systemd's notify protocol, for `Type=notify` + `WatchdogSec=` (packaging/nfc-kiosk.service).

The UI pings from its own clock, so a frozen screen stops the pings and systemd restarts
the kiosk: a hung UI is caught, not only a dead process. Outside systemd (no socket) every
call is a no-op.

    dog = Watchdog(config.notify_socket)
    dog.ready(); dog.ping(); dog.stopping()
"""
from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, socket_path: str = "") -> None:
        if socket_path.startswith("@"):  # abstract namespace socket
            socket_path = "\0" + socket_path[1:]
        self.address = socket_path

    @property
    def active(self) -> bool:
        return bool(self.address)

    def _send(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self.address)
            return True
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)
            return False

    def ready(self) -> bool:
        return self._send("READY=1")

    def ping(self) -> bool:
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")
