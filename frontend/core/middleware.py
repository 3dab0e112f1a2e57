"""Pure ASGI middleware: request ids, access logs and metrics; slashes; body size limits."""

import logging
import os
import re
import time

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.core.logging import access_fields, request_id
from frontend.core.metrics import ApiMetrics

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


class BodyLimitMiddleware:
    """Answer 413 to request bodies above a per-path limit, before or while they are read."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"message": _too_large(limit)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> str:
    return f"the request is larger than the limit of {limit:,} bytes"
