"""Dependencies of the routes, as `Annotated` aliases.

All are `async def` reading what `create_app` put on `app.state`: FastAPI runs
plain `def` dependencies in a thread pool, and a dependency override costs a
signature inspection per request: together they made a job submission 50 % dearer.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from frontend.core.config import FrontendSettings
from frontend.core.metrics import ApiMetrics
from frontend.core.security import UNAUTHORIZED, token_matches
from frontend.services.bucket import Bucket
from frontend.services.catalogue import ModelCatalogue
from frontend.services.jobs import Jobs


async def _settings(request: Request) -> FrontendSettings:
    return request.app.state.settings


SettingsDep = Annotated[FrontendSettings, Depends(_settings)]

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <KIOSK_AUTH_TOKEN>`")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


async def _bucket(request: Request) -> Bucket:
    return request.app.state.bucket


async def _catalogue(request: Request) -> ModelCatalogue:
    return request.app.state.jobs.catalogue


async def _metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


JobsDep = Annotated[Jobs, Depends(_jobs)]
BucketDep = Annotated[Bucket, Depends(_bucket)]
CatalogueDep = Annotated[ModelCatalogue, Depends(_catalogue)]
MetricsDep = Annotated[ApiMetrics, Depends(_metrics)]


def is_authorized(settings: FrontendSettings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """True when the API is open or the request carries its bearer token."""
    if settings.token is None:
        return True
    return credentials is not None and token_matches(credentials.credentials, settings.token)


async def require_token(settings: SettingsDep, credentials: CredentialsDep) -> None:
    """Refuse the request (401) unless it carries the API's bearer token, when one is set.

    `TokenGate` already refused such requests before their bodies were read; this guard
    documents the scheme in the OpenAPI document and holds if a route is served without it."""
    if not is_authorized(settings, credentials):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
