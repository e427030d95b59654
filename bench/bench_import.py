"""`kiosk hub import inventory` bench: 100,000 stock rows (10 stores x 10,000 products) through
the command, as a subprocess, into a fresh SQLite hub (`python -m hub`, its own process, on a
loopback port), beside the baseline measured in the same run: the same kind of rows sent row by
row (one call a row, `--batch-size 1`; 2,000 rows measured and extrapolated to 100,000, which
the figures say). Each run makes a new database: the brand with `kiosk hub brand create`, its
stores and products through `kiosk hub import` (not timed), then the timed imports.

    .venv/bin/python bench/bench_import.py [--runs 3] [--products 10000] [--stores 10] [--baseline-rows 2000]

Memory: peak RSS of the command (its rusage) for a 10,000-row file and for the 100,000-row file,
and the hub's resident set (VmRSS) and high-water mark (VmHWM, /proc) before and after each, so
a hub whose memory grows with the file shows. The hub runs with KIOSK_HUB_BRAND_RATE=0: the
per-key rate limit (50 calls/s) would otherwise make the row-by-row baseline measure the limit.
Target: 100,000 rows in under 10 s (median) on SQLite.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_S = 10.0


def gtin(n: int) -> str:
    from kiosk.api import gtin_check_digit
    body = f"89{n:010d}"
    return body + str(gtin_check_digit(body))


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_HUB")}
    return {**env, "KIOSK_HUB_BRAND_RATE": "0", "PYTHONUNBUFFERED": "1"}


def timed(*args: str) -> tuple[subprocess.CompletedProcess, float, int]:
    """`python -m hub ...`: (result, wall seconds, the child's own peak RSS in KiB, from os.wait4)."""
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "hub", *args], cwd=ROOT, env=clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    timed.cpu = usage.ru_utime + usage.ru_stime
    return (subprocess.CompletedProcess(p.args, p.returncode, out.decode(), err.decode()), wall, usage.ru_maxrss)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def write_files(work: Path, products: int, stores: int, baseline_rows: int) -> dict:
    codes = [f"s{i:02d}" for i in range(stores)]
    files = {"stores": work / "stores.csv", "products": work / "products.csv", "big": work / "stock-100k.csv",
             "small": work / "stock-10k.csv", "baseline": work / "stock-rowbyrow.csv"}
    files["stores"].write_text("store_code,name,city,currency,timezone\n" + "".join(
        f"{c},Store {c},City {c},VND,Asia/Ho_Chi_Minh\n" for c in codes + ["small", "base"]))
    gtins = [gtin(n) for n in range(products)]
    files["products"].write_text("gtin,title,price,currency,title[th]\n" + "".join(
        f"{g},Product {n},{10000 + n},VND,สินค้า {n}\n" for n, g in enumerate(gtins)))
    head = "store_code,id,quantity,availability,price,instore_product_location,as_of\n"
    files["big"].write_text(head + "".join(f"{c},{g},{(n * 7 + i) % 50},,,Aisle {n % 40},2026-12-01T09:00:00+07:00\n"
                                           for i, c in enumerate(codes) for n, g in enumerate(gtins)))
    files["small"].write_text(head + "".join(f"small,{g},{n % 50},,,Aisle {n % 40},2026-12-01T09:00:00+07:00\n"
                                             for n, g in enumerate(gtins[:10_000])))
    files["baseline"].write_text(head + "".join(f"base,{g},{n % 50},,,Aisle {n % 40},2026-12-01T09:00:00+07:00\n"
                                                for n, g in enumerate(gtins[:baseline_rows])))
    return {k: str(v) for k, v in files.items()}


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url + "/v1/ready", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the hub did not get ready")


def one_run(work: Path, files: dict, rows: int, baseline_rows: int) -> dict:
    from hub.server import free_port
    db = work / f"hub-{time.time_ns()}.db"
    made, _, _ = timed("brand", "create", "--db", str(db), "--id", "bench", "--name", "Bench", "--json")
    if made.returncode:
        raise RuntimeError(made.stderr)
    keyfile = work / "bench.key"
    keyfile.write_text(json.loads(made.stdout)["key"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(work / "hub.log", "ab")
    hub = subprocess.Popen([sys.executable, "-m", "hub", "--db", str(db), "--port", str(port)], cwd=ROOT,
                           env=clean_env(), stdout=log, stderr=log, start_new_session=True)
    try:
        wait_ready(url, hub)
        flags = ("--hub", url, "--key-file", str(keyfile), "--json")
        for kind in ("stores", "products"):  # not timed
            done, _, _ = timed("import", kind, files[kind], *flags)
            if done.returncode:
                raise RuntimeError(f"{kind}: {done.stdout[:400]} {done.stderr[:400]}")
        out = {"hub_before": proc_mem(hub.pid)}
        small, out["small_s"], out["cli_small_kib"] = timed("import", "inventory", files["small"], *flags)
        out["hub_after_small"] = proc_mem(hub.pid)
        cpu = proc_cpu(hub.pid)
        big, out["big_s"], out["cli_big_kib"] = timed("import", "inventory", files["big"], *flags)
        out["hub_cpu"], out["cli_cpu"] = proc_cpu(hub.pid) - cpu, timed.cpu
        out["hub_after_big"] = proc_mem(hub.pid)
        counts = json.loads(big.stdout)["counts"]
        if big.returncode or counts["created"] != rows:
            raise RuntimeError(f"the 100k import: exit {big.returncode}, {counts}, {big.stderr[-400:]}")
        cpu = proc_cpu(hub.pid)
        again, out["again_s"], _ = timed("import", "inventory", files["big"], *flags)
        out["again_hub_cpu"] = proc_cpu(hub.pid) - cpu
        out["again_unchanged"] = json.loads(again.stdout)["counts"]["unchanged"]
        base, out["base_s"], _ = timed("import", "inventory", files["baseline"], *flags, "--batch-size", "1")
        if base.returncode or json.loads(base.stdout)["counts"]["created"] != baseline_rows:
            raise RuntimeError(f"the baseline: {base.stdout[:300]} {base.stderr[-300:]}")
        out["db_mib"] = db.stat().st_size / 2**20
        return out
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
        log.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--stores", type=int, default=10)
    ap.add_argument("--baseline-rows", type=int, default=2000)
    args = ap.parse_args()
    rows = args.products * args.stores
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = Path(tmp)
        files = write_files(work, args.products, args.stores, args.baseline_rows)
        print(f"{rows:,} inventory rows ({args.stores} stores x {args.products:,} products), "
              f"{Path(files['big']).stat().st_size / 2**20:.1f} MiB of CSV; {args.runs} run(s), each on a new "
              f"SQLite hub (python -m hub, loopback)", flush=True)
        runs = []
        for n in range(args.runs):
            r = one_run(work, files, rows, args.baseline_rows)
            runs.append(r)
            print(f"run {n + 1}: 100k rows {r['big_s']:.2f} s ({rows / r['big_s']:,.0f} rows/s); the same file again "
                  f"{r['again_s']:.2f} s ({r['again_unchanged']:,} unchanged); row by row {args.baseline_rows:,} rows "
                  f"{r['base_s']:.2f} s ({args.baseline_rows / r['base_s']:,.0f} rows/s)", flush=True)
    big = [r["big_s"] for r in runs]
    per_row = [r["base_s"] / args.baseline_rows for r in runs]
    base_100k = [p * rows for p in per_row]
    last = runs[-1]
    print()
    print(f"{'':34}{'median':>12}{'p95/max':>12}")
    print(f"{'batched, 100k rows (s)':34}{statistics.median(big):12.2f}{p95(big):12.2f}")
    print(f"{'batched, rows/s':34}{rows / statistics.median(big):12,.0f}{rows / p95(big):12,.0f}")
    print(f"{'row by row, rows/s (measured)':34}{1 / statistics.median(per_row):12,.0f}{1 / p95(per_row):12,.0f}")
    print(f"{'row by row, 100k rows (s, extrap.)':34}{statistics.median(base_100k):12.1f}{p95(base_100k):12.1f}")
    print(f"{'speed-up':34}{statistics.median(base_100k) / statistics.median(big):11.0f}x")
    print(f"{'  hub CPU during it (s)':34}{statistics.median(r['hub_cpu'] for r in runs):12.2f}"
          f"{max(r['hub_cpu'] for r in runs):12.2f}")
    print(f"{'  command CPU (s)':34}{statistics.median(r['cli_cpu'] for r in runs):12.2f}"
          f"{max(r['cli_cpu'] for r in runs):12.2f}")
    print(f"{'same file again (s, replayed)':34}{statistics.median(r['again_s'] for r in runs):12.2f}"
          f"{p95([r['again_s'] for r in runs]):12.2f}")
    print(f"{'  hub CPU during it (s)':34}{statistics.median(r['again_hub_cpu'] for r in runs):12.2f}"
          f"{max(r['again_hub_cpu'] for r in runs):12.2f}")
    print()
    print(f"command peak RSS: {max(r['cli_small_kib'] for r in runs) / 1024:.0f} MiB for 10k rows, "
          f"{max(r['cli_big_kib'] for r in runs) / 1024:.0f} MiB for 100k rows (CSV is checked whole, streaming, "
          "before anything is sent, then read again to send)")
    print(f"hub RSS (last run): {last['hub_before'][0] / 1024:.0f} MiB before, {last['hub_after_small'][0] / 1024:.0f} "
          f"after 10k rows, {last['hub_after_big'][0] / 1024:.0f} after 100k; high-water mark "
          f"{last['hub_after_small'][1] / 1024:.0f} MiB after 10k, {last['hub_after_big'][1] / 1024:.0f} after 100k; "
          f"database {last['db_mib']:.0f} MiB")
    print(f"machine: {os.cpu_count()} CPUs, load average {Path('/proc/loadavg').read_text().split()[0]} "
          "(wall times on a shared machine vary; CPU seconds less)")
    held = statistics.median(big) < TARGET_S
    print(f"target: 100,000 rows under {TARGET_S:.0f} s on SQLite: {'held' if held else 'MISSED'} "
          f"(median {statistics.median(big):.2f} s)")


if __name__ == "__main__":
    main()
