"""Prometheus text-format counters (exposition format 0.0.4), process-local like any
Prometheus counter: a restart resets them and `rate()` copes."""
from __future__ import annotations

import threading

from kiosk import api

HELP = {
    "hub_checkins_total": "Check-ins resolved to a shopper view.",
    "hub_checkins_refused_total": "Check-ins refused (unknown, revoked or unverifiable credential).",
    "hub_events_accepted_total": "Events received for the first time and applied.",
    "hub_events_duplicate_total": "Events received again (idempotent retries), absorbed.",
    "hub_events_rejected_total": "Events refused with a reason.",
    "hub_enrollments_total": "Devices enrolled.",
    "hub_heartbeats_total": "Device heartbeats received.",
    "hub_batches_shed_total": "Event batches answered 503 busy (every batch lane busy, the queue full).",
    "hub_requests_shed_total": "Requests answered 503 busy (too many in flight in this process).",
    "hub_device_rate_limited_total": "Requests answered 429 (one kiosk past its request rate in this process).",
}
STATUS_METRIC = {api.CREATED: "hub_events_accepted_total", api.DUPLICATE: "hub_events_duplicate_total",
                 api.REJECTED: "hub_events_rejected_total"}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(HELP, 0)

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._values[name] += by

    def count_event(self, status: str) -> None:
        self.inc(STATUS_METRIC[status])

    def value(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def render(self) -> str:
        with self._lock:
            values = dict(self._values)
        lines = []
        for name, help_text in HELP.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {values[name]}"]
        return "\n".join(lines) + "\n"
