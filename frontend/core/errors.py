"""Every error answers JSON `{"message": ...}`: 4xx for the client's mistakes, never a 500."""

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class BadRequest(HTTPException):
    """The request is understood but its values are invalid (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable line per problem, e.g. `body.imageName: Field required`."""
    lines = []
    for problem in error.errors():
        if problem.get("type") == "json_invalid":
            lines.append("the body is not valid JSON")
            continue
        if tuple(problem.get("loc", ())) == ("body",) and problem.get("type") == "model_attributes_type":
            lines.append("the body must be a JSON object")
            continue
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        lines.append(f"{where}: {problem.get('msg')}" if where else str(problem.get("msg")))
    return "; ".join(dict.fromkeys(lines)) or "invalid request"


async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"message": describe_validation_error(error)}, status_code=400)


def error_response(error: Exception) -> JSONResponse:
    """The answer the app's handlers give to `error` (for code answering outside FastAPI's routes)."""
    if isinstance(error, HTTPException):
        return JSONResponse({"message": str(error.detail)}, status_code=error.status_code,
                            headers=error.headers)
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        logger.error("Redis unavailable: %s", error)
        return JSONResponse({"message": "the job store is unavailable; try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})
    logger.exception("unexpected error", exc_info=error)
    return JSONResponse({"message": "internal error; the request id in the logs tells what"},
                        status_code=500)


async def _http_error(_: Request, error: HTTPException) -> JSONResponse:
    return error_response(error)


async def _redis_down(_: Request, error: Exception) -> JSONResponse:
    return error_response(error)


async def _unexpected(_: Request, error: Exception) -> JSONResponse:
    return error_response(error)


def add_error_handlers(app: FastAPI) -> None:
    """Install the JSON error answers on `app`."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(Exception, _unexpected)
