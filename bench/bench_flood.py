"""One enrolled kiosk floods the hub; what do the other kiosks and the hub's memory notice?

    .venv/bin/python bench/bench_flood.py [--seconds 10] [--setups sqlite,pg1] [--flooders 32]

For each set-up (SQLite, PostgreSQL one process) the same open-model load of ordinary kiosks
(bench_hub's planner: check-ins, event batches, pulls, heartbeats) runs twice in one hub
process: once alone (the baseline), once while one enrolled device (a kiosk an attacker holds)
sends as fast as `--flooders` connections allow, round-robin: a 500-event batch of forged
events (a shopper id and no proof), a check-in with a guessed card token, a 64 MiB chunked
body (no Content-Length), and an offers pull. Printed side by side: the other kiosks'
check-in p50/p95 without and with the flood (issue 9's bound: p95 within 2x), their errors,
the hub's resident memory (the process group's VmRSS sampled every 50 ms: peak), and how the
flood was answered (429 rate-limited, 413 too large, anything else).

On a machine of N >= 2 CPUs the hub (and PostgreSQL) are pinned to CPU 0 and the ordinary
kiosks and the attacker to the others, in both windows: an attacker's own CPU is not the
hub's, and without the pinning this 2-CPU box measures the flooder's CPU use, not the hub's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_hub as bh  # noqa: E402  (the planner, the pool, the hub process)

FLOOD_MIB = 64


def pin(pids, cpus: set[int]) -> None:
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass  # gone meanwhile


def group_pids(pgrp: int) -> list[int]:
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[2]) == pgrp:
            out.append(int(entry))
    return out


def group_rss_mib(pgrp: int) -> float:
    total = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgrp:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError):
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


async def sample_rss(pgrp: int, until: asyncio.Event, out: list) -> None:
    while not until.is_set():
        out.append(group_rss_mib(pgrp))
        await asyncio.sleep(0.05)


async def chunked(port: int, token: str) -> int:
    """POST a FLOOD_MIB body in chunked transfer; the status the hub answered (0: it hung up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((f"POST /v1/events:batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        piece = b" " * (1024 * 1024)
        try:
            for _ in range(FLOOD_MIB):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                if reader.at_eof() or reader._buffer:  # the hub answered already
                    break
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1]) if line.startswith(b"HTTP/") else 0
    except (ConnectionError, OSError, asyncio.TimeoutError, ValueError, IndexError):
        return 0
    finally:
        writer.close()


async def flooder(pool: bh.Pool, port: int, token: str, gtins: list, stop: asyncio.Event, answers: Counter,
                  rng: random.Random) -> None:
    forged = json.dumps({"events": [{"event_id": str(uuid.uuid4()), "type": "wishlist_add",
                                     "shopper_id": f"shopper-{i:05d}", "gtin": gtins[i % len(gtins)]}
                                    for i in range(500)]}).encode()
    turn = rng.randrange(4)
    while not stop.is_set():
        turn = (turn + 1) % 4
        try:
            if turn == 0:
                status, _, _ = await asyncio.wait_for(pool.request(token, "POST", "/v1/events:batch", forged), 10)
            elif turn == 1:
                guess = json.dumps({"credential": {"kind": "token", "token": uuid.uuid4().hex[:24]}}).encode()
                status, _, _ = await asyncio.wait_for(pool.request(token, "POST", "/v1/checkins", guess), 10)
            elif turn == 2:
                status = await chunked(port, token)
            else:
                status, _, _ = await asyncio.wait_for(pool.request(token, "GET", "/v1/offers"), 10)
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
        answers[status] += 1


def flood_process(port: int, token: str, gtins: list, connections: int, seconds: float, results) -> None:
    async def run() -> Counter:
        pool, stop, answers = bh.Pool(port, connections), asyncio.Event(), Counter()
        await pool.open()
        rng = random.Random(7)
        tasks = [asyncio.create_task(flooder(pool, port, token, gtins, stop, answers, rng)) for _ in range(connections)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        pool.close()
        return answers
    results.put(bh.run_async(run()))


async def window(args, hub: bh.Hub, kiosks, shoppers, flood_with, rng) -> dict:
    requests = bh.plan(args, kiosks, shoppers, args.checkins, args.events, args.seconds, rng)
    pool = bh.Pool(hub.port, args.connections)
    await pool.open()
    stats, answers, rss = bh.Stats(), Counter(), []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(hub.proc.pid, stop, rss))
    flood = None
    if flood_with is not None:  # its own process: the flood must not slow the measuring loop down
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        flood = ctx.Process(target=flood_process, args=(hub.port, flood_with.token, flood_with.gtins,
                                                        args.flooders, args.seconds, results))
        flood.start()
    try:
        await bh.drive(pool, stats, args, requests)
    finally:
        stop.set()
        await sampler
        pool.close()
        if flood is not None:
            answers.update(results.get(timeout=60))
            flood.join(30)
    lat = sorted(stats.checkin_ms)
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
    return {"p50": pct(0.5), "p95": pct(0.95), "answered": len(lat), "errors": sum(stats.errors.values()),
            "error_kinds": stats.errors, "rss_peak": max(rss), "rss_start": rss[0], "flood": answers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--setups", default="sqlite,pg1")
    ap.add_argument("--checkins", type=float, default=50)
    ap.add_argument("--events", type=float, default=1000)
    ap.add_argument("--flooders", type=int, default=32, help="connections the flooding kiosk uses at once")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--wishlist", type=float, default=0.1)
    for name, default in (("kiosks", 100), ("stores", 10), ("brands", 2), ("shoppers", 2000)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--retries", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="do not give the hub a CPU of its own")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cpus = sorted(os.sched_getaffinity(0))
    split = len(cpus) >= 2 and not args.no_pin
    if split:
        os.sched_setaffinity(0, set(cpus[1:]))
    tmp = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    pg, rows = None, []
    print(f"{args.kiosks - 1} ordinary kiosks at {args.checkins:g} check-ins/s + {args.events:g} events/s; "
          f"one kiosk flooding over {args.flooders} connections; {args.seconds:g} s per window", flush=True)
    try:
        for setup in [s.strip() for s in args.setups.split(",") if s.strip()]:
            url, pg = bh.database_for(setup, tmp, pg, "flood")
            hub = bh.Hub(url, 1, tmp / f"{setup}.log")
            try:
                world = hub.start(args)
                if split:  # the hub (and PostgreSQL) on CPU 0; the kiosks and the attacker on the rest
                    pin(group_pids(hub.proc.pid), {0})
                    if pg is not None:
                        postmaster = int((Path(pg.data_dir) / "postmaster.pid").read_text().split()[0])
                        pin([postmaster, *group_pids(os.getpgid(postmaster))], {0})
                kiosks = [bh.Kiosk(k["device_id"], k["device_token"], k["brand_id"], k["store_id"],
                                   world["gtins"][k["brand_id"]]) for k in world["kiosks"]]
                attacker, others = kiosks[0], kiosks[1:]
                bh.run_async(window(args, hub, others, world["shopper_tokens"], None, rng))  # warm-up
                hub.settle(60)
                base = bh.run_async(window(args, hub, others, world["shopper_tokens"], None, rng))
                hub.settle(60)
                flood = bh.run_async(window(args, hub, others, world["shopper_tokens"], attacker, rng))
                rows.append((setup, base, flood))
                print(f"{setup}: p95 {base['p95']:.1f} -> {flood['p95']:.1f} ms under flood", flush=True)
            finally:
                hub.stop()
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{'':34}" + "".join(f"{name + ' alone':>16}{name + ' flooded':>16}" for name, _, _ in rows))
    for label, key, fmt in (("others' check-ins answered", "answered", ","), ("others' check-in p50 ms", "p50", ".1f"),
                            ("others' check-in p95 ms", "p95", ".1f"), ("others' errors", "errors", ""),
                            ("hub RSS at start MiB", "rss_start", ".0f"), ("hub RSS peak MiB", "rss_peak", ".0f")):
        print(f"{label:34}" + "".join(f"{format(b[key], fmt):>16}{format(f[key], fmt):>16}" for _, b, f in rows))
    for name, base, flood in rows:
        answers = flood["flood"]
        total = sum(answers.values())
        print(f"\n{name}: flood requests answered {total:,}: " + ", ".join(
            f"{status or 'hung up'}: {n:,}" for status, n in answers.most_common()))
        print(f"{name}: others' p95 under flood / alone = {flood['p95'] / base['p95']:.2f}x (bound 2x); "
              f"peak memory {flood['rss_peak'] - base['rss_peak']:+.0f} MiB against the baseline's peak")
        for what, n in (base["error_kinds"] + flood["error_kinds"]).most_common(5):
            print(f"  {n:6}  {what}")
    sys.exit(1 if any(b["errors"] or f["errors"] for _, b, f in rows) else 0)


if __name__ == "__main__":
    main()
