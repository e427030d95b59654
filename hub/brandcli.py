"""The brand commands of `kiosk hub`: a brand's account and keys, its feed files, its fleet.

    kiosk hub brand create --db hub.db --id lotus --name "Lotus & Linen"   # prints `key: bk_...`
    kiosk hub import inventory stock.csv --hub https://hub.example --key-file lotus.key
    kiosk hub code create --hub https://hub.example --key-file lotus.key --store hcm --expires 7d
    kiosk hub devices --hub https://hub.example --key-file lotus.key
    kiosk hub client create --hub https://hub.example --key-file lotus.key --name "Web shop" \
        --redirect-uri https://shop.example/callback          # prints `client_id: cl_...`

`brand create` (and `key ... --db DB --brand ID`) are the operator's, on the database itself.
Everything else is a client of the brand API (hub/brand_api.py), exactly as a retailer's own
script would be: it never opens the database. The key comes from --key (visible to anyone who
can run `ps` on this machine), --key-file or $KIOSK_HUB_BRAND_KEY. Feed files are untrusted:
a file that cannot be read whole (broken UTF-8, a header the feed does not know, bad JSON,
over 512 MiB) is refused before anything is sent. Exit codes: 0 ok, 1 a row or the file was
refused (or the hub refused the call), 2 usage, database, key or connection problems.
docs/brand-feeds.md has the file formats.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_ROWS = 5000  # rows in one :batch call (the hub's limit)
MAX_BODY_BYTES = 12 * 1024 * 1024  # a request stays well under the hub's 16 MiB
MAX_CELL = 65536  # a cell this long is far past every limit of the hub: refused here, never sent
TIMEOUT = (5.0, 120.0)  # connect, read (a 5,000-row batch on a busy database)
RETRIES_429 = 8
KINDS = {  # kind: (required columns, optional columns, JSON key, batch path, localised columns)
    "products": (("gtin", "title", "price", "currency"), ("sku", "description", "online", "image_url"),
                 "products", "/v1/brand/products:batch", ("title", "description")),
    "stores": (("store_code", "name", "city", "currency"), ("timezone", "languages"),
               "stores", "/v1/brand/stores:batch", ()),
    "inventory": (("store_code", "id", "quantity"), ("availability", "price", "instore_product_location", "as_of"),
                  "rows", "/v1/brand/inventory:batch", ()),
    "offers": (("id", "title", "kind"), ("store_code", "gtin", "discount_pct", "valid_from", "valid_until"),
               "offers", "/v1/brand/offers:batch", ("title",)),
}
LOCALISED = re.compile(r"(title|description)\[([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4})\]")
FEED_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
COUNTS = ("created", "updated", "unchanged", "stale", "refused")


class CliError(Exception):
    """A message for stderr and an exit code: 1 refused, 2 usage, database, key or connection."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class FileRefused(CliError):
    """The file as a whole was refused (nothing was sent)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)


class HubDown(CliError):
    """The hub could not be reached, or failed (5xx)."""


def clean(value, limit: int = 200) -> str:
    """Text from a file or the hub made safe for a terminal: control and bidi characters escaped."""
    text = str(value)
    out = "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") else f"\\u{ord(c):04x}" for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


# -- the brand API client --------------------------------------------------------------
class BrandClient:
    """One hub, one brand key; every call has a timeout, TLS is verified, 429 is waited out.

        client = BrandClient("https://hub.example", key)
        client.call("GET", "/v1/brand")   # the decoded JSON, or CliError
    """

    def __init__(self, url: str, key: str, session=None) -> None:
        try:
            import requests
        except ImportError:
            raise CliError("the brand API commands need `requests` (pip install 'requests>=2.31')") from None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"--hub must be an http(s) URL, not {clean(url)!r}")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            print(f"hub: warning: {parts.netloc} over plain http: the brand key travels in the clear", file=sys.stderr)
        self.url = url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {key}", "User-Agent": "kiosk-hub-brandcli/1",
                                     "Accept": "application/json"})
        self.requests = requests

    def send(self, method: str, path: str, body=None, headers: dict | None = None, data: bytes | None = None):
        """The response (any status but 401/429), or CliError/HubDown. `data`: a JSON body encoded already."""
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if data is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in range(RETRIES_429 + 1):
            try:
                r = self.session.request(method, self.url + path, data=data, headers=headers, timeout=TIMEOUT)
            except self.requests.exceptions.SSLError as exc:
                raise HubDown(f"TLS to {self.url} failed ({clean(type(exc).__name__)}): is the certificate right?") from None
            except self.requests.exceptions.Timeout:
                raise HubDown(f"the hub at {self.url} did not answer in time") from None
            except self.requests.exceptions.RequestException as exc:
                raise HubDown(f"cannot reach the hub at {self.url} ({clean(type(exc).__name__)})") from None
            if r.status_code == 401:
                raise CliError("the hub refused this brand key (unknown or revoked)")
            if r.status_code == 429 and attempt < RETRIES_429:
                try:
                    wait = min(30.0, max(0.5, float(r.headers.get("Retry-After", "1"))))
                except ValueError:
                    wait = 1.0
                time.sleep(wait)
                continue
            if r.status_code >= 500 or r.status_code == 429:
                raise HubDown(f"the hub answered HTTP {r.status_code}: {problem_detail(r)}")
            return r
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body=None, headers: dict | None = None):
        """The decoded answer of a call that must succeed (None for 204); else CliError(1)."""
        r = self.send(method, path, body, headers)
        if r.status_code >= 400:
            raise CliError(f"the hub refused this (HTTP {r.status_code}): {problem_detail(r)}", 1)
        if r.status_code == 204 or not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            raise HubDown(f"the hub's answer to {method} {path} is not JSON") from None


def problem_detail(r) -> str:
    try:
        body = r.json()
        return clean(body.get("detail") or body.get("title") or r.reason)
    except (ValueError, AttributeError):
        return clean(r.reason or "")


# -- feed files ------------------------------------------------------------------------
@dataclass
class Row:
    where: int  # CSV: the physical line the row starts on (header = line 1); JSON: the row's index
    data: dict
    error: tuple[str, str] | None = None  # (column, reason) refused here, never sent


@dataclass
class Feed:
    """A checked feed file. CSV files are read twice, streaming (once to check the whole file
    and count, once to send), so memory stays flat whatever the file's size; a JSON document
    is parsed whole and kept."""
    kind: str
    path: Path
    fmt: str  # "csv" | "json"
    feed_id: str
    total: int = 0  # rows, refused ones included
    errors: list[Row] = field(default_factory=list)  # rows refused here
    stores: dict[str, int] = field(default_factory=dict)  # inventory: rows of each store_code
    stamp: tuple = ()
    _rows: list[Row] | None = None

    @property
    def unit(self) -> str:
        return "line" if self.fmt == "csv" else "row"

    def rows(self):
        """Every row again, as checked (CSV: read again; FileRefused if the file changed)."""
        if self._rows is not None:
            yield from self._rows
            return
        yield from csv_rows(self.kind, self.path)
        if _stamp(self.path) != self.stamp:
            raise FileRefused(f"{clean(self.path)} changed while it was being sent")


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def read_feed(kind: str, path: Path) -> Feed:
    """The whole file read and checked, or FileRefused (and nothing is sent)."""
    try:
        if not path.is_file():
            raise FileRefused(f"{clean(path)} is not a file" if path.exists() else f"cannot read {clean(path)}: no such file")
        stamp = _stamp(path)
        if stamp[0] > MAX_FILE_BYTES:
            raise FileRefused(f"{clean(path)} is {stamp[0]:,} bytes; a feed file may be at most {MAX_FILE_BYTES:,} "
                              "(512 MiB): split it")
        # the feed id: the file's bytes and when it was written (rows without as_of mean "true
        # now": the same bytes written again later are new stock, a re-run of this file is not)
        digest = hashlib.sha256(f"{stamp}".encode())
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            digest.update(head)
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        suffix = path.suffix.lower()
        fmt = "csv" if suffix == ".csv" else "json" if suffix == ".json" else \
            ("json" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{") else "csv")
        feed = Feed(kind, path, fmt, digest.hexdigest(), stamp=stamp)
        if fmt == "json":
            feed.feed_id, feed._rows = json_rows(kind, path.read_bytes(), feed.feed_id)
        rows = feed.rows()
        for row in rows:
            feed.total += 1
            if row.error:
                feed.errors.append(row)
            elif kind == "inventory":
                code = row.data.get("store_code") if isinstance(row.data, dict) else None
                code = code.strip() if isinstance(code, str) else ""
                feed.stores[code] = feed.stores.get(code, 0) + 1
        return feed
    except OSError as exc:
        raise FileRefused(f"cannot read {clean(path)}: {exc.strerror}") from None


def _decoded_lines(f):
    """A binary file's lines as text (split at "\n" only: that byte is never inside a UTF-8
    sequence, so line numbers are exact); FileRefused naming the first line that is not UTF-8."""
    for number, raw in enumerate(f, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRefused(f"line {number}: not valid UTF-8 (byte {exc.start + 1} of the line); "
                              "save the file as UTF-8") from None


def _columns(kind: str, header: list[str]) -> list[str]:
    required, optional, _, _, localised = KINDS[kind]
    names = [h.strip() for h in header]
    seen = set()
    for name in names:
        m = LOCALISED.fullmatch(name)
        if name in seen:
            raise FileRefused(f"line 1: the column {clean(name)!r} appears twice")
        seen.add(name)
        if name in required or name in optional or (m and m.group(1) in localised):
            continue
        known = ", ".join(required + optional + tuple(f"{c}[LANG]" for c in localised))
        raise FileRefused(f"line 1: unknown column {clean(name or '(empty)')!r}; a {kind} file has the columns {known}")
    missing = [c for c in required if c not in seen]
    if missing:
        raise FileRefused(f"line 1: the required column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing")
    return names


def csv_rows(kind: str, path: Path):
    """(line, row) for every data row of a CSV file; FileRefused for a file that cannot be read."""
    csv.field_size_limit(MAX_FILE_BYTES)
    with open(path, "rb") as f:
        yield from _csv_rows(kind, csv.reader(_decoded_lines(f), strict=True))


def _csv_rows(kind: str, reader):
    try:
        header = next(reader, None)
        if header is None:
            raise FileRefused("the file is empty (a CSV file starts with its header line)")
        names = _columns(kind, header)
        to_row = _row_maker(kind, names)
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells or cells == [""]:
                continue  # a blank line
            if len(cells) != len(names):
                yield Row(line, {}, ("", f"has {len(cells)} cells; the header has {len(names)}"))
            elif max(map(len, cells)) > MAX_CELL:
                long = max(range(len(cells)), key=lambda i: len(cells[i]))
                yield Row(line, {}, (names[long], f"is {len(cells[long]):,} characters long; not sent"))
            else:
                yield Row(line, to_row(cells))
    except csv.Error as exc:
        raise FileRefused(f"line {reader.line_num}: cannot be read as CSV ({clean(exc)})") from None


def _row_maker(kind: str, names: list[str]):
    """A function from a CSV row's cells to the brand API's JSON row: empty optional cells
    left out (the hub's defaults apply), required ones sent as they are (the hub names what
    is missing); title[th] and the like into "texts" (offers: "titles")."""
    required = KINDS[kind][0]
    plain = [(i, n) for i, n in enumerate(names) if not LOCALISED.fullmatch(n)]
    always = [(i, n) for i, n in plain if n in required]
    optional = [(i, n) for i, n in plain if n not in required]
    localised = [(i, *LOCALISED.fullmatch(n).groups()) for i, n in enumerate(names) if LOCALISED.fullmatch(n)]

    def row_of(cells: list[str]) -> dict:
        row = {n: cells[i] for i, n in always}
        for i, n in optional:
            if cells[i] != "":
                row[n] = cells[i]
        for i, what, lang in localised:
            if cells[i].strip():
                if kind == "offers":
                    row.setdefault("titles", {})[lang] = cells[i]
                else:
                    row.setdefault("texts", {}).setdefault(lang, {})[what] = cells[i]
        return row
    return row_of


def json_rows(kind: str, data: bytes, feed_id: str) -> tuple[str, list[Row]]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileRefused(f"line {line}: not valid UTF-8; save the file as UTF-8") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FileRefused(f"not valid JSON: {clean(exc)}") from None
    key = KINDS[kind][2]
    if isinstance(doc, dict):
        unknown = sorted(set(doc) - {"feed_id", key})
        if unknown:
            raise FileRefused(f"unknown key {clean(unknown[0])!r}; a {kind} file is a list of rows or "
                              f'{{"feed_id": "...", "{key}": [rows]}}')
        if "feed_id" in doc:
            if not isinstance(doc["feed_id"], str) or not FEED_ID.fullmatch(doc["feed_id"]):
                raise FileRefused("feed_id must be 1-100 letters, digits or . _ : -")
            feed_id = doc["feed_id"]
        doc = doc.get(key)
    if not isinstance(doc, list):
        raise FileRefused(f'a {kind} file is a list of rows or {{"feed_id": "...", "{key}": [rows]}}')
    return feed_id, [Row(i, r) for i, r in enumerate(doc)]


def chunks(rows, limit: int):
    """Rows to send, in calls of at most `limit` rows and about MAX_BODY_BYTES (decided by the
    file alone, so the same file always makes the same calls: their idempotency keys hold)."""
    current, size = [], 0
    for row in rows:
        n = _size(row.data)
        if current and (len(current) >= limit or size + n > MAX_BODY_BYTES):
            yield current
            current, size = [], 0
        current.append(row)
        size += n
    if current:
        yield current


def _size(value) -> int:
    """An upper bound of `value`'s JSON size in bytes (4 a character covers UTF-8 and escapes
    of the usual kind; a row of control characters is refused by the hub anyway)."""
    if isinstance(value, str):
        return 4 * len(value) + 3
    if isinstance(value, dict):
        return 2 + sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, list):
        return 2 + sum(_size(v) + 1 for v in value)
    return 24


def check_snapshot(feed: Feed) -> None:
    """A snapshot is sent whole, one call a store (sent in parts it would zero what the other
    parts hold): refused here if a row of it cannot be sent or a store has too many rows."""
    if feed.errors:
        bad = feed.errors[0]
        raise FileRefused(f"{feed.unit} {bad.where}: {clean(bad.error[1])}; a snapshot is sent whole or not at all")
    for code, n in feed.stores.items():
        if n > MAX_ROWS:
            raise FileRefused(f"store {clean(code)!r} has {n:,} rows; a snapshot of one store is sent in one "
                              f"call of at most {MAX_ROWS:,}")


def snapshot_chunks(feed: Feed):
    """One call a store, in the order the stores first appear. Held in memory (a store's rows
    may be anywhere in the file; check_snapshot bounds each store to 5,000 rows)."""
    stores: dict[str, list[Row]] = {}
    for row in feed.rows():
        code = row.data.get("store_code") if isinstance(row.data, dict) else None
        stores.setdefault(code.strip() if isinstance(code, str) else "", []).append(row)
    yield from stores.values()


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


# -- the operator's commands, on the database ------------------------------------------
def open_store(db: str, create: bool = False):
    """The hub's database, as `kiosk hub admin` opens it; `create`: a new SQLite file or an
    empty database is set up in place (a fresh hub is made with `brand create`)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from hub import migrations
    from hub.store import HubStore, safe_url

    new_file = "://" not in db and not Path(db).exists()
    if new_file and not create:
        raise CliError(f"no database at {db}")
    try:
        try:
            return HubStore(db, migrate=new_file)
        except migrations.SchemaBehind as exc:
            if create and migrations.current(HubStore.engine_for(db)) is None:
                return HubStore(db, migrate=True)
            raise CliError(str(exc)) from None
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CliError(f"cannot open the database {safe_url(db)}: {reason}") from None


def _when(at) -> str:
    if not at:
        return "never"
    return dt.datetime.fromtimestamp(float(at), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _age(at, now: float | None = None) -> str:
    if not isinstance(at, (int, float)) or not at:
        return "never"
    s = max(0, int((now or time.time()) - at))
    return f"{s}s ago" if s < 120 else f"{s // 60}m ago" if s < 7200 else f"{s // 3600}h ago" if s < 172800 \
        else f"{s // 86400}d ago"


def table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[clean("" if c is None else c, 80) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _db(args, default_db: Path | None) -> str:
    return args.db or os.environ.get("KIOSK_HUB_DB") or str(default_db or "hub.db")


def cmd_brand_create(args, default_db: Path | None = None) -> int:
    from hub import brands
    store = open_store(_db(args, default_db), create=True)
    try:
        try:
            key_id, key = brands.create_brand(store, args.id, args.name, args.default_language)
        except ValueError as exc:
            raise CliError(str(exc), 1) from None
    finally:
        store.close()
    if args.json:
        print(json.dumps({"brand": args.id, "key_id": key_id, "key": key}))
    else:
        print(f"hub: brand {args.id} ({clean(args.name)}) created; its admin key {key_id}, shown this once "
              "(send it as `Authorization: Bearer <key>`; keep it in a 0600 file for --key-file):", file=sys.stderr)
        print(f"key: {key}")
    return 0


def _print_keys(keys: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"keys": keys}))
        return
    print(table(["id", "name", "created", "last used", "state"],
                [[k["id"], k["name"], _when(k["created_at"]), _when(k["last_used_at"]),
                  "revoked" if k["revoked"] else "active"] for k in keys]))


def _print_new_key(key_id: str, key: str, name: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"id": key_id, "key": key, "name": name}))
    else:
        print(f"hub: key {key_id} ({clean(name)}), shown this once:", file=sys.stderr)
        print(f"key: {key}")


def cmd_key(args, default_db: Path | None = None) -> int:
    if args.db or args.brand:
        if not args.brand or args.hub:
            raise CliError("the operator's way names the database and the brand: --db DB --brand ID (no --hub)")
        from hub import brands
        from hub.store import HubFailure
        store = open_store(_db(args, default_db))
        try:
            if store.one("SELECT 1 FROM brands WHERE id=?", (args.brand,)) is None:
                raise CliError(f"no brand {clean(args.brand)!r} in this database", 1)
            if args.verb == "create":
                try:
                    key_id, key = brands.create_key(store, args.brand, args.name)
                except ValueError as exc:
                    raise CliError(str(exc), 1) from None
                _print_new_key(key_id, key, args.name, args.json)
            elif args.verb == "list":
                _print_keys(brands.list_keys(store, args.brand), args.json)
            else:
                try:
                    brands.revoke_key(store, args.brand, args.key_id)
                except HubFailure as exc:
                    raise CliError(exc.detail, 1) from None
                _done(args, f"key {args.key_id} revoked", {"revoked": args.key_id})
        finally:
            store.close()
        return 0
    client = _client(args)
    if args.verb == "create":
        a = client.call("POST", "/v1/brand/keys", {"name": args.name})
        _print_new_key(a["id"], a["key"], a["name"], args.json)
    elif args.verb == "list":
        _print_keys(client.call("GET", "/v1/brand/keys")["keys"], args.json)
    else:
        client.call("DELETE", "/v1/brand/keys/" + quote(args.key_id, safe=""))
        _done(args, f"key {args.key_id} revoked", {"revoked": args.key_id})
    return 0


def _done(args, message: str, doc: dict) -> None:
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"hub: {clean(message)}", file=sys.stderr)


# -- the fleet ---------------------------------------------------------------------------
def duration(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]{1,7})\s*([smhd]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError("a duration such as 90m, 12h or 7d")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def cmd_code(args, client: BrandClient) -> int:
    if args.verb == "create":
        if not 60 <= args.expires <= 90 * 86400:
            raise CliError("--expires must be from 60s to 90d")
        a = client.call("POST", "/v1/brand/enrollment-codes", {"store_code": args.store, "expires_in_s": args.expires})
        if args.json:
            print(json.dumps(a))
        else:
            print(f"code: {a['code']}\nid: {a['id']}\nstore: {clean(a['store_code'])}\nexpires: {_when(a['expires_at'])}")
            print("hub: type the code into the new kiosk (`kiosk enroll --code ...`); it works once", file=sys.stderr)
    elif args.verb == "list":
        codes = client.call("GET", "/v1/brand/enrollment-codes")["codes"]
        if args.json:
            print(json.dumps({"codes": codes}))
        else:
            now = time.time()

            def state(c):
                if c["revoked"]:
                    return "revoked"
                if c["used_by"] and not c["reusable"]:
                    return f"used by {c['used_by']}"
                if c["expires_at"] and c["expires_at"] <= now:
                    return "expired"
                return "reusable" if c["reusable"] else "active"
            print(table(["id", "store", "created", "expires", "state"],
                        [[c["id"], c["store_code"], _when(c["created_at"]), _when(c["expires_at"]) if c["expires_at"]
                          else "never", state(c)] for c in codes]))
    else:
        client.call("DELETE", "/v1/brand/enrollment-codes/" + quote(args.code_id, safe=""))
        _done(args, f"enrollment code {args.code_id} revoked", {"revoked": args.code_id})
    return 0


def cmd_client(args, client: BrandClient) -> int:
    """The brand's web shops and apps as OAuth clients (public clients, PKCE S256)."""
    if args.verb == "create":
        a = client.call("POST", "/v1/brand/clients", {"name": args.name, "redirect_uris": args.redirect_uri,
                                                      "kind": "app" if args.app else "web"})
        if args.json:
            print(json.dumps(a))
        else:
            print(f"client_id: {a['client_id']}\nname: {clean(a['name'])}\nkind: {a['kind']}")
            for uri in a["redirect_uris"]:
                print(f"redirect_uri: {clean(uri)}")
            print("hub: a public client: no secret; it signs shoppers in with PKCE S256 at /oauth/authorize",
                  file=sys.stderr)
    elif args.verb == "list":
        clients = client.call("GET", "/v1/brand/clients")["clients"]
        if args.json:
            print(json.dumps({"clients": clients}))
        else:
            print(table(["client_id", "name", "kind", "created", "state", "redirect URIs"],
                        [[c["client_id"], c["name"], c["kind"], _when(c["created_at"]),
                          "revoked" if c["revoked_at"] else "active", " ".join(c["redirect_uris"])] for c in clients]))
    else:
        client.call("DELETE", "/v1/brand/clients/" + quote(args.client_id, safe=""))
        _done(args, f"client {args.client_id} revoked: its tokens are refused from their next call",
              {"revoked": args.client_id})
    return 0


def cmd_devices(args, client: BrandClient) -> int:
    devices = client.call("GET", "/v1/brand/devices")["devices"]
    if args.json:
        print(json.dumps({"devices": devices}, ensure_ascii=False))
        return 0

    def num(v, unit=""):
        return "-" if v is None else f"{v:g}{unit}" if isinstance(v, (int, float)) else clean(v)
    now = time.time()
    rows = [[d["id"], d["name"], d["store_code"], "revoked" if d["revoked"] else "online" if d["online"] else "offline",
             d.get("version") or "-", d.get("reader_state") or "-", num(d.get("outbox_depth")), num(d.get("parked")),
             _age(d.get("last_sync"), now), num(d.get("clock_skew_s"), "s"), num(d.get("free_disk_mb"), " MB"),
             _age(d.get("last_seen"), now)] for d in devices]
    print(table(["id", "name", "store", "state", "version", "reader", "outbox", "parked", "last sync", "clock skew",
                 "free disk", "last seen"], rows) if rows else "no kiosks enrolled yet")
    return 0


def cmd_device(args, client: BrandClient) -> int:
    client.call("POST", f"/v1/brand/devices/{quote(args.device_id, safe='')}:revoke")
    _done(args, f"kiosk {args.device_id} revoked: its token is refused from its next call", {"revoked": args.device_id})
    return 0


# -- parsing and dispatch ---------------------------------------------------------------
def _client(args) -> BrandClient:
    if not args.hub:
        raise CliError("--hub URL is required (the hub's address, such as https://hub.example)")
    key = args.key
    if not key and args.key_file:
        try:
            key = Path(args.key_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the key file {clean(args.key_file)}: {getattr(exc, 'strerror', exc)}") from None
        key = key.removeprefix("key:").strip()
    key = (key or os.environ.get("KIOSK_HUB_BRAND_KEY", "")).strip()
    if not key:
        raise CliError("a brand key is required: --key-file PATH, $KIOSK_HUB_BRAND_KEY or --key KEY")
    if not key.isascii() or not key.isprintable() or len(key) > 128:
        raise CliError("that is not a brand key")
    return BrandClient(args.hub, key)


def parser() -> argparse.ArgumentParser:
    hub = argparse.ArgumentParser(add_help=False)
    hub.add_argument("--hub", help="the hub's URL (https://...)")
    hub.add_argument("--key", help="the brand key (visible in `ps` to other users: prefer --key-file)")
    hub.add_argument("--key-file", help="a file holding the brand key (or $KIOSK_HUB_BRAND_KEY)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = argparse.ArgumentParser(prog="kiosk hub", description="brands: accounts, keys, feed files, kiosk fleet",
                                allow_abbrev=False, epilog="docs/brand-feeds.md has the file formats; "
                                "exit codes: 0 ok, 1 refused, 2 usage, database, key or connection")
    p.add_argument("--db", help=argparse.SUPPRESS)
    groups = p.add_subparsers(dest="group", required=True)

    brand = groups.add_parser("brand", help="create a brand (the operator, on the database)", allow_abbrev=False)
    bverbs = brand.add_subparsers(dest="verb", required=True)
    create = bverbs.add_parser("create", parents=[out], allow_abbrev=False,
                               help="a new brand and its first admin key (printed once)")
    create.add_argument("--db", default=argparse.SUPPRESS,
                        help="a SQLite file (made if new) or postgresql://... (default: $KIOSK_HUB_DB)")
    create.add_argument("--id", required=True, help="2-32 lowercase letters and digits, starting with a letter")
    create.add_argument("--name", required=True)
    create.add_argument("--default-language", default="en", help="the language of title/description (default en)")

    key = groups.add_parser("key", help="a brand's API keys", allow_abbrev=False)
    kverbs = key.add_subparsers(dest="verb", required=True)
    for verb, text in (("create", "a new key (printed once)"), ("list", "the keys (never the keys themselves)"),
                       ("revoke", "revoke a key by its id (never the brand's last active one)")):
        v = kverbs.add_parser(verb, parents=[hub, out], allow_abbrev=False, help=text,
                              description=text + "; as the brand (--hub, --key) or the operator (--db, --brand)")
        v.add_argument("--db", default=argparse.SUPPRESS, help="the operator: the hub's database (with --brand)")
        v.add_argument("--brand", help="with --db: the brand's id")
        if verb == "create":
            v.add_argument("--name", default="key", help="what the key is for (erp, pos, ...)")
        if verb == "revoke":
            v.add_argument("key_id", help="key-xxxxxxxx")

    imp = groups.add_parser("import", parents=[hub, out], allow_abbrev=False, help="send a feed file (CSV or JSON)",
                            description="send a products, stores, inventory or offers file to the hub's brand API")
    imp.add_argument("kind", choices=list(KINDS))
    imp.add_argument("file")
    imp.add_argument("--snapshot", action="store_true",
                     help="inventory: each store's rows are its whole stock (rows absent become 0)")
    imp.add_argument("--batch-size", type=int, default=MAX_ROWS, choices=range(1, MAX_ROWS + 1),
                     metavar=f"1..{MAX_ROWS}", help=f"rows in one call (default {MAX_ROWS})")

    code = groups.add_parser("code", help="enrollment codes for new kiosks", allow_abbrev=False)
    cverbs = code.add_subparsers(dest="verb", required=True)
    cc = cverbs.add_parser("create", parents=[hub, out], allow_abbrev=False, help="a one-time code for a store")
    cc.add_argument("--store", required=True, help="the store's code")
    cc.add_argument("--expires", type=duration, default=7 * 86400, help="valid for (60s..90d; default 7d)")
    cverbs.add_parser("list", parents=[hub, out], allow_abbrev=False, help="the brand's codes (never the codes)")
    cr = cverbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False, help="revoke a code by its id")
    cr.add_argument("code_id", help="code-xxxxxxxxxx")

    oc = groups.add_parser("client", help="the brand's web shops and apps (OAuth clients)", allow_abbrev=False)
    overbs = oc.add_subparsers(dest="verb", required=True)
    ocreate = overbs.add_parser("create", parents=[hub, out], allow_abbrev=False,
                                help="register a web shop or app; prints its client_id")
    ocreate.add_argument("--name", required=True, help="what the shopper sees on the consent screen")
    ocreate.add_argument("--redirect-uri", required=True, action="append",
                         help="an exact redirect URI (repeat for more, up to 5)")
    ocreate.add_argument("--app", action="store_true", help="a native app (may use com.example.app:/cb URIs)")
    overbs.add_parser("list", parents=[hub, out], allow_abbrev=False, help="the brand's clients")
    orevoke = overbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False,
                                help="revoke a client (its tokens are refused at once)")
    orevoke.add_argument("client_id", help="cl_...")

    groups.add_parser("devices", parents=[hub, out], allow_abbrev=False, help="the brand's kiosks, last heartbeat")
    device = groups.add_parser("device", help="one kiosk", allow_abbrev=False)
    dverbs = device.add_subparsers(dest="verb", required=True)
    dr = dverbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False,
                           help="take a kiosk out of the fleet (its token is refused at once)")
    dr.add_argument("device_id")
    return p


def main(argv: list[str] | None = None, default_db: Path | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.group == "brand":
            return cmd_brand_create(args, default_db)
        if args.group == "key":
            return cmd_key(args, default_db)
        client = _client(args)
        if args.group == "import":
            return run_import(args, client)
        if args.group == "code":
            return cmd_code(args, client)
        if args.group == "devices":
            return cmd_devices(args, client)
        if args.group == "client":
            return cmd_client(args, client)
        return cmd_device(args, client)
    except CliError as exc:
        print(f"hub: {clean(exc, 600)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("hub: interrupted; re-running the same command is safe", file=sys.stderr)
        return 130
