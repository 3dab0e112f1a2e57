from fastapi import APIRouter
from starlette.exceptions import HTTPException

from frontend.api.deps import JobsDep
from frontend.schemas import JobView, Message

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{key}", responses={404: {"model": Message}})
async def read_job(key: str, jobs: JobsDep) -> JobView:
    """A job as a person reads it: status, progress, failure reason, model, times,
    links to the result archive and its preview, and a zip job's children."""
    view = await jobs.view(key)
    if view is None:
        raise HTTPException(404, f"no job '{key}' (it never existed or has expired)")
    return view
