"""Crawl throughput and memory: a bare Scrapy spider vs snapcrawl's full pipeline, same site, same run.

    python -m benchmarks.run                 # 20,000-page site, both crawlers
    python benchmarks/run.py --pages 2000    # a quick run

Steps: generate (or reuse) the benchmark site under ``benchmarks/site/`` (see
:mod:`benchmarks.generate`), serve it with nginx on a free 127.0.0.1 port (see
:mod:`benchmarks.nginx`), check that the server alone is far faster than the crawlers, then
crawl it twice, each crawler in its own process with politeness off and the same concurrency:

* ``bare``: :mod:`benchmarks.bare_spider`, plain Scrapy, link extraction only;
* ``snapcrawl``: ``scrapy crawl snapshots`` from the project, full pipeline (extraction,
  normalisation, dedup, validation, JSON-lines export, report).

Pages and timings come from nginx's access log (``$msec`` per request), so both crawlers are
measured the same way, from the first request to the last; memory comes from the child's
``/proc/<pid>/status`` (VmRSS, sampled every 0.1 s) and its ``wait4`` rusage (peak RSS and
CPU time).  Results are printed and saved as JSON under ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import DEFAULT_ROOT, ensure_site, read_manifest
from benchmarks.nginx import LogCounter, NginxServer

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"
SAMPLE_EVERY = 0.1  # seconds between RSS samples
TARGET_RATIO = 0.8
TARGET_PEAK_MB = 300.0
TARGET_GROWTH = 0.20


@dataclass
class Sample:
    t: float  # seconds since the crawler process started
    pages: int  # requests nginx has logged for this crawl so far
    rss_kb: int


@dataclass
class CrawlRun:
    name: str
    returncode: int
    wall_s: float  # process start to exit, Python start-up and shutdown included
    cpu_s: float  # user + system CPU of the crawler process
    peak_rss_kb: int  # ru_maxrss from wait4
    requests: int
    pages_ok: int  # 200 responses
    crawl_s: float  # first request to last request, from nginx's log
    pages_per_s: float
    pages_per_cpu_s: float  # pages per CPU-second of the crawler: robust to a busy machine
    status_counts: dict[str, int]
    load_avg: tuple[float, float]  # 1-minute load average at start and at end: >2.5 on 2 cores means contention
    paths: set[str] = field(repr=False)
    samples: list[Sample] = field(repr=False)
    stderr_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def rss_at(self, pages: int) -> tuple[int, int] | None:
        """(pages, RSS kB) at the first sample with at least ``pages`` served; else the last sample."""
        for s in self.samples:
            if s.pages >= pages:
                return s.pages, s.rss_kb
        with_pages = [s for s in self.samples if s.pages > 0]
        return (with_pages[-1].pages, with_pages[-1].rss_kb) if with_pages else None

    def summary(self, milestones: list[int]) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("paths", "samples")}
        data["rss_at"] = {str(m): self.rss_at(m) for m in milestones}
        data["samples"] = [
            [round(s.t, 2), s.pages, s.rss_kb] for s in self.samples[:: max(1, len(self.samples) // 400)]
        ]
        return data


def politeness_off(concurrency: int) -> dict[str, str]:
    """The settings both crawlers get: no robots.txt, no throttling, no delay, same concurrency."""
    return {
        "ROBOTSTXT_OBEY": "False",
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0",
        "CONCURRENT_REQUESTS": str(concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(concurrency),
        # No depth limit: with Scrapy's depth-first order a listing page can first be reached through
        # a long pager chain, and the depth of its first discovery sticks (the dupefilter drops the
        # shallower rediscovery), so DEPTH_LIMIT=10 loses a few pages, not the same ones in both crawls.
        "DEPTH_LIMIT": "0",
        "LOG_LEVEL": "INFO",
    }


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_crawler(
    name: str, cmd: list[str], cwd: Path, env: dict[str, str], server: NginxServer, workdir: Path
) -> CrawlRun:
    """Run one crawler process to the end, sampling its RSS and the pages nginx served it."""
    offset = server.log_offset()
    counter = LogCounter(server.access_log, offset)
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    samples: list[Sample] = []
    load_start = os.getloadavg()[0]
    started = time.monotonic()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fo, stderr=fe)
        # wait4 (not Popen.wait) so we get this child's own rusage: peak RSS and CPU time
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _rss_kb(proc.pid)
            if rss is not None:
                samples.append(Sample(time.monotonic() - started, counter.poll(), rss))
            time.sleep(SAMPLE_EVERY)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    log = server.read_log(offset)
    ok = [x for x in log if x.status == 200]
    span = (log[-1].t - log[0].t) if len(log) > 1 else 0.0
    stderr = err.read_text(encoding="utf-8", errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    statuses: dict[str, int] = {}
    for x in log:
        statuses[str(x.status)] = statuses.get(str(x.status), 0) + 1
    return CrawlRun(
        name=name,
        returncode=proc.returncode,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        peak_rss_kb=int(usage.ru_maxrss),
        requests=len(log),
        pages_ok=len(ok),
        crawl_s=round(span, 3),
        pages_per_s=round((len(log) - 1) / span, 1) if span > 0 else 0.0,
        pages_per_cpu_s=round(len(log) / cpu, 1) if cpu > 0 else 0.0,
        status_counts=statuses,
        load_avg=(load_start, os.getloadavg()[0]),
        paths={x.uri for x in log},
        samples=samples,
        stderr_tail=stderr[-4000:],
    )


def server_check(
    server: NginxServer, paths: list[str], seconds: float, connections: int, workdir: Path
) -> dict[str, Any]:
    """Requests/s nginx serves alone, over the site's own pages (wrk if installed, else a Python loop)."""
    wrk = shutil.which("wrk")
    list_file = workdir / "paths.txt"
    list_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    if wrk:
        script = workdir / "paths.lua"
        script.write_text(
            f'local paths = {{}}\nfor line in io.lines("{list_file}") do paths[#paths + 1] = line end\n'
            'local i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n',
            encoding="utf-8",
        )
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), server.url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        m = re.search(r"Requests/sec:\s*([\d.]+)", proc.stdout)
        if proc.returncode != 0 or not m:
            raise RuntimeError(f"wrk failed: {proc.stdout}{proc.stderr}")
        return {"tool": f"wrk -t1 -c{connections}", "seconds": seconds, "requests_per_s": float(m.group(1))}
    import http.client

    host, port = server.host, server.port
    conn = http.client.HTTPConnection(host, port, timeout=5)
    n, deadline, i = 0, time.monotonic() + seconds, 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        conn.request("GET", paths[i % len(paths)])
        conn.getresponse().read()
        n, i = n + 1, i + 1
    conn.close()
    return {
        "tool": "python http.client, 1 connection (wrk not installed)",
        "seconds": seconds,
        "requests_per_s": round(n / (time.monotonic() - started), 1),
    }


def snapcrawl_outputs(export_dir: Path) -> dict[str, Any]:
    """What the full pipeline exported: record counts and the run report's headline figures."""
    spider_dir = export_dir / "snapshots"
    latest = spider_dir / "LATEST"
    if not latest.exists():
        return {"error": f"no published run in {spider_dir}"}
    run_dir = spider_dir / latest.read_text(encoding="utf-8").strip()
    counts = {}
    for f in sorted(run_dir.glob("*.jsonl")):
        with f.open("rb") as fh:
            counts[f.stem] = sum(1 for _ in fh)
    out: dict[str, Any] = {"records": counts}
    report = run_dir / "report.json"
    if report.exists():
        r = json.loads(report.read_text(encoding="utf-8"))
        out["report"] = {k: r.get(k) for k in ("finish_reason", "pages", "records", "duplicates")}
        out["report"]["errors"] = (r.get("errors") or {}).get("by_type")
    return out


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f}"


def print_table(result: dict[str, Any], runs: list[CrawlRun], milestones: list[int]) -> None:
    site, srv, m = result["site"], result["server"], result["machine"]
    print()
    print(
        f"site: {site['pages']} pages ({site['by_kind'].get('article', 0)} articles, "
        f"{site['by_kind'].get('listing', 0)} listing pages), {site['bytes'] / 1e6:.0f} MB, {site['root']}"
    )
    print(
        f"server: {srv['version']}, {srv['workers']} worker, alone: {srv['check']['requests_per_s']:,.0f} pages/s "
        f"({srv['check']['tool']}, {srv['check']['seconds']:.0f}s)"
    )
    print(
        f"machine: {m['cpu']}, {m['cores']} cores; concurrency {result['concurrency']}; "
        f"Python {m['python']}, Scrapy {m['scrapy']}"
    )
    print()
    names = [r.name for r in runs]
    rows: list[tuple[str, list[str]]] = [
        ("pages fetched (200)", [f"{r.requests} ({r.pages_ok})" for r in runs]),
        ("crawl time, first to last request (s)", [f"{r.crawl_s:.1f}" for r in runs]),
        ("pages/s (wall clock)", [f"{r.pages_per_s:.0f}" for r in runs]),
        ("pages per CPU-second", [f"{r.pages_per_cpu_s:.0f}" for r in runs]),
        ("CPU ms per page (start-up included)", [f"{1000 * r.cpu_s / max(r.requests, 1):.2f}" for r in runs]),
        ("process wall time (s)", [f"{r.wall_s:.1f}" for r in runs]),
        ("load average, start/end", [f"{r.load_avg[0]:.1f}/{r.load_avg[1]:.1f}" for r in runs]),
        ("HTTP statuses", [",".join(f"{k}:{v}" for k, v in sorted(r.status_counts.items())) for r in runs]),
        ("peak RSS (MB)", [_mb(r.peak_rss_kb) for r in runs]),
    ]
    for m in milestones:
        cells = []
        for r in runs:
            at = r.rss_at(m)
            cells.append("-" if at is None else f"{_mb(at[1])}" + ("" if at[0] >= m else f" (at {at[0]})"))
        rows.append((f"RSS at {m} pages (MB)", cells))
    if len(milestones) >= 2:
        cells = []
        for r in runs:
            a, b = r.rss_at(milestones[0]), r.rss_at(milestones[-1])
            cells.append("-" if not a or not b else f"{(b[1] - a[1]) / a[1]:+.1%}")
        rows.append((f"RSS growth {milestones[0]} -> {milestones[-1]} pages", cells))
    rows.append(("exit code", [str(r.returncode) for r in runs]))
    width = max(len(label) for label, _ in rows) + 2
    print(" " * width + "".join(f"{n:>16}" for n in names))
    for label, cells in rows:
        print(label.ljust(width) + "".join(f"{c:>16}" for c in cells))
    print()
    for line in result["verdict"]:
        print(line)


def verdict(
    runs: dict[str, CrawlRun], milestones: list[int], expected_paths: set[str]
) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    figures: dict[str, Any] = {}
    for r in runs.values():
        missing = expected_paths - r.paths
        extra = r.paths - expected_paths
        if missing or extra:
            lines.append(
                f"WARNING {r.name}: fetched {len(r.paths)} distinct paths; missing {len(missing)} "
                f"(e.g. {sorted(missing)[:3]}), unexpected {len(extra)} (e.g. {sorted(extra)[:3]})"
            )
        errors = {code: n for code, n in r.status_counts.items() if not code.startswith("2")}
        if errors:  # the server failed some requests: the two crawlers did not do the same work
            lines.append(f"WARNING {r.name}: the server answered {errors}")
        if r.returncode != 0:
            lines.append(f"WARNING {r.name}: exit code {r.returncode}; stderr tail:\n{r.stderr_tail[-1500:]}")
    bare, full = runs.get("bare"), runs.get("snapcrawl")
    if bare and full and bare.pages_per_s and bare.pages_per_cpu_s:
        ratio = full.pages_per_s / bare.pages_per_s
        cpu_ratio = full.pages_per_cpu_s / bare.pages_per_cpu_s
        figures["ratio"] = round(ratio, 3)
        figures["cpu_ratio"] = round(cpu_ratio, 3)
        ok = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        lines.append(
            f"{ok} throughput: snapcrawl {full.pages_per_s:.0f} pages/s = {ratio:.2f}x bare Scrapy "
            f"{bare.pages_per_s:.0f} pages/s (target >= {TARGET_RATIO}x)"
        )
        ok = "PASS" if cpu_ratio >= TARGET_RATIO else "FAIL"
        lines.append(
            f"{ok} throughput per core: snapcrawl {full.pages_per_cpu_s:.0f} pages per CPU-second = "
            f"{cpu_ratio:.2f}x bare Scrapy {bare.pages_per_cpu_s:.0f} (target >= {TARGET_RATIO}x)"
        )
        busiest = max(max(r.load_avg) for r in runs.values())
        if busiest > (os.cpu_count() or 1) + 0.5:
            lines.append(
                f"NOTE load average reached {busiest:.1f} on {os.cpu_count()} cores: other processes "
                "competed for the CPU, so wall-clock figures are low; the per-CPU-second ones are robust"
            )
    if full:
        peak = full.peak_rss_kb / 1024
        figures["peak_rss_mb"] = round(peak, 1)
        lines.append(
            f"{'PASS' if peak <= TARGET_PEAK_MB else 'FAIL'} peak RSS: {peak:.0f} MB "
            f"over {full.requests} pages (target <= {TARGET_PEAK_MB:.0f} MB)"
        )
        a, b = full.rss_at(milestones[0]), full.rss_at(milestones[-1])
        if a and b and len(milestones) >= 2:
            growth = (b[1] - a[1]) / a[1]
            figures["rss_growth"] = round(growth, 4)
            lines.append(
                f"{'PASS' if growth <= TARGET_GROWTH else 'FAIL'} RSS growth: {a[1] / 1024:.0f} MB at "
                f"{a[0]} pages -> {b[1] / 1024:.0f} MB at {b[0]} pages = {growth:+.1%} "
                f"(target <= {TARGET_GROWTH:+.0%})"
            )
    return lines, figures


def machine() -> dict[str, Any]:
    import platform

    import scrapy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "scrapy": scrapy.__version__,
        "kernel": platform.release(),
    }


def nginx_version(exe: str) -> str:
    proc = subprocess.run([exe, "-v"], capture_output=True, text=True)
    return (proc.stderr or proc.stdout).strip().replace("nginx version: ", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20000, help="benchmark site size in pages (default: 20000)")
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS for both (default: 16)")
    parser.add_argument("--only", choices=("bare", "snapcrawl"), help="run one crawler only")
    parser.add_argument(
        "--milestones",
        default=None,
        help="page counts to report RSS at, comma-separated (default: 25%% and 100%% of --pages)",
    )
    parser.add_argument("--server-seconds", type=float, default=5.0, help="length of the server-alone check (0: skip)")
    parser.add_argument("--site-dir", type=Path, default=DEFAULT_ROOT, help=f"where sites are cached ({DEFAULT_ROOT})")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help=f"results folder (default: {OUT_DIR})")
    parser.add_argument("--json", type=Path, default=None, help="write results here too (always: benchmarks/out/)")
    parser.add_argument("--keep", action="store_true", help="keep the crawl's exports and logs (path is printed)")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the snapcrawl crawl, e.g. --set SNAPCRAWL_VALIDATE=0 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.pages < 10:
        parser.error(f"--pages {args.pages}: at least 10")
    milestones = [int(x) for x in args.milestones.split(",")] if args.milestones else [args.pages // 4, args.pages]

    site_root = ensure_site(args.pages, args.site_dir)
    manifest = read_manifest(site_root) or {}
    paths: dict[str, str] = manifest.get("paths", {})  # type: ignore[assignment]
    workdir = Path(tempfile.mkdtemp(prefix="snapcrawl-bench-"))
    common = politeness_off(args.concurrency)
    result: dict[str, Any] = {
        "when": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "machine": machine(),
        "concurrency": args.concurrency,
        "site": {
            "root": str(site_root),
            "pages": manifest.get("pages"),
            "by_kind": manifest.get("by_kind", {}),
            "bytes": manifest.get("bytes", 0),
        },
        "settings": common,
        "milestones": milestones,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    runs: dict[str, CrawlRun] = {}
    try:
        with NginxServer(site_root) as server:
            result["server"] = {"version": nginx_version(server.exe), "workers": server.workers, "url": server.url}
            if args.server_seconds > 0:
                sample_paths = sorted(paths)[:: max(1, len(paths) // 2000)]
                result["server"]["check"] = server_check(
                    server, sample_paths, args.server_seconds, args.concurrency, workdir
                )
            else:
                result["server"]["check"] = {"tool": "skipped", "seconds": 0, "requests_per_s": float("nan")}
            start_url = server.url + "/"
            settings_args = [a for k, v in common.items() for a in ("-s", f"{k}={v}")]
            if args.only in (None, "bare"):
                cmd = [sys.executable, str(ROOT / "benchmarks" / "bare_spider.py"), start_url, *settings_args]
                print(f"crawling with the bare Scrapy spider: {start_url}", file=sys.stderr, flush=True)
                runs["bare"] = run_crawler("bare", cmd, workdir, env, server, workdir)
            if args.only in (None, "snapcrawl"):
                exports = workdir / "exports"
                cmd = [
                    sys.executable,
                    "-m",
                    "scrapy",
                    "crawl",
                    "snapshots",
                    "-a",
                    f"start_urls={start_url}",
                    *settings_args,
                    "-s",
                    f"SNAPCRAWL_EXPORT_URI={exports}",
                    "-s",
                    f"SNAPCRAWL_STATE_PATH={workdir / 'state.sqlite'}",
                ]
                for extra in args.extra:
                    cmd += ["-s", extra]
                print(f"crawling with snapcrawl (full pipeline): {start_url}", file=sys.stderr, flush=True)
                run = run_crawler("snapcrawl", cmd, ROOT, env, server, workdir)
                run.extra = snapcrawl_outputs(exports)
                runs["snapcrawl"] = run
        result["runs"] = {name: r.summary(milestones) for name, r in runs.items()}
        lines, figures = verdict(runs, milestones, set(paths))
        result["verdict"] = lines
        result["figures"] = figures
        print_table(result, list(runs.values()), milestones)
        if "snapcrawl" in runs:
            print("snapcrawl outputs: " + json.dumps(runs["snapcrawl"].extra.get("records"), ensure_ascii=False))
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(result, ensure_ascii=False, indent=1, default=str)
        saved = args.out_dir / f"run-{args.pages}-{stamp}.json"
        for target in [saved, args.out_dir / "latest-run.json", args.json]:
            if target is not None:
                Path(target).write_text(text + "\n", encoding="utf-8")
        print(f"results: {saved}")
    finally:
        if args.keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = any(r.returncode != 0 for r in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
