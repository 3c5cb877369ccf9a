"""`mlclip serve`: an image index searched over HTTP (a JSON API and a page), on FastAPI + uvicorn.

The web stack is the optional `serve` extra: this package's root imports none of it, so a missing
extra is one line (`require_extra`) rather than an ImportError. `create_app` builds the app (tests
drive it with FastAPI's TestClient); `serve` runs it. docs/serve.md describes the routes.
"""

from __future__ import annotations

from mlclip_cli.errors import MlclipError
from mlclip_cli.serve.config import EXTRA_HINT, ServeConfig, is_loopback

__all__ = ["ServeConfig", "create_app", "serve", "require_extra", "is_loopback"]

REQUIRED = ("fastapi", "uvicorn", "python_multipart")  # python-multipart: for image uploads


def require_extra() -> None:
    """One line naming the extra when a package of it is missing."""
    import importlib.util

    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise MlclipError(f"{EXTRA_HINT} (missing: {', '.join(missing)})")


def create_app(config: ServeConfig, model=None, index=None):
    require_extra()
    from mlclip_cli.serve.app import create_app as build

    return build(config, model, index)


def serve(config: ServeConfig, on_ready=None, model=None, index=None) -> None:
    require_extra()
    from mlclip_cli.serve.server import serve as run

    run(config, on_ready, model, index)
