"""Chaos fixtures: a hub in its own process (so it can be killed -9), a fault proxy,
and a kiosk whose hub URL points through the proxy."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from hub.server import free_port


class HubProcess:
    def __init__(self, db, port=None):
        self.db, self.port, self.proc = db, port or free_port(), None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        self.proc = subprocess.Popen([sys.executable, "-m", "launch", "hub", "--db", str(self.db), "--port",
                                      str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/v1/health", timeout=0.5).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("hub process did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def hub_process(hub_db):
    hub = HubProcess(hub_db).start()
    yield hub
    hub.stop()


def report(name, **figures):
    line = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[{name}] {line}")


def route_through(config, hub_url, proxy_url):
    """Enroll with the hub, then give the kiosk the proxy's address as its hub, as if it had
    been enrolled through it: the device token is pinned to the enrolled URL, so a configured
    hub_url can no longer reroute it (issue 9)."""
    from kiosk.app import ensure_enrolled

    ensure_enrolled(config, hub_url, "DEMO")
    data = json.loads(config.device_file.read_text(encoding="utf-8"))
    data["hub_url"] = proxy_url
    config.device_file.write_text(json.dumps(data), encoding="utf-8")
    return config
