"""Request and answer bodies of the API (camelCase on the wire, as DeepCell Kiosk clients send)."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from consumers.jobs import JOB_TYPES, MAX_SCALE, MIN_SCALE

MAX_FIELDS_PER_READ = 64
MAX_EXPIRE_SECONDS = 365 * 86400
_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
_FUNCTION = r"^[A-Za-z0-9_-]{0,64}$"
ORDER_LETTERS = "ZTCYX"


def _blank_is_none(value: object) -> object:
    """Web forms send '' for an unset option: treat it as absent."""
    return None if isinstance(value, str) and not value.strip() else value


def _int_as_text(value: object) -> object:
    value = _blank_is_none(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _channel_list(value: object) -> object:
    """The web page sends selected channels as '0,1'; scripts send [0, 1]."""
    value = _blank_is_none(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _dimension_order(value: str) -> str:
    """Upper-case letters Z, T, C, Y, X; the web page's 'b' (batch) is a frame axis like Z."""
    order = value.strip().upper().replace("B", "Z")
    if any(c not in ORDER_LETTERS for c in order) or len(set(order)) != len(order) \
            or not {"Y", "X"} <= set(order):
        raise ValueError(f"'{value}' is not a dimension order: use the letters Z, T, C, Y, X "
                         "(or B for batch), each once, including Y and X, e.g. 'CYX'")
    return order


Text = Annotated[str, Field(max_length=1024)]
Scale = Annotated[float, Field(ge=MIN_SCALE, le=MAX_SCALE, allow_inf_nan=False)]
Channel = Annotated[int, Field(ge=0, le=1023)]
OptionalScale = Annotated[Scale | None, BeforeValidator(_blank_is_none)]
OptionalPixelSize = Annotated[Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None,
                              BeforeValidator(_blank_is_none)]
JobKey = Annotated[str, Field(min_length=1, max_length=128, description="a job key from `/api/predict`")]


class Camel(BaseModel):
    """A body whose fields are camelCase on the wire; unknown fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class JobForm(Camel):
    """The web page's job options."""

    dimension_order: Annotated[str | None, BeforeValidator(_blank_is_none),
                               AfterValidator(lambda v: v and _dimension_order(v))] = Field(
        None, max_length=8, description="axes of the image, e.g. 'CYX'; inferred when absent")
    selected_channels: Annotated[list[Channel] | None, BeforeValidator(_channel_list)] = Field(
        None, max_length=16, description="channel indices, '0,1' or [0, 1]")
    scale: OptionalScale = Field(None, description="the image's scale; estimated from the image when absent")
    image_mpp: OptionalPixelSize = Field(None, description="µm per pixel (same as imageMpp)")
    segmentation_type: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, pattern=_FUNCTION)


class PredictRequest(Camel):
    """A job to create. Only `jobType` and `imageName` are required."""

    job_type: Literal[JOB_TYPES] = Field(description="one of `/api/jobtypes`")
    image_name: str = Field(min_length=1, max_length=1024,
                            description="the file's name; a name ending in .zip makes a zip job")
    uploaded_name: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, max_length=1100, description="storage key of the input; default `uploads/<imageName>`")
    image_url: Text | None = None
    model_name: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, pattern=_NAME, description="default: the job type's default model")
    model_version: Annotated[str | None, BeforeValidator(_int_as_text)] = Field(
        None, pattern=r"^[0-9]{1,9}$", description="digits; default: the newest version")
    preprocess_function: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, pattern=_FUNCTION)
    postprocess_function: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, pattern=_FUNCTION)
    data_rescale: OptionalScale = Field(None, description="the image's scale (same as jobForm.scale); "
                                        "estimated from the image when absent")
    image_mpp: OptionalPixelSize = Field(
        None, description="µm per pixel; sets the scale when no scale is given (else read from the TIFF, "
                          "else estimated from the nuclei)")
    data_label: Annotated[str | None, BeforeValidator(_int_as_text)] = Field(None, pattern=_NAME)
    cuts: Annotated[str | None, BeforeValidator(_int_as_text)] = Field(
        None, max_length=16, description="accepted for old clients and ignored: tiling is automatic")
    job_form: JobForm | None = None


class PredictResponse(BaseModel):
    hash: str = Field(description="the job key")


class UploadResponse(BaseModel):
    imageURL: str = Field(description="a URL that downloads the uploaded file")
    uploadedName: str = Field(description="the storage key, always under `uploads/`")


class HashRequest(BaseModel):
    hash: JobKey


class FieldsRequest(HashRequest):
    key: str | Annotated[list[str], Field(min_length=1, max_length=MAX_FIELDS_PER_READ)] = Field(
        description="a job field, or a list of fields")


class FieldsResponse(BaseModel):
    value: str | None | list[str | None]


class StatusResponse(BaseModel):
    status: str | None


DEFAULT_EXPIRE_SECONDS = 3600


def _falsy_is_default_expiry(value: object) -> object:
    """`expireIn` missing, null, "" or 0 means the default hour.

    The DeepCell kiosk-frontend computed `expireIn || 3600`, so every JavaScript-falsy
    value (null, "", 0, false) took the default, 0 included: old clients that send 0
    mean "the default", not "delete now". Other values are checked as usual.
    """
    if value is None or value is False or (isinstance(value, str) and not value.strip()) \
            or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return DEFAULT_EXPIRE_SECONDS
    return value


class ExpireRequest(HashRequest):
    expireIn: Annotated[int, BeforeValidator(_falsy_is_default_expiry)] = Field(
        DEFAULT_EXPIRE_SECONDS, ge=1, le=MAX_EXPIRE_SECONDS,
        description="seconds; missing, null, \"\" or 0 take the default 3600 (as kiosk-frontend's "
                    "`expireIn || 3600`)")


class ExpireResponse(BaseModel):
    value: int = Field(description="1 when the job exists, 0 when it does not")


class JobTypesResponse(BaseModel):
    jobTypes: list[str]


class ModelsResponse(BaseModel):
    models: dict[str, list[str]] = Field(description="model name → its versions, oldest first")


class Message(BaseModel):
    message: str


class NotFoundValue(Message):
    value: None = None


class NotFoundStatus(Message):
    status: None = None


class JobView(BaseModel):
    """A job as a person reads it; a zip job lists its children."""

    key: str
    jobType: str
    name: str | None = Field(description="the input's name")
    status: str | None
    progress: int | None = Field(description="0-100: the share of children finished, or the "
                                             "stage of a single job")
    reason: str | None = Field(description="why the job failed; the last line is the summary")
    waiting: str | None = Field(None, description="why an unfinished job waits while no model server is "
                                                 "ready, e.g. 'waiting for a GPU node to start'")
    failures: str | None
    model: str | None = Field(description="`Name:version`")
    createdAt: str | None
    finishedAt: str | None
    outputFileName: str | None
    outputUrl: str | None = Field(description="downloads the result archive (freshly signed)")
    previewUrl: str | None = Field(description="the overlay image of a single job's result")
    previewImageUrl: str | None = Field(None, description="the same image without the outlines")
    nuclei: int | None = Field(description="objects found (a zip job: see its children)")
    estimatedDiameter: float | None = Field(None, description="the nuclei's typical diameter (px) measured in the "
                                                              "image, when the scale was estimated")
    scaleUsed: float | None = Field(None, description="the scale the image was resampled by")
    scaleSource: str | None = Field(None, description="where the scale came from: given, pixel size, "
                                                      "estimated, estimated, refined, default")
    pixelSizeUm: float | None = Field(None, description="µm per pixel, when the job or the file gave it")
    parent: str | None
    totalJobs: int | None
    children: list["JobView"] = []
