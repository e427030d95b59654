"""What every brand command of `kiosk hub` shares (hub/brandcli.py): its errors and their exit
codes, text made safe for a terminal (tables, times), and the brand API client.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
import unicodedata
from urllib.parse import urlsplit

TIMEOUT = (5.0, 120.0)  # connect, read (a 5,000-row batch on a busy database)
RETRIES_429 = 8


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


# -- what the commands print -------------------------------------------------------------
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


def _done(args, message: str, doc: dict) -> None:
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"hub: {clean(message)}", file=sys.stderr)
