"""A real local HTTP server for the sample site, for end-to-end crawl tests.

Serves pre-rendered :class:`~snapcrawl.sample.site.Page` bytes from a background thread, so a
Scrapy crawl (in-process or as a subprocess) talks to an actual socket.  It records every
request, so tests can count fetches, and answers conditional requests with 304 so
incremental-crawl behaviour is observable.  Query strings are ignored for lookup (links carry
tracking parameters), but logged.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from email.message import Message
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from snapcrawl.sample.render import error_html
from snapcrawl.sample.site import Page, Site

NOT_FOUND = Page(404, {"Content-Type": "text/html; charset=utf-8"}, error_html(404, "Not Found").encode())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: SampleServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    def version_string(self) -> str:
        return "snapcrawl-sample/1"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        owner = self.server.owner
        page = owner.site.pages.get(urlsplit(self.path).path, NOT_FOUND)
        status = 304 if page.status == 200 and _not_modified(page, self.headers) else page.status
        owner._log(self.command, self.path, status)
        self.send_response(status)
        for name, value in page.headers.items():
            if status != 304 or name in ("ETag", "Last-Modified"):
                self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        if send_body and status != 304:
            self.wfile.write(page.body)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.owner.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def _not_modified(page: Page, headers: Message) -> bool:
    """RFC 9110 precedence: If-None-Match decides when present, else If-Modified-Since."""
    inm = headers.get("If-None-Match")
    etag = page.headers.get("ETag")
    if inm is not None:
        if etag is None:
            return False
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag in tags
    ims = headers.get("If-Modified-Since")
    modified = page.headers.get("Last-Modified")
    if ims is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False  # unparseable date: ignore the header, as RFC 9110 says


class SampleServer:
    """The sample site on ``http://host:port`` (port 0 picks a free one), started on creation.

    Use as a context manager or call :meth:`stop`.  :meth:`set_site` swaps the content while
    running (e.g. to edition 2); ``request_log`` lists ``(method, path_with_query, status)``.
    """

    #: the request handler; :mod:`snapcrawl.sample.faults` swaps in one that injects faults
    handler_class: type[BaseHTTPRequestHandler] = _Handler

    def __init__(
        self,
        site_or_factory: Site | Callable[[], Site],
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._site = site_or_factory if isinstance(site_or_factory, Site) else site_or_factory()
        self._log_entries: list[tuple[str, str, int]] = []
        self.verbose = verbose
        self._httpd = _HTTPServer((host, port), self.handler_class)
        self._httpd.owner = self
        self.host, self.port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sample-site", daemon=True
        )
        self._stopped = False
        self._thread.start()

    @property
    def site(self) -> Site:
        with self._lock:
            return self._site

    def set_site(self, site: Site) -> None:
        """Serve ``site`` from the next request on."""
        with self._lock:
            self._site = site

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """A snapshot copy of the requests served so far, in arrival order."""
        with self._lock:
            return list(self._log_entries)

    def clear_log(self) -> None:
        with self._lock:
            self._log_entries.clear()

    def url_for(self, path: str) -> str:
        return self.url + path

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._log_entries.append((method, path, status))

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SampleServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

