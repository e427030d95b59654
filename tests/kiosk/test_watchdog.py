"""The systemd notify protocol over a real unix datagram socket."""
import socket

from kiosk.config import load_config
from kiosk.watchdog import Watchdog


def test_ready_ping_stopping_reach_the_notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        config = load_config(tmp_path / "none.toml", environ={"NOTIFY_SOCKET": str(path)})
        dog = Watchdog(config.notify_socket)
        assert dog.ready() and dog.ping() and dog.stopping()
        assert [server.recv(64) for _ in range(3)] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1"]


def test_outside_systemd_it_does_nothing(tmp_path):
    dog = Watchdog(load_config(tmp_path / "none.toml", environ={}).notify_socket)
    assert not dog.active and not dog.ping()
    assert not Watchdog(str(tmp_path / "gone.sock")).ping()  # a vanished socket is logged, not raised
