"""JavaScript rendering through Chromium (scrapy-playwright), for the pages that need it and no others.

Some aggregators ship an article page whose body is an empty container filled by a script.
Those pages are fetched through scrapy-playwright when rendering is asked for (``-a render=1``
or ``render_js = true`` in the site's profile); every other request goes through Scrapy's
ordinary HTTP handler, which scrapy-playwright's handler falls back to for requests without
``meta["playwright"]``.

The browser is Debian's ``/usr/bin/chromium`` (``SNAPCRAWL_CHROMIUM_PATH``), never a
``playwright install`` download. scrapy-playwright starts the Playwright driver when the engine
starts and the browser on the first rendered page; :class:`LazyBrowserProvider` moves the
driver start to that first page too, so a crawl that renders nothing starts neither.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings
from scrapy_playwright.page import PageMethod
from scrapy_playwright.provider import PlaywrightBrowserProvider

from snapcrawl.middlewares.safety import SAFE_SCHEMES, literal_ip, non_public_reason

logger = logging.getLogger(__name__)

DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: Flags for a headless Chromium on a server: no sandbox (root in containers), no GPU, and no
#: background traffic of its own (updates, sync, QUIC probes) while it crawls someone's site.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
#: Resource types a rendered snapshot page does not need for its text.
SKIPPED_RESOURCES = frozenset({"image", "media", "font"})
#: request.meta key the spider sets on a rendered request (so an incomplete rendered page is not re-rendered)
RENDERED = "snapcrawl_rendered"
HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"


def playwright_settings(settings: BaseSettings) -> dict[str, Any]:
    """scrapy-playwright settings derived from ``SNAPCRAWL_*`` (applied by the add-on)."""
    chromium = str(settings.get("SNAPCRAWL_CHROMIUM_PATH") or DEFAULT_CHROMIUM)
    timeout_s = settings.getfloat("SNAPCRAWL_RENDER_TIMEOUT", 30.0)
    return {
        "DOWNLOAD_HANDLERS": {"http": HANDLER, "https": HANDLER},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_BROWSER_PROVIDER": "snapcrawl.render.LazyBrowserProvider",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": chromium, "headless": True, "args": list(CHROMIUM_ARGS)},
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": int(timeout_s * 1000),
        # a page per concurrent request of one site is plenty; Chromium pages cost ~50 MiB each
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": max(1, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 4)),
        "PLAYWRIGHT_ABORT_REQUEST": RenderedRequestGuard(settings.getbool("SNAPCRAWL_ALLOW_PRIVATE_NETWORKS", False)),
    }


def render_meta(wait_s: float = 0.0) -> dict[str, Any]:
    """``Request.meta`` that sends one request through Chromium.

    The page is read once the ``load`` event fired (inline scripts have run by then) plus
    ``wait_s`` seconds for scripts that fetch their content afterwards (profile key
    ``[crawl] render_js_wait``).
    """
    methods = [PageMethod("wait_for_load_state", "load")]
    if wait_s > 0:
        methods.append(PageMethod("wait_for_timeout", round(wait_s * 1000)))
    return {"playwright": True, "playwright_page_methods": methods, RENDERED: True}


def skip_heavy_resource(request: Any) -> bool:
    """Images, video and fonts are never downloaded by the browser."""
    return str(getattr(request, "resource_type", "")) in SKIPPED_RESOURCES


class RenderedRequestGuard:
    """PLAYWRIGHT_ABORT_REQUEST hook: what Chromium may fetch while it renders a page.

    The page itself came through Scrapy and :class:`~snapcrawl.middlewares.safety.NetworkSafetyMiddleware`;
    the scripts, frames and XHRs it asks for go straight from the browser and would bypass that
    check. So the browser gets the same rule: requests to the rendered page's own host are
    allowed (that host was vetted), others only over http(s) to a host whose addresses are all
    public (``SNAPCRAWL_ALLOW_PRIVATE_NETWORKS`` lifts this, as for Scrapy's requests). Heavy
    resources (images, media, fonts) are never fetched. Refusals are logged once per host.
    """

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._verdicts: dict[str, str | None] = {}  # host -> why it is refused (None: allowed)

    async def __call__(self, request: Any) -> bool:
        if skip_heavy_resource(request):
            return True
        parts = urlsplit(str(request.url))
        if parts.scheme in ("data", "blob", "about"):
            return False  # no network involved
        if parts.scheme not in SAFE_SCHEMES:
            return self._refused(request.url, f"scheme {parts.scheme!r}")
        host = (parts.hostname or "").lower()
        if self.allow_private or not host or host == _page_host(request):
            return False
        if host not in self._verdicts:
            self._verdicts[host] = await _private_reason(host, parts.port)
        reason = self._verdicts[host]
        return False if reason is None else self._refused(request.url, reason)

    def _refused(self, url: str, why: str) -> bool:
        logger.info("rendering: browser request not made: %s (%s)", url, why)
        return True


def _page_host(request: Any) -> str | None:
    """Host of the page being rendered (the top frame's URL; the request's own for the page itself)."""
    try:
        if request.is_navigation_request() and request.frame.parent_frame is None:
            return (urlsplit(str(request.url)).hostname or "").lower()  # the page's own navigation
        return (urlsplit(str(request.frame.page.url)).hostname or "").lower()
    except Exception:  # a service worker's request has no frame: judged on its own address
        return None


async def _private_reason(host: str, port: int | None) -> str | None:
    """Why ``host`` is off limits (it is, or resolves to, a non-public address), None if public."""
    ip = literal_ip(host)
    if ip is not None:
        addresses = [ip]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"
        addresses = [a for a in (literal_ip(str(info[4][0])) for info in infos) if a is not None]
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            return f"{host}, a {reason} address" if ip is not None else f"{host} resolves to {address}, {reason}"
    return None


class LazyBrowserProvider(PlaywrightBrowserProvider):
    """scrapy-playwright's default provider, started on the first rendered page instead of at engine start.

    scrapy-playwright calls :meth:`start` when the engine starts, which spawns the Playwright
    driver (a Node.js process) even for a crawl that never renders; the browser itself is
    already launched lazily, by :meth:`launch_browser`. Starting the driver there as well keeps
    a plain crawl free of both processes. It uses scrapy-playwright's public provider hook
    (``PLAYWRIGHT_BROWSER_PROVIDER``), so nothing of its internals is patched.
    """

    async def start(self) -> None:
        """Nothing yet: the driver starts with the first browser."""

    async def _ensure_started(self) -> None:
        if self.playwright is None:
            await super().start()

    async def launch_browser(self) -> Any:
        await self._ensure_started()
        return await super().launch_browser()

    async def launch_persistent_context(self, context_kwargs: dict[str, Any]) -> Any:
        await self._ensure_started()
        return await super().launch_persistent_context(context_kwargs)
