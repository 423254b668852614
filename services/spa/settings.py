from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.shared.settings import ServiceSettings
from services.spa.heartbeats import WORKER_KINDS


class SpaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPA_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///var/spa.db"
    public_base_url: str = "http://127.0.0.1:8001"
    auth_audience: str = "spa"
    routing_url: str = "http://127.0.0.1:8002"
    teams_url: str = "http://127.0.0.1:8003"

    # The built-in issuer. The first key signs; all are published, so a key can be rotated by
    # putting the new one first and removing the old one once its tokens have expired.
    issuer_enabled: bool = True
    issuer_key_files: tuple[Path, ...] = (Path("var/issuer-key.pem"),)
    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    # Token requests per claimed client id: a system fetches one every few minutes.
    token_rate_limit: str = "30/minute"  # noqa: S105 - a rate, not a secret
    # Client secrets checked at once (argon2: 64 MiB each while it runs), which bounds the
    # memory a burst of token requests can take.
    concurrent_secret_checks: int = Field(default=1, ge=1, le=16)
    # Token requests per calling address, whatever client id they claim.
    token_address_rate_limit: str = "300/minute"  # noqa: S105 - a rate, not a secret

    # Whether this process runs the background workers (routing, timers, webhooks). A
    # deployment may run API processes without them and worker processes of their own, so
    # that intake keeps its own CPU when routing is busy.
    background_workers: bool = True
    # The workers /readyz?workers=1 expects to be beating somewhere (all of them by default).
    readiness_worker_kinds: tuple[str, ...] = WORKER_KINDS
    # Whether the workers hear of new work by notification (PostgreSQL's LISTEN/NOTIFY, on one
    # connection per worker process beside the pool), wherever it was committed: by an API
    # process, another replica or a worker. The polls below stay, for work whose time comes
    # later and whenever the notifications are off or their connection is down; on SQLite,
    # and with this off, they are the only way the workers find work from other processes.
    outbox_listen: bool = True
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=16, ge=1, le=256)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)

    # How long an Idempotency-Key's answer is kept for replay.
    idempotency_retention_hours: int = Field(default=24, ge=1, le=24 * 30)
    # What `prune` removes, and after how long: delivered webhook messages (with their
    # attempts) and finished outbox jobs and timers. Expired idempotency records go too.
    retention_delivered_message_days: int = Field(default=30, ge=1, le=3660)
    retention_done_job_days: int = Field(default=7, ge=1, le=3660)
    # A referral for the same patient and need within this window is a possible duplicate.
    duplicate_window_hours: int = Field(default=72, ge=0, le=24 * 90)
    # How old a change must be before the changes feed lists it (see referrals/changes.py).
    changes_settle_seconds: float = Field(default=5.0, ge=0, le=300)
    # How long a call handler's claim on a queued case lasts unless renewed.
    queue_claim_seconds: int = Field(default=900, ge=30, le=4 * 3600)
    # The longest a client may ask to wait for the routing outcome (Prefer: wait=N).
    max_prefer_wait_seconds: int = Field(default=30, ge=0, le=60)

    # The response clocks (acceptance windows, at-risk share, safeguarding acknowledgement);
    # the packaged clock_policy.yaml when unset.
    clock_policy_file: Path | None = None
    timer_poll_interval_seconds: float = Field(default=5.0, gt=0)

    # Webhooks. Only https, to public addresses, unless these allow more (for development and
    # tests: http to localhost, and the loopback network).
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)
    webhook_per_endpoint_concurrency: int = Field(default=4, ge=1, le=64)
    webhook_batch_size: int = Field(default=64, ge=1, le=512)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_allow_http_hosts: tuple[str, ...] = ()
    webhook_allowed_networks: tuple[str, ...] = ()
    webhook_disable_after_hours: float = Field(default=72.0, gt=0)

    # BaRS, at /FHIR/R4. The identifier this receiver has in the Endpoint Catalogue: a message
    # whose NHSD-Target-Identifier names another (its value, and its system when this is set)
    # is refused. The major versions of BaRS taken (Bundle.meta.versionId, Accept's version).
    # The code mapping: the packaged services/spa/fhir/mapping.yaml when unset.
    bars_target_identifier: str = Field(default="spa-platform", min_length=1)
    bars_target_system: str | None = None
    bars_versions: tuple[str, ...] = ("1",)
    bars_mapping_file: Path | None = None

    # The console for people, at /console (see services/spa/console). Sign-in is OpenID Connect
    # (authorization code with PKCE) against the organisation's identity provider, configured
    # by its issuer URL, a client id and secret; the discovery document gives the rest.
    console_enabled: bool = True
    console_oidc_issuer: str | None = None
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    console_oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    # Where the ID token carries the person's roles and bindings: claim names, or dotted paths
    # into nested claims (Keycloak: realm_access.roles). Roles are the console's own names
    # (call_handler, team_member, cru, coordinator, commissioner, admin), or the identity
    # provider's mapped to them here.
    console_oidc_roles_claim: str = "roles"
    console_oidc_role_map: dict[str, str] = Field(default_factory=dict)
    console_oidc_localities_claim: str = "localities"
    console_oidc_teams_claim: str = "teams"
    console_oidc_name_claim: str = "name"
    # A session ends after this long without a request, and in any case after the longest.
    console_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_longest_hours: int = Field(default=10, ge=1, le=24)
    # The local sign-in with demo staff accounts (`make run`), enabled by giving their shared
    # password. Only for a machine's own use: refused unless the public address is plain HTTP
    # on the loopback interface, so no deployment others reach can turn it on.
    console_demo_password: SecretStr | None = None

    @model_validator(mode="after")
    def _demo_sign_in_only_on_loopback(self) -> Self:
        if self.console_demo_password is not None and not loopback_http(self.public_base_url):
            raise ValueError(
                "SPA_CONSOLE_DEMO_PASSWORD enables the demo sign-in, which is only for a "
                "machine's own use: SPA_PUBLIC_BASE_URL must then be http://127.0.0.1, "
                "http://[::1] or http://localhost (with any port)"
            )
        return self


def loopback_http(url: str) -> bool:
    """Whether ``url`` is plain HTTP to this machine's loopback interface."""
    parsed = urlsplit(url)
    return parsed.scheme == "http" and parsed.hostname in {"127.0.0.1", "::1", "localhost"}
