from pydantic_settings import SettingsConfigDict

from services.shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///var/routing.db"
    public_base_url: str = "http://127.0.0.1:8002"
    auth_audience: str = "routing"
    teams_url: str = "http://127.0.0.1:8003"
