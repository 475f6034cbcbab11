"""The job lock: a second run of the same job exits at once; a killed run leaves no stale lock."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.settings import Settings

from snapcrawl.extensions.lock import EXIT_LOCKED, JobLock, JobLockedError, default_job_name, lock_dir
from snapcrawl.sample.server import SampleServer
from tests.conftest import FAST, ROOT, CrawlResult

SLOW = {
    "DOWNLOAD_DELAY": "0.8",
    "DOWNLOAD_DELAY_JITTER": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "1",
    "DEPTH_LIMIT": "1",
}


def crawl_cmd(tmp_path: Path, start_urls: str, settings: dict[str, str]) -> list[str]:
    """The same ``scrapy crawl snapshots`` command line as tests.conftest.run_crawl builds."""
    merged = {
        **FAST,
        "SNAPCRAWL_EXPORT_URI": str(tmp_path / "exports"),
        "SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite"),
        **settings,
    }
    cmd = [sys.executable, "-m", "scrapy", "crawl", "snapshots", "-a", f"start_urls={start_urls}"]
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


def wait_for_holder(lock_file: Path, pid: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = json.loads(lock_file.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid") == pid:
            return info
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never took {lock_file}")


def test_second_run_of_the_same_job_exits_at_once(tmp_path: Path, server: SampleServer) -> None:
    cmd = crawl_cmd(tmp_path, server.url + "/", SLOW)
    first = start(cmd, tmp_path / "first.log")
    try:
        locks = tmp_path / "locks"
        deadline = time.monotonic() + 30
        while not (locks.is_dir() and any(locks.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.05)
        (lock_file,) = locks.iterdir()
        assert lock_file.name.startswith("snapshots--urls-")
        holder = wait_for_holder(lock_file, first.pid)

        t0 = time.monotonic()
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        assert first.poll() is None, "the first run should still be going: the runs overlapped in time"
    finally:
        rc_first = first.wait(timeout=120)

    assert second.returncode == EXIT_LOCKED
    assert f"is already running (pid {first.pid}, since {holder['started_at']})" in second.stderr
    assert str(lock_file) in second.stderr and "Traceback" not in second.stderr
    assert "Spider opened" not in second.stderr  # refused before the engine opened anything
    assert took < 15

    # the first run finished normally and is the only published run
    assert rc_first == 0, (tmp_path / "first.log").read_text(encoding="utf-8")[-3000:]
    result = CrawlResult(rc_first, "", "", tmp_path / "exports")
    runs = [p for p in result.spider_dir.iterdir() if p.is_dir() and not p.is_symlink()]
    assert runs == [result.run_dir]
    assert result.report()["finish_reason"] == "finished"
    assert lock_file.read_text(encoding="utf-8") == ""  # released: no holder named any more


def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path, server: SampleServer) -> None:
    cmd = crawl_cmd(tmp_path, server.url + "/", SLOW)
    victim = start(cmd, tmp_path / "victim.log")
    try:
        locks = tmp_path / "locks"
        deadline = time.monotonic() + 30
        while not (locks.is_dir() and any(locks.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.05)
        (lock_file,) = locks.iterdir()
        wait_for_holder(lock_file, victim.pid)
    finally:
        os.kill(victim.pid, signal.SIGKILL)  # the process this test started, and only it
        victim.wait(timeout=30)
    # the file still names the dead run, but the kernel released its flock with the process
    assert json.loads(lock_file.read_text(encoding="utf-8"))["pid"] == victim.pid
    rerun = subprocess.run(
        crawl_cmd(tmp_path, server.url + "/", {"DEPTH_LIMIT": "1"}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already running" not in rerun.stderr
    assert CrawlResult(0, "", "", tmp_path / "exports").report()["finish_reason"] == "finished"


def test_lock_names_jobs_and_refuses_a_second_holder(tmp_path: Path) -> None:
    settings = Settings({"SNAPCRAWL_STATE_PATH": str(tmp_path / "state" / "state.sqlite")})
    assert lock_dir(settings) == tmp_path / "state" / "locks"
    settings.set("SNAPCRAWL_LOCK_DIR", str(tmp_path / "elsewhere"))
    assert lock_dir(settings) == tmp_path / "elsewhere"

    spider = SimpleNamespace(start_urls=["https://b.example/", "https://a.example/"])
    same = SimpleNamespace(start_urls=["https://a.example/", "https://b.example/"])
    other = SimpleNamespace(start_urls=["https://c.example/"])
    assert default_job_name(spider) == default_job_name(same) != default_job_name(other)

    path = tmp_path / "locks" / "snapshots--news.lock"
    first = JobLock(path, "snapshots/news")
    first.acquire()
    # flock is per open file: a second open, even in the same process, is refused
    with pytest.raises(JobLockedError, match=rf"job 'snapshots/news' is already running \(pid {os.getpid()}, since "):
        JobLock(path, "snapshots/news").acquire()
    other_job = JobLock(tmp_path / "locks" / "snapshots--other.lock", "snapshots/other")
    other_job.acquire()  # another job is not blocked
    other_job.release()
    first.release()
    again = JobLock(path, "snapshots/news")
    again.acquire()
    again.release()


# ------------------------------------------------------------------ the deploy/ examples run as written


def _cron_job(tmp_path: Path) -> tuple[str, dict[str, str]]:
    text = (ROOT / "deploy" / "cron" / "snapcrawl").read_text(encoding="utf-8")
    env = dict(re.findall(r"(?m)^([A-Z_]+)=(.*)$", text))
    (line,) = [ln for ln in text.splitlines() if re.match(r"^[0-9*]", ln)]
    fields = line.split(None, 6)
    assert fields[5] == "snapcrawl" and "%" not in fields[6]  # the user column; cron turns % into newlines
    return fields[6], env


def _systemd_job(tmp_path: Path) -> tuple[str, dict[str, str]]:
    unit = (ROOT / "deploy" / "systemd" / "snapcrawl@.service").read_text(encoding="utf-8")
    env = dict(re.findall(r"(?m)^Environment=([A-Z_]+)=(.*)$", unit))
    env_file = (ROOT / "deploy" / "systemd" / "news-hourly.env").read_text(encoding="utf-8")
    env.update(re.findall(r"(?m)^([A-Z_]+)=(.*)$", env_file))
    (exec_start,) = re.findall(r"(?m)^ExecStart=(.*)$", unit)
    (workdir,) = re.findall(r"(?m)^WorkingDirectory=(.*)$", unit)
    # systemd's expansion: %i is the instance, ${X} one word, $X split on whitespace
    command = exec_start.replace("%i", "news-hourly")
    command = re.sub(r"\$\{([A-Z_]+)\}", lambda m: shlex.quote(env[m.group(1)]), command)
    command = re.sub(r"\$([A-Z_]+)", lambda m: env[m.group(1)], command)
    env = {k: v.replace("%i", "news-hourly") for k, v in env.items()}
    return f"cd {workdir} && {command}", env


@pytest.mark.parametrize("example", ["cron", "systemd"])
def test_deploy_example_runs_as_written(tmp_path: Path, server: SampleServer, example: str) -> None:
    command, env = _cron_job(tmp_path) if example == "cron" else _systemd_job(tmp_path)
    # the machine's folders, moved into tmp_path; the command itself is the file's
    places = {
        "/opt/snapcrawl": str(ROOT),
        "/etc/snapcrawl": str(tmp_path / "etc"),
        "/var/lib/snapcrawl": str(tmp_path / "lib"),
        "/var/log/snapcrawl": str(tmp_path / "log"),
    }
    for old, new in places.items():
        command = command.replace(old, new)
        env = {k: v.replace(old, new) for k, v in env.items()}
        Path(new).mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc" / "news-hourly.urls").write_text(f"# the sample site\n{server.url}/\n", encoding="utf-8")
    fast = " -s DEPTH_LIMIT=1 -s AUTOTHROTTLE_ENABLED=0"  # the test's only addition: a short crawl
    run = subprocess.run(
        ["/bin/sh", "-c", command + fast],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = CrawlResult(0, "", "", tmp_path / "lib" / "exports")
    assert result.report()["finish_reason"] == "finished"
    assert result.report()["start_urls"] == [server.url + "/"]  # read from the job's URL file
    state = tmp_path / "lib" / ("news-hourly" if example == "systemd" else "")
    assert (state / "locks" / "snapshots--news-hourly.lock").is_file()  # beside the job's state
    log = (tmp_path / "log" / "news-hourly.log").read_text(encoding="utf-8") if example == "cron" else run.stderr
    assert "job lock snapshots/news-hourly taken" in log
    assert result.report()["pages"]["fetched"] >= 5
