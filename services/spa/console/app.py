"""The console on spa's app: its pages, its static files and its edge."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.spa.console import auth, web
from services.spa.console.pages import (
    admin,
    admin_services,
    commissioner,
    cru,
    escalations,
    home,
    queue,
    teams,
)


def install(app: FastAPI) -> None:
    if not (web.STATIC / "vendor" / "nhsuk").is_dir():
        raise RuntimeError(
            "The console's front-end files are missing (services/spa/console/static/vendor): "
            "run `make install`, or set SPA_CONSOLE_ENABLED=false"
        )
    web.install(app)
    for module in (auth, home, queue, teams, cru, escalations, commissioner, admin, admin_services):
        app.include_router(module.router)
    app.mount(web.PREFIX + "/static", StaticFiles(directory=web.STATIC), name="console-static")
