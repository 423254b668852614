"""Settings every service shares; each service adds its own and reads them with its own prefix."""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

# A claim's name, or a dotted path through nested claims (realm_access.roles).
ClaimPath = Annotated[str, StringConstraints(pattern=r"^\S+$", max_length=256)]


class ServiceSettings(BaseSettings):
    """Read from the environment (``<PREFIX>_DATABASE_URL`` and so on) when ``create_app`` runs,
    and from files in the directory ``<PREFIX>_SECRETS_DIR`` names, if set: one file a setting,
    named as its environment variable and holding its value (how Kubernetes mounts a Secret).
    The environment wins over a file."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir(settings_cls))
        return init_settings, env_settings, dotenv_settings, secrets

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
    # Where a token carries the client's scopes: claim names, or dotted paths into nested
    # claims. The scopes are the union over them, each a space-separated string or an array.
    # OAuth 2.0 and our own issuer: scope; Entra ID: roles (application permissions), scp
    # (delegated); Keycloak: scope, realm_access.roles, resource_access.<client>.roles.
    auth_scope_claims: tuple[ClaimPath, ...] = Field(default=("scope",), min_length=1)
    # Where it names the client: the first of these present. Entra ID: azp (appid in v1
    # tokens), whose sub is the service principal's object id; Keycloak: azp.
    auth_client_id_claims: tuple[ClaimPath, ...] = Field(default=("sub",), min_length=1)

    # The published API contract. The address clients reach this service at (the document's
    # server), the token endpoint they get tokens from (the built-in issuer's on spa, or an
    # identity provider's), and whether /openapi.json and the documentation page at /docs are
    # served (off unless turned on; `make run` turns them on).
    public_base_url: str
    public_token_url: str = "http://127.0.0.1:8001/oauth/token"  # noqa: S105 - a URL
    openapi_enabled: bool = False

    # This service's own credentials when it calls another service.
    service_client_id: str | None = None
    service_client_secret: SecretStr | None = None
    token_url: str | None = None

    # Hardening. The largest request body taken (bytes); each client's request rate (per
    # process, unless the store is shared, e.g. redis://host:6379); origins a browser may call
    # from (none by default: the APIs are for systems, not pages).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    rate_limit: str = "200/second;6000/minute"
    rate_limit_storage_uri: str = "memory://"
    cors_origins: tuple[str, ...] = ()

    # How often the audit trail's new records are sealed into its hash chain.
    audit_seal_interval_seconds: float = Field(default=1.0, gt=0, le=3600)

    # The database connection pool (PostgreSQL). Connections above the pool size are opened
    # for a burst and closed after it; each one costs the server a process, so the pool should
    # cover the work a process does at once in steady running (requests plus its workers).
    # Every process may hold size + overflow connections: keep their sum over all processes
    # under the server's max_connections (100 by default), or a burst is turned away.
    database_pool_size: int = Field(default=15, ge=1, le=200)
    database_max_overflow: int = Field(default=5, ge=0, le=200)
    # Whether to test each connection before use. On asyncpg a test is three round trips
    # (begin, a query, rollback) on every checkout, which costs more than the work of most
    # transactions here, so it is off: a connection found dead in use invalidates the whole pool
    # at once, the request that found it gets a 503 database-unavailable (a job is retried),
    # and connections are also replaced after database_pool_recycle_seconds.
    database_pool_pre_ping: bool = False
    database_pool_recycle_seconds: int = Field(default=1800, ge=-1)

    # Worker health. A process running background workers beats for each of them every
    # heartbeat_interval_seconds; /readyz?workers=1 fails when a kind in readiness_worker_kinds
    # has not beaten anywhere for worker_stale_seconds, or when a job free to run has been due
    # for longer than readiness_outbox_max_age_seconds (the workers are not keeping up).
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    worker_stale_seconds: float = Field(default=30.0, gt=0)
    readiness_worker_kinds: tuple[str, ...] = ()
    readiness_outbox_max_age_seconds: float = Field(default=300.0, gt=0)

    http_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)

    # Traces (OpenTelemetry), off by default: spans are sent over OTLP/HTTP to a collector at
    # otel_endpoint (the full URL of its traces path), with otel_headers (name=value pairs,
    # comma-separated: a collector's API key, say) on each export. The service's name in the
    # traces is its own (spa, routing, teams) unless otel_service_name says otherwise. A trace
    # is sampled where it starts (otel_sample_ratio of them, 1.0 all) and followed everywhere.
    otel_enabled: bool = False
    otel_endpoint: str = "http://localhost:4318/v1/traces"
    otel_headers: SecretStr | None = None
    otel_service_name: str | None = Field(default=None, min_length=1, max_length=128)
    otel_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    otel_timeout_seconds: float = Field(default=10.0, gt=0, le=60)


def secrets_dir(settings_cls: type[BaseSettings]) -> Path | None:
    """The directory ``<PREFIX>_SECRETS_DIR`` names; an error if it names no directory, since
    a Secret that failed to mount must stop the service rather than leave it on defaults."""
    variable = f"{settings_cls.model_config.get('env_prefix', '')}SECRETS_DIR"
    value = os.environ.get(variable)
    if not value:
        return None
    directory = Path(value)
    if not directory.is_dir():
        raise SettingsError(f"{variable} names {value}, which is not a directory")
    return directory
