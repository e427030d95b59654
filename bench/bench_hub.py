"""Hub load test, in one run on SQLite (one process) and PostgreSQL (one process, then two
workers): 500 simulated kiosks over 50 stores and 4 brands sending check-ins, event batches,
inventory and offers deltas and heartbeats at an open-model arrival rate, against
`python -m hub serve` on loopback. Prints the figures of every set-up side by side.

    .venv/bin/python bench/bench_hub.py [--seconds 20] [--setups sqlite,pg1,pg2] [--rates 50:2000,200:10000]

Open model: every arrival is planned before the window opens (check-ins and event batches at
uniformly drawn times, i.e. a Poisson process with its count fixed; heartbeats every 30 s and
pulls every 60 s per kiosk, at a random phase) and fired as its own task at its time, whether
or not earlier requests have been answered. Latency runs from the planned time, so waiting for
one of the `--connections` keep-alive connections counts (no coordinated omission). 429/503
answers are "shed", not errors; a shed batch is re-sent after Retry-After (idempotent by
event_id). Errors: any other non-2xx, a timeout, a broken connection, a "rejected" event.
Hub and PostgreSQL CPU come from /proc (the hub's process group; the postmaster and its
children). The client is raw HTTP/1.1 on asyncio streams (uvloop if installed): about 0.2 ms of
CPU a request here, against 2.3-2.8 ms with httpx.AsyncClient, on a machine the hub shares.
Target (PostgreSQL, 2 cores): check-in p95 <= 25 ms at 200 check-ins/s while 10,000 events/s
are accepted. A column "holds" if p95 <= 25 ms, no errors, >= 99% of check-ins answered and
events accepted at >= 98% of the offered rate (counted until the last answer). Exit status 1 if
any set-up saw an error; a missed target is a measurement.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # pgcluster; appended so tests/hub never shadows hub/

SHED = (429, 503)
TARGET_CHECKINS, TARGET_EVENTS, TARGET_P95_MS = 200, 10_000, 25.0
HEARTBEAT_S, PULL_S = 30.0, 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Pool:
    """Keep-alive HTTP/1.1 connections to one hub, all opened up front and handed out first in,
    first out, so every one stays warm and two workers share the load. A broken or closed
    connection is replaced by a new one on its next use."""

    def __init__(self, port: int, size: int):
        self.port, self.size = port, size
        self.idle: asyncio.Queue = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn:
                conn[1].close()

    async def request(self, token: str, method: str, path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        conn = await self.idle.get()
        try:
            for _ in (0, 1):
                fresh = conn is None
                if fresh:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    status, headers, data = await self._exchange(conn, head + body)
                    break
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    # A kept-alive connection the server closed while idle: once more on a new one.
                    conn[1].close()
                    conn = None
                    if fresh or getattr(exc, "partial", b""):
                        raise
        except BaseException:
            if conn:
                conn[1].close()
            self.idle.put_nowait(None)
            raise
        if headers.get("connection", "").lower() == "close":
            conn[1].close()
            conn = None
        self.idle.put_nowait(conn)
        return status, headers, data

    @staticmethod
    async def _exchange(conn, request: bytes) -> tuple[int, dict, bytes]:
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ValueError("a chunked answer (the hub sends Content-Length)")
        length = int(headers.get("content-length", "0"))
        return status, headers, await reader.readexactly(length) if length else b""


@dataclass
class Kiosk:
    device_id: str
    token: str
    brand_id: str
    store_id: str
    gtins: list
    inventory_cursor: str = ""
    offers_cursor: str = ""


@dataclass
class Stats:
    checkin_ms: list = field(default_factory=list)
    created: int = 0
    shed: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def error(self, what: str) -> None:
        self.errors[what[:160]] += 1


def plan(args, kiosks: list[Kiosk], shoppers: list[str], checkins_s: float, events_s: float,
         seconds: float, rng: random.Random) -> list[tuple]:
    """Every request of one window, as (offset s, kind, kiosk, body), sorted by offset."""
    out = []
    for _ in range(round(checkins_s * seconds)):
        body = json.dumps({"credential": {"kind": "token", "token": rng.choice(shoppers)}}).encode()
        out.append((rng.uniform(0, seconds), "checkin", rng.choice(kiosks), body))
    for _ in range(round(events_s * seconds / args.batch)):
        k, now = rng.choice(kiosks), time.time()
        events = []
        for _ in range(args.batch):
            event = {"event_id": str(uuid.uuid4()), "type": "scan", "gtin": rng.choice(k.gtins), "at": now}
            if rng.random() < args.wishlist:
                event.update(type="wishlist_add", credential={"kind": "token", "token": rng.choice(shoppers)})
            events.append(event)
        out.append((rng.uniform(0, seconds), "batch", k, json.dumps({"events": events}).encode()))
    for k in kiosks:
        for kind, period in (("heartbeat", HEARTBEAT_S), ("inventory", PULL_S), ("offers", PULL_S)):
            t = rng.uniform(0, period)
            while t < seconds:
                out.append((t, kind, k, b""))
                t += period
    out.sort(key=lambda r: r[0])
    return out


def request_of(kind: str, k: Kiosk, body: bytes) -> tuple[str, str, bytes]:
    if kind == "checkin":
        return "POST", "/v1/checkins", body
    if kind == "batch":
        return "POST", "/v1/events:batch", body
    if kind == "heartbeat":
        beat = {"version": "bench", "outbox_depth": 0, "parked": 0, "last_sync": time.time()}
        return "POST", f"/v1/devices/{k.device_id}/heartbeat", json.dumps(beat).encode()
    if kind == "inventory":
        return "GET", f"/v1/stores/{k.store_id}/inventory?since={quote(k.inventory_cursor)}", b""
    return "GET", f"/v1/offers?since={quote(k.offers_cursor)}", b""


async def fire(pool: Pool, stats: Stats, args, due: float, kind: str, k: Kiosk, body: bytes) -> None:
    loop = asyncio.get_running_loop()
    try:
        for attempt in range(args.retries + 1):
            async with asyncio.timeout_at((due if attempt == 0 else loop.time()) + args.timeout):
                status, headers, data = await pool.request(k.token, *request_of(kind, k, body))
            if status not in SHED:
                break
            stats.shed[kind] += 1
            if kind != "batch" or attempt == args.retries:
                return  # the kiosk shows its cached view, keeps the events in its outbox, tries later
            await asyncio.sleep(min(float(headers.get("retry-after", "1") or 1), 5.0))
        if not 200 <= status < 300:
            stats.error(f"{kind}: HTTP {status} {data[:100]!r}")
        elif kind == "checkin":
            if b'"shopper"' not in data:
                stats.error(f"checkin: 200 without a shopper: {data[:100]!r}")
            else:
                stats.checkin_ms.append((loop.time() - due) * 1000)
        elif kind == "batch":
            results = json.loads(data)["results"]
            stats.created += sum(r["status"] == "created" for r in results)
            if len(results) != args.batch:
                stats.error(f"batch: {len(results)} results for {args.batch} events")
            for r in results:
                if r["status"] not in ("created", "duplicate"):
                    stats.error(f"event {r['status']}: {r.get('reason', '')}")
        elif kind in ("inventory", "offers"):
            answer = json.loads(data)
            if not isinstance(answer.get(kind), list):
                stats.error(f"{kind}: answer without a list: {data[:100]!r}")
            setattr(k, f"{kind}_cursor", answer["cursor"])
    except TimeoutError:
        stats.error(f"{kind}: no answer within {args.timeout:g} s")
    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError) as exc:
        stats.error(f"{kind}: {exc!r}")


async def drive(pool: Pool, stats: Stats, args, requests: list[tuple]) -> float:
    """Fire every request at its planned time; returns seconds until the last one is answered."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    for offset, kind, k, body in requests:
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(fire(pool, stats, args, start + offset, kind, k, body)))
    await asyncio.gather(*tasks)
    return loop.time() - start


def cpu_seconds(wanted) -> float:
    """utime+stime+cutime+cstime of every process for which wanted(pid, ppid, pgrp) holds."""
    total = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        f = text[text.rindex(")") + 2:].split()  # f[0] is field 3 of proc(5)
        if wanted(int(entry), int(f[1]), int(f[2])):
            total += sum(int(x) for x in f[11:15])
    return total / CLK_TCK


class Hub:
    """`python -m hub migrate`, the fleet seeded in-process, then `python -m hub serve` in its own
    process group (so its CPU, workers included, is that group's)."""

    def __init__(self, url: str, workers: int, log: Path):
        self.url, self.workers, self.log = url, workers, log
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, args) -> dict:
        with open(self.log, "ab") as log:
            if subprocess.run([sys.executable, "-m", "hub", "migrate", "--db", self.url], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT).returncode:
                raise RuntimeError(f"hub migrate failed:\n{self.tail()}")
        from hub import demo
        from hub.store import HubStore
        store = getattr(HubStore, "open", HubStore)(self.url)  # open(url), else the constructor
        world = demo.seed_fleet(store, brands=args.brands, stores=args.stores, kiosks=args.kiosks,
                                shoppers=args.shoppers)
        store.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "hub", "serve", "--db", self.url, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not self.settle(60, quick=2.0):
            raise RuntimeError(f"the hub was not ready within 60 s:\n{self.tail()}")
        return world

    def settle(self, seconds: float, quick: float = 0.1) -> bool:
        """Wait until /v1/ready answers 200 within `quick` s: ready, and done with any backlog
        (requests an earlier step abandoned are still being worked off)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n{self.tail()}")
            t = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/ready", timeout=quick) as r:
                    if r.status == 200 and time.monotonic() - t <= quick:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def cpu(self) -> float:
        return cpu_seconds(lambda pid, ppid, pgrp: pgrp == self.proc.pid)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def database_for(setup: str, tmp: Path, pg, prefix: str):
    """(database URL, cluster) for a set-up: a SQLite file in `tmp`, or a new database on the
    throwaway PostgreSQL cluster (started on first use)."""
    if setup == "sqlite":
        return str(tmp / "hub.db"), pg
    if pg is None:
        from pgcluster import PgCluster
        pg = PgCluster().start()
    return pg.create_database(f"{prefix}_{setup}"), pg


def postmaster_cpu(pg):
    """CPU of the postmaster and its children, or None if its pid cannot be found."""
    try:
        pid = int((Path(pg.data_dir) / "postmaster.pid").read_text().split()[0])
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    return lambda: cpu_seconds(lambda p, ppid, pgrp: pid in (p, ppid))


async def measure(args, hub: Hub, pg_cpu, kiosks, shoppers, checkins_s, events_s, rng) -> dict:
    warm = plan(args, kiosks, shoppers, checkins_s, events_s, args.warmup, rng)
    window = plan(args, kiosks, shoppers, checkins_s, events_s, args.seconds, rng)
    pool = Pool(hub.port, args.connections)
    await pool.open()
    stats, warm_stats = Stats(), Stats()
    try:
        first = [(0.0, kind, k, b"") for k in kiosks if not k.inventory_cursor for kind in ("inventory", "offers")]
        await drive(pool, warm_stats, args, first)  # a kiosk's first pulls are whole catalogues; not timed
        await drive(pool, warm_stats, args, warm)
        has_pg, pg_cpu = pg_cpu is not None, pg_cpu or (lambda: 0.0)
        hub0, pg0, me0, t0 = hub.cpu(), pg_cpu(), resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        elapsed = await drive(pool, stats, args, window)
        hub1, pg1, me1 = hub.cpu(), pg_cpu(), resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - t0
    finally:
        pool.close()
    stats.errors.update(warm_stats.errors)  # an error while warming up is still an error
    lat = sorted(stats.checkin_ms)
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
    per_k = 1000 / stats.created if stats.created else float("nan")
    n_checkins = round(checkins_s * args.seconds)
    accepted_s, shed = stats.created / max(args.seconds, elapsed), stats.shed
    holds = (not stats.errors and pct(0.95) <= TARGET_P95_MS and len(lat) >= 0.99 * n_checkins
             and accepted_s >= 0.98 * events_s)  # kept pace: a backlog of at most 2% at the end
    at_target = has_pg and checkins_s >= TARGET_CHECKINS and events_s >= TARGET_EVENTS
    return {"checkins_s": checkins_s, "events_s": events_s, "answered": f"{len(lat):,} / {n_checkins:,}",
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "accepted_s": accepted_s,
            "batches_shed": shed["batch"],
            "other_shed": f"{shed['checkin']} / {sum(shed.values()) - shed['batch'] - shed['checkin']}",
            "errors": stats.errors, "n_errors": sum(stats.errors.values()),
            "hub_k": (hub1 - hub0) * per_k, "pg_k": (pg1 - pg0) * per_k if has_pg else None,
            "busy": (hub1 - hub0 + pg1 - pg0) / wall,
            "client": (me1.ru_utime - me0.ru_utime + me1.ru_stime - me0.ru_stime) / wall,
            "holds": "yes" if holds else "no",
            "target": ("yes" if holds else "no") if at_target else None}


def run_async(coro):
    try:
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


ROWS = [("check-ins/s offered", "checkins_s", ",.0f"), ("events/s offered", "events_s", ",.0f"),
        ("check-ins answered", "answered", ""), ("check-in p50 ms", "p50", ".1f"), ("check-in p95 ms", "p95", ".1f"),
        ("check-in p99 ms", "p99", ".1f"), ("events/s accepted", "accepted_s", ",.0f"),
        ("batches shed", "batches_shed", ""), ("check-ins / other shed", "other_shed", ""),
        ("errors", "n_errors", ""), ("hub CPU s / 1,000 events", "hub_k", ".3f"),
        ("PG CPU s / 1,000 events", "pg_k", ".3f"), ("hub+PG cores busy (of 2)", "busy", ".2f"),
        ("bench client cores busy", "client", ".2f"), ("holds (p95<=25ms, pace)", "holds", ""),
        ("target met (PG 200 + 10k/s)", "target", "")]


def table(columns: list[tuple[str, dict]]) -> str:
    width = max(12, *(len(name) + 2 for name, _ in columns))
    lines = [" " * 28 + "".join(f"{name:>{width}}" for name, _ in columns)]
    for label, key, fmt in ROWS:
        cells = ("-" if r[key] is None else format(r[key], fmt) for _, r in columns)
        lines.append(f"{label:28}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="measured window per set-up and rate")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--setups", default="sqlite,pg1,pg2", help="any of sqlite, pg1, pg2")
    ap.add_argument("--rates", default="", help="check-ins/s:events/s steps, e.g. 50:2000,200:10000 "
                                                "(default: --checkins:--events)")
    ap.add_argument("--checkins", type=float, default=TARGET_CHECKINS)
    ap.add_argument("--events", type=float, default=TARGET_EVENTS)
    ap.add_argument("--batch", type=int, default=200, help="events per batch (hub max 1000)")
    ap.add_argument("--wishlist", type=float, default=0.1, help="share of events that are wishlist adds")
    for name, default in (("kiosks", 500), ("stores", 50), ("brands", 4), ("shoppers", 5000)):
        ap.add_argument(f"--{name}", type=int, default=default, help="size of the seeded fleet")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before an unanswered request is an error")
    ap.add_argument("--retries", type=int, default=5, help="re-sends of a shed batch")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if not set(setups) <= {"sqlite", "pg1", "pg2"}:
        ap.error("--setups takes sqlite, pg1, pg2")
    steps = [tuple(float(x) for x in s.split(":")) for s in args.rates.split(",")] if args.rates \
        else [(args.checkins, args.events)]
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    print(f"{args.kiosks} kiosks, {args.stores} stores, {args.brands} brands, {args.shoppers} shoppers; "
          f"batches of {args.batch} ({args.wishlist:.0%} wishlist adds); heartbeats every {HEARTBEAT_S:g} s, "
          f"pulls every {PULL_S:g} s per kiosk; {args.connections} connections; "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s measured per column", flush=True)
    columns, pg = [], None
    try:
        for setup in setups:
            url, pg = database_for(setup, tmp, pg, "bench")
            hub = Hub(url, 2 if setup == "pg2" else 1, tmp / f"{setup}.log")
            try:
                t = time.monotonic()
                world = hub.start(args)
                print(f"{setup}: migrated, seeded and ready in {time.monotonic() - t:.1f} s", flush=True)
                kiosks = [Kiosk(k["device_id"], k["device_token"], k["brand_id"], k["store_id"],
                                world["gtins"][k["brand_id"]]) for k in world["kiosks"]]
                for checkins_s, events_s in steps:
                    hub.settle(120)
                    r = run_async(measure(args, hub, postmaster_cpu(pg) if setup != "sqlite" else None,
                                          kiosks, world["shopper_tokens"], checkins_s, events_s, rng))
                    name = setup if len(steps) == 1 else f"{setup} {checkins_s:g}:{events_s:g}"
                    columns.append((name, r))
                    print(f"{name}: p95 {r['p95']:.1f} ms, {r['accepted_s']:,.0f} events/s, "
                          f"{r['n_errors']} errors", flush=True)
                    if hub.proc.poll() is not None:
                        raise RuntimeError(f"the hub died:\n{hub.tail()}")
            finally:
                hub.stop()
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(columns))
    failed = [(name, r["errors"]) for name, r in columns if r["errors"]]
    for name, errors in failed:
        print(f"\n{name} errors:")
        for what, n in errors.most_common(8):
            print(f"  {n:6}  {what}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
