"""Where the control plane starts: gateway/app.py hands it /admin and /ui, and
it loads FastAPI and builds the control app (gateway/admin/control.py) on the
first such request, so a gateway nobody administers never pays for them
(~8 MB resident, and the import time)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.runtime import Runtime

if TYPE_CHECKING:
    from fastapi import FastAPI


class Control:
    """The control app, built on first use."""
    __slots__ = ("_current", "_app")

    def __init__(self, current: Callable[[], Runtime]) -> None:
        self._current = current
        self._app: FastAPI | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            from gateway.admin.control import build
            self._app = build(self._current)
        if scope["path"].startswith("/ui"):
            send = _with_page_headers(send)
        await self._app(scope, receive, send)


def _with_page_headers(send: Any) -> Any:
    from gateway.admin.control import PAGE_HEADERS

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *PAGE_HEADERS]}
        await send(message)
    return sending

