"""`gateway serve | check | worker` (also `python -m gateway ...`)."""
from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from typing import Any

from gateway import __version__, http_protocol, metrics
from gateway import config as config_loader
from gateway.config import Checked, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible gateway for chat and video.")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    _config_arg(serve)
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers)")
    serve.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL"),
                       choices=["debug", "info", "warning", "error"], help="default: logging.level")

    check = sub.add_parser("check", help="validate a config and print every error")
    _config_arg(check)

    worker = sub.add_parser("worker", help="run a local GPU video worker")
    _config_arg(worker)
    worker.add_argument("--provider", action="append", help="local provider name (repeatable; default: all)")
    worker.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])

    args = parser.parse_args(argv)
    return {"serve": _serve, "check": _check, "worker": _worker}[args.command](args)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None,
                   help=f"config file (default: $GATEWAY_CONFIG, else ./{config_loader.LOCAL_PATH} when it exists, "
                        "else the packaged default)")


def _load(args: argparse.Namespace) -> tuple[config_loader.Found, config_loader.Checked | None]:
    """The config chosen by `config_loader.find`, checked; None after printing its errors."""
    found = config_loader.find(args.config)
    try:
        return found, config_loader.load(found.path)
    except ConfigError as e:
        for line in e.errors:
            print(line)
        print(f"{found.path}: {len(e.errors)} error{'s' if len(e.errors) != 1 else ''}", file=sys.stderr)
        return found, None


def _check(args: argparse.Namespace) -> int:
    found, checked = _load(args)
    if checked is None:
        return 1
    c = checked.config
    enabled = len(c.providers) - len(checked.disabled)
    print(f"{found.path}: OK: {len(c.providers)} providers ({enabled} enabled), {len(c.models)} models, "
          f"{len(c.rules)} rules, {len(c.auth.keys)} keys")
    for note in checked.notes:
        print(f"  note: {note}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    found, checked = _load(args)
    if checked is None:
        return 1
    server = checked.config.server
    host = args.host or server.host
    port = args.port if args.port is not None else server.port
    workers = args.workers or server.workers
    level = args.log_level or checked.config.logging.level
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT)
    _log_found(found)
    counted = _counted_per_process(checked)
    if workers > 1 and not checked.config.state.redis_url and counted:
        # Each process would count on its own: rpm 10 would admit 10 per process, a budget
        # be overspent N times. Refused rather than served wrong.
        print(f"{found.path}: --workers {workers} without state.redis_url would multiply {', '.join(counted)} by "
              f"{workers} (each process counts alone). Set state.redis_url to share them, or run one process.",
              file=sys.stderr)
        return 2
    for note in checked.notes:
        logging.getLogger("gateway").info(note)
    metrics.clear(checked.config.state.data_dir)     # this run's counts start at zero, in every worker
    options: dict[str, Any] = dict(
        host=host, port=port, log_level=level, access_log=False, log_config=_log_config(level),
        http=http_protocol.configure(checked.config.server), loop="uvloop" if _has_uvloop() else "asyncio",
        server_header=False, timeout_keep_alive=30,
        # Forwarded-for rewriting costs every request; nothing here reads the client address.
        proxy_headers=False)
    if workers > 1:
        # Each worker process builds its own app from the same file.
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(found.path)
        uvicorn.run("gateway.app:create_app", factory=True, workers=workers, **options)
    else:
        from gateway.app import App
        uvicorn.run(App(checked, tune_gc=True), **options)
    return 0


def _counted_per_process(checked: Checked) -> list[str]:
    """What an embedded store counts per process: limits and budgets, by where they are set."""
    c = checked.config
    found = []
    if any(k.budget is not None for k in c.auth.keys):
        found.append("key budgets")
    if any(k.limits.model_dump(exclude_none=True) for k in c.auth.keys):
        found.append("key limits")
    if any(m.limits is not None and m.limits.model_dump(exclude_none=True) for m in c.models):
        found.append("model limits")
    if any(p.limits is not None and p.limits.model_dump(exclude_none=True) for p in c.providers):
        found.append("provider limits")
    return found


_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_found(found: config_loader.Found) -> None:
    logging.getLogger("gateway").info("config: %s (%s)", found.path, found.source)


def _log_config(level: str) -> dict:
    """uvicorn's logging, plus the gateway's own logs at `level`: applied in
    every worker process too (they start afresh, without this process's setup)."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["formatters"]["gateway"] = {"format": _LOG_FORMAT}
    cfg["handlers"]["gateway"] = {"class": "logging.StreamHandler", "formatter": "gateway",
                                  "stream": "ext://sys.stderr"}
    cfg["loggers"]["gateway"] = {"handlers": ["gateway"], "level": level.upper(), "propagate": False}
    return cfg


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    found, checked = _load(args)
    if checked is None:
        return 1
    logging.basicConfig(level=args.log_level.upper(), format=_LOG_FORMAT)
    _log_found(found)
    from gateway.video import worker
    if _has_uvloop():
        import uvloop
        return uvloop.run(worker.run(checked, args.provider))
    return asyncio.run(worker.run(checked, args.provider))


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
