"""Outside `/api`: the web portal's page and the Prometheus metrics."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from frontend.api.deps import MetricsDep, SettingsDep

STATIC_DIR = Path(__file__).parents[2] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def portal() -> FileResponse:
    """The web portal."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/metrics")
async def metrics(api_metrics: MetricsDep, settings: SettingsDep) -> Response:
    """Prometheus metrics of this API process (on its own port when `metrics_port` is set)."""
    if settings.metrics_port:
        raise HTTPException(404, "no such page")
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
