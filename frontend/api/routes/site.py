"""Outside `/api`: the web portal's page and the Prometheus metrics."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from frontend.api.deps import MetricsDep

STATIC_DIR = Path(__file__).parents[2] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def portal() -> FileResponse:
    """The web portal."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/metrics")
async def metrics(api_metrics: MetricsDep) -> Response:
    """Prometheus metrics of this API process."""
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
