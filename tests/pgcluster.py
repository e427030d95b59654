"""A throwaway PostgreSQL cluster for the test run (stdlib only).

    with PgCluster() as pg:                      # initdb + start, about 1 s
        url = pg.create_database("hub_test")     # postgresql://postgres@127.0.0.1:PORT/hub_test
        ...
        pg.stop_server(); pg.start_server()      # "PostgreSQL restarted": same port, same data

Everything lives in one temp dir (data/, sock/, server.log) that stop() deletes. The server
listens on 127.0.0.1:<free port>, trust auth for the `postgres` role, max_connections=200, and
fsync/full_page_writes/synchronous_commit off (data survives a clean restart, not a machine
crash). It is a real server: real processes, TCP, and stop_server() is a real fast shutdown.

The binaries come from the newest /usr/lib/postgresql/*/bin (Debian/Ubuntu), else
`pg_config --bindir`, else the `initdb` on PATH; install them with `scripts/bootstrap.sh test`
(or `apt-get install postgresql`). As root the server runs as the `postgres` user, who must be
able to enter every parent of base_dir (the default, the system temp dir, is fine; pytest's
tmp_path is not: it is 0700).

Cleanup: stop() is idempotent and also runs at interpreter exit (atexit). On Linux the
postmaster is started as our direct child with a parent-death signal (SIGINT = fast
shutdown), so even a SIGKILLed pytest, or pytest-timeout's os._exit, leaves no server running;
only the temp dir stays behind then.
"""
from __future__ import annotations

import atexit
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INSTALL_HINT = "run `scripts/bootstrap.sh test` as root (or `sudo apt-get install postgresql`)"


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server binaries (initdb, postgres) on this machine."""


def find_bindir() -> Path:
    """The directory holding initdb/postgres/createdb: newest Debian version, pg_config, PATH."""
    def version(d: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(d).parent.name)) or (0,)
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(Path(d, "initdb"), os.X_OK)]
    if found:
        return Path(max(found, key=version))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and os.access(Path(out.stdout.strip(), "initdb"), os.X_OK):
            return Path(out.stdout.strip())
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    raise PostgresNotInstalled(f"PostgreSQL server binaries (initdb) not found: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """Our environment without PG* variables (PGHOST, PGOPTIONS, ...) that would redirect tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class PgCluster:
    """One initdb'd data directory and its server; see the module docstring."""

    port: int
    data_dir: Path
    log_path: Path

    def __init__(self, base_dir: Path | None = None):
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.bindir: Path | None = None
        self.root: Path | None = None          # the temp dir holding everything
        self._proc: subprocess.Popen | None = None
        self._user: dict = {}                  # subprocess kwargs that switch to `postgres` as root

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "PgCluster":
        """initdb (once) into a fresh temp dir, then start the server on a free port."""
        if self.root is None:
            self._init()
        for attempt in range(3):               # a free port can be taken between probe and bind
            try:
                self.start_server()
                return self
            except RuntimeError as e:
                if attempt == 2 or "could not bind" not in str(e):
                    self.stop()
                    raise
                self.port = _free_port()
        return self

    def _init(self) -> None:
        self.bindir = find_bindir()
        for tool in ("initdb", "postgres", "pg_isready", "createdb", "dropdb"):
            if not os.access(self.bindir / tool, os.X_OK):
                raise PostgresNotInstalled(f"{self.bindir / tool} is missing: {INSTALL_HINT}")
        root = Path(tempfile.mkdtemp(prefix="pgcluster-", dir=self.base_dir)).resolve()
        (root / "sock").mkdir(mode=0o700)
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise PostgresNotInstalled(f"running as root but there is no `postgres` user: {INSTALL_HINT}")
            self._user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self._check_enterable(root, pw)
            for p in (root, root / "sock"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o755)                  # postgres (as root: the owner anyway) must enter it
        self.root, self.data_dir, self.log_path = root, root / "data", root / "server.log"
        self.port = _free_port()
        atexit.register(self.stop)
        self._as_server_user([self.bindir / "initdb", "-D", self.data_dir, "-A", "trust", "-U", "postgres",
                              "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")

    def _check_enterable(self, root: Path, pw: pwd.struct_passwd) -> None:
        gids = {pw.pw_gid} | set(os.getgrouplist(pw.pw_name, pw.pw_gid))
        for p in root.parents:
            st = os.stat(p)
            if not (st.st_mode & stat.S_IXOTH or (st.st_uid == pw.pw_uid and st.st_mode & stat.S_IXUSR)
                    or (st.st_gid in gids and st.st_mode & stat.S_IXGRP)):
                shutil.rmtree(root, ignore_errors=True)
                raise RuntimeError(f"the postgres user cannot enter {p} (mode {stat.filemode(st.st_mode)}); "
                                   "give PgCluster a base_dir every user can traverse, or none")

    def _as_server_user(self, argv: list, what: str) -> None:
        out = subprocess.run([str(a) for a in argv], cwd=self.root, env=_clean_env(), capture_output=True,
                             text=True, **self._user)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"{what} failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def start_server(self) -> None:
        """Start the server (same port, same data) and wait until it accepts connections."""
        if self.root is None:
            raise RuntimeError("PgCluster.start_server() before start() (or after stop())")
        if self._proc is not None and self._proc.poll() is None:
            return
        argv = [self.bindir / "postgres", "-D", self.data_dir, "-p", self.port, "-h", "127.0.0.1",
                "-k", self.root / "sock", "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off", "-c", "max_connections=200"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([str(a) for a in argv], cwd=self.root, env=_clean_env(),
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_parent(), **self._user)
        deadline = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"PostgreSQL exited while starting on port {self.port}:\n{self._log_tail()}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                                    str(self.port), "-U", "postgres"], env=_clean_env())
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop_server()
                raise RuntimeError(f"PostgreSQL did not accept connections within 60 s:\n{self._log_tail()}")
            time.sleep(0.05)

    def stop_server(self) -> None:
        """Fast shutdown (what `pg_ctl -m fast stop` does): clients are cut off, the data is kept."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 60), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
            try:
                proc.send_signal(sig)
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        """Stop the server and delete the temp dir. Idempotent; never raises."""
        try:
            self.stop_server()
        except Exception:
            pass
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> "PgCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _client(self, tool: str, *args: str) -> None:
        if self.root is None:
            raise RuntimeError("PgCluster is not started")
        out = subprocess.run([str(self.bindir / tool), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                              "postgres", *args], env=_clean_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {out.stderr.strip()}")

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name (createdb); returns its URL."""
        self._client("createdb", "--", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name WITH (FORCE) (dropdb): open connections are terminated."""
        self._client("dropdb", "--if-exists", "--force", "--", name)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no server log: {e})"


def _die_with_parent():
    """preexec_fn: the postmaster gets SIGINT (fast shutdown) when the thread that started it dies.

    Linux only, and only from the main thread (a worker thread's exit would kill the server).
    It runs in the child after the switch to `postgres`, so the kernel keeps it across exec.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc, parent = ctypes.CDLL(None, use_errno=True), os.getpid()

    def set_pdeathsig() -> None:
        libc.prctl(1, int(signal.SIGINT), 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:   # the parent died before prctl: don't outlive it
            os.kill(os.getpid(), signal.SIGINT)
    return set_pdeathsig
