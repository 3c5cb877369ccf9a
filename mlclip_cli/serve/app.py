"""The HTTP JSON API and its page: `create_app(config, model, index)` returns a FastAPI app.

Routes (docs/serve.md has the JSON shapes):

    GET  /                  the search page (static HTML/JS/CSS shipped in the package)
    GET  /search?q=&k=&lang=  text -> images
    POST /search            an image (multipart field `image`, or the raw body) -> images;
                            a JSON body {"q", "k", "lang"} is a text query
    GET  /languages         the model's languages
    GET  /image/{path}      a listed image (?thumb=1: a JPEG thumbnail)
    GET  /health            liveness, image count, query and cache counts (no token needed)

Every error is a 4xx JSON `{"error": "..."}` naming the problem (a 500 says only "internal
error", never a traceback). With a token, every route but /health and the page's static files
needs `Authorization: Bearer TOKEN` (compared in constant time); a browser cannot put a header on
the page itself, so the page asks for the token and sends it with each API call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from mlclip_cli.api import AUTO, Model, open_search
from mlclip_cli.collection import Index
from mlclip_cli.errors import MlclipError
from mlclip_cli.serve.config import ServeConfig
from mlclip_cli.serve.engine import Answer, SearchEngine
from mlclip_cli.serve.errors import RequestError
from mlclip_cli.serve.files import Thumbnails, image_file
from mlclip_cli.serve.uploads import MULTIPART_SLACK, decode_image, read_body, size_text

log = logging.getLogger("mlclip_cli.serve")
STATIC = resources.files("mlclip_cli.serve") / "static"
OPEN_PATHS = ("/health", "/", "/favicon.ico")  # with a token: no data behind these
OPEN_PREFIXES = ("/static/",)


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def load_for(config: ServeConfig, model: Model | None = None, index: Index | None = None) -> tuple[Model, Index]:
    """The index and model the config names (or the ones given), checked to belong together."""
    return open_search(config, model, index)


class BearerAuth:
    """ASGI middleware: requests other than the open ones need `Authorization: Bearer TOKEN`."""

    def __init__(self, app, token: str):
        self.app = app
        self._digest = hashlib.sha256(f"Bearer {token}".encode()).digest()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        given = Headers(scope=scope).get("authorization")
        # equal-length digests compared in constant time: neither the token nor its length leaks
        if given is not None and hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest):
            return await self.app(scope, receive, send)
        message = ("missing bearer token: send the header 'Authorization: Bearer TOKEN'" if given is None
                   else "wrong bearer token")
        response = error(401, message, {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class LoopbackHostsOnly:
    """ASGI middleware for a server without a token: only requests addressed to this machine by
    name (the Host header) are answered. A web page elsewhere cannot then read the API through a
    DNS name rebound to 127.0.0.1 (DNS rebinding); a token makes this check unnecessary."""

    def __init__(self, app, also: str):
        self.app = app
        self.allowed = {*LOOPBACK_NAMES, also.strip("[]").lower()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = Headers(scope=scope).get("host", "")
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
        if name.strip("[]").lower() in self.allowed:
            return await self.app(scope, receive, send)
        response = error(400, f"Host {host[:100]!r} is not this server's: without a token only "
                              "localhost, 127.0.0.1 and [::1] are answered (see docs/serve.md)")
        await response(scope, receive, send)


def _k(value: str | int | None, engine: SearchEngine) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return engine.check_k(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise RequestError(400, f"k: a whole number from 1 to {engine.config.max_k}, not {str(value)[:40]!r}") from None
    return engine.check_k(number)


def _answer_json(answer: Answer, started: float) -> dict:
    return {"query": answer.query, "language": answer.language,
            "confidence": None if answer.confidence is None else round(answer.confidence, 4),
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
            "results": [{"rank": h.rank, "path": h.path, "score": round(h.score, 6), "url": "/image/" + quote(h.path)}
                        for h in answer.hits]}


def create_app(config: ServeConfig, model: Model | None = None, index: Index | None = None) -> FastAPI:
    """The app serving `config.index` (or `index`) with `config.model` (or `model`), loaded once."""
    model, index = load_for(config, model, index)
    engine = SearchEngine(model, index, config)
    engine.warm_up()
    thumbnails = Thumbnails(config.thumbnail_pixels, config.max_image_pixels)
    started_at = time.time()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.close()

    app = FastAPI(title="mlclip serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine = engine
    app.state.index = index
    app.state.model = model

    # ------------------------------------------------------------------------------ errors

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return error(exc.status, str(exc))

    @app.exception_handler(MlclipError)
    async def _user_error(request: Request, exc: MlclipError):
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('query', 'path', 'body'))}: {e.get('msg')}"
                 for e in exc.errors()]
        return error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return error(404, f"not found: {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error(405, f"method {request.method} not allowed on {request.url.path}")
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error(500, "internal error (the server's log has the details)")

    # ------------------------------------------------------------------------------ routes

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/health")
    async def health():
        return {"status": "ok", "images": len(index), "uptime_s": round(time.time() - started_at, 1), **engine.stats()}

    @app.get("/languages")
    async def languages():
        return {"languages": list(engine.languages), "default": AUTO, "auto": True, "model": model.spec}

    @app.get("/search")
    async def search_text(q: str | None = None, k: str | None = None, lang: str = AUTO):
        started = time.perf_counter()
        if q is None:
            raise RequestError(400, "q: missing: pass the words to search for (/search?q=a+red+cube)")
        future = engine.text(q, lang, _k(k, engine))
        return _answer_json(await asyncio.wrap_future(future), started)

    @app.post("/search")
    async def search_posted(request: Request, k: str | None = None, lang: str = AUTO):
        started = time.perf_counter()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await read_body(request.stream(), request.headers.get("content-length"),
                               config.max_upload_bytes + (MULTIPART_SLACK if media == "multipart/form-data" else 0))
        if media == "application/json":
            query = _json_query(body)
            future = engine.text(query["q"], query.get("lang", lang), _k(query.get("k", k), engine))
            return _answer_json(await asyncio.wrap_future(future), started)
        if media == "multipart/form-data":
            data, form_k = await _multipart_image(request, body, config.max_upload_bytes)
            k = form_k if form_k is not None else k
        elif media.startswith("image/") or media == "application/octet-stream":
            data = body
        else:
            raise RequestError(415, f"content type {media or 'none'!r}: send an image as multipart/form-data "
                                    "(field 'image') or as the raw body (image/*), or a text query as application/json")
        k_value = _k(k, engine)
        image = await asyncio.to_thread(decode_image, data, config.max_image_pixels)  # off the event loop
        return _answer_json(await asyncio.wrap_future(engine.image(image, k_value)), started)

    @app.get("/image/{path:path}")
    async def image(path: str, thumb: str | None = None):
        found = image_file(index, path)
        small = thumb not in (None, "", "0", "false")
        if not small and not found.member:
            return FileResponse(str(found.path), media_type=found.media_type,
                                headers={"Cache-Control": "private, max-age=3600"})
        data = await asyncio.to_thread(thumbnails.get, found, path, small)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    if config.token:
        app.add_middleware(BearerAuth, token=config.token)
    else:
        app.add_middleware(LoopbackHostsOnly, also=config.host)
    return app


def _json_query(body: bytes) -> dict:
    try:
        query = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"body: not valid JSON ({exc})") from None
    if not isinstance(query, dict):
        raise RequestError(400, "body: a JSON object {\"q\": \"words\", \"k\": 10, \"lang\": \"auto\"} is expected")
    unknown = sorted(set(query) - {"q", "k", "lang"})
    if unknown:
        raise RequestError(400, f"body: unknown field(s) {', '.join(unknown)} (q, k, lang)")
    if not isinstance(query.get("q"), str):
        raise RequestError(400, "q: missing or not a string in the JSON body")
    if "lang" in query and not isinstance(query["lang"], str):
        raise RequestError(400, "lang: a language code or 'auto', as a string")
    return query


async def _multipart_image(request: Request, body: bytes, limit: int) -> tuple[bytes, str | None]:
    """The `image` file (and an optional `k` field) of a multipart body already read in full."""
    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=4).parse()
    except MultiPartException as exc:
        raise RequestError(400, f"multipart body: {exc.message}") from None
    try:
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise RequestError(400, "multipart body: no file field 'image'")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise RequestError(413, f"upload: over the limit of {size_text(limit)}")
        k = form.get("k")
        return data, k if isinstance(k, str) else None
    finally:
        await form.close()
