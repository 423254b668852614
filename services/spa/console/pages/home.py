"""The console's home page: the signed-in person's areas."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from services.spa.console.web import PREFIX, SignedIn, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def home(visit: SignedIn) -> Response:
    return render(visit, "home.html")
