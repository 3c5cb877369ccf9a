"""Where a measured figure came from: the command, the code's commit, the machine and the date.

Every results file that the docs render figures from carries this record, so a page can say
"measured at <commit> on <machine>" and a test can tell a figure from a different build.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(_CHECKOUT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_commit() -> dict:
    """The commit of the mlclip checkout that runs, and whether its tracked files differ from it.
    Read once per process (a bench run should not pay for git each time)."""
    top = _git("rev-parse", "--show-toplevel")
    # an installed wheel has no history of its own; a repository around site-packages is not mlclip's
    commit = _git("rev-parse", "HEAD") if top and Path(top).resolve() == _CHECKOUT else None
    if commit is None:
        from mlclip_cli import __version__

        return {"commit": None, "version": __version__, "dirty": None}
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", "mlclip_cli", "pyproject.toml")
    return {"commit": commit, "dirty": bool(changed)}


@functools.lru_cache(maxsize=1)
def machine() -> dict:
    """What decides speed and, through the kernels chosen, the last bits of a float."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def provenance(command: str | None = None) -> dict:
    """The record a results file carries: command (default: this process's own command line), commit,
    dirty, machine, date (UTC)."""
    if command is None:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return {"command": command, **code_commit(), "machine": dict(machine()),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
