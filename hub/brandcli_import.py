"""`kiosk hub import`: a feed file sent to the brand API in calls that land once (inventory
calls carry an Idempotency-Key made from the file), with a progress bar and a report of every
refused row by its line and column.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hub.brandcli_client import BrandClient, CliError, FileRefused, HubDown, clean, problem_detail
from hub.brandcli_feeds import KINDS, Row, check_snapshot, chunks, read_feed, snapshot_chunks

COUNTS = ("created", "updated", "unchanged", "stale", "refused")


class Progress:
    """`[#####.....] 40% 40,000/100,000 rows` on a terminal's stderr; a last line always."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show, self.done, self.started = total, show, 0, time.monotonic()
        self.tty = show and sys.stderr.isatty()

    def add(self, n: int) -> None:
        self.done += n
        if self.tty:
            part = self.done / self.total if self.total else 1.0
            bar = "#" * int(part * 20)
            print(f"\r[{bar:.<20}] {part:4.0%} {self.done:,}/{self.total:,} rows", end="", file=sys.stderr, flush=True)

    def finish(self, calls: int) -> None:
        if self.tty:
            print(file=sys.stderr)
        print(f"hub: sent {self.done:,} of {self.total:,} rows in {calls} call{'s' if calls != 1 else ''} "
              f"({time.monotonic() - self.started:.1f} s)", file=sys.stderr)


def run_import(args, client: BrandClient) -> int:
    kind = args.kind
    if args.snapshot and kind != "inventory":
        raise CliError("--snapshot is for inventory files only")
    counts = dict.fromkeys(COUNTS, 0)
    refused: list[dict] = []
    try:
        feed = read_feed(kind, Path(args.file))
        if args.snapshot:
            check_snapshot(feed)
    except FileRefused as exc:
        return _import_report(args, counts, refused, file_error=str(exc), unit="line")
    for row in feed.errors:
        refused.append({"line": row.where, "column": row.error[0], "reason": row.error[1]})
        counts["refused"] += 1
    sendable = feed.total - len(feed.errors)
    batches = snapshot_chunks(feed) if args.snapshot else chunks((r for r in feed.rows() if not r.error), args.batch_size)
    path, key = KINDS[kind][3], KINDS[kind][2]
    progress = Progress(sendable, sendable > 2 * args.batch_size)
    state = {"zeroed": 0, "replayed": 0, "landed": 0}

    def encoded(index: int, batch: list[Row]) -> tuple[list[Row], bytes, dict | None]:
        body = {key: [r.data for r in batch]}
        headers = None
        if kind == "inventory":
            body["snapshot"] = bool(args.snapshot)
            headers = {"Idempotency-Key": f"{feed.feed_id}:{index}"}
        return batch, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), headers

    def take(r, batch: list[Row], index: int) -> None:
        if r.status_code >= 400:  # the call as a whole (e.g. a snapshot of a store that is not the brand's)
            reason, column = problem_detail(r), "store_code" if args.snapshot else ""
            refused.extend({"line": row.where, "column": column, "reason": reason} for row in batch)
            counts["refused"] += len(batch)
            return
        try:
            answer = r.json()
            results = answer["results"]
        except (ValueError, KeyError, TypeError):
            raise HubDown(f"the hub's answer to call {index + 1} is not a batch report") from None
        again = bool(answer.get("replayed")) or r.headers.get("Idempotent-Replayed") == "true"
        state["replayed"] += again
        state["zeroed"] += 0 if again else int(answer.get("zeroed") or 0)
        for result in results:
            row, status = batch[result["index"]], result["status"]
            if status == "rejected":
                counts["refused"] += 1
                for e in result.get("errors") or [{"field": "", "reason": "refused"}]:
                    refused.append({"line": row.where, "column": e.get("field", ""), "reason": e.get("reason", "")})
            else:  # a call the hub had seen: it changed nothing this time
                counts["unchanged" if again and status in ("created", "updated") else status] += 1

    from concurrent.futures import ThreadPoolExecutor
    try:
        # One call in flight while the next is read and encoded here.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-send") as pool:
            numbered = enumerate(batches)
            ready = next((encoded(i, b) for i, b in numbered), None)
            index = 0
            while ready is not None:
                batch, data, headers = ready
                future = pool.submit(client.send, "POST", path, None, headers, data)
                ready = next((encoded(i, b) for i, b in numbered), None)
                take(future.result(), batch, index)
                state["landed"] += 1
                index += 1
                progress.add(len(batch))
    except (HubDown, FileRefused) as exc:
        progress.finish(state["landed"])
        why = (f"{exc}; {state['landed']} call(s) ({progress.done:,} of {sendable:,} rows) landed before it. "
               "Re-running the same command is safe: what landed changes nothing again")
        _import_report(args, counts, refused, file_error=why, unit=feed.unit, zeroed=state["zeroed"])
        return 2 if isinstance(exc, HubDown) else 1
    progress.finish(state["landed"])
    if state["replayed"]:
        print(f"hub: {state['replayed']} call(s) of this file had been sent before (the same feed id): nothing changed",
              file=sys.stderr)
    return _import_report(args, counts, refused, unit=feed.unit, zeroed=state["zeroed"] if args.snapshot else None)


def _import_report(args, counts: dict, refused: list[dict], file_error: str = "", unit: str = "line",
                   zeroed: int | None = None) -> int:
    refused.sort(key=lambda e: e["line"])
    if args.json:
        doc = {"counts": counts, "refused": refused}
        if zeroed is not None:
            doc["zeroed"] = zeroed
        if file_error:
            doc["error"] = file_error
        print(json.dumps(doc, ensure_ascii=False))
    else:
        for e in refused:
            column = f"column {clean(e['column'], 60)}: " if e["column"] else ""
            print(f"{unit} {e['line']}: {column}{clean(e['reason'])}")
        if not file_error or any(counts.values()):
            summary = ", ".join(f"{k} {v:,}" for k, v in counts.items())
            print(summary + (f", zeroed {zeroed:,}" if zeroed is not None else ""))
    if file_error:
        print(f"hub: {clean(file_error, 600)}" + ("" if "landed" in file_error else "; nothing was sent"),
              file=sys.stderr)
        return 1
    return 1 if refused or counts["refused"] else 0
