"""Serve a static tree with Debian's nginx on a free 127.0.0.1 port, for the benchmarks.

Why nginx and not :class:`snapcrawl.sample.SampleServer`: the sample server is a Python
``ThreadingHTTPServer``; under ``wrk`` it answers ~2,000 requests/s on this machine and burns a
core of Python doing it, i.e. it is in the same speed class as the crawlers it would feed.
nginx serves the same static files at 40,000-120,000 requests/s from one worker process, so
the crawl figures measure the crawlers, not the server.

The server runs in the foreground as our child (``daemon off``), with its own config,
prefix, pid file and logs in a temporary folder; nothing is read from or written to
``/etc/nginx`` or ``/var/log/nginx``, and stopping it is a signal to our own child.  Its
access log (one ``$msec $status $request_uri`` line per request) is how the benchmark
counts pages and times the crawl without trusting either crawler's own figures.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

CONF = """\
{user}worker_processes {workers};
worker_rlimit_nofile 65536;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format bench '$msec $status $request_uri';
    access_log {tmp}/access.log bench;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/html html; text/plain txt; application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    # cached descriptors count against the open-file limit: with one per page of a 20,000-page
    # site, nginx hit a 20,000 limit and answered 500 near the end of a crawl
    open_file_cache max=4096 inactive=120s;
    server {{
        listen {host}:{port} backlog=1024;
        root {root};
        index index.html;
        server_tokens off;
    }}
}}
"""


class NginxError(RuntimeError):
    """nginx is missing or would not start; the message says why and how to fix it."""


def find_nginx() -> str:
    exe = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if exe is None:
        raise NginxError("nginx not found: install Debian's nginx (apt-get install -y nginx-light)")
    return exe


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LogLine:
    t: float  # nginx $msec: seconds since the epoch, millisecond resolution
    status: int
    uri: str


def parse_log_line(line: str) -> LogLine | None:
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) != 3:
        return None
    try:
        return LogLine(float(parts[0]), int(parts[1]), parts[2])
    except ValueError:
        return None


class NginxServer:
    """nginx serving ``root`` on ``http://127.0.0.1:<free port>``; a context manager.

    ``workers`` is nginx's ``worker_processes``: 1 keeps it on one core, leaving the other
    to the crawler on a two-core machine.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", workers: int = 1) -> None:
        self.root = root.resolve()
        if not (self.root / "index.html").exists():
            raise NginxError(f"{self.root} has no index.html: not a generated benchmark site")
        self.host = host
        self.workers = workers
        self.exe = find_nginx()
        self.tmp = Path(tempfile.mkdtemp(prefix="snapcrawl-nginx-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""

    @property
    def access_log(self) -> Path:
        return self.tmp / "access.log"

    def start(self) -> NginxServer:
        last_error = ""
        for _ in range(5):  # the free port may be taken between picking and binding: retry
            self.port = free_port(self.host)
            self.url = f"http://{self.host}:{self.port}"
            conf = self.tmp / "nginx.conf"
            user = ""
            if os.geteuid() == 0:  # as root, nginx would switch workers to "nobody"; keep our own user
                user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
            conf.write_text(
                CONF.format(
                    user=user, workers=self.workers, tmp=self.tmp, host=self.host, port=self.port, root=self.root
                ),
                encoding="utf-8",
            )
            cmd = [
                self.exe,
                "-p",
                str(self.tmp),
                "-c",
                str(conf),
                "-e",
                str(self.tmp / "error.log"),
                "-g",
                "daemon off;",
            ]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready():
                return self
            last_error = self._stop_and_read_errors()
        raise NginxError(f"nginx would not start: {last_error.strip()[-2000:]}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def _stop_and_read_errors(self) -> str:
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGQUIT)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
            self.proc = None
        log = self.tmp / "error.log"
        if log.exists():
            err += log.read_text(encoding="utf-8", errors="replace")
        return err

    def log_offset(self) -> int:
        """Current end of the access log; pass it to :meth:`read_log` to get later requests only."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def read_log(self, start: int = 0) -> list[LogLine]:
        with self.access_log.open("r", encoding="utf-8", errors="replace") as f:
            f.seek(start)
            return [x for x in map(parse_log_line, f) if x is not None]

    def stop(self) -> None:
        """Graceful stop (SIGQUIT to our own nginx master) and remove the temp folder."""
        self._stop_and_read_errors()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LogCounter:
    """Counts access-log lines as they are appended, cheaply (reads only the new bytes)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.pos = start
        self.lines = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self.pos)
                chunk = f.read()
        except FileNotFoundError:
            return self.lines
        end = chunk.rfind(b"\n") + 1  # count complete lines only
        self.lines += chunk.count(b"\n", 0, end)
        self.pos += end
        return self.lines
