"""Rate limits every hub process shares: fixed-window counters in the hub's database.

    if not ratelimit.allow(store, f"pin:device:{device.id}", limit=20, window_s=900):
        raise ratelimit.refused(900)

One statement per check (an upsert that returns the new count), atomic on SQLite and
PostgreSQL, so N hub processes behind one port hold one limit, not N. Old windows are swept
now and then. The `limits` library was considered: its storages are Redis, Memcached, MongoDB
and etcd, none of which this hub runs; a counter in the database it already has is one table.
"""
from __future__ import annotations

import secrets
import time

from kiosk import api
from hub.store import HubFailure, HubStore

P_RATE_LIMITED = api.PROBLEM_BASE + "rate-limited"


def hit(store: HubStore, bucket: str, window_s: int, now: float | None = None) -> int:
    """Count one attempt in `bucket`'s current window; the count so far, this one included."""
    now = time.time() if now is None else now
    window = int(now // window_s)
    conn = store.conn
    if secrets.randbelow(200) == 0:
        conn.execute("DELETE FROM rate_limits WHERE until < ?", (now,))
    return conn.execute("INSERT INTO rate_limits(bucket, slot, count, until) VALUES (?,?,1,?) "
                        "ON CONFLICT(bucket, slot) DO UPDATE SET count = rate_limits.count + 1 RETURNING count",
                        (bucket[:200], window, (window + 1) * window_s)).fetchone()[0]


def allow(store: HubStore, bucket: str, limit: int, window_s: int, now: float | None = None) -> bool:
    return hit(store, bucket, window_s, now) <= limit


def retry_in(window_s: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return max(1, int(window_s - now % window_s) + 1)


def refused(window_s: int, what: str = "too many attempts", now: float | None = None) -> HubFailure:
    """429 with Retry-After: the kiosk treats it as "busy, try later", never as a verdict."""
    wait = retry_in(window_s, now)
    return HubFailure(P_RATE_LIMITED, f"{what}: try again in {wait} s", 429, headers={"Retry-After": str(wait)})


BYTES_PER_TOKEN = 32 * 1024


def cost_of(content_length: bytes | None, chunked: bool, limit: int) -> float:
    if chunked:
        return 1 + limit / BYTES_PER_TOKEN
    return 1 + (int(content_length) / BYTES_PER_TOKEN if content_length and content_length.isdigit() else 0)


class Buckets:
    """Token buckets in this process, one per key (a device): `rate` tokens a second, bursts
    of `burst`; a request costs one token, and one more per `BYTES_PER_TOKEN` of its declared
    body (a chunked body, of no declared length, is charged as it would be at the limit). One kiosk flooding the hub is answered 429 at once, before its requests take a
    worker thread or a database connection from the other kiosks. Per process by design: it is
    on every request, so it must cost no query; N processes admit N times the rate, which
    bounds a flood as well."""

    def __init__(self, rate: float, burst: float, max_keys: int = 50_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 when admitted (`cost` tokens taken), else the seconds until it would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        cost = min(cost, self.burst)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens - cost, now)
        return 0.0
