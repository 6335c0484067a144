"""The admin API's interactive docs (`/admin/docs`): Swagger UI served by the
gateway itself, so the page works on a network with no way out and fetches
nothing from elsewhere. Its script, styles and icon are Swagger UI 5's
release files as the `fastapi-offline` package ships them (Swagger UI 4, as in
`swagger-ui-bundle`, cannot read the OpenAPI 3.1 document FastAPI writes).
Like the document it reads, the page needs no sign-in: it holds no data, and
every call made from it needs an admin key.
"""
from __future__ import annotations

import base64
import hashlib
import re
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.requests import Request as WebRequest
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

DIST = Path(str(files("fastapi_offline") / "static"))
# The package's version is in the URL, so an upgrade is a new URL and the files can be cached for good.
ASSETS = f"/admin/docs/assets/{version('fastapi-offline')}"
_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}   # what the page loads (not ReDoc's script)
_CACHED = "public, max-age=31536000, immutable"
# Swagger UI's defaults would send the document's URL to validator.swagger.io for a badge.
_PARAMETERS = {"validatorUrl": None}


class _Assets(StaticFiles):
    """The files the page loads, cached for a year; nothing else of the package's folder."""

    async def get_response(self, path: str, scope: Any) -> Response:
        if path not in _FILES:
            raise HTTPException(404)
        answer = await super().get_response(path, scope)
        answer.headers["cache-control"] = _CACHED
        return answer


def page(openapi_url: str, title: str) -> tuple[bytes, str]:
    """The docs page and its Content-Security-Policy: its own files, its one inline script (by
    hash), the document and the calls tried from it, all from the gateway; nothing else."""
    body = bytes(get_swagger_ui_html(openapi_url=openapi_url, title=title,
                                     swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                     swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                     swagger_favicon_url=f"{ASSETS}/favicon.png",
                                     oauth2_redirect_url=None, swagger_ui_parameters=_PARAMETERS).body)
    inline = re.search(rb"<script>(.*?)</script>", body, re.S)
    assert inline is not None, "get_swagger_ui_html no longer writes its set-up as an inline script"
    digest = base64.b64encode(hashlib.sha256(inline.group(1)).digest()).decode()
    policy = ("default-src 'none'; "
              f"script-src 'self' 'sha256-{digest}'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    return body, policy


def mount(app: FastAPI, docs_url: str) -> None:
    """Serve the docs page at `docs_url` and Swagger UI's files under ASSETS."""
    assert app.openapi_url is not None
    body, policy = page(app.openapi_url, f"{app.title} - Swagger UI")
    headers = {"content-security-policy": policy, "x-frame-options": "DENY",
               "referrer-policy": "same-origin", "x-content-type-options": "nosniff", "cache-control": "no-cache"}

    async def docs(request: WebRequest) -> Response:
        return Response(body, media_type="text/html", headers=headers)

    app.add_route(docs_url, docs, include_in_schema=False)
    app.mount(ASSETS, _Assets(directory=DIST), name="docs-assets")
