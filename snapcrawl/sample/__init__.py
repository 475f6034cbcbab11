"""A deterministic Chinese news-aggregator "snapshot" site, served over real HTTP.

The crawler is developed and tested against this site instead of the live aggregators: its
pages are modelled on a captured snapshot page (reproduced verbatim at
``/keji/20240924/a5123a2fe4da1fb3.html``), every byte is reproducible, and
:class:`~snapcrawl.sample.site.Site` carries the ground truth (which paths are articles,
listings, broken, near-duplicates, GBK-encoded, and each article's expected fields).

URL scheme: ``/`` home, ``/{cat}/`` and ``/{cat}/index_{n}.html`` listings, articles at
``/{cat}/{yyyymmdd}/{id}.html``, one re-published copy at ``/zhuanzai/{id}.html``,
``/subscribe/`` (我的订阅) and ``/robots.txt``.  Categories: keji 科技, caijing 财经,
shehui 社会, tiyu 体育 (GBK).

    from snapcrawl.sample import SampleServer, build_site
    with SampleServer(build_site()) as server:
        ...  # crawl server.url

Command line: ``python -m snapcrawl.sample serve`` / ``python -m snapcrawl.sample build DIR``.
"""

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Page, Site, build_site

__all__ = ["Page", "SampleServer", "Site", "build_site"]
