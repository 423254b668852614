"""Write (or check) the OpenAPI document of each service: ``python openapi/generate.py [--check]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.routing.main import create_app as create_routing
from services.routing.settings import RoutingSettings
from services.shared.clock import system_clock
from services.spa.main import create_app as create_spa
from services.spa.settings import SpaSettings
from services.teams.main import create_app as create_teams
from services.teams.settings import TeamsSettings

HERE = Path(__file__).resolve().parent
_UNUSED_DB = "sqlite+aiosqlite:///:memory:"


def apps() -> dict[str, FastAPI]:
    """The apps as deployed; building them opens nothing (that happens in their lifespan)."""
    return {
        "spa": create_spa(SpaSettings(database_url=_UNUSED_DB), clock=system_clock),
        "routing": create_routing(RoutingSettings(database_url=_UNUSED_DB), clock=system_clock),
        "teams": create_teams(TeamsSettings(database_url=_UNUSED_DB), clock=system_clock),
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, app in apps().items():
        path = HERE / f"{name}.json"
        text = render(app.openapi())
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
