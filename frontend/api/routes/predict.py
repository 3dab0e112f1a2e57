from fastapi import APIRouter

from consumers.jobs import JOB_TYPES
from frontend.api.deps import JobsDep
from frontend.schemas import JobTypesResponse, PredictRequest, PredictResponse

router = APIRouter(tags=["jobs"])


@router.post("/predict")
async def predict(request: PredictRequest, jobs: JobsDep) -> PredictResponse:
    """Create a job and queue it; answers its key as `hash`.

    The input must have been uploaded (`uploadedName`, default `uploads/<imageName>`)
    and the model must be in storage (400 with the list of models otherwise).
    Missing options take defaults: the job type's default model at its newest
    version, scale 1, dimension order and channels inferred from the image.
    """
    return PredictResponse(hash=await jobs.create(request))


@router.get("/jobtypes")
async def job_types() -> JobTypesResponse:
    """The job types this kiosk serves."""
    return JobTypesResponse(jobTypes=list(JOB_TYPES))
