"""What every request meets first: `Intake`, plain ASGI in front of FastAPI (body limits,
worker threads, shedding, the gate that authenticates before a body is read), and `problem`,
the RFC 9457 answer every refusal of the hub's API is. hub/app.py puts them together.

    return problem(503, api.PROBLEM_BASE + "busy", "the hub is busy; try again", headers={"Retry-After": "1"})
"""
from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse

from kiosk import api
from hub.metrics import Metrics


def problem(status: int, ptype: str, title: str, detail: str = "", headers: dict | None = None,
            extra: dict | None = None) -> JSONResponse:
    """An RFC 9457 answer; `extra` adds extension members (never over the standard ones)."""
    body = {**(extra or {}), "type": ptype, "title": title, "status": status, "detail": detail or title}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


class Intake:
    """Every request passes here first (plain ASGI, in front of FastAPI):

    - a body over `limit` bytes is refused with 413 as it streams in (a missing or lying
      Content-Length, chunked encoding), before the app sees any of it; a body within the
      limit is read whole and handed on;
    - the app's blocking work runs on `threads` worker threads, as many as the connection
      pool holds: more threads would only queue for connections while fighting over the GIL;
    - a known kiosk past its request rate (`gate`) is answered 429 before its body is read,
      after a pause of HOLD_S (at most MAX_HELD held at once);
    - past `max_in_flight` requests at once the hub sheds: 503 `busy` with Retry-After, at
      once, instead of queueing work whose client will have given up (a kiosk keeps its events
      in its outbox and shows its cached view). Health and readiness are never shed.
    """

    ALWAYS = ("/v1/health", "/v1/ready", "/metrics")
    HOLD_S, MAX_HELD = 1.0, 1000  # a rate-limited request's pause, and how many are held at once

    def __init__(self, app, limit: int, threads: int, max_in_flight: int, metrics: Metrics | None = None,
                 gate=None, limits: dict | None = None) -> None:
        self.app, self.limit, self.threads, self.max_in_flight = app, limit, threads, max_in_flight
        self.metrics, self.gate, self.limits = metrics, gate, limits or {}
        self.in_flight, self.held, self._sized = 0, 0, False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._sized:  # the limiter belongs to the running event loop
            import anyio.to_thread
            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            self._sized = True
        if self.in_flight >= self.max_in_flight and scope.get("path") not in self.ALWAYS:
            if self.metrics:
                self.metrics.inc("hub_requests_shed_total")
            response = problem(503, api.PROBLEM_BASE + "busy", "the hub is busy; try again", headers={"Retry-After": "1"})
            return await response(scope, receive, send)
        refusal = await self.gate(scope) if self.gate else None
        if refusal is not None:  # refused before its body is read (no token, a kiosk past its rate)
            response, hold = refusal
            if hold and self.held < self.MAX_HELD:  # after a pause: a flooder that ignores
                self.held += 1                      # Retry-After is slowed to one request per
                try:                                # connection a second
                    await asyncio.sleep(self.HOLD_S)
                finally:
                    self.held -= 1
            return await response(scope, receive, send)
        self.in_flight += 1
        try:
            await self._admitted(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _admitted(self, scope, receive, send) -> None:
        path = scope.get("path") or ""
        limit = self.limits.get(path) or next((v for k, v in self.limits.items() if k.endswith("*")
                                               and path.startswith(k[:-1])), self.limit)
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await self._refuse(scope, receive, send, limit)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._refuse(scope, receive, send, limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        response = problem(413, api.P_INVALID, "request too large",
                           f"the body may be at most {limit} bytes", headers={"Connection": "close"})
        await response(scope, receive, send)
