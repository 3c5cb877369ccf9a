"""Resident memory of `mlclip demo`, step by step: where the peak is.

    python benchmarks/demo_memory.py WORKSPACE [--fast]

Runs the demo's steps in order in this process (as `mlclip -w WORKSPACE demo` does) and prints, at
each step's start and end, the resident set (VmRSS) and the process's peak so far (ru_maxrss), so
the step that raises the peak shows. `--fast` trains a few steps only (20 NLT + 5 LE for MLA, 3 per
continual language): the memory of every step, not the demo's figures. For the figure people quote,
run `/usr/bin/time -v mlclip -w WORKSPACE demo` on a fresh workspace ("Maximum resident set size").
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from pathlib import Path

import mlclip_cli.demo as demo
from mlclip_cli.workspace import Workspace


def rss_mb() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) // 1024


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--fast", action="store_true", help="a few training steps only")
    args = parser.parse_args()
    if args.fast:
        full = demo._mla_loop

        def short(config, extend=False):
            loop = full(config, extend)
            return replace(loop, nlt=replace(loop.nlt, steps=20), le=replace(loop.le, steps=5))

        demo._mla_loop = short
        demo.CONTINUAL_STEPS = 3
    began = time.time()

    def line(what: str, name: str) -> None:
        print(f"{time.time() - began:7.0f} s  {what:5s} {name:52s} rss {rss_mb():5d} MB  peak {peak_mb():5d} MB",
              flush=True)

    demo.run_demo(demo.DemoConfig(workspace=Workspace(args.workspace)),
                  on_start=lambda index, count, step: line("start", step.name),
                  on_step=lambda result: line("end", result.name))
    print(f"peak {peak_mb()} MB", flush=True)


if __name__ == "__main__":
    main()
