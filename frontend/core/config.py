"""The API's settings: `KIOSK_*` environment variables on top of the shared kiosk settings."""

import logging
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from consumers.settings import KioskSettings

logger = logging.getLogger(__name__)

PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "change-me", "secret", "token",
                                 "password", "placeholder", "example"})
MIN_TOKEN_LENGTH = 16


class FrontendSettings(KioskSettings):
    """What the API process needs beyond Redis and the bucket."""

    environment: Literal["local", "cloud"] = Field(
        "local", description="`local`: one machine; `cloud`: placeholder secrets are refused")
    host: str = Field("127.0.0.1", description="address uvicorn binds")
    port: int = Field(8080, ge=1, le=65535)
    auth_token: SecretStr | None = Field(
        None, description="bearer token every /api call needs (health check excepted); unset: open")
    max_upload_bytes: int = Field(1024**3, gt=0, description="largest accepted upload (413 above)")
    max_json_bytes: int = Field(1024**2, gt=0, description="largest accepted JSON body (413 above)")
    max_bodies_bytes: int = Field(
        2 * 1024**3, gt=0, description="request bodies received at once, uploads spooling to disk "
                                       "included (503 above)")
    max_connections: int = Field(200, gt=0, description="open connections and requests (uvicorn's "
                                                         "limit_concurrency: 503 above)")
    body_timeout_seconds: float = Field(30, gt=0, description="a body that stops arriving this long: 408")
    keep_alive_seconds: int = Field(5, gt=0, description="an idle kept-alive connection closes after this")
    models_cache_seconds: float = Field(10, ge=0, description="how long the model list is reused")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="serve /metrics on this port only, not on the API's public "
                                       "port (the cloud's Ingress routes every path); 0: on the API's port")
    kube_view: str = Field("", description="where the API reads why jobs wait (the model server's pods and "
                                           "events): `in-cluster`, a kubeconfig file, or empty: nowhere")
    log_level: str = "INFO"

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if "public_url" not in self.model_fields_set:
            reachable = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{reachable}:{self.port}"
        if self.auth_token is not None:
            token = self.auth_token.get_secret_value()
            if token.lower() in PLACEHOLDER_SECRETS or len(token) < MIN_TOKEN_LENGTH:
                message = (f"KIOSK_AUTH_TOKEN is a placeholder or shorter than {MIN_TOKEN_LENGTH} "
                           "characters; generate one, e.g. `python -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))'`")
                if self.environment != "local":
                    raise ValueError(message)
                logger.warning(message)
        return self

    @property
    def token(self) -> str | None:
        """The bearer token, or None when the API is open."""
        return self.auth_token.get_secret_value() if self.auth_token else None


@lru_cache
def get_settings() -> FrontendSettings:
    """The settings of this process, read once from the environment."""
    return FrontendSettings()
