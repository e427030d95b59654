"""A private pcscd with virtual readers (Debian `vsmartcard-vpcd`) for the PC/SC tests.

pcscd's socket and pid file are fixed (/run/pcscd), so only one pcscd runs per machine.
The session fixture frees the place first, and never reuses a pcscd it finds (the tests
restart pcscd and need their own reader configuration):
- systemd machines (Debian and Ubuntu enable `pcscd.socket`, which would start the system
  pcscd on our first connection): `systemctl stop pcscd.socket pcscd.service`, and the
  active units are started again at the end;
- no systemd, a daemonised system pcscd: `/etc/init.d/pcscd stop`, then `start` at the end;
- a pcscd left behind by an earlier run of these tests (its config directory carries
  MARKER) is terminated; any other pcscd (someone's `pcscd -f`) is an error that says so.
Needs root, and the `pcscd` and `vsmartcard-vpcd` packages.

The test-owned reader.conf.d declares one vpcd reader on a free port; vpcd gives it two
slots, "<name> 00 00" on the port and "<name> 00 01" on port + 1. (A second vpcd entry in
the same pcscd breaks both: the driver keeps its sockets in static slots.) The name looks
like an ACS reader so that the LED/buzzer feedback is exercised too.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from smartcard import scard

from drivers import pcsc_link
from drivers.base import ReaderState
from tests.emulators.vpcd_card import VirtualCard

log = logging.getLogger(__name__)

MARKER = "kiosk-pcsc-tests"
PID_FILE = Path("/run/pcscd/pcscd.pid")
INIT_SCRIPT = Path("/etc/init.d/pcscd")  # Debian's SysV script, for machines without systemd
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
NAME = "Kiosk ACR122U Virtual PICC"
READER = f"{NAME} 00 00"
OTHER_READER = f"{NAME} 00 01"


def _free_port_pair() -> int:
    for _ in range(200):
        port = random.randrange(20000, 60000, 2)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("0.0.0.0", port))
                b.bind(("0.0.0.0", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free TCP ports for vpcd")


def _pid_file() -> int | None:
    """pcscd's pid, from /run/pcscd/pcscd.pid ("1234\\n\\0"), if the file exists."""
    try:
        digits = PID_FILE.read_text().strip("\0\n ")
    except FileNotFoundError:
        return None
    return int(digits) if digits.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _systemd_units_active() -> list[str]:
    if not (shutil.which("systemctl") and Path("/run/systemd/system").is_dir()):
        return []
    units = ["pcscd.socket", "pcscd.service"]
    out = subprocess.run(["systemctl", "is-active", *units], capture_output=True, text=True).stdout.split()
    return [unit for unit, state in zip(units, out) if state in ("active", "activating")]


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _free_pcscd_place() -> list[list[str]]:
    """Stop whatever pcscd holds /run/pcscd; return the commands that start it again."""
    restore = []
    units = _systemd_units_active()
    if units:
        log.info("stopping the system pcscd (%s) for the tests", ", ".join(units))
        subprocess.run(["systemctl", "stop", "pcscd.socket", "pcscd.service"], check=True)
        restore.append(["systemctl", "start", *units])
    pid = _pid_file()
    if not pid or not _pid_alive(pid):
        return restore
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    if any(MARKER in arg for arg in argv):
        log.warning("terminating pcscd %d left behind by an earlier test run", pid)
        os.kill(pid, signal.SIGTERM)
    elif INIT_SCRIPT.exists() and not {"-f", "--foreground"} & set(argv):
        log.info("stopping the system pcscd (%s) for the tests", INIT_SCRIPT)
        subprocess.run([str(INIT_SCRIPT), "stop"], check=True, capture_output=True)
        restore.append([str(INIT_SCRIPT), "start"])
    else:
        raise RuntimeError(f"a pcscd not started by these tests is running (pid {pid}: {' '.join(argv).strip()}); "
                           "stop it and run the tests again")
    _wait_gone(pid)
    return restore


class Pcscd:
    """Our pcscd: start(), stop(), restart(), ports of the virtual readers."""

    READER = READER
    OTHER_READER = OTHER_READER

    def __init__(self, workdir: Path) -> None:
        self.config_dir = workdir / f"{MARKER}-reader.conf.d"
        self.config_dir.mkdir()
        self.log_path = workdir / "pcscd.log"
        port = _free_port_pair()
        self.ports = {READER: port, OTHER_READER: port + 1}
        (self.config_dir / "kiosk-vpcd").write_text(
            f'FRIENDLYNAME "{NAME}"\nDEVICENAME /dev/null:0x{port:04X}\n'
            f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{port:04X}\n")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(["pcscd", "--foreground", "--config", str(self.config_dir)],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            if _pid_file() == self.proc.pid and set(self.ports) <= set(self.readers()):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pcscd did not list the virtual readers within {timeout}s")

    def stop(self) -> None:
        """SIGTERM, and wait for the exit (pcscd takes about 2 s); `stopped_at` is when
        the signal went out."""
        proc, self.proc = self.proc, None
        self.stopped_at = time.perf_counter()
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            log.warning("pcscd ignored SIGTERM; killing it")
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def readers() -> list[str]:
        rc, ctx = pcsc_link.establish_context()  # the kiosk's lock: its card threads run here too
        if rc:
            return []
        try:
            rc, readers = scard.SCardListReaders(ctx, [])
            return list(readers) if rc == 0 else []
        finally:
            pcsc_link.release_context(ctx)

    def wait_card(self, reader: str, present: bool, timeout: float = 3.0) -> None:
        """Wait until pcscd itself has seen the card arrive / leave (it polls every 400 ms):
        a card removed and inserted between two polls would be invisible."""
        rc, ctx = pcsc_link.establish_context()  # the kiosk's lock: its card threads run here too
        assert rc == 0, hex(rc)
        try:
            state, deadline = scard.SCARD_STATE_UNAWARE, time.monotonic() + timeout
            while time.monotonic() < deadline:
                rc, result = scard.SCardGetStatusChange(ctx, 200, [(reader, state)])
                if rc == 0:
                    state = result[0][1] & ~scard.SCARD_STATE_CHANGED
                    if bool(state & scard.SCARD_STATE_PRESENT) == present:
                        return
            raise AssertionError(f"pcscd did not see the card {'arrive' if present else 'leave'}")
        finally:
            pcsc_link.release_context(ctx)

    def client_contexts(self) -> int:
        """PC/SC contexts open in pcscd: its Unix sockets minus the listening one (vpcd's
        TCP sockets are not counted). pcscd closes a released context's socket promptly."""
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
        unix = {f"socket:[{line.split()[6]}]" for line in lines if len(line.split()) > 6}
        fds = Path(f"/proc/{self.proc.pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.readlink(fd) in unix) - 1


@pytest.fixture(scope="session")
def pcscd():
    if os.geteuid() != 0:
        raise RuntimeError("the PC/SC tests start their own pcscd and must run as root")
    if not VPCD_DRIVER.exists() or not shutil.which("pcscd"):
        raise RuntimeError("install the pcscd and vsmartcard-vpcd packages")
    restore = _free_pcscd_place()
    with tempfile.TemporaryDirectory(prefix=MARKER) as workdir:
        daemon = Pcscd(Path(workdir))
        try:
            daemon.start()
            yield daemon
        finally:
            daemon.stop()
            for command in restore:
                if subprocess.run(command, capture_output=True).returncode:
                    log.warning("could not restart the system pcscd: %s", " ".join(command))


@pytest.fixture
def cards(pcscd):
    """Factory: cards(logic, reader=READER, **kw) -> VirtualCard (removed at teardown)."""
    made: list[tuple[str, VirtualCard]] = []

    def make(logic, reader: str = READER, **kwargs) -> VirtualCard:
        card = VirtualCard(pcscd.ports[reader], logic, **kwargs)
        made.append((reader, card))
        return card

    yield make
    for reader, card in made:
        card.remove()
    if pcscd.proc is not None:  # the next test must not find a stale "present" card
        for reader in {reader for reader, _ in made}:
            pcscd.wait_card(reader, present=False)


class Recorder:
    """Collects what a reader reports; waits for it."""

    def __init__(self) -> None:
        self.reads: list = []
        self.states: list = []
        self.state_times: list[float] = []
        self.read_times: list[float] = []
        self._changed = threading.Condition()

    def on_read(self, read) -> None:
        with self._changed:
            self.reads.append(read)
            self.read_times.append(time.perf_counter())
            self._changed.notify_all()

    def on_state(self, status) -> None:
        with self._changed:
            self.states.append(status)
            self.state_times.append(time.perf_counter())
            self._changed.notify_all()

    def wait_read(self, count: int = 1, timeout: float = 3.0):
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.reads) >= count, timeout), \
                f"no tag read within {timeout}s (states: {self.states})"
            return self.reads[count - 1]

    def wait_state(self, state: ReaderState, timeout: float = 3.0, after: int = 0):
        """The first status `state` reported at or after index `after`, and when."""
        def found():
            return next(((s, t) for s, t in zip(self.states[after:], self.state_times[after:])
                         if s.state == state), None)

        with self._changed:
            assert self._changed.wait_for(found, timeout), f"no {state} within {timeout}s: {self.states}"
            return found()


@pytest.fixture
def start_reader(pcscd):
    """Factory: start_reader(spec=..., **options) -> (reader, recorder), stopped at teardown."""
    import drivers

    started = []

    def start(spec: str = f"pcsc:{READER}", wait: bool = True, **options):
        options.setdefault("kiosk_id", "kiosk-test-1")
        options.setdefault("apdu_timeout", 1.0)
        reader = drivers.open_reader(spec, **options)
        recorder = Recorder()
        reader.start(on_read=recorder.on_read, on_state=recorder.on_state)
        started.append(reader)
        if wait:
            recorder.wait_state(ReaderState.CONNECTED)
        return reader, recorder

    yield start
    for reader in started:
        reader.stop()
