from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.exceptions import HTTPException

from consumers.filetypes import SNIFF_BYTES
from frontend.api.deps import BucketDep, MetricsDep, SettingsDep
from frontend.schemas import Message, UploadResponse
from frontend.services.uploads import UploadRejected, safe_name, sniff, upload_key

router = APIRouter(tags=["uploads"])


@router.post("/upload", responses={413: {"model": Message}, 415: {"model": Message}})
async def upload(file: Annotated[UploadFile, File(description="a TIFF, PNG, JPEG or ZIP file")],
                 bucket: BucketDep, settings: SettingsDep, metrics: MetricsDep) -> UploadResponse:
    """Store a file for a job under `uploads/<random id>/<safe name>`.

    Only TIFF, PNG, JPEG and ZIP files are accepted (415 otherwise), up to
    `KIOSK_MAX_UPLOAD_BYTES` (413 above). Pass `uploadedName` (or its part after
    `uploads/` as `imageName`) to `/api/predict`.
    """
    if file.size is not None and file.size > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than the limit of {settings.max_upload_bytes:,} bytes")
    head = await file.read(SNIFF_BYTES)
    if not head:
        raise HTTPException(400, "the file is empty")
    try:
        name = safe_name(file.filename, sniff(head))
    except UploadRejected as rejected:
        raise HTTPException(415, str(rejected)) from None
    await file.seek(0)
    key = upload_key(name)
    await bucket.save(key, file.file)
    metrics.upload_bytes.inc(file.size or 0)
    return UploadResponse(imageURL=await bucket.link(key), uploadedName=key)
