"""The kiosk's data files are private to the kiosk's user: the data directory 0700, every
file in it that names a shopper or holds a secret 0600 (device identity and cache key, the
outbox with its queued credentials, the cache, the technician's settings and PIN lock, and
SQLite's -wal/-shm beside each database). packaging/nfc-kiosk.service adds UMask=0077.

    private_dir(config.data_dir)              # create or tighten to 0700
    private_file(config.device_file)          # create empty or tighten to 0600
    problems = mode_problems(config.data_dir) # [(path, mode, wanted)] for `kiosk doctor`
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE, FILE_MODE = 0o700, 0o600
PRIVATE_FILES = ("device.json", "outbox.db", "cache.db", "settings.json", "pin-lock.json")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700 when this user owns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists with mode 0600 (created empty when absent) before anyone,
    SQLite included, writes to it: SQLite gives its -wal and -shm the database's mode."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)
    return path


def private_database(path: Path) -> None:
    """The database and the side files SQLite keeps beside it, all 0600."""
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = Path(str(path) + suffix)
        if side.exists():
            _tighten(side, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, (stat.S_IMODE(st.st_mode) | (mode & 0o700)) & ~0o077)
    except OSError as exc:  # a read-only or foreign file: `kiosk doctor` reports it
        log.warning("could not make %s private (%s)", path.name, type(exc).__name__)


def private_paths(data_dir: Path) -> list[Path]:
    """The data files that exist and must be private (the directory first)."""
    data_dir = Path(data_dir)
    paths = [data_dir] if data_dir.exists() else []
    for name in PRIVATE_FILES:
        for suffix in ("",) + SQLITE_SIDE_FILES:
            path = data_dir / (name + suffix)
            if path.exists():
                paths.append(path)
    return paths


def mode_problems(data_dir: Path) -> list[tuple[Path, int, int]]:
    """(path, its mode, the mode it should have) for each data file others can read or write."""
    problems = []
    for path in private_paths(data_dir):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            problems.append((path, mode, DIR_MODE if path.is_dir() else FILE_MODE))
    return problems
