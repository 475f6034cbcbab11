"""GcFreeze: start-up objects leave the collector's scans while the engine runs, and come back."""

from __future__ import annotations

import gc

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from snapcrawl.addon import SettingError
from snapcrawl.extensions.gctune import GcFreeze


def test_freezes_at_engine_start_and_unfreezes_at_stop() -> None:
    crawler = get_crawler(settings_dict={"SNAPCRAWL_GC_THRESHOLD": 5000})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    ext = GcFreeze.from_crawler(crawler)
    before = gc.get_threshold()
    kept = [object() for _ in range(1000)]  # alive at engine start: frozen with the rest
    try:
        ext.engine_started()
        frozen = gc.get_freeze_count()
        assert frozen > len(kept)
        assert crawler.stats.get_value("snapcrawl/gc/frozen_objects") == frozen  # type: ignore[union-attr]
        assert gc.get_threshold()[0] == 5000
        # objects made afterwards are still collected: a reference cycle created now goes away
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
        ext.engine_stopped()
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_settings() -> None:
    with pytest.raises(NotConfigured):
        GcFreeze.from_crawler(get_crawler(settings_dict={"SNAPCRAWL_GC_FREEZE": False}))
    with pytest.raises(SettingError, match="SNAPCRAWL_GC_THRESHOLD=-1"):
        GcFreeze.from_crawler(get_crawler(settings_dict={"SNAPCRAWL_GC_THRESHOLD": -1}))
    with pytest.raises(SettingError, match="SNAPCRAWL_GC_THRESHOLD='lots'"):
        GcFreeze.from_crawler(get_crawler(settings_dict={"SNAPCRAWL_GC_THRESHOLD": "lots"}))
