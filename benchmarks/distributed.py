"""Pages/s of a distributed crawl with 1 and with 2 workers on the benchmark site (nginx + Redis).

python -m benchmarks.distributed [--pages 2000] [--workers 1,2] [--concurrency 16]

Each trial gets a fresh redis-server (no persistence) on a free port, enqueues the site's root
with ``python -m snapcrawl enqueue`` and starts the workers together. Pages/s come from nginx's
access log (first to last request), not from the crawlers; the same log checks that every page
was fetched once over all workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.generate import DEFAULT_ROOT, ensure_site
from benchmarks.nginx import NginxServer
from benchmarks.run import politeness_off

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def trial(server: NginxServer, workers: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    """One crawl of the site by ``workers`` processes sharing a fresh Redis."""
    import redis

    port = _free_port()
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server not found")
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    rproc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.025)
        subprocess.run(
            [sys.executable, "-m", "snapcrawl", "enqueue", "--redis-url", url, server.url + "/"], cwd=ROOT, check=True
        )
        settings = {
            **politeness_off(concurrency),
            "SNAPCRAWL_REDIS_URL": url,
            "SNAPCRAWL_REDIS_IDLE_TIMEOUT": "3",
            "SNAPCRAWL_ALLOW_PRIVATE_NETWORKS": "1",
            "SNAPCRAWL_PROGRESS_INTERVAL": "0",
            "SNAPCRAWL_EXPORT_URI": str(workdir / f"exports-{workers}"),
            "SNAPCRAWL_RUN_ID": f"bench{workers}",
        }
        args = [a for k, v in settings.items() for a in ("-s", f"{k}={v}")]
        offset = server.log_offset()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
        procs = []
        for i in range(workers):
            log = (workdir / f"w{workers}-{i}.log").open("wb")
            wenv = {**env, "SNAPCRAWL_WORKER_ID": f"w{i}"}
            cmd = [sys.executable, "-m", "scrapy", "crawl", "snapshots", *args]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=wenv, stdout=log, stderr=subprocess.STDOUT))
        codes = [p.wait() for p in procs]
        lines = server.read_log(offset)
        memory = int(client.info("memory")["used_memory"])
    finally:
        rproc.terminate()
        rproc.wait(timeout=10)
    pages = [x for x in lines if x.uri != "/robots.txt"]
    span = pages[-1].t - pages[0].t if len(pages) > 1 else 0.0
    twice = sum(1 for n in Counter(x.uri for x in pages).values() if n > 1)
    return {
        "workers": workers,
        "exit_codes": codes,
        "requests": len(pages),
        "fetched_more_than_once": twice,
        "crawl_s": round(span, 2),
        "pages_per_s": round((len(pages) - 1) / span, 1) if span > 0 else 0.0,
        "redis_used_memory": memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="benchmark site size (default: 2000)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try, comma-separated (default: 1,2)")
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS per worker (default: 16)")
    parser.add_argument("--site-dir", type=Path, default=DEFAULT_ROOT, help=f"where sites are cached ({DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    site_root = ensure_site(args.pages, args.site_dir)
    workdir = Path(tempfile.mkdtemp(prefix="snapcrawl-dist-bench-"))
    results = []
    with NginxServer(site_root) as server:
        for n in (int(x) for x in args.workers.split(",")):
            print(f"crawling {server.url}/ with {n} worker(s)", file=sys.stderr, flush=True)
            results.append(trial(server, n, args.concurrency, workdir))
    print(json.dumps({"pages": args.pages, "concurrency": args.concurrency, "trials": results}, indent=2))
    print(f"logs and exports: {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
