"""The hot path of job submission: `POST /api/predict` answered without FastAPI's routing.

A benchmark client submits thousands of jobs; FastAPI's own routing, dependency
solving and response serialisation cost about as much CPU per submission as all
the kiosk's checks together (a bare FastAPI route: ~1 ms of CPU on this 2-core
machine, the ceiling being ~1,000 submissions/s before the kiosk does any work).

This ASGI layer sits inside the request-id, slash, token-gate and body-limit
middleware, so logs, metrics, the token check and limits are unchanged. For a JSON `POST /api/predict` it reads
the body once, validates it with the same `PredictRequest` model and creates the
job with the same `Jobs.create` (every check of the upload and the model). Only
a successful submission is answered here. Anything else (a wrong content type,
a missing or wrong token, a body that does not validate, a rejected upload or
model) is replayed, body included, to the FastAPI route, which gives the answer
it always gives: error answers cannot drift from the documented ones.
"""

import json

import redis
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.core.errors import BadRequest, error_response
from frontend.core.security import bearer_matches
from frontend.schemas import PredictRequest

PATH = "/api/predict"


class FastPredict:
    """Answer well-formed, valid JSON job submissions directly; pass everything else on."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.route = PATH  # the metrics label of the route (see RequestContextMiddleware)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" \
                or not _is_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as too_large:  # the body limit, raised while the body is read
            await error_response(too_large)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        replay = _replaying(body, receive)
        if self.token is not None and not bearer_matches(scope["headers"], self.token):
            await self.app(scope, replay, send)  # FastAPI answers the 401
            return
        try:
            request = PredictRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay, send)  # FastAPI answers the 400 with its message
            return
        jobs = scope["app"].state.jobs
        try:
            key = await jobs.create(request)
        except BadRequest:  # raised before anything is written: the route checks again and answers
            await self.app(scope, replay, send)
            return
        except (redis.ConnectionError, redis.TimeoutError, HTTPException) as error:
            response = error_response(error)
        except Exception as error:  # noqa: BLE001 - answered as the app's 500 handler would
            response = error_response(error)
        else:
            response = Response(json.dumps({"hash": key}, separators=(",", ":")).encode(),
                                media_type="application/json")
        scope["route"] = self.route
        await response(scope, receive, send)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    value = next((v for k, v in headers if k == b"content-type"), b"")
    return value.split(b";", 1)[0].strip().lower() == b"application/json"


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
