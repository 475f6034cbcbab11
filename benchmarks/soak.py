"""Soak: crawl the sample site through injected faults and SIGKILLs; nothing may be lost or doubled.

    python -m benchmarks.soak                   # 20 % faults, 3 SIGKILL/resume cycles (about a minute)
    python -m benchmarks.soak --kills 0         # faults only
    python -m benchmarks.soak --json out.json   # also write the figures as JSON

Steps:

1. a fault-free crawl of the sample site (with the calendar trap) gives the reference records;
2. the same site is served through :class:`~snapcrawl.sample.faults.FaultyServer` with
   ``--fraction`` of the article pages faulty (500/502/503, 429 + Retry-After, timeouts,
   resets, truncated bodies; each fails ``--attempts`` times, then serves the page);
3. ``scrapy crawl snapshots -s JOBDIR=...`` runs against it and is SIGKILLed ``--kills`` times,
   spread over the crawl by the number of requests the server has answered, each time resumed
   with the same ``JOBDIR``; the last run finishes and publishes;
4. the published articles are compared with the reference: ``lost`` (reference pages missing),
   ``duplicated`` (records exported more than once), ``changed`` (same page, different content),
   plus ``links`` checks on the link records.

Exit status 0 when lost = duplicated = changed = 0 (and the crawl finished), else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/soak.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapcrawl.sample.faults import TRANSIENT_KINDS, FaultPlan, FaultyServer
from snapcrawl.sample.site import Site, build_site

ROOT = Path(__file__).resolve().parent.parent
#: a local site: politeness off (it is tested on its own), short timeouts so "slow" faults cost little
CRAWL_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "SNAPCRAWL_PROGRESS_INTERVAL": "0",
    "DOWNLOAD_TIMEOUT": "2",
    "RETRY_TIMES": "3",
    "SNAPCRAWL_RETRY_BACKOFF_BASE": "0.2",
    "SNAPCRAWL_RETRY_BACKOFF_MAX": "2",
    "LOG_LEVEL": "INFO",
}


def crawl_cmd(url: str, workdir: Path, jobdir: Path | None, extra: dict[str, str]) -> list[str]:
    settings = {
        **CRAWL_SETTINGS,
        **extra,
        "SNAPCRAWL_EXPORT_URI": str(workdir / "exports"),
        "SNAPCRAWL_STATE_PATH": str(workdir / "state.sqlite"),
    }
    if jobdir is not None:
        settings["JOBDIR"] = str(jobdir)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "snapshots", "-a", f"start_urls={url}/"]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def published(workdir: Path) -> Path:
    spider_dir = workdir / "exports" / "snapshots"
    latest = spider_dir / "LATEST"
    if not latest.exists():
        raise RuntimeError(f"no published run in {spider_dir}")
    return spider_dir / latest.read_text(encoding="utf-8").strip()


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a feed file and the number of lines that are not complete JSON objects."""
    records, torn = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            torn += 1
    return records, torn


def run_once(server_url: str, workdir: Path, log: Path, extra: dict[str, str], timeout: float = 150) -> int:
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "snapcrawl.settings"}
    with log.open("a") as fh:
        return subprocess.call(crawl_cmd(server_url, workdir, None, extra), cwd=ROOT, stdout=fh, stderr=fh,
                               env=env, timeout=timeout)  # fmt: skip


def killed_runs(
    server: FaultyServer, workdir: Path, jobdir: Path, kill_at: list[int], log: Path, extra: dict[str, str]
) -> list[dict[str, Any]]:
    """Run the crawl, SIGKILL it when the server has answered ``kill_at[i]`` requests, resume; the last
    session runs to the end. Returns one entry per session."""
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "snapcrawl.settings"}
    sessions: list[dict[str, Any]] = []
    pending = list(kill_at)
    while True:
        started = time.monotonic()
        served_before = len(server.request_log)
        with log.open("a") as fh:
            fh.write(f"\n===== session {len(sessions) + 1} =====\n")
            fh.flush()
            proc = subprocess.Popen(
                crawl_cmd(server.url, workdir, jobdir, extra), cwd=ROOT, stdout=fh, stderr=fh, env=env
            )
            killed = False
            while proc.poll() is None:
                if pending and len(server.request_log) >= pending[0]:
                    pending.pop(0)
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    proc.wait()
                    break
                if time.monotonic() - started > 150:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    raise RuntimeError(f"session {len(sessions) + 1} ran for more than 150 s; see {log}")
                time.sleep(0.01)
        sessions.append(
            {
                "session": len(sessions) + 1,
                "killed": killed,
                "exit": proc.returncode,
                "seconds": round(time.monotonic() - started, 2),
                "requests": len(server.request_log) - served_before,
            }
        )
        if not killed:
            return sessions


def soak(
    fraction: float = 0.2,
    kills: int = 3,
    attempts: int = 2,
    seed: int = 1,
    workdir: Path | None = None,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the soak (see the module docstring) and return its figures; ``settings`` go to both crawls."""
    extra = dict(settings or {})
    site: Site = build_site()
    tmp = tempfile.TemporaryDirectory(prefix="snapcrawl-soak-") if workdir is None else None
    base = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        # 1. reference: the same site and trap, no faults, no kills
        ref_dir = base / "reference"
        with FaultyServer(site, FaultPlan(trap=True)) as server:
            code = run_once(server.url, ref_dir, base / "reference.log", extra)
            reference_requests = len(server.request_log)
            ref_url = server.url
        ref_articles, _ = read_jsonl(published(ref_dir) / "articles.jsonl")
        reference = {a["url"].replace(ref_url, ""): a["content_hash"] for a in ref_articles}
        ref_report = json.loads((published(ref_dir) / "report.json").read_text(encoding="utf-8"))
        ref_failed = {f["url"].replace(ref_url, "") for f in ref_report["errors"]["failed_pages"]}
        if code not in (0, 1) or not reference:
            raise RuntimeError(f"reference crawl failed (exit {code}); see {base / 'reference.log'}")

        # 2-3. faults and kills
        plan = FaultPlan.mixed(
            site, fraction=fraction, seed=seed, kinds=TRANSIENT_KINDS, attempts=attempts, trap=True,
            slow_seconds=3.0, retry_after=1,
        )  # fmt: skip
        soak_dir = base / "soak"
        jobdir = base / "job"
        # kill points spread over the crawl by requests served (a faulty crawl makes more requests)
        kill_at = [reference_requests * (i + 1) // (kills + 1) for i in range(kills)]
        with FaultyServer(site, plan) as server:
            sessions = killed_runs(server, soak_dir, jobdir, kill_at, base / "soak.log", extra)
            injected = server.injected_counts()
            retries = sum(n - 1 for p, n in server.attempts.items() if p in plan.faults)
            soak_url = server.url
            requests = len(server.request_log)

        # 4. compare
        run_dir = published(soak_dir)
        articles, torn_articles = read_jsonl(run_dir / "articles.jsonl")
        links, torn_links = read_jsonl(run_dir / "links.jsonl")
        got = Counter(a["url"].replace(soak_url, "") for a in articles)
        hashes = {a["url"].replace(soak_url, ""): a["content_hash"] for a in articles}
        link_keys = Counter((r["from_url"], r["list"], r["position"]) for r in links)
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        failed = {f["url"].replace(soak_url, "") for f in report["errors"]["failed_pages"]}
        lost = sorted(set(reference) - set(got))
        figures = {
            "pages_in_reference": len(reference),
            "reference_requests": reference_requests,
            "faulty_pages": len(plan.faults),
            "faults_by_kind": dict(sorted(injected.items())),
            "faults_injected": sum(injected.values()),
            "retries": retries,
            "kills": sum(1 for s in sessions if s["killed"]),
            "sessions": sessions,
            "requests": requests,
            "articles_exported": sum(got.values()),
            "lost": len(lost),
            "lost_pages": lost,
            "duplicated": sum(n - 1 for n in got.values() if n > 1),
            "extra": len(set(got) - set(reference)),
            "changed": sum(1 for p, h in hashes.items() if p in reference and reference[p] != h),
            "links_duplicated": sum(n - 1 for n in link_keys.values() if n > 1),
            "torn_lines": torn_articles + torn_links,
            "finish_reason": report.get("finish_reason"),
            "failed_pages_reported": sorted(failed),
            "failed_pages_in_reference": sorted(ref_failed),
            # failures recorded by a session that was killed are not in the final report.json
            "failures_forgotten": sorted(ref_failed - failed),
            "resume": report.get("resume"),
            "settings": extra,
            "seconds": round(time.monotonic() - t0, 1),
            "workdir": str(base) if tmp is None else None,
        }
        return figures
    finally:
        if tmp is not None:
            tmp.cleanup()


def ok(f: dict[str, Any]) -> bool:
    return (
        f["lost"] == 0
        and f["duplicated"] == 0
        and f["changed"] == 0
        and f["extra"] == 0
        and f["links_duplicated"] == 0
        and f["torn_lines"] == 0
        and f["finish_reason"] == "finished"
    )


def render(f: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in f["faults_by_kind"].items())
    sessions = "; ".join(
        f"#{s['session']} {'SIGKILL' if s['killed'] else 'exit ' + str(s['exit'])} after {s['requests']} requests "
        f"({s['seconds']}s)"
        for s in f["sessions"]
    )
    return "\n".join(
        [
            f"soak: {'PASS' if ok(f) else 'FAIL'} in {f['seconds']}s",
            f"pages (reference crawl): {f['pages_in_reference']} articles, {f['reference_requests']} requests",
            f"faulty pages: {f['faulty_pages']}; faults injected: {f['faults_injected']} ({kinds})",
            f"retries: {f['retries']}; requests: {f['requests']}",
            f"sessions: {sessions}",
            f"exported: {f['articles_exported']} articles; lost = {f['lost']}, duplicated = {f['duplicated']}, "
            f"changed = {f['changed']}, extra = {f['extra']}, duplicated links = {f['links_duplicated']}, "
            f"torn lines = {f['torn_lines']}",
            f"final run: {f['finish_reason']}; failed pages in report.json: {len(f['failed_pages_reported'])} "
            f"(reference crawl: {len(f['failed_pages_in_reference'])}; forgotten across kills: "
            f"{', '.join(f['failures_forgotten']) or 'none'})",
        ]
        + ([f"lost pages: {', '.join(f['lost_pages'][:10])}"] if f["lost_pages"] else [])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.2, help="share of article pages with faults (0.2)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILL/resume cycles (3)")
    parser.add_argument("--attempts", type=int, default=2, help="failed attempts per faulty page before it works (2)")
    parser.add_argument("--seed", type=int, default=1, help="which pages get which fault (1)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep exports and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="an extra Scrapy setting for both crawls (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    extra: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        extra[key] = value
    figures = soak(args.fraction, args.kills, args.attempts, args.seed, args.workdir, extra)
    print(render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0 if ok(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
