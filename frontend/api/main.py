"""All `/api` routes in one router; a token, when set, guards all but health and downloads."""

from fastapi import APIRouter, Depends

from frontend.api.deps import require_token
from frontend.api.routes import downloads, health, job_hashes, jobs, models, predict, uploads
from frontend.schemas import Message

protected = APIRouter(dependencies=[Depends(require_token)], responses={401: {"model": Message}})
for module in (uploads, predict, job_hashes, jobs, models):
    protected.include_router(module.router)

api_router = APIRouter(prefix="/api")
api_router.include_router(health.router)
api_router.include_router(downloads.router)  # signed links or the bearer token: see the route
api_router.include_router(protected)
