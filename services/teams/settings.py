from pydantic_settings import SettingsConfigDict

from services.shared.settings import ServiceSettings


class TeamsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TEAMS_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///var/teams.db"
    auth_audience: str = "teams"
