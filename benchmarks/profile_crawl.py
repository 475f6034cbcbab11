"""Where the full pipeline spends its time: a pyinstrument profile of a real crawl, summarised.

    python -m benchmarks.profile_crawl                  # snapcrawl on a 3,000-page site
    python -m benchmarks.profile_crawl --crawler bare   # the bare Scrapy spider, for comparison

Runs the crawler exactly as :mod:`benchmarks.run` does (same nginx-served site, same
politeness-off settings) under ``python -m pyinstrument`` (statistical sampling, 1 ms), saves
the session (``benchmarks/out/profile-<crawler>.pyisession``; open it with
``pyinstrument --load FILE -r html``) and prints three views of it:

* time by component: self time summed per package (snapcrawl modules one by one, Scrapy,
  Twisted, lxml/parsel, jsonschema, the standard library ...), C extensions counted in
  their Python caller;
* the costliest functions by inclusive time (recursion counted once), snapcrawl's own and
  the library calls it makes;
* the costliest functions by self time.

Shares are of the crawl's busy time (time not spent waiting in the reactor's poll).
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
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/profile_crawl.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import DEFAULT_ROOT, ensure_site
from benchmarks.nginx import NginxServer
from benchmarks.run import ROOT, politeness_off

OUT_DIR = Path(__file__).resolve().parent / "out"
# Frames where the process waits for the network, not computing: the reactor's poll.
IDLE_FUNCTIONS = {"select", "poll", "doPoll", "_run_once", "epoll"}
_SITE_RE = re.compile(r"(?:site|dist)-packages/([^/]+)/")


def component(file_path: str | None) -> str:
    """A readable owner for a source file: ``snapcrawl.pages.snapshot``, ``scrapy``, ``stdlib:json`` ..."""
    if not file_path:
        return "(builtin)"
    p = file_path.replace("\\", "/")
    if "/snapcrawl/" in p and "site-packages" not in p:
        rel = p.split("/snapcrawl/", 1)[1].removesuffix(".py").replace("/", ".")
        return "snapcrawl." + rel.removesuffix(".__init__")
    m = _SITE_RE.search(p)
    if m:
        return m.group(1)
    if "/lib/python3" in p:
        rest = p.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest.split("/", 1)[0].removesuffix(".py")
    if "/benchmarks/" in p:
        return "benchmarks"
    return p.rsplit("/", 1)[-1]


Stack = tuple[tuple[str, str], ...]  # (function, file) frames, outermost first


def pyspy_stacks(path: Path) -> dict[Stack, float]:
    """Stacks and their sample counts from ``py-spy record -f raw`` (collapsed stacks)."""
    frame_re = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")
    out: dict[Stack, float] = defaultdict(float)
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        frames = []
        for part in stack_text.split(";"):
            m = frame_re.match(part)
            frames.append((m.group(1), m.group(2)) if m else (part, ""))
        out[tuple(frames)] += int(count)
    return out


def pyinstrument_stacks(path: Path) -> dict[Stack, float]:
    """Stacks and their seconds from a saved pyinstrument session (each frame's own time)."""
    from pyinstrument.session import Session

    root = Session.load(str(path)).root_frame()
    if root is None:
        raise RuntimeError(f"{path}: empty profile")
    out: dict[Stack, float] = defaultdict(float)
    todo: list[tuple[Any, Stack]] = [(root, ())]
    while todo:
        frame, above = todo.pop()
        if frame.is_synthetic:  # "[self]"/"[await]" leaves: the parent's own time
            out[above] += frame.time
            continue
        stack = (*above, (frame.function, frame.file_path or ""))
        own = frame.time - sum(c.time for c in frame.children)
        if own > 0:
            out[stack] += own
        todo.extend((c, stack) for c in frame.children)
    # the reactor's wait for the network is not work: drop it (py-spy leaves it out by itself)
    return {k: v for k, v in out.items() if k and k[-1][0] not in IDLE_FUNCTIONS}


def summarise(stacks: dict[Stack, float], top: int = 25) -> dict[str, Any]:
    """Self time by component, and top functions by inclusive and self time, as shares of busy time."""
    busy = sum(stacks.values()) or 1.0
    self_by_comp: dict[str, float] = defaultdict(float)
    self_by_func: dict[str, float] = defaultdict(float)
    incl_by_func: dict[str, float] = defaultdict(float)
    for stack, weight in stacks.items():
        func, file = stack[-1]
        self_by_comp[component(file)] += weight
        self_by_func[f"{component(file)}:{func}"] += weight
        for key in {f"{component(f)}:{fn}" for fn, f in stack}:  # a recursive function counts once
            incl_by_func[key] += weight

    def ranked(d: dict[str, float], n: int) -> list[tuple[str, float]]:
        return [(k, round(v / busy, 4)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]]

    # inclusive: leave out the driver frames that contain (nearly) everything: reactor loop, main, crawl command
    incl = {k: v for k, v in incl_by_func.items() if v < 0.75 * busy}
    return {
        "by_component": ranked(self_by_comp, 30),
        "top_inclusive_snapcrawl": ranked({k: v for k, v in incl.items() if k.startswith("snapcrawl")}, top),
        "top_inclusive": ranked(incl, top),
        "top_self": ranked(self_by_func, top),
    }


def print_summary(s: dict[str, Any], ms_per_page: float | None) -> None:
    """Shares of busy time, and (given the unprofiled CPU cost per page) the ms/page they amount to."""
    for title, rows in (
        ("self time by component", s["by_component"]),
        ("top functions, inclusive (snapcrawl)", s["top_inclusive_snapcrawl"]),
        ("top functions, inclusive (all)", s["top_inclusive"]),
        ("top functions, self", s["top_self"]),
    ):
        print(f"\n{title}:")
        for name, share in rows:
            ms = f"{share * ms_per_page:6.2f} ms/page  " if ms_per_page else ""
            print(f"  {share:6.1%}  {ms}{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_crawl", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000, help="benchmark site size (default: 3000)")
    parser.add_argument("--crawler", choices=("snapcrawl", "bare"), default="snapcrawl")
    parser.add_argument(
        "--profiler",
        choices=("py-spy", "pyinstrument"),
        default=None,
        help="default: py-spy when installed (no overhead in the crawler), else pyinstrument",
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default: 250)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=25, help="functions to list (default: 25)")
    parser.add_argument("--site-dir", type=Path, default=DEFAULT_ROOT)
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the snapcrawl crawl (repeatable)",
    )
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    use = args.profiler or ("py-spy" if pyspy else "pyinstrument")
    if use == "py-spy" and not pyspy:
        parser.error("py-spy is not installed (pip install 'py-spy>=0.4,<0.5'); or use --profiler pyinstrument")

    site = ensure_site(args.pages, args.site_dir)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if use == "py-spy":
        data = OUT_DIR / f"profile-{args.crawler}.pyspy.txt"
        profiler: list[str] = []
    else:
        data = OUT_DIR / f"profile-{args.crawler}.pyisession"
        profiler = ["-m", "pyinstrument", "-i", "0.001", "-r", "pyisession", "-o", str(data)]
    data.unlink(missing_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="snapcrawl-profile-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    settings = [a for k, v in politeness_off(args.concurrency).items() for a in ("-s", f"{k}={v}")]
    py = [sys.executable]
    try:
        with NginxServer(site) as server:
            url = server.url + "/"
            if args.crawler == "bare":
                target = [str(ROOT / "benchmarks" / "bare_spider.py"), url, *settings]
                cwd = workdir
            else:
                target = [
                    "-m",
                    "scrapy",
                    "crawl",
                    "snapshots",
                    "-a",
                    f"start_urls={url}",
                    *settings,
                    "-s",
                    f"SNAPCRAWL_EXPORT_URI={workdir / 'exports'}",
                    "-s",
                    f"SNAPCRAWL_STATE_PATH={workdir / 'state.sqlite'}",
                ]
                for extra in args.extra:
                    target += ["-s", extra]
                cwd = ROOT
            print(f"profiling {args.crawler} with {use} on {url} ({args.pages} pages)", file=sys.stderr, flush=True)
            err_file = workdir / "crawler.stderr"
            offset = server.log_offset()  # leave out the server's own readiness check
            with err_file.open("wb") as err:
                crawler = subprocess.Popen([*py, *profiler, *target], cwd=cwd, env=env, stdout=err, stderr=err)
                spy = None
                if use == "py-spy":  # attached by pid, so wait4 below sees the crawler's own CPU time
                    spy = subprocess.Popen(
                        [str(pyspy), "record", "--pid", str(crawler.pid), "--nonblocking", "--full-filenames",
                         "-r", str(args.rate), "-f", "raw", "-o", str(data)],
                        stdout=subprocess.DEVNULL, stderr=err,
                    )  # fmt: skip
                _, status, usage = os.wait4(crawler.pid, 0)
                crawler.returncode = os.waitstatus_to_exitcode(status)
                if spy is not None:
                    spy.wait(timeout=120)
            pages = len(server.read_log(offset))
            cpu_s = usage.ru_utime + usage.ru_stime
        if crawler.returncode != 0 or not data.exists():
            print(err_file.read_text(encoding="utf-8", errors="replace")[-3000:], file=sys.stderr)
            print(f"error: the profiled crawl failed (exit code {crawler.returncode})", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stacks = pyspy_stacks(data) if use == "py-spy" else pyinstrument_stacks(data)
    ms_per_page = 1000 * cpu_s / max(pages, 1)
    summary = summarise(stacks, args.top)
    print(f"\nprofile ({use}): {data}")
    print(
        f"{pages} pages, crawler CPU {cpu_s:.1f}s = {ms_per_page:.2f} ms/page"
        + (" (pyinstrument's own overhead included)" if use == "pyinstrument" else "")
        + "; ms/page below = share x this"
    )
    print_summary(summary, ms_per_page)
    result = {
        "profiler": use,
        "crawler": args.crawler,
        "pages": pages,
        "cpu_s": round(cpu_s, 3),
        "ms_per_page": round(ms_per_page, 3),
        **summary,
    }
    (OUT_DIR / f"profile-{args.crawler}.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
