"""An installed copy needs no checkout: the wheel holds the licence, every migration and every
data file the services read by default, and each service migrates from any working directory."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.databases import METADATA, SERVICES

ROOT = Path(__file__).resolve().parents[1]
# What a build of a checkout must not pick up: local state, caches, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", "*.pyc", ".*_cache", ".hypothesis"
)
ENV_PREFIXES = ("SPA_", "ROUTING_", "TEAMS_")


def _package_files() -> set[str]:
    """Every file of the ``services`` package in the checkout, as a path inside the wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "services").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session from a clean copy of the checkout (an
    in-place build would leave ``build/`` behind, whose stale files a later build ships)."""
    source = tmp_path_factory.mktemp("source") / "spa-platform"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source))
    (built,) = out.glob("spa_platform-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed on its own (its dependencies come from this environment)."""
    target = tmp_path_factory.mktemp("site")
    _pip("install", "--no-deps", "--target", str(target), str(wheel))
    return target


def _pip(command: str, *args: str) -> None:
    """pip of this environment, offline."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", command, "--quiet", "--no-input", "--no-index", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _run_installed(
    installed: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """This interpreter running the installed copy (never the checkout) in ``cwd``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIXES)}
    clean.update(env or {}, PYTHONPATH=str(installed), PYTHONSAFEPATH="1")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    missing = _package_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    for data in (
        "services/routing/rules/default_rules.yaml",
        "services/spa/clock_policy.yaml",
        "services/teams/demo_directory.yaml",
        "services/migrations/spa/script.py.mako",
    ):
        assert data in names
    for service in SERVICES:
        assert f"services/migrations/{service}/env.py" in names
        assert any(name.startswith(f"services/migrations/{service}/versions/") for name in names)


def test_the_wheel_carries_the_licence(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        dist_info = metadata.rsplit("/", 1)[0]
        licence = archive.read(f"{dist_info}/licenses/LICENSE").decode()
        headers = archive.read(metadata).decode()

    assert licence == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence
    assert "License-Expression: MIT" in headers
    assert "License-File: LICENSE" in headers


def test_the_installed_copy_is_the_one_run(installed: Path, tmp_path: Path) -> None:
    result = _run_installed(installed, tmp_path, "-c", "import services; print(services.__file__)")

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(installed)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_migrates_from_an_empty_directory(
    installed: Path, tmp_path: Path, service: str
) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    database = tmp_path / f"{service}.db"
    url = {f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}

    result = _run_installed(installed, work, "-m", f"services.{service}", "migrate", env=url)

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {name for (name,) in rows}
    assert set(METADATA[service].tables) <= tables
    assert "alembic_version" in tables
    assert list(work.iterdir()) == []


def test_the_demo_directory_loads_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    url = {"TEAMS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'teams.db'}"}
    migrated = _run_installed(installed, work, "-m", "services.teams", "migrate", env=url)
    assert migrated.returncode == 0, migrated.stderr

    result = _run_installed(
        installed, work, "-m", "services.teams", "load-directory", "--demo", env=url
    )

    assert result.returncode == 0, result.stderr
    assert '"localities": 3' in result.stdout


def test_the_default_rules_and_clock_policy_are_read_from_the_package(
    installed: Path, tmp_path: Path
) -> None:
    script = (
        "from services.routing.rules.parsing import default_rule_set\n"
        "from services.spa.referrals.clocks import load_policy\n"
        "print(len(default_rule_set().rules), type(load_policy(None)).__name__)\n"
    )

    result = _run_installed(installed, tmp_path, "-c", script)

    assert result.returncode == 0, result.stderr
    count, policy = result.stdout.split()
    assert int(count) > 0
    assert policy == "ClockPolicy"
