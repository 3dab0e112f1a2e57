from fastapi import APIRouter

from frontend.api.deps import CatalogueDep
from frontend.schemas import ModelsResponse

router = APIRouter(tags=["models"])


@router.get("/models")
async def models(catalogue: CatalogueDep) -> ModelsResponse:
    """The models in storage (`models/<Name>/<version>/`) and their versions."""
    return ModelsResponse(models=await catalogue.models())
