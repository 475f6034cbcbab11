"""Helpers shared by the dedup tests: a real redis-server on a free port, and articles to index."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from snapcrawl.dedup.minhash import Signer
from snapcrawl.dedup.store import Doc
from snapcrawl.items import ArticleItem
from snapcrawl.processors import content_hash, record_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server (no persistence) on 127.0.0.1; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (the test command installs it)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.025)
        else:
            raise RuntimeError(f"redis-server on port {port} did not start")
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


STORY = [
    "市交通运输局昨天宣布，地铁十四号线东段将于本月底开通运营，线路全长二十一公里，共设车站十二座。",
    "沿线居民通勤时间预计缩短半小时，运营初期高峰时段行车间隔为四分三十秒，后续将根据客流逐步加密。",
    "交通部门同步调整了沿线十六条公交线路，新增三条地铁接驳线，方便周边居民换乘。",
    "据预测，东段开通后全线日均客流将达到三十五万人次，有助于缓解城市东部的道路交通压力。",
]
OTHER_STORY = [
    "市交通运输局昨天通报，全市共享单车投放总量将实行动态调控，企业考核结果与投放配额挂钩。",
    "城管部门联合运营企业在主要商圈和地铁站周边划设了两千多个电子围栏停车点，规范停放秩序。",
    "市民发现车辆损坏或乱停放，可以通过城市服务热线进行举报，相关企业须在两小时内处理。",
    "业内人士表示，精细化管理将让城市慢行交通更加有序，也能减少车辆闲置和资源浪费。",
]


def article(url: str, title: str, paragraphs: list[str], language: str = "zh") -> ArticleItem:
    return ArticleItem(url=url, id=record_id(url), title=title, body="\n\n".join(paragraphs), language=language)


def doc(url: str, title: str, paragraphs: list[str], signer: Signer | None = None) -> Doc:
    signer = signer or Signer()
    body = "\n\n".join(paragraphs)
    sig = signer.signature(title, body, "zh")
    assert sig is not None
    return Doc(record_id(url), url, content_hash(title, body), sig, signer.band_keys(sig))


def edited(paragraphs: list[str]) -> list[str]:
    """A re-publisher's copy: one clause reworded, an editor line added (about 10 % edited)."""
    out = list(paragraphs)
    out[1] = out[1].replace("运营初期高峰时段行车间隔为四分三十秒", "首班列车将于早上六点发车")
    return [*out, "（责任编辑：张敏）"]


def as_dict(item: Any) -> dict[str, Any]:
    from itemadapter import ItemAdapter

    return ItemAdapter(item).asdict()
