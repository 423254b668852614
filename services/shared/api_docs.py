"""``/openapi.json`` and the documentation page at ``/docs``, when the settings turn them on.

The page is Swagger UI from files the service serves itself (vendored by the fastapi-offline
package), never from a CDN, under a Content-Security-Policy that lets it load only those files
and call only this service and the token endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.shared.problems import ResourceNotFound

# Our name for each asset -> (the vendored file, its media type).
_ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon.png": ("favicon.png", "image/png"),
}
# Starts the page; a file of ours, so that the policy needs no inline script.
_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
  });
});
"""
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="/docs/favicon.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
_CACHE = "public, max-age=3600"


def content_security_policy(token_url: str) -> str:
    """Our own scripts and styles only (Swagger UI sets inline styles on its elements); calls
    to this service and to the token endpoint, wherever that is."""
    token = urlsplit(token_url)
    token_origin = f"{token.scheme}://{token.netloc}" if token.netloc else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src 'self' {token_origin}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def docs_router(app: FastAPI, openapi: Callable[[], dict[str, Any]], token_url: str) -> APIRouter:
    """The document and the page, left out of the document itself."""
    router = APIRouter(include_in_schema=False)
    policy = {"Content-Security-Policy": content_security_policy(token_url)}

    @router.get("/openapi.json")
    async def openapi_document() -> JSONResponse:
        return JSONResponse(openapi())

    @router.get("/docs")
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(_PAGE.format(title=f"{app.title}: API"), headers=policy)

    @router.get("/docs/init.js")
    async def docs_init() -> Response:
        return Response(
            _INIT, media_type="text/javascript", headers={"Cache-Control": _CACHE, **policy}
        )

    @router.get("/docs/{asset}")
    async def docs_asset(asset: str) -> Response:
        if asset not in _ASSETS:
            raise ResourceNotFound("The documentation page has no such file.")
        name, media_type = _ASSETS[asset]
        return Response(_vendored(name), media_type=media_type, headers={"Cache-Control": _CACHE})

    return router


@cache
def _vendored(name: str) -> bytes:
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()
