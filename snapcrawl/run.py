"""The identity of one run: its id and its export folder, shared by feeds, report and publisher.

A run writes into ``<export_dir>/<spider>/.<run_id>.partial/`` and is renamed to
``<run_id>/`` when it closes, so a reader never sees a half-written folder under a final
name. With ``JOBDIR`` the run id is kept in the job folder, so a resumed run continues the
same partial folder instead of starting a new one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler

RUN_ID_FILE = "snapcrawl_run_id"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    spider: str
    export_uri: str  # template base, e.g. "exports" or "s3://bucket/prefix"
    local: bool  # True when exports are local files we can publish atomically

    @property
    def spider_dir(self) -> Path:
        return Path(self.export_uri) / self.spider

    @property
    def partial_dir(self) -> Path:
        return self.spider_dir / f".{self.run_id}.partial"

    @property
    def final_dir(self) -> Path:
        return self.spider_dir / self.run_id

    @property
    def run_dir_name(self) -> str:
        """The folder name feeds write into: the partial name locally, the final one remotely."""
        return f".{self.run_id}.partial" if self.local else self.run_id


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def is_local_uri(uri: str) -> bool:
    scheme = urlsplit(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def get_run(crawler: Crawler, spider_name: str | None = None) -> RunInfo:
    """The crawler's run, created on first use (and persisted in JOBDIR when there is one)."""
    run: RunInfo | None = getattr(crawler, "_snapcrawl_run", None)
    if run is not None:
        return run
    settings = crawler.settings
    run_id = settings.get("SNAPCRAWL_RUN_ID") or None
    jobdir = settings.get("JOBDIR")
    id_file = Path(jobdir) / RUN_ID_FILE if jobdir else None
    if run_id is None and id_file is not None and id_file.exists():
        run_id = id_file.read_text(encoding="utf-8").strip() or None
    if run_id is None:
        run_id = _new_run_id()
    if id_file is not None and not (id_file.exists() and id_file.read_text(encoding="utf-8").strip() == run_id):
        # temp file + rename: a kill mid-write must not leave an empty id (the resumed run
        # would start a new partial folder and lose the records of the old one)
        id_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = id_file.with_name(id_file.name + ".tmp")
        tmp.write_text(run_id, encoding="utf-8")
        os.replace(tmp, id_file)
    uri = str(settings.get("SNAPCRAWL_EXPORT_URI") or "exports").rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    name = spider_name or (crawler.spidercls.name if crawler.spidercls else "spider")
    run = RunInfo(run_id=run_id, spider=name, export_uri=uri, local=is_local_uri(uri))
    crawler._snapcrawl_run = run  # type: ignore[attr-defined]
    return run


def feed_uri_params(params: dict[str, Any], spider: Any) -> dict[str, Any]:
    """FEED_URI_PARAMS hook: adds ``%(run_id)s`` and ``%(run_dir)s`` to feed URIs."""
    run = get_run(spider.crawler, spider.name)
    return {**params, "run_id": run.run_id, "run_dir": run.run_dir_name}
