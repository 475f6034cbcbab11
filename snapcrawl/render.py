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

from typing import Any

from scrapy.settings import BaseSettings
from scrapy_playwright.page import PageMethod
from scrapy_playwright.provider import PlaywrightBrowserProvider

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
        "PLAYWRIGHT_ABORT_REQUEST": "snapcrawl.render.skip_heavy_resource",
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
    """PLAYWRIGHT_ABORT_REQUEST hook: images, video and fonts are never downloaded by the browser."""
    return str(getattr(request, "resource_type", "")) in SKIPPED_RESOURCES


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
