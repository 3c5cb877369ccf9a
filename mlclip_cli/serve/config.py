"""What `mlclip serve` is told: where to listen, what to serve, and the limits on each request.

Checked before anything loads: a host beyond loopback needs a token, limits are positive, the
index folder exists. Nothing here imports the web stack, so the CLI can check and fail in one line
before it needs the `serve` extra."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from mlclip_cli.errors import MlclipError

EXTRA_HINT = "install the serve extra: pip install 'mlclip[serve]'"
MIN_TOKEN_CHARS = 16  # a bearer token shorter than this is guessable: refused


@dataclass(frozen=True)
class ServeConfig:
    index: Path  # an image index folder (`mlclip index build --images`)
    model: str | None = None  # None: the model the index records
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # bearer token every route but /health (and the page shell) requires
    fallback: str = "none"
    device: str | None = None
    langid_backend: str = "py3langid"
    # limits on one request
    max_query_chars: int = 1000
    default_k: int = 12
    max_k: int = 100
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # decoded width x height of an uploaded image
    # the encoding worker
    threads: int | None = None  # torch threads; None: 1 (the event loop and FAISS keep the other core)
    max_batch: int = 32  # queries encoded in one forward pass when they arrive together
    encoders: int = 2  # worker threads that encode and search (torch and FAISS release the GIL)
    cache_size: int = 1024  # query embeddings kept (an LRU); 0: none
    thumbnail_pixels: int = 256  # the longer side of /image/...?thumb=1

    def check(self) -> "ServeConfig":
        if not Path(self.index).is_dir():
            raise MlclipError(f"--index {self.index}: no such index folder (build one with "
                              "`mlclip index build --images FOLDER --out DIR`)")
        if not 0 <= self.port <= 65535:
            raise MlclipError(f"--port {self.port}: a port is 0..65535 (0: any free port)")
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise MlclipError(f"--token: at least {MIN_TOKEN_CHARS} characters (a long random one: "
                              "python -c 'import secrets; print(secrets.token_urlsafe())')")
        if self.token is None and not is_loopback(self.host):
            raise MlclipError(f"--host {self.host}: beyond this machine the server needs a bearer token "
                              "(--token or MLCLIP_SERVE_TOKEN); without one, keep --host 127.0.0.1")
        for name in ("max_query_chars", "max_k", "max_upload_bytes", "max_image_pixels", "max_batch",
                     "thumbnail_pixels"):
            if getattr(self, name) < 1:
                raise MlclipError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 1 <= self.default_k <= self.max_k:
            raise MlclipError(f"default_k must be 1..{self.max_k}, not {self.default_k}")
        if self.cache_size < 0:
            raise MlclipError(f"--cache must be 0 (none) or more, not {self.cache_size}")
        if self.encoders < 1:
            raise MlclipError(f"--encoders must be at least 1, not {self.encoders}")
        if self.threads is not None and self.threads < 1:
            raise MlclipError(f"--threads must be at least 1, not {self.threads}")
        return self

    @property
    def torch_threads(self) -> int:
        return self.threads or 1


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine: localhost or a loopback address (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def token_from_env(token: str | None) -> str | None:
    """--token, else MLCLIP_SERVE_TOKEN (keeps the token out of the process list), else None."""
    return token if token is not None else (os.environ.get("MLCLIP_SERVE_TOKEN") or None)
