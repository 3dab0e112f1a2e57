"""All `/api` routes in one router; a token, when set, guards all but health and downloads."""

from fastapi import APIRouter, Depends

from frontend.api.deps import require_token
from frontend.api.routes import downloads, health, job_hashes, jobs, models, predict, uploads
from frontend.schemas import Message

api_router = APIRouter(prefix="/api")
for module in (predict, job_hashes, jobs, uploads, models):
    api_router.include_router(module.router, dependencies=[Depends(require_token)],
                              responses={401: {"model": Message}})
api_router.include_router(health.router)
api_router.include_router(downloads.router)  # signed links or the bearer token: see the route
