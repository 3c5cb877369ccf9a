"""Peak memory and wall time of `mlclip prepare pairs` on a CSV and on the same ten times longer.

    python benchmarks/prepare_pairs_memory.py DIR [--rows 100000]

DIR gets 1,000 small PNGs, `x1.csv` (ROWS rows: image, caption, english; every caption distinct, so
nothing is dropped as a duplicate) and `x10.csv` (10 x ROWS), and a workspace. Each input is run
twice, each time in a process of its own: `mlclip -w DIR/ws prepare pairs --from xN.csv --lang de
--val-fraction 0.1` (what a user runs: the whole CLI imported), and the library call alone
(`prepare_pairs(PairsConfig(...))`, the same options). Prints rows, wall time and maximum resident
set (os.wait4's ru_maxrss) of each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

IMAGES = 1000


def write_inputs(folder: Path, rows: int) -> None:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        path = folder / "img" / f"{i}.png"
        if not path.exists():
            Image.new("RGB", (8, 8), (i % 256, i // 256, 0)).save(path)
    for name, count in (("x1", rows), ("x10", 10 * rows)):
        path = folder / f"{name}.csv"
        if path.exists():
            continue
        with path.open("w", encoding="utf-8") as handle:
            handle.write("image,caption,english\n")
            for r in range(count):
                handle.write(f"img/{r % IMAGES}.png,ein Bild Nummer {r} mit einer roten Katze,"
                             f"picture number {r} with a red cat\n")


LIBRARY = ("import sys\nfrom pathlib import Path\nfrom mlclip_cli.datasets.pairs import PairsConfig, prepare_pairs\n"
           "source, out = Path(sys.argv[1]), Path(sys.argv[2])\n"
           "prepare_pairs(PairsConfig(source=source, out=out, name=source.stem + '_lib', language='de', val_fraction=0.1))\n")


def measure(folder: Path, name: str, how: str) -> str:
    source = folder / f"{name}.csv"
    if how == "cli":
        command = [sys.executable, "-m", "mlclip_cli", "-w", str(folder / "ws"), "prepare", "pairs",
                   "--from", str(source), "--lang", "de", "--val-fraction", "0.1"]
    else:
        command = [sys.executable, "-c", LIBRARY, str(source), str(folder / "lib" / f"{name}.parquet")]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} ({how}): {process.stderr.read().decode()}")
    lines = sum(1 for _ in source.open(encoding="utf-8")) - 1
    return f"{how:7} {name}.csv {lines} rows: {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    write_inputs(args.folder, args.rows)
    for how in ("cli", "library"):
        for name in ("x1", "x10"):
            print(measure(args.folder, name, how), flush=True)


if __name__ == "__main__":
    main()
