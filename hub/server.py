"""Running the hub: in the foreground (`kiosk hub`) or embedded in a thread on a loopback
port (the demo, `kiosk tap` with no hub given, and the tests).

    with EmbeddedHub(HubSettings(db_path=path, demo=True)) as hub:
        print(hub.url)
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import threading
import time

import uvicorn

from hub import cardkeys
from hub.app import HubSettings, create_app

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(db, host: str = "127.0.0.1", port: int = 8080, workers: int = 1, admin_token: str = "",
          public_url: str = "") -> None:
    """Run the hub in the foreground: `workers` processes on one port, each with its own pool.
    Each worker builds its app from the environment (`app_from_env`); the database must be up
    to date already (the CLI migrated or refused it), so workers never migrate."""
    os.environ["KIOSK_HUB_DB"] = str(db)
    os.environ["KIOSK_HUB_MIGRATE"] = "0"
    os.environ["KIOSK_HUB_DEMO"] = "0"
    if admin_token:
        os.environ["KIOSK_HUB_ADMIN_TOKEN"] = admin_token
    os.environ["KIOSK_HUB_PUBLIC_URL"] = public_url or f"http://localhost:{port}"
    uvicorn.run("hub.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False, timeout_graceful_shutdown=5)


def app_from_env():
    # A worker thread holding the GIL keeps the event loop (new requests, answers) waiting up
    # to the switch interval: 5 ms by default, a fifth of a check-in's budget. 1 ms here.
    sys.setswitchinterval(float(os.environ.get("KIOSK_HUB_SWITCH_INTERVAL_S", "0.001")))
    app = create_app(HubSettings.from_env())
    cardkeys.for_store(app.state.store)  # load the card key now: seal clear keys, or say why cards are refused
    return app


class InThread:
    """An ASGI app served by uvicorn in a daemon thread on a loopback port: the embedded hub,
    the demo web shop. `start()` returns once the port answers; `stop()` ends it."""

    name = "server"

    def serve_in_thread(self, app, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0):
        self.thread = threading.Thread(target=self.server.run, name=self.name, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread:
            self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class EmbeddedHub(InThread):
    name = "embedded hub"

    def __init__(self, settings: HubSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.port = port or free_port(host)
        if not settings.public_url:  # passkeys need a domain: localhost, never 127.0.0.1 (FIELD-NOTES.md)
            settings = dataclasses.replace(settings, public_url=f"http://localhost:{self.port}")
            self.settings = settings
        self.app = create_app(settings)
        cardkeys.for_store(self.app.state.store)  # the card key (for SQLite: <db>.cardkey, made if new)
        self.serve_in_thread(self.app, host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def store(self):
        return self.app.state.store

    def stop(self) -> None:
        super().stop()
        self.store.close()
