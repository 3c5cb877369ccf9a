"""Run one command under `/usr/bin/time -v` and save its wall time and peak memory as a results file.

    python benchmarks/timed.py --out docs/results/demo_run.json -- mlclip -w /tmp/fresh demo

The JSON holds the command, the commit, the machine and the date (mlclip_cli.provenance), the wall
seconds, the peak resident set (KiB, as `time -v` reports it) and the exit status; the docs render
their time and memory figures from such files (scripts/render_docs.py). Run it with nothing else on
the machine: two jobs on 2 cores slow each other several-fold.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the results JSON to write")
    parser.add_argument("--what", default="", help="one line saying what was measured")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")

    from mlclip_cli.atomic import write_json
    from mlclip_cli.provenance import provenance

    record = provenance(" ".join(command))
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        status = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *command]).returncode
        text = Path(report.name).read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    hours, minutes, seconds = (float(part or 0) for part in wall.groups())
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    write_json(args.out, {"what": args.what, "provenance": record, "exit_status": status,
                          "wall_seconds": round(3600 * hours + 60 * minutes + seconds, 1), "peak_rss_kib": peak})
    print(f"{args.out}: {3600 * hours + 60 * minutes + seconds:.0f} s wall, {peak / 1024 ** 2:.2f} GiB peak, exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
