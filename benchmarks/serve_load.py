"""Load test of `mlclip serve`: concurrent clients over loopback, a fixed query count, a time cap.

Run by hand (figures go to docs/benchmarks.md "Serving", the JSON to docs/results/):

    python benchmarks/serve_load.py --workspace /work/ws-demo [--extension WS/extensions/mla]
        [--index WS/indexes-serve/world-train] [--queries 10000] [--clients 8] [--cap-s 300]
        [--rate 0] [--cache 1024] [--encoders 2] [--out docs/results/serve_load.json]

Builds (once; reused when it is there) an image index of the world's 30,000 training images with
the extension (`mlclip_cli.api.build`), starts `mlclip serve` on 127.0.0.1 (a free port) as a
subprocess, and sends `GET /search?q=...&k=10&lang=auto` from `--clients` threads, each with its
own keep-alive connection (the standard library's http.client: the lightest client, so the two
cores go to the server as much as possible). The queries are the world's XTD10-layout test
captions in all 11 languages (11,000 distinct texts, none seen in training), drawn at random with
replacement, so some repeat, as real queries do: the server's cache hit rate is reported.

--rate 0 (the default) is a closed loop: each client sends its next query when the last one is
answered, so the queries per second are the server's capacity and latency includes queueing
behind the other clients. --rate R paces the clients to R queries/s in all (open loop; a query's
latency counts from when it was due, so a stalled server is not hidden). It stops after --queries
or --cap-s seconds, whichever comes first. The server's resident memory (VmRSS) is read at the
start, every tenth of the run and at the end. An error is any non-200 answer or failed request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

import numpy as np


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_json(host: str, port: int, path: str) -> dict:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def start_server(folder: Path, extension: Path, cache: int, threads: int | None,
                 encoders: int) -> tuple[subprocess.Popen, str, int]:
    command = [sys.executable, "-m", "mlclip_cli", "serve", "--index", str(folder), "--model", str(extension),
               "--host", "127.0.0.1", "--port", "0", "--cache", str(cache), "--encoders", str(encoders)]
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "500"})
    line = process.stdout.readline()
    if " at http://" not in line:
        process.kill()
        raise SystemExit(f"mlclip serve did not start: {line!r}")
    url = urlparse(line.rsplit(" at ", 1)[1].split()[0])
    return process, url.hostname, url.port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("/work/ws-demo"))
    parser.add_argument("--extension", type=Path, default=None, help="default: WORKSPACE/extensions/mla")
    parser.add_argument("--index", type=Path, default=None, help="default: WORKSPACE/indexes-serve/world-train")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cap-s", type=float, default=300.0, help="stop after this many seconds whatever is left")
    parser.add_argument("--rate", type=float, default=0.0, help="queries/s in all (0: closed loop, as fast as answered)")
    parser.add_argument("--cache", type=int, default=1024, help="the server's --cache (0: no query cache)")
    parser.add_argument("--threads", type=int, default=None, help="the server's --threads")
    parser.add_argument("--encoders", type=int, default=2, help="the server's --encoders")
    parser.add_argument("--langs", default="all", help="query languages, comma-separated (all: the 11 of the test set)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/results/serve_load.json"))
    args = parser.parse_args()

    from mlclip_cli.api import BuildConfig, build
    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.workspace import Workspace

    space = Workspace(args.workspace)
    extension = args.extension or space.extension("mla")
    folder = args.index or args.workspace / "indexes-serve" / "world-train"
    build_seconds = None
    if not (folder / "index.json").is_file():
        started = time.perf_counter()
        result = build(BuildConfig(out=folder, manifest=space.manifest("world"), split="train", model=str(extension),
                                   device="cpu"))
        build_seconds = round(time.perf_counter() - started, 1)
        print(f"built {folder}: {result.count} images in {build_seconds} s")

    test = read_manifest(space.manifest("xtd10")).select(["caption", "language"]).to_pandas()
    if args.langs != "all":
        test = test[test.language.isin(args.langs.split(","))]
    captions = list(zip(test.caption, test.language))
    rng = random.Random(args.seed)
    queries = [rng.choice(captions) for _ in range(args.queries)]

    load_start = os.getloadavg()
    started = time.perf_counter()
    process, host, port = start_server(folder, extension, args.cache, args.threads, args.encoders)
    startup_s = time.perf_counter() - started
    try:
        images = get_json(host, port, "/health")["images"]
        rss = [(0, rss_mib(process.pid))]
        latencies = np.full(len(queries), np.nan)
        server_ms = np.full(len(queries), np.nan)
        languages: list[str | None] = [None] * len(queries)
        errors: list[str] = []
        lock = threading.Lock()
        state = {"next": 0, "done": 0}
        checkpoints = {len(queries) * i // 10 for i in range(1, 10)}
        server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
        begin = time.perf_counter()
        deadline = begin + args.cap_s
        interval = args.clients / args.rate if args.rate else 0.0

        def client(number: int) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            due = begin + number * (interval / args.clients if interval else 0.0)
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= len(queries) or time.perf_counter() > deadline:
                    break
                if interval:
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)  # a benchmark's pacing, not a test
                    sent = due
                    due += interval
                else:
                    sent = time.perf_counter()
                text, _ = queries[i]
                try:
                    connection.request("GET", "/search?" + urlencode({"q": text, "k": args.k, "lang": "auto"}))
                    response = connection.getresponse()
                    body = response.read()
                    latencies[i] = time.perf_counter() - sent
                    if response.status != 200:
                        with lock:
                            errors.append(f"{response.status}: {body[:200]!r}")
                    else:
                        answer = json.loads(body)
                        server_ms[i] = answer["latency_ms"]
                        languages[i] = answer["language"]
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=60)
                with lock:
                    state["done"] += 1
                    if state["done"] in checkpoints:
                        rss.append((state["done"], rss_mib(process.pid)))
            connection.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - begin
        server_cpu, client_cpu = cpu_seconds(process.pid) - server_cpu, time.process_time() - client_cpu
        rss.append((state["done"], rss_mib(process.pid)))
        health = get_json(host, port, "/health")
    finally:
        process.terminate()
        process.wait(timeout=30)

    answered = latencies[~np.isnan(latencies)] * 1000
    detected = [(lang, queries[i][1]) for i, lang in enumerate(languages) if lang is not None]
    from mlclip_cli.provenance import provenance

    result = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "provenance": provenance("python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_start],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "setup": {"index": str(folder), "images": images, "extension": str(extension), "clients": args.clients,
                  "mode": f"paced at {args.rate:g} queries/s" if args.rate else "closed loop",
                  "query_languages": sorted({lang for _, lang in captions}), "queries_planned": len(queries), "distinct_texts_planned": len(set(queries)), "k": args.k,
                  "server_cache": args.cache, "server_threads": args.threads or 1, "server_encoders": args.encoders, "cap_s": args.cap_s,
                  "server_startup_s": round(startup_s, 2), "index_build_s": build_seconds},
        "queries": int(len(answered)),
        "errors": len(errors),
        "first_errors": errors[:5],
        "seconds": round(elapsed, 2),
        "queries_per_s": round(len(answered) / elapsed, 1),
        "latency_ms": {"p50": round(float(np.percentile(answered, 50)), 2),
                       "p90": round(float(np.percentile(answered, 90)), 2),
                       "p99": round(float(np.percentile(answered, 99)), 2),
                       "max": round(float(answered.max()), 2), "mean": round(float(answered.mean()), 2)},
        "server_latency_ms_p50": round(float(np.nanpercentile(server_ms, 50)), 2),
        "cpu_ms_per_query": {"server": round(server_cpu * 1000 / max(1, len(answered)), 3),
                             "clients": round(client_cpu * 1000 / max(1, len(answered)), 3)},
        "language_id_agrees_with_the_caption": round(sum(a == b for a, b in detected) / max(1, len(detected)), 4),
        "cache": {key: health.get(key) for key in ("cache_hits", "cache_misses", "cache_hit_rate", "cache_size")},
        "server_batches": health.get("batches"),
        "server_rss_mib": [{"after_queries": n, "rss_mib": m} for n, m in rss],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("queries", "errors", "seconds", "queries_per_s", "latency_ms",
                                              "server_latency_ms_p50", "cpu_ms_per_query", "cache", "server_batches")}))
    print("server RSS MiB:", " ".join(f"{r['rss_mib']:.0f}" for r in result["server_rss_mib"]),
          "| load average before/after:", load_start[0], os.getloadavg()[0])
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
