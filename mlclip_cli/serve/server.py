"""Run the app with uvicorn until Ctrl-C or SIGTERM: `serve(config, on_ready)`.

The socket is bound and listening before `on_ready` is called (so `--port 0` can report the port
it got, and a client that connects at once waits in the backlog rather than being refused); the
model and index are loaded before that, once."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from mlclip_cli.errors import MlclipError
from mlclip_cli.serve.config import ServeConfig


@dataclass(frozen=True)
class ServeInfo:
    url: str
    host: str
    port: int
    images: int
    model: str
    languages: tuple[str, ...]
    token: bool  # whether requests need the bearer token


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise MlclipError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServeConfig, on_ready: Callable[[ServeInfo], None] | None = None, model=None, index=None) -> None:
    """Load the model and index, listen on config.host:config.port and answer until stopped."""
    import uvicorn

    from mlclip_cli.serve.app import create_app

    config.check()
    app = create_app(config, model, index)
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    info = ServeInfo(f"http://{shown}:{port}/", host, port, len(app.state.index), app.state.model.spec,
                     app.state.engine.languages, bool(config.token))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                           timeout_keep_alive=30, lifespan="on"))
    if on_ready is not None:
        on_ready(info)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
