from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.shared.settings import ServiceSettings
from services.teams.heartbeats import WORKER_KINDS


class TeamsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TEAMS_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///var/teams.db"
    public_base_url: str = "http://127.0.0.1:8003"
    auth_audience: str = "teams"
    spa_url: str = "http://127.0.0.1:8001"

    # Capacity reported longer ago than this is treated as unknown, not trusted.
    capacity_max_age_seconds: int = Field(default=4 * 3600, ge=60)
    # A case is on a team's MDT worklist from this Clinical Frailty Scale score, or this many
    # long-term conditions, or at the end of life.
    mdt_frailty_threshold: int = Field(default=6, ge=1, le=9)
    mdt_long_term_conditions_threshold: int = Field(default=5, ge=1, le=30)

    # Whether the reporter hears of new work by notification (PostgreSQL's LISTEN/NOTIFY, on one
    # connection per process beside the pool), from whichever replica committed it; the poll
    # stays, for retries that fall due and whenever the notifications are off or down.
    outbox_listen: bool = True
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # The reporter runs in every teams process; /readyz?workers=1 expects it to be beating.
    readiness_worker_kinds: tuple[str, ...] = WORKER_KINDS
    # What `prune` removes: changes reported to spa, once this many days old.
    retention_done_job_days: int = Field(default=7, ge=1, le=3660)

    # Whether the Open Referral feed may be read without a token, as the Open Referral UK
    # profile asks of a public directory of services; off, it needs directory:read.
    openreferral_anonymous_read: bool = False
