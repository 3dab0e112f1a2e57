"""The DeepCell Kiosk's calls on job hashes: status, field reads and expiry."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from frontend.api.deps import JobsDep
from frontend.schemas import (ExpireRequest, ExpireResponse, FieldsRequest, FieldsResponse,
                              HashRequest, NotFoundStatus, NotFoundValue, StatusResponse)

router = APIRouter(tags=["jobs"])


def _missing(key: str, **body: object) -> JSONResponse:
    return JSONResponse({"message": f"no job '{key}' (it never existed or has expired)", **body},
                        status_code=404)


@router.post("/status", responses={404: {"model": NotFoundStatus}})
async def status(request: HashRequest, jobs: JobsDep) -> StatusResponse:
    """A job's status: new, started, pre-processing, predicting, post-processing,
    saving-results, waiting (zip jobs), done or failed."""
    value = await jobs.status(request.hash)
    if value is None:
        return _missing(request.hash, status=None)
    return StatusResponse(status=value)


@router.post("/redis", responses={404: {"model": NotFoundValue}})
async def read_fields(request: FieldsRequest, jobs: JobsDep) -> FieldsResponse:
    """Read one field of a job (`key` a string) or several (`key` a list).

    Only job fields can be read (`status`, `progress`, `reason`, `output_url`,
    timings…), never other Redis keys. Absent fields read as null; `output_url`
    is a freshly signed link; times are ISO 8601.
    """
    names = [request.key] if isinstance(request.key, str) else request.key
    values = await jobs.fields(request.hash, names)
    if values is None:
        return _missing(request.hash, value=None)
    return FieldsResponse(value=values[0] if isinstance(request.key, str) else values)


@router.post("/redis/expire", responses={404: {"model": ExpireResponse}})
async def expire(request: ExpireRequest, jobs: JobsDep) -> ExpireResponse:
    """Let a job expire `expireIn` seconds from now (default 3600). Unknown job: 404 `{"value": 0}`."""
    if not await jobs.expire(request.hash, request.expireIn):
        return JSONResponse({"value": 0, "message": f"no job '{request.hash}'"}, status_code=404)
    return ExpireResponse(value=1)
