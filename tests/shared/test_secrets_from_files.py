"""Every service reads its settings from files in the directory ``<PREFIX>_SECRETS_DIR`` names
(as Kubernetes mounts a Secret) as well as from the environment, which wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import SettingsError

from services.routing.settings import RoutingSettings
from services.shared.settings import ServiceSettings
from services.spa.settings import SpaSettings
from services.teams.settings import TeamsSettings

SERVICES: list[tuple[type[ServiceSettings], str]] = [
    (SpaSettings, "SPA_"),
    (RoutingSettings, "ROUTING_"),
    (TeamsSettings, "TEAMS_"),
]
IDS = ["spa", "routing", "teams"]


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets: nothing of the shell this runs in."""
    for name in list(os.environ):
        if name.startswith(("SPA_", "ROUTING_", "TEAMS_")):
            monkeypatch.delenv(name)


def _secrets(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (directory / name).write_text(value, encoding="utf-8")
    return directory


@pytest.mark.parametrize(("settings_cls", "prefix"), SERVICES, ids=IDS)
def test_each_service_reads_its_secrets_from_the_directory_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    prefix: str,
) -> None:
    database_url = "postgresql+asyncpg://spa:s3cret-from-a-file@db.example:5432/" + prefix.lower()
    directory = _secrets(
        tmp_path / "secrets",
        **{
            f"{prefix}DATABASE_URL": database_url + "\n",
            f"{prefix}SERVICE_CLIENT_SECRET": "a-client-secret-of-some-length\n",
        },
    )
    monkeypatch.setenv(f"{prefix}SECRETS_DIR", str(directory))

    settings = settings_cls()

    assert settings.database_url == database_url
    assert settings.service_client_secret is not None
    assert settings.service_client_secret.get_secret_value() == "a-client-secret-of-some-length"
    assert "a-client-secret" not in repr(settings)


@pytest.mark.parametrize(("settings_cls", "prefix"), SERVICES, ids=IDS)
def test_the_environment_wins_over_a_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    prefix: str,
) -> None:
    directory = _secrets(tmp_path / "secrets", **{f"{prefix}LOG_LEVEL": "DEBUG"})
    monkeypatch.setenv(f"{prefix}SECRETS_DIR", str(directory))
    monkeypatch.setenv(f"{prefix}LOG_LEVEL", "WARNING")

    assert settings_cls().log_level == "WARNING"


def test_a_kubernetes_secret_volume_is_read_through_its_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Secret volume holds each key as a link into a timestamped directory, swapped whole
    when the Secret changes."""
    volume = tmp_path / "secrets"
    _secrets(
        volume / "..2026_12_01_10_00_00.000000001", SPA_SERVICE_CLIENT_SECRET="mounted-value-1234"
    )
    (volume / "..data").symlink_to("..2026_12_01_10_00_00.000000001")
    (volume / "SPA_SERVICE_CLIENT_SECRET").symlink_to("..data/SPA_SERVICE_CLIENT_SECRET")
    monkeypatch.setenv("SPA_SECRETS_DIR", str(volume))

    secret = SpaSettings().service_client_secret

    assert secret is not None
    assert secret.get_secret_value() == "mounted-value-1234"


def test_a_file_may_hold_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _secrets(
        tmp_path / "secrets",
        SPA_ISSUER_KEY_FILES='["/keys/new.pem", "/keys/old.pem"]',
    )
    monkeypatch.setenv("SPA_SECRETS_DIR", str(directory))

    assert SpaSettings().issuer_key_files == (Path("/keys/new.pem"), Path("/keys/old.pem"))


def test_a_service_reads_only_the_files_of_its_own_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _secrets(tmp_path / "secrets", SPA_DATABASE_URL="sqlite+aiosqlite:///spa-only.db")
    monkeypatch.setenv("SPA_SECRETS_DIR", str(directory))
    monkeypatch.setenv("ROUTING_SECRETS_DIR", str(directory))

    assert SpaSettings().database_url == "sqlite+aiosqlite:///spa-only.db"
    assert RoutingSettings().database_url == "sqlite+aiosqlite:///var/routing.db"


def test_without_the_setting_no_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _secrets(tmp_path, SPA_DATABASE_URL="sqlite+aiosqlite:///not-read.db")
    monkeypatch.chdir(tmp_path)

    assert SpaSettings().database_url == "sqlite+aiosqlite:///var/spa.db"


def test_a_secrets_directory_that_is_missing_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAMS_SECRETS_DIR", str(tmp_path / "not-mounted"))

    with pytest.raises(SettingsError, match="TEAMS_SECRETS_DIR"):
        TeamsSettings()
