"""Pure ASGI middleware: request ids, access logs and metrics; slashes; the token gate; body limits."""

import asyncio
import logging
import os
import re
import time

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.core.logging import access_fields, request_id
from frontend.core.metrics import ApiMetrics
from frontend.core.security import UNAUTHORIZED, bearer_matches

access_log = logging.getLogger("frontend.access")
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Give each request an id (or keep the caller's `X-Request-ID`), log it and count it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple] = {}  # labelled metrics, looked up once

    def _metrics_of(self, method: str, route: str, status: int) -> tuple:
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.metrics.requests.labels(method, route, str(status)),
                        self.metrics.latency.labels(method, route))
            self._children[(method, route, status)] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if _GOOD_REQUEST_ID.match(given) else os.urandom(16).hex()
        token = request_id.set(rid)
        noted: dict = {}
        noted_token = access_fields.set(noted)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.in_progress.dec()
            requests, latency = self._metrics_of(method, route, status)
            requests.inc()
            latency.observe(elapsed)
            access_log.info("%s %s %s", method, scope["path"], status, extra={
                "method": method, "path": scope["path"], "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 2), **noted})
            access_fields.reset(noted_token)
            request_id.reset(token)


def _route_template(scope: Scope) -> str:
    """The matched route's path with its parameters as `{name}` (a bounded metric label)."""
    if scope.get("route") is None:
        return "unmatched"
    path = scope["path"]
    for name, value in scope.get("path_params", {}).items():
        head, found, tail = path.rpartition(str(value))
        if found:
            path = f"{head}{{{name}}}{tail}"
    return path


class TrailingSlashMiddleware:
    """Serve `/api/x/` as `/api/x`, as the DeepCell Kiosk contract requires (no redirect)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/") and path.endswith("/"):
            scope["path"] = path.rstrip("/")
            scope.pop("raw_path", None)
        await self.app(scope, receive, send)


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every answer. Downloads (people's files, served on
    the origin whose localStorage holds the portal's token) get a sandboxing CSP: nothing in
    them runs. Everything else (the portal, API answers) gets `portal_policy` and may not be
    framed (clickjacking)."""

    def __init__(self, app: ASGIApp, portal_policy: str, download_prefix: str) -> None:
        self.app = app
        self.download_prefix = download_prefix
        nosniff = (b"x-content-type-options", b"nosniff")
        self.download_headers = [nosniff, (b"content-security-policy", DOWNLOAD_POLICY.encode())]
        self.page_headers = [nosniff, (b"content-security-policy", portal_policy.encode()),
                             (b"x-frame-options", b"DENY")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.download_headers if scope["path"].startswith(self.download_prefix) else self.page_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


DOWNLOAD_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
"""A downloaded file is shown (an image) but runs nothing, as raw.githubusercontent.com does."""


class TokenGate:
    """Answer 401 to a protected path without the bearer token before anything reads the body.

    FastAPI parses a form before it runs dependencies: without this gate an anonymous
    upload is received (and spooled to disk) in full before its 401. The answer closes
    the connection, so the client's unread body is not received either.
    """

    def __init__(self, app: ASGIApp, token: str | None, open_paths: frozenset[str],
                 open_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.token = token
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    def _protected(self, path: str) -> bool:
        return (path == "/api" or path.startswith("/api/")) and path not in self.open_paths \
            and not path.startswith(self.open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or not self._protected(scope["path"]) \
                or bearer_matches(scope["headers"], self.token):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"message": UNAUTHORIZED}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer", "Connection": "close"})
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Limits on request bodies, enforced before or while they are read: 413 above a per-path
    limit; 503 while the bodies being received together would pass `max_in_flight` bytes (the
    disk uploads spool to is finite); 408 when a client sends nothing for `read_timeout` s."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, int], *,
                 max_in_flight: int, read_timeout: float) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits
        self.max_in_flight = max_in_flight
        self.read_timeout = read_timeout
        self.in_flight = 0  # bytes declared or received by the requests being served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        length = int(declared) if declared is not None and declared.isdigit() else 0  # bytes: ASCII only
        if length > limit:
            await JSONResponse({"message": _too_large(limit)}, status_code=413)(scope, receive, send)
            return
        if length and self.in_flight + length > self.max_in_flight:
            await _busy()(scope, receive, send)
            return
        held = length  # this request's share of `in_flight`
        self.in_flight += held
        received, done = 0, False

        async def counting_receive() -> Message:
            nonlocal received, done, held
            if done:  # the body is in: what follows is the disconnect, whenever it comes
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the request body stopped arriving for {self.read_timeout:g} s; "
                                         "send it again") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
                if received > held:  # a body without a length, or longer than it said
                    self.in_flight += received - held
                    held = received
                    if self.in_flight > self.max_in_flight:
                        raise HTTPException(503, _BUSY, headers={"Retry-After": "10"})
            return message

        try:
            await self.app(scope, counting_receive, send)
        finally:
            self.in_flight -= held


_BUSY = "the kiosk is receiving as many uploads as it can hold; try again shortly"


def _busy() -> JSONResponse:
    """The answer before the body is read; closing the connection, the body is not received either."""
    return JSONResponse({"message": _BUSY}, status_code=503, headers={"Retry-After": "10", "Connection": "close"})


def _too_large(limit: int) -> str:
    return f"the request is larger than the limit of {limit:,} bytes"
