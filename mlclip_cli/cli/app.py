"""The `mlclip` command: a thin Typer shell over the library.

Each command parses options, calls one library function and prints its result with rich.
`main` turns every error a user can cause into one `error: ...` line and a non-zero exit.
"""

from __future__ import annotations

import signal
import sys
import threading

import typer

try:  # typer >= 0.20 vendors its own click; older releases use the click package
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from mlclip_cli import __version__
from mlclip_cli.cli import bench, continual, demo, export, features, index, langid, prepare, pretrain, reproduce, search, serve, train
from mlclip_cli.cli.console import err, error_line, show_notes
from mlclip_cli.cli.options import with_bare_values
from mlclip_cli.errors import MlclipError
from mlclip_cli.training.interrupts import Interrupted

app = typer.Typer(
    name="mlclip",
    help="Teach an English CLIP new languages by training small add-ons, without retraining it and without forgetting.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlclip {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: str = typer.Option(
        None, "--workspace", "-w", envvar="MLCLIP_WORKSPACE",
        help="Folder where artifacts land under conventional names \\[default: ./mlclip-workspace].",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    from mlclip_cli.workspace import Workspace

    ctx.obj = Workspace.resolve(workspace)
    if not _ASKED_FOR_HELP[0]:  # checked before any command runs (help needs no workspace)
        source = ctx.get_parameter_source("workspace")
        given_by = None if workspace is None else "$MLCLIP_WORKSPACE" if source.name == "ENVIRONMENT" else "-w/--workspace"
        ctx.obj.check(given_by)


_ASKED_FOR_HELP = [False]  # set by main for each call: `mlclip -w FILE train --help` still shows the help


# One module per command (or group); each declares its commands, registered here in this order.
for _module in (bench, continual, demo, export, features, index, langid, prepare, pretrain, reproduce, search, serve, train):
    _module.commands.register(app)


INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def _terminate(number, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (a scheduler, `kill`) ends a command as Ctrl-C does


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    args = with_bare_values(args)
    _ASKED_FOR_HELP[0] = "--help" in args
    show_notes()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(args=args, prog_name="mlclip", standalone_mode=False)
        if code == INTERRUPTED:  # Typer turns a Ctrl-C outside a training loop into this code, silently
            error_line("interrupted")
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Interrupted as exc:  # training saved its state first: the line says how to go on
        error_line(str(exc))
        sys.exit(INTERRUPTED)
    except NoArgsIsHelpError as exc:
        exc.show(file=sys.stderr)
        sys.exit(exc.exit_code)
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "mlclip"
        error_line(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(exc.exit_code)
    except ClickException as exc:
        error_line(exc.format_message())
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        error_line("interrupted")
        sys.exit(INTERRUPTED)
    except MlclipError as exc:
        if debug:
            raise
        error_line(str(exc))
        sys.exit(1)
    except Exception as exc:  # a bug or an environment problem: still one line unless --debug
        if debug:
            raise
        error_line(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)
    finally:
        err.file.flush()
