"""Opening an nfcpy reader: from a kiosk reader spec to an open `nfc.ContactlessFrontend`.

    clf = open_frontend(nfcpy_path("nfcpy:usb:054c:06c3"))   # or raises ReaderUnavailable

| spec | nfcpy path |
| --- | --- |
| ``nfcpy:usb``, ``nfcpy:usb:<vid>:<pid>`` | ``usb``, ``usb:<vid>:<pid>`` |
| ``nfcpy:tty:<port>[:<driver>]`` (``USB0``, ``/dev/ttyAMA0``) | ``tty:<port>[:<driver>]`` |
| ``nfcpy:com:<port>`` | ``com:<port>`` |
| ``nfcpy:udp:<host>:<port>`` (nfcpy's simulated reader: the tests) | ``udp:<host>:<port>`` |

A failed open becomes `ReaderUnavailable` with what a technician should do about it
(plug a reader in, the udev rule, pcscd holding the device). nfcpy logs every failed
open at ERROR; `open_frontend(..., quiet=True)` keeps the retries of a reader that stays
unplugged out of the log. This module opens and names devices only: it never polls,
reads tags or starts threads (that is `drivers.nfcpy_reader`), and imports nfcpy only
if it is installed.
"""
from __future__ import annotations

import errno
import logging
import threading

try:
    import nfc
except ImportError:  # reported by drivers.nfcpy_reader.init()
    nfc = None

from drivers.base import ReaderUnavailable, UnknownBackend

USB_HINT = ("plug one in; on Linux blacklist the kernel drivers pn533_usb and port100, "
            "install the udev rule, and make sure pcscd is not holding the reader")


class _QuietReopen(logging.Filter):
    """nfcpy logs every failed open at ERROR; a reader that stays unplugged and is retried
    each second would flood the log, so retries after the first are kept quiet."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_QUIET = _QuietReopen()
if nfc is not None:
    logging.getLogger("nfc.clf").addFilter(_QUIET)


def nfcpy_path(spec: str) -> str:
    """``nfcpy:usb:054c:06c3`` -> ``usb:054c:06c3`` (nfcpy's own path syntax)."""
    prefix, _, rest = spec.partition(":")
    kind, _, args = rest.partition(":")
    if prefix.strip().lower() != "nfcpy" or kind not in ("usb", "tty", "udp", "com"):
        raise UnknownBackend(f"unknown nfcpy reader {spec!r}: use nfcpy:usb, nfcpy:usb:<vid>:<pid>, "
                             "nfcpy:tty:<port> or nfcpy:udp:<host>:<port>")
    if kind == "tty" and args.startswith("/dev/tty"):
        args = args[len("/dev/tty"):]
    if kind in ("tty", "com") and not args:
        raise UnknownBackend(f"{spec!r} needs a port, e.g. nfcpy:tty:USB0")
    return f"{kind}:{args}" if args else kind


def error_detail(path: str, exc: BaseException | None) -> str:
    """What a technician reads when no reader could be opened."""
    if exc is None:
        if path.startswith("usb"):
            return f"no supported NFC reader found on {path}: {USB_HINT}"
        return f"no supported NFC reader answered on {path}"
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return f"permission denied opening {path}: install the udev rule for the reader"
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:
        return f"{path} is busy: another program (pcscd?) holds the reader"
    if path.startswith("udp") and isinstance(exc, ValueError):
        return f"nfcpy cannot use {path} (the port has a name in /etc/services): pick another port"
    return f"cannot open {path}: {exc}"


def open_frontend(path: str, quiet: bool = False):
    """An open frontend on nfcpy `path`, or `ReaderUnavailable` with the reason; `quiet`
    silences nfcpy's own error log for this attempt (a retry of a known-missing reader)."""
    clf = nfc.ContactlessFrontend()
    _QUIET.local.active = quiet
    try:
        opened = clf.open(path)
    except (OSError, ValueError) as exc:
        raise ReaderUnavailable(error_detail(path, exc)) from exc
    finally:
        _QUIET.local.active = False
    if not opened:
        raise ReaderUnavailable(error_detail(path, None))
    return clf
