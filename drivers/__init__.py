"""NFC readers. Importing this package loads neither nfcpy nor pyscard: backends are
resolved lazily by name.

    reader = drivers.open_reader("nfcpy:udp:localhost:9000", kiosk_id="dev-1")

Names: ``simulated``, ``nfcpy:usb``, ``nfcpy:usb:<vid>:<pid>``, ``nfcpy:tty:<port>``,
``nfcpy:udp:<host>:<port>``, ``pcsc``, ``pcsc:<reader name pattern>``.
"""
from __future__ import annotations

import importlib

from drivers.base import (  # noqa: F401  (re-exported)
    HCE, MALFORMED, MAX_NDEF_BYTES, MOVED, TYPE2, TYPE3, TYPE4, UID_ONLY, UNSUPPORTED,
    HceAnswer, Reader, ReaderError, ReaderState, ReaderStatus, ReaderTimeout,
    ReaderUnavailable, TagRead, UnknownBackend,
)

__all__ = ["HCE", "MALFORMED", "MAX_NDEF_BYTES", "MOVED", "TYPE2", "TYPE3", "TYPE4", "UID_ONLY", "UNSUPPORTED",
           "HceAnswer", "Reader", "ReaderError", "ReaderState", "ReaderStatus", "ReaderTimeout",
           "ReaderUnavailable", "TagRead", "UnknownBackend", "BACKENDS", "backend_module", "open_reader"]

# backend prefix -> module that defines init(spec, **options)
BACKENDS = {
    "simulated": "drivers.simulated",
    "nfcpy": "drivers.nfcpy_reader",
    "pcsc": "drivers.pcsc_reader",
}


def backend_module(spec: str):
    prefix = spec.split(":", 1)[0].strip().lower()
    try:
        module_name = BACKENDS[prefix]
    except KeyError:
        raise UnknownBackend(f"unknown reader {spec!r}; use one of: {', '.join(sorted(BACKENDS))}") from None
    return importlib.import_module(module_name)


def open_reader(spec: str, **options) -> Reader:
    """Build (not start) the reader named by `spec`."""
    return backend_module(spec).init(spec, **options)
