"""Settings read from `KIOSK_*` environment variables (one place for defaults)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KioskSettings(BaseSettings):
    """What the API and the consumers share: where Redis and the bucket are."""

    model_config = SettingsConfigDict(env_prefix="KIOSK_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_url: str = Field(".kiosk/bucket", description="a directory, gs://bucket or s3://bucket")
    s3_endpoint_url: str | None = Field(None, description="an S3-compatible endpoint (tests, MinIO)")
    public_url: str = Field("http://127.0.0.1:8080", description="the portal's external URL")
    job_ttl_seconds: int = Field(86400, gt=0, description="finished jobs expire from Redis after this")
    signed_url_seconds: int = Field(86400, gt=0, le=7 * 86400, description="life of download URLs")
    default_model: str = "NuclearSegmentation"


class ConsumerSettings(KioskSettings):
    """A consumer process: which queue it serves and how it treats jobs."""

    job_type: str = "segmentation"
    model_server: str = "127.0.0.1:8500"
    consumer_id: str | None = Field(None, description="defaults to host name and PID")
    metrics_port: int = Field(9100, ge=0, description="0 disables the metrics endpoint")
    max_batch_size: int = Field(16, ge=1, description="tiles per Predict; equals TF-Serving's max batch")
    jobs_per_claim: int = Field(4, ge=1, description="jobs batched together when the queue is deep")
    lease_seconds: float = Field(30, gt=0, description="a silent consumer loses its job after this")
    shutdown_grace_seconds: float = Field(60, ge=0, description="SIGTERM drain limit, then hand back")
    max_deliveries: int = Field(3, ge=1, description="a job that kills its consumer this often fails")
    retry_attempts: int = Field(4, ge=1, description="tries of a failing step before the job fails")
    retry_initial_seconds: float = Field(0.5, ge=0)
    retry_max_seconds: float = Field(10, ge=0)
    predict_retry_budget_seconds: float = Field(600, ge=0, description="wait for a model server")
    max_deferrals: int = Field(3, ge=0, description="re-queues of a job whose model server "
                                                     "stayed unreachable for a whole budget")
    tile_size: int = Field(256, ge=32, description="used when the model accepts any size")
    tile_overlap: int = Field(64, ge=0, description="at most half the tile size")
    max_image_pixels: int = Field(1_000_000_000, gt=0, description="the largest image a consumer takes "
                                                                     "(lowered to what memory_limit_mib can stream)")
    large_image_pixels: int = Field(16_000_000, gt=0, description="single-frame TIFFs above this are segmented "
                                                                  "block by block in bounded memory; other "
                                                                  "images above it are refused")
    memory_limit_mib: float | None = Field(None, gt=0, description="the container's memory limit (the stacks "
                                                                   "set it from the pod's): the pixel limit is "
                                                                   "lowered to what it can stream")
    block_size: int = Field(2048, ge=64, description="px per side of a large image's blocks")
    block_halo: int = Field(128, ge=0, description="context (px) around each block: above the largest nucleus")
    max_channels: int = Field(16, gt=0)
    max_zip_members: int = Field(1000, gt=0)
    max_zip_bytes: int = Field(
        1024**3, gt=0, description="total unpacked bytes of a zip job's images: at most what one "
                                   "upload may be, since a child job holds its image in memory (the "
                                   "zip's consumer holds one 1 MiB piece at a time)")
    max_zip_ratio: float = Field(200, gt=1, description="largest unpacked/compressed size of an image in "
                                                       "a zip job (deflate reaches ~1000 on zeros)")


@lru_cache
def get_consumer_settings() -> ConsumerSettings:
    """The consumer settings of this process, read once from the environment."""
    return ConsumerSettings()
