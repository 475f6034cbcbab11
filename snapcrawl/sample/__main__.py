"""Command line for the sample site: serve it, or write it out as static files to inspect.

``serve`` prints exactly one line, ``serving http://HOST:PORT/``, so a parent process (a test
or a script) can read the chosen port, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import RELEASES, Site, build_site


def port(text: str) -> int:
    """argparse type for a TCP port (its name shows in argparse's "invalid port value")."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snapcrawl.sample", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    editions = sorted(RELEASES)
    serve = sub.add_parser("serve", help="serve the site over HTTP until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=port, default=0, help="port to bind; 0 picks a free one (default)")
    serve.add_argument("--edition", type=int, choices=editions, default=1, help="site edition (default: 1)")
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    serve.add_argument("--faults", metavar="SPEC", default=None,
                       help="inject faults, e.g. 'mixed' or 'fraction=0.2,seed=1,attempts=2,trap' "
                            "(see docs/faults.md); the plan is printed to stderr")
    demo = sub.add_parser("demo", help="serve the site and crawl it into exports/ (the quick start)")
    demo.add_argument("--exports", type=Path, default=Path("exports"), help="export folder (default: ./exports)")
    demo.add_argument("--state", type=Path, default=None,
                      help="keep the dedup/recrawl state in this SQLite file (default: a throwaway one, so "
                           "every demo shows a full crawl)")
    demo.add_argument("scrapy_args", nargs=argparse.REMAINDER, help="extra arguments for scrapy crawl (after --)")
    build = sub.add_parser("build", help="write the site as static files plus _manifest.json")
    build.add_argument("outdir", type=Path, help="directory to write (created if missing)")
    build.add_argument("--edition", type=int, choices=editions, default=1, help="site edition (default: 1)")
    return parser


def write_tree(site: Site, outdir: Path) -> int:
    """Write every page to ``outdir`` (``/x/`` becomes ``x/index.html``); returns the file count.

    Non-200 pages are written too; ``_manifest.json`` records each path's status and headers,
    and which linked paths are missing on purpose (the 404 ones).
    """
    manifest: dict[str, object] = {}
    for path, page in site.pages.items():
        rel = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
        target = outdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.body)
        manifest[path] = {"file": rel, "status": page.status, "headers": page.headers}
    missing = [p for p, kind in site.broken_paths().items() if kind == "404"]
    summary = {"edition": site.edition, "pages": manifest, "missing": missing}
    text = json.dumps(summary, ensure_ascii=False, indent=1)
    (outdir / "_manifest.json").write_text(text, encoding="utf-8")
    return len(manifest)


def _serve(args: argparse.Namespace) -> int:
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server: SampleServer
    try:
        if args.faults:
            from snapcrawl.sample.faults import FaultPlan, FaultyServer, describe

            site = build_site(args.edition)
            plan = FaultPlan.from_spec(args.faults, site)
            print(describe(plan), file=sys.stderr, flush=True)
            server = FaultyServer(site, plan, host=args.host, port=args.port, verbose=args.verbose)
        else:
            server = SampleServer(build_site(args.edition), host=args.host, port=args.port, verbose=args.verbose)
    except ValueError as exc:
        print(f"error: --faults: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with server:
        print(f"serving {server.url}/", flush=True)
        while not done.wait(0.5):
            pass
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Serve the sample site on a free port and run ``scrapy crawl snapshots`` over it.

    The crawl is a real ``scrapy crawl`` subprocess with the project's settings, exactly what an
    operator runs against a real site; only the start URL is local.
    """
    import os
    import subprocess
    import tempfile

    extra = [a for a in args.scrapy_args if a != "--"]
    tmp = tempfile.TemporaryDirectory(prefix="snapcrawl-demo-")
    state = args.state or Path(tmp.name) / "state.sqlite"
    with tmp, SampleServer(build_site()) as server:
        print(f"sample site: {server.url}/ ({len(server.site.article_paths())} articles)", flush=True)
        cmd = [sys.executable, "-m", "scrapy", "crawl", "snapshots", "-a", f"start_urls={server.url}/",
               "-s", f"SNAPCRAWL_EXPORT_URI={args.exports}", "-s", f"SNAPCRAWL_STATE_PATH={state}", *extra]
        print("running: " + " ".join(cmd[1:]), flush=True)
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "snapcrawl.settings"}
        code = subprocess.call(cmd, env=env)
    latest = args.exports / "snapshots" / "LATEST"
    if latest.exists():
        run_dir = args.exports / "snapshots" / latest.read_text(encoding="utf-8").strip()
        print(f"\nexports in {run_dir}/")
        for f in sorted(run_dir.iterdir()):
            lines = sum(1 for _ in f.open("rb")) if f.suffix == ".jsonl" else None
            print(f"  {f.name:<16} {f'{lines} records' if lines is not None else ''}")
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo":
        return _demo(args)
    try:
        count = write_tree(build_site(args.edition), args.outdir)
    except OSError as exc:
        print(f"error: cannot write to {args.outdir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {count} pages to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
