"""The failed pages of a run, kept across the sessions of a resumed JOBDIR job.

The report lists every page that could not be exported with its final error. A run paused or
killed and then resumed is one run, so its failures must outlive the process: with JOBDIR they
are appended (one JSON line each, flushed) to ``JOBDIR/snapcrawl_failures.jsonl`` and read back
at start. A page that fails and later succeeds (re-fetched after a resume) is written as
cleared, so it is not reported as failed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)
FILE_NAME = "snapcrawl_failures.jsonl"


class FailureLog(dict[str, dict[str, Any]]):
    """url -> {"url", "error", "message"}, persisted when a JOBDIR is given."""

    def __init__(self, jobdir: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(jobdir) / FILE_NAME if jobdir else None
        self._fh: IO[str] | None = None
        if self.path is not None and self.path.exists():
            self._replay(self.path)

    def _replay(self, path: Path) -> None:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a kill: only ever the last one
                    logger.debug("%s:%d: torn line ignored", path, n)
                    continue
                if entry.get("cleared"):
                    self.pop(entry["url"], None)
                else:
                    self[entry["url"]] = {k: entry[k] for k in ("url", "error", "message") if k in entry}

    def _write(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()

    def record(self, url: str, error: str, message: str) -> None:
        entry = {"url": url, "error": error, "message": message}
        self[url] = entry
        self._write(entry)

    def resolve(self, url: str) -> None:
        """The page was exported after all (e.g. re-fetched after a resume)."""
        if self.pop(url, None) is not None:
            self._write({"url": url, "cleared": True})

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
