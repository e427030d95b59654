"""The hub client: one `requests.Session`, a timeout on every call, errors translated.

Foreign exceptions stop here: a network failure, a timeout, a 5xx, a 429 or a truncated
answer raise `HubUnavailable` (the offline path); RFC 9457 problems map to the
`KioskError` tree, their extension members (a lock-out's `retry_after_s`, a wrong PIN's
`tries_left`) kept as `members`; an answer that is not the documented API raises `HubProtocolError`.
urllib3 retries are off: the sync worker owns retrying, with a persisted next-attempt time,
so no thread ever sleeps inside a request (and `Retry-After` is never slept out here).

The device token goes only over TLS, or to a hub on this machine (loopback): a plain
http:// hub anywhere else is refused (ConfigError) unless `allow_insecure` says so. Once the
hub said the kiosk was removed from its fleet (`revoked`), no call leaves but the health probe.

    hub = HubClient("https://hub.example", token="...")
    view = hub.checkin({"kind": "token", "token": "..."}, checkin_id=str(uuid.uuid4()))
"""
from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from kiosk import __version__, api
from kiosk import errors as E

log = logging.getLogger(__name__)

PROBLEM_ERRORS = {
    api.P_UNAUTHORIZED: E.Unauthorized,
    api.P_DEVICE_REVOKED: E.DeviceRevoked,
    api.P_FORBIDDEN: E.Forbidden,
    api.P_NOT_FOUND: E.NotFound,
    api.P_UNKNOWN_CREDENTIAL: E.UnknownCredential,
    api.P_CREDENTIAL_REFUSED: E.CredentialRefused,
    api.P_ENROLLMENT_REFUSED: E.EnrollmentRefused,
    api.P_INVALID: E.InvalidRequest,
}
STATUS_ERRORS = {401: E.Unauthorized, 403: E.Forbidden, 404: E.NotFound, 422: E.InvalidRequest}
MAX_ANSWER_BYTES = 8 * 1024 * 1024
PROBLEM_FIELDS = ("type", "title", "status", "detail", "instance")  # RFC 9457's own; the rest are extensions
MAX_MEMBERS = 16


def problem_members(problem: dict) -> dict:
    """A problem's extension members (RFC 9457 section 3.2): plain values under short names,
    a bounded few; nested objects and long strings are left out."""
    members: dict = {}
    for key, value in problem.items():
        if len(members) >= MAX_MEMBERS:
            break
        if not isinstance(key, str) or key in PROBLEM_FIELDS or len(key) > 64:
            continue
        if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 300):
            members[key] = value
    return members


def parse_retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def is_loopback(host: str) -> bool:
    host = (host or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_problem(url: str, allow_insecure: bool = False) -> str:
    """Why the kiosk will not send its token to `url` ("" when it may)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return f"{url!r} is not a web address"
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) address"
    if parts.scheme == "http" and not is_loopback(host) and not allow_insecure:
        return (f"the hub {url} is plain http:// on another machine: the device token would cross the network "
                "in clear. Use https:// (TLS in front of the hub, docs/hub-deploy.md), or set "
                "allow_insecure_hub = true (KIOSK_ALLOW_INSECURE_HUB=1) on a network you trust")
    return ""


class HubClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = 1.5,
                 max_retry_after: float = 300.0, session: requests.Session | None = None,
                 allow_insecure: bool = False) -> None:
        problem = transport_problem(base_url, allow_insecure)
        if problem:
            raise E.ConfigError(problem)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"nfc-kiosk/{__version__}"
        self.session.headers["Accept"] = "application/json, application/problem+json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.skew_s: float | None = None  # hub clock minus ours, from the Date header
        self.last_latency_ms: float | None = None
        # set (to the hub's detail) once the hub said this kiosk was removed from its fleet: from
        # then on no call leaves this client but the health probe, sent without the token
        self.revoked = ""

    def close(self) -> None:
        self.session.close()

    # -- transport ---------------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None,
                timeout: float | None = None, raw: bool = False, headers: dict | None = None) -> Any:
        if self.revoked:
            if path != "/v1/health":
                raise E.DeviceRevoked(self.revoked, problem_type=api.P_DEVICE_REVOKED, status=401)
            headers = {**(headers or {}), "Authorization": None}  # requests drops a header set to None
        url = self.base_url + path
        started = time.monotonic()
        try:
            response = self.session.request(method, url, json=json_body, params=params, headers=headers,
                                            timeout=timeout or self.timeout, stream=raw)
            body = response.content if not raw else response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except requests.Timeout as exc:
            raise E.HubUnavailable(f"the hub did not answer in time ({type(exc).__name__})") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise E.HubUnavailable(f"the hub cannot be reached ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise E.HubUnavailable(f"request to the hub failed ({type(exc).__name__})") from exc
        except Exception as exc:  # urllib3 errors that requests does not wrap (e.g. ProtocolError)
            raise E.HubUnavailable(f"the hub connection broke ({type(exc).__name__})") from exc
        self.last_latency_ms = (time.monotonic() - started) * 1000
        self._note_date(response.headers.get("Date"))
        if len(body) > MAX_ANSWER_BYTES:
            raise E.HubProtocolError("the hub's answer is too large")
        if response.status_code >= 400:
            self._raise_for(response, body)
        if raw:
            return body
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            # A truncated or garbled body on a 2xx: the hub may have done the work; treat as
            # unavailable so the caller retries (idempotent calls only reach here twice).
            raise E.HubUnavailable("the hub's answer was cut off or garbled") from None

    def _note_date(self, header: str | None) -> None:
        if not header:
            return
        try:
            self.skew_s = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            pass  # a bad Date header only costs us the skew estimate

    def _raise_for(self, response: requests.Response, body: bytes) -> None:
        status = response.status_code
        problem: dict = {}
        if "json" in response.headers.get("Content-Type", ""):
            try:
                loaded = json.loads(body)
                problem = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                problem = {}
        detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")[:300]
        ptype = str(problem.get("type") or "")
        members = problem_members(problem)
        if status in (429, 503) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.max_retry_after)
            raise E.HubUnavailable(f"the hub is busy or failing (HTTP {status})", retry_after=retry_after,
                                   problem_type=ptype, status=status, members=members)
        cls = PROBLEM_ERRORS.get(ptype) or STATUS_ERRORS.get(status) or E.HubError
        raise cls(detail, problem_type=ptype, status=status, members=members)

    # -- API calls ---------------------------------------------------------------
    def enroll(self, code: str, name: str, previous_token: str = "") -> api.Enrollment:
        """`previous_token`: the token this kiosk held from this same hub before its brand
        revoked it (the hub then accepts its queued events that point at the old device's
        check-ins). Never another hub's token: a token only ever goes to the hub that issued it."""
        body = {"code": code, "name": name}
        if previous_token:
            body["previous_token"] = previous_token
        data = self.request("POST", "/v1/devices/enroll", json_body=body, timeout=max(self.timeout, 5.0))
        try:
            return api.Enrollment.from_json(data)
        except E.HubProtocolError:
            raise
        except (TypeError, AttributeError) as exc:
            raise E.HubProtocolError(f"enrollment answer: {exc}") from None

    def checkin(self, credential: dict, timeout: float | None = None, checkin_id: str = "") -> api.ShopperView:
        """With `checkin_id` (a fresh uuid4 per tap) the hub records the check-in itself,
        idempotently on that id; the visit's events then point at it (`{"checkin": id}`)."""
        body: dict = {"credential": credential}
        if checkin_id:
            body["checkin_id"] = checkin_id
        return api.ShopperView.from_json(self.request("POST", "/v1/checkins", json_body=body, timeout=timeout))

    def session_view(self, session: str, timeout: float | None = None) -> api.ShopperView:
        """The current view of the shopper checked in with this session (after a consent change).
        The session token travels in a header, never in a URL that a proxy or log might keep."""
        return api.ShopperView.from_json(self.request("GET", "/v1/session/view", timeout=timeout,
                                                      headers={api.SESSION_HEADER: session}))

    def post_events(self, events: list[dict], timeout: float | None = None) -> list[api.EventOutcome]:
        data = self.request("POST", "/v1/events:batch", json_body={"events": events}, timeout=timeout)
        return api.parse_batch_answer(data, [e["event_id"] for e in events])

    def inventory(self, store_id: str, since: str = "", timeout: float | None = None) -> dict:
        """{"inventory": [items as `api.inventory_item` checks them], "cursor": str}."""
        data = self.request("GET", f"/v1/stores/{store_id}/inventory", params={"since": since} if since else None,
                            timeout=timeout)
        data = _expect_delta(data, "inventory")
        return {**data, "inventory": [api.inventory_item(i) for i in data["inventory"]]}

    def offers(self, since: str = "", timeout: float | None = None) -> dict:
        """{"offers": [{"id", "deleted": True} or an offer `api.Offer.from_json` accepts], "cursor": str}."""
        data = self.request("GET", "/v1/offers", params={"since": since} if since else None, timeout=timeout)
        data = _expect_delta(data, "offers")
        return {**data, "offers": [api.offer_delta(o) for o in data["offers"]]}

    def revocations(self, since: str = "", timeout: float | None = None) -> dict:
        """What this kiosk must forget: {"revocations": [{"shopper_id", "kind"}], "cursor": str}."""
        data = self.request("GET", "/v1/revocations", params={"since": since} if since else None, timeout=timeout)
        data = _expect_delta(data, "revocations")
        for item in data["revocations"]:
            if not isinstance(item, dict) or not isinstance(item.get("shopper_id"), str):
                raise E.HubProtocolError("revocations answer names no shopper")
        return data

    def heartbeat(self, device_id: str, payload: dict, timeout: float | None = None) -> None:
        self.request("POST", f"/v1/devices/{device_id}/heartbeat", json_body=payload, timeout=timeout)

    def staff_search(self, query: str, timeout: float | None = None) -> list[dict]:
        data = self.request("GET", "/v1/staff/shoppers", params={"q": query}, timeout=timeout)
        if not isinstance(data, dict) or not isinstance(data.get("shoppers"), list):
            raise E.HubProtocolError("staff search answer is not a list of shoppers")
        return data["shoppers"]

    def image(self, path: str, timeout: float | None = None) -> bytes:
        if not path.startswith("/v1/images/"):
            raise E.HubProtocolError("image path outside the API")
        return self.request("GET", path, timeout=timeout, raw=True)

    def health(self, timeout: float | None = None) -> float:
        """Round-trip time in ms to the hub's health endpoint."""
        self.request("GET", "/v1/health", timeout=timeout)
        return self.last_latency_ms or 0.0


def _expect_delta(data: Any, key: str) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get(key), list) or not isinstance(data.get("cursor"), str):
        raise E.HubProtocolError(f"{key} answer is not a delta")
    return data
