"""The control plane's FastAPI app: everything under /admin, and the console's
pages under /ui, with the admin API's OpenAPI document (`/admin/openapi.json`)
and interactive docs (`/admin/docs`, gateway/admin/apidocs.py). The data plane
(the /v1 APIs) never passes through here: gateway/admin/plane.py hands only
these paths over, and imports this module on the first of them.

Each route runs one of the admin handlers (gateway/admin/*.py, which answer in
the OpenAI error shape). Around it, this module: finds the admin of a console
session cookie (a bearer key is checked by the handler itself), holds a change
made with that cookie to the CSRF rules (gateway/admin/sessions.py), and keeps
an audit entry for every change and every failed sign-in.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request as WebRequest
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from gateway.admin import SCOPE_ADMIN, apidocs, audit, requests, sessions, spend, stats, videos
from gateway.admin import config as config_api
from gateway.admin import keys as keys_api
from gateway.admin import providers as providers_api
from gateway.admin.identity import READS, bearer, by_secret
from gateway.asgi import Request
from gateway.errors import ApiError, error_body
from gateway.runtime import Runtime

Handler = Callable[[Request, Runtime], Awaitable[Any]]
UI = Path(__file__).resolve().parent.parent / "ui"
PAGE_HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
                                              b"style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
                 (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"),
                 (b"x-content-type-options", b"nosniff")]


# -- what the OpenAPI document says of bodies and answers (the handlers check bodies themselves) --

class SignIn(BaseModel):
    key: str = Field(description="An admin key: auth.admin_key, or a key with a role.", max_length=512)


class Limits(BaseModel):
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    videos_per_hour: int | None = None


class Budget(BaseModel):
    usd: float
    period: Literal["day", "week", "month"] = "month"


class NewKey(BaseModel):
    name: str = Field(min_length=1)
    models: list[str] | None = None
    limits: Limits | None = None
    budget: Budget | None = None
    role: Literal["viewer", "admin"] | None = Field(None, description="Makes it an admin key (never a client key).")


class KeyChange(BaseModel):
    models: list[str] | None = None
    limits: Limits | None = None
    budget: Budget | None = None
    role: Literal["viewer", "admin"] | None = None


class Rollback(BaseModel):
    version: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorAnswer(BaseModel):
    error: ErrorDetail


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": what} for code, what in (
        (400, "a bad request"), (401, "no admin signed in"), (403, "not allowed (a viewer, or the API is off)"),
        (404, "not found"), (503, "the state store did not answer"))}


def _body_schema(model: type[BaseModel], content_type: str = "application/json") -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {content_type: {"schema": model.model_json_schema()}}}}


_DOCUMENT = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
    "application/yaml": {"schema": {"type": "string"}}}}}


# -- running a handler --------------------------------------------------------------

async def _run(handler: Handler, web: WebRequest, current: Callable[[], Runtime]) -> Response:
    rt = current()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    req = Request(web.scope, web.receive, send)   # type: ignore[arg-type]
    signed_in = None
    try:
        if not req.headers.get(b"authorization") and sessions.cookie_token(req) is not None:
            found = await sessions.from_cookie(req, rt)
            if found is not None:
                signed_in = found[0]
                req.scope[SCOPE_ADMIN] = signed_in
                if req.method not in READS and handler is not sessions.sign_out:
                    sessions.check_csrf(req)
        done = await handler(req, rt)
        if handler is sessions.sign_in:
            signed_in = done
    except ApiError as e:
        sent.clear()
        await req.error(e)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    status = int(start["status"])
    answer = Response(body, status)
    answer.raw_headers = [(k.lower(), v) for k, v in start["headers"]]
    await _audit(rt, req, handler, signed_in, status, body)
    return answer


async def _audit(rt: Runtime, req: Request, handler: Handler, signed_in: Any, status: int, body: bytes) -> None:
    action = f"{req.method} {req.path}"
    if handler is sessions.sign_in:
        await audit.record(rt, req, signed_in, "sign-in" if status == 200 else "sign-in failed", "", status)
    elif status == 401 and req.headers.get(b"authorization"):
        await audit.record(rt, req, None, f"sign-in failed: {action}", "", status)
    elif req.method not in READS and status != 401:
        admin = signed_in or by_secret(bearer(req.headers), rt)
        target = ""
        if body[:1] == b"{":
            try:
                said = orjson.loads(body)
                target = str(said.get("name") or said.get("version") or "") if isinstance(said, dict) else ""
            except orjson.JSONDecodeError:
                pass
        await audit.record(rt, req, admin, action, target, status)


def build(current: Callable[[], Runtime]) -> FastAPI:
    """The control plane's app; `current()` is the config version serving now."""
    app = FastAPI(title="Gateway admin API", version="1", openapi_url="/admin/openapi.json",
                  docs_url=None, redoc_url=None,     # the docs page is apidocs's: nothing from a CDN
                  description="The gateway's control plane: its config, keys, spend, request log, providers, "
                              "video jobs and audit trail. Authenticate with `Authorization: Bearer <admin key>` "
                              "(auth.admin_key, or a key with a role), or a console session (POST /admin/session). "
                              "Errors are OpenAI-shaped: {\"error\": {\"message\", \"type\", \"param\", \"code\"}}.")

    def route(method: str, path: str, handler: Handler, summary: str, tag: str, *,
              extra: dict[str, Any] | None = None) -> None:
        async def endpoint(request: WebRequest) -> Response:
            return await _run(handler, request, current)
        endpoint.__name__ = method.lower() + "_" + "".join(c if c.isalnum() else "_" for c in path.strip("/"))
        app.add_api_route(path, endpoint, methods=[method], summary=summary, tags=[tag], responses=_ERRORS,
                          openapi_extra=extra)

    route("POST", "/admin/session", sessions.sign_in, "Sign in to the console with an admin key", "session",
          extra=_body_schema(SignIn))
    route("GET", "/admin/session", sessions.who, "Who is signed in", "session")
    route("DELETE", "/admin/session", sessions.sign_out, "Sign out", "session")
    route("GET", "/admin/config", config_api.get_config, "The running config (secrets as ***)", "config")
    route("PUT", "/admin/config", config_api.replace, "Replace the config with a whole document", "config",
          extra=_DOCUMENT)
    route("PATCH", "/admin/config", config_api.patch, "Change the config with a JSON merge patch", "config",
          extra=_DOCUMENT)
    route("POST", "/admin/config/validate", config_api.validate, "Check a document without applying it", "config",
          extra=_DOCUMENT)
    route("GET", "/admin/config/versions", config_api.versions, "The stored versions of the config", "config")
    route("POST", "/admin/config/rollback", config_api.rollback, "Make an old version the newest", "config",
          extra=_body_schema(Rollback))
    route("GET", "/admin/keys", keys_api.keys_root, "Every key, with its use", "keys")
    route("POST", "/admin/keys", keys_api.keys_root, "Create a key (its secret is in this answer only)", "keys",
          extra=_body_schema(NewKey))
    route("PATCH", "/admin/keys/{ref:path}", keys_api.edit, "Change a key's models, limits, budget or role", "keys",
          extra=_body_schema(KeyChange))
    route("DELETE", "/admin/keys/{ref:path}", keys_api.revoke, "Revoke a key (by id or name)", "keys")
    route("GET", "/admin/providers", providers_api.providers, "Providers and the health of their targets",
          "providers")
    route("GET", "/admin/spend", spend.spend_report, "The spend ledger, filtered and grouped", "spend")
    route("GET", "/admin/requests", requests.list_requests, "The request log, filtered and paged", "requests")
    route("GET", "/admin/requests/{request_id:path}", requests.one_request, "One request's record", "requests")
    route("GET", "/admin/stats", stats.stats, "The Overview's series and totals", "requests")
    route("GET", "/admin/videos", videos.recent_videos, "The newest video jobs of every key", "videos")
    route("GET", "/admin/videos/{video_id}", videos.video_job, "A video job with its webhook deliveries", "videos")
    route("GET", "/admin/videos/{video_id}/content", videos.video_content, "A redirect to a job's file", "videos")
    route("GET", "/admin/workers", videos.workers, "Live workers and queue depths", "videos")
    route("GET", "/admin/audit", audit.audit_trail, "The audit trail, newest first", "audit")

    @app.exception_handler(HTTPException)
    async def _http_error(request: WebRequest, e: HTTPException) -> Response:
        if e.status_code == 405:
            allow = e.headers.get("allow", "") if e.headers else ""
            return Response(error_body(f"Method {request.method} is not allowed for {request.url.path}; use "
                                       f"{allow}.", "invalid_request_error", None, "method_not_allowed"), 405,
                            headers={"allow": allow}, media_type="application/json")
        return Response(error_body(f"Invalid URL ({request.method} {request.url.path})", "invalid_request_error",
                                   None, "unknown_url"), e.status_code, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: WebRequest, e: RequestValidationError) -> Response:
        return Response(error_body(f"Invalid request: {e.errors()[:1]}", "invalid_request_error"), 400,
                        media_type="application/json")

    @app.get("/ui", include_in_schema=False)
    async def _ui_root() -> Response:
        return RedirectResponse("/ui/", 308)

    apidocs.mount(app, "/admin/docs")
    app.mount("/ui", StaticFiles(directory=UI, html=True, check_dir=False), name="ui")
    return app
