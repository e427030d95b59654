"""Feed files for `kiosk hub import`: a products, stores, inventory or offers file (CSV or
JSON) read and checked whole before anything is sent, then cut into the brand API's calls.

Feed files are untrusted: a file that cannot be read whole (broken UTF-8, a header the feed
does not know, bad JSON, over 512 MiB) is FileRefused; a row that cannot be sent is refused
here with its line and column. docs/brand-feeds.md has the file formats.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from hub.brandcli_client import FileRefused, clean

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_ROWS = 5000  # rows in one :batch call (the hub's limit)
MAX_BODY_BYTES = 12 * 1024 * 1024  # a request stays well under the hub's 16 MiB
MAX_CELL = 65536  # a cell this long is far past every limit of the hub: refused here, never sent
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
