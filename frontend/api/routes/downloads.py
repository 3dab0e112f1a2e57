import posixpath
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, RedirectResponse
from starlette.exceptions import HTTPException

from consumers.filetypes import MEDIA_TYPES, SNIFF_BYTES, file_kind
from frontend.api.deps import BucketDep, CredentialsDep, SettingsDep, is_authorized
from frontend.core.security import signature_valid
from frontend.schemas import Message

router = APIRouter(tags=["downloads"])

DOWNLOADABLE = ("output/", "uploads/")


@router.get("/download/{key:path}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}},
                       307: {"description": "redirect to a signed bucket URL"},
                       401: {"model": Message}, 404: {"model": Message}})
async def download(key: str, bucket: BucketDep, settings: SettingsDep, credentials: CredentialsDep,
                   expires: Annotated[str | None, Query(max_length=20)] = None,
                   signature: Annotated[str | None, Query(max_length=128)] = None):
    """Download a result (`output/…`) or an upload (`uploads/…`).

    When a token protects the API, the links in job answers carry `expires` and
    `signature`; a bearer token works too. Cloud buckets: a redirect to a signed URL.
    Served as the type the file's first bytes say (images inline, others as attachments),
    with `nosniff` and a sandboxing Content-Security-Policy.
    """
    if not key.startswith(DOWNLOADABLE) or not bucket.is_valid_key(key):
        raise HTTPException(404, "no such file")
    if not (is_authorized(settings, credentials)
            or signature_valid(key, expires, signature, settings.token or "")):
        raise HTTPException(401, "the link has expired or is not signed; ask the job for a fresh one",
                            headers={"WWW-Authenticate": "Bearer"})
    if not await bucket.is_file(key):  # a folder (`uploads/<id>`, `output/<job>`) is no file either
        raise HTTPException(404, "no such file")
    path = bucket.local_path(key)
    if path is None:
        return RedirectResponse(await bucket.link(key), status_code=307)
    # The type its first bytes say, never its name's: a `.svg` or `.html` is no image here.
    media_type = MEDIA_TYPES.get(file_kind(await bucket.head(key, SNIFF_BYTES)) or "", "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=posixpath.basename(key),
                        content_disposition_type="inline" if media_type.startswith("image/") else "attachment")
