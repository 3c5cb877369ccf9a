"""`mlclip serve`: an image index searched over HTTP, a JSON API and a page (docs/serve.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import FALLBACK_HELP

commands = Commands()


@commands.command(
    help="""Serve an image index (`mlclip index build --images`) over HTTP: a JSON API and a search
page at /. GET /search?q=...&k=...&lang=auto searches with a text in any language the model has
(language ID picks the pack unless lang names one); POST /search with an image (multipart field
'image') searches with an image; GET /languages, GET /health, GET /image/PATH (?thumb=1).

The model and index load once; queries are encoded by one worker thread, several at a time when
they arrive together. Listens on 127.0.0.1 unless --host says otherwise; any other host needs
--token (or MLCLIP_SERVE_TOKEN), and then every route but /health and the page's files needs
'Authorization: Bearer TOKEN'. Only images the index lists, inside its collection folder, are
served. Needs the serve extra: pip install 'mlclip\\[serve]'.

Example: [bold]mlclip serve --index photos-index --model mlclip-workspace/extensions/mla[/]""",
    short_help="Serve an image index over HTTP: a JSON API and a search page.",
)
def serve(
    index: Path = typer.Option(..., "--index", help="Image index folder (`mlclip index build --images`)."),
    model: str = typer.Option(None, "--model", help="Model or language-extension folder to encode queries "
                              "\\[default: the one the index records]."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback, --token is required."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port, printed)."),
    token: str = typer.Option(None, "--token", help="Bearer token the API requires (at least 16 characters) "
                              "\\[default: $MLCLIP_SERVE_TOKEN]."),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
    threads: int = typer.Option(None, "--threads", min=1, help="Torch threads of each encoding worker \\[default: 1]."),
    encoders: int = typer.Option(2, "--encoders", min=1,
                                 help="Worker threads that encode and search queries (2 used both cores best here)."),
    cache: int = typer.Option(1024, "--cache", min=0, help="Query embeddings kept in an LRU (0: none)."),
) -> None:
    from mlclip_cli.serve import ServeConfig, require_extra, serve as run
    from mlclip_cli.serve.config import token_from_env

    require_extra()
    config = ServeConfig(index=index, model=model, host=host, port=port, token=token_from_env(token),
                         fallback=fallback, threads=threads, encoders=encoders, cache_size=cache).check()

    def ready(info) -> None:
        out.print(f"serving {info.images:,} images with {info.model} ({', '.join(info.languages)}) at {info.url}"
                  + ("  (bearer token required)" if info.token else ""), markup=False, highlight=False, soft_wrap=True)
        out.file.flush()

    try:
        run(config, on_ready=ready)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, re-raised by uvicorn once it has shut down cleanly
        out.print("stopped", markup=False, highlight=False)
