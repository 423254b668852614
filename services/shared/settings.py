"""Settings every service shares; each service adds its own and reads them with its own prefix."""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from the environment (``<PREFIX>_DATABASE_URL`` and so on) when ``create_app`` runs."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Verifying bearer tokens. The issuer may be the built-in one (served by spa) or an
    # organisation's own identity provider publishing a JWKS.
    auth_issuer: str = "spa-platform"
    auth_audience: str
    auth_jwks_url: str | None = None
    auth_algorithms: tuple[str, ...] = ("EdDSA", "ES256", "RS256")
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # This service's own credentials when it calls another service.
    service_client_id: str | None = None
    service_client_secret: SecretStr | None = None
    token_url: str | None = None

    http_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)
