"""Parametrize tables for every normalisation function in snapcrawl.processors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from snapcrawl import processors as P

CN = "Asia/Shanghai"
# the page's capture time, used for relative and year-less dates
REF = datetime(2024, 9, 24, 17, 45, 8, tzinfo=timezone.utc).astimezone(P.get_zone(CN))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-09-24 15:46:00", "2024-09-24T15:46:00+08:00"),
        ("2024-09-24 15:46", "2024-09-24T15:46:00+08:00"),
        ("2024/9/4 5:06", "2024-09-04T05:06:00+08:00"),
        ("2024.09.24", "2024-09-24T00:00:00+08:00"),
        ("2024年9月24日 15:46", "2024-09-24T15:46:00+08:00"),
        ("2024年09月24日15时46分", "2024-09-24T15:46:00+08:00"),
        ("2024年9月24日", "2024-09-24T00:00:00+08:00"),
        ("2024-09-24T15:46:00+08:00", "2024-09-24T15:46:00+08:00"),
        ("2024-09-24 07:46:00 UTC", "2024-09-24T07:46:00+00:00"),
        ("2024-09-24T07:46:00Z", "2024-09-24T07:46:00+00:00"),
        ("2024-09-24 15:46 +0800", "2024-09-24T15:46:00+08:00"),
        ("2024-09-24 03:46 -05:00", "2024-09-24T03:46:00-05:00"),
        ("Sep 24, 2024 3:46 PM", "2024-09-24T15:46:00+08:00"),
        ("September 24, 2024 at 3:46 pm", "2024-09-24T15:46:00+08:00"),
        ("Sep 24, 2024 3:46 PM UTC", "2024-09-24T15:46:00+00:00"),
        ("24 Sep 2024 12:05 AM", "2024-09-24T00:05:00+08:00"),
        ("Sep 24, 2024", "2024-09-24T00:00:00+08:00"),
        ("09-24 15:46", "2024-09-24T15:46:00+08:00"),  # year from the reference, never 2009
        ("9月24日 15:46", "2024-09-24T15:46:00+08:00"),
        ("12-30 08:00", "2023-12-30T08:00:00+08:00"),  # a year-less date is never in the future
        ("刚刚", "2024-09-25T01:45:08+08:00"),
        ("3小时前", "2024-09-24T22:45:08+08:00"),
        ("30分钟前", "2024-09-25T01:15:08+08:00"),
        ("2天前", "2024-09-23T01:45:08+08:00"),
        ("半小时前", "2024-09-25T01:15:08+08:00"),
        ("昨天 08:30", "2024-09-24T08:30:00+08:00"),
        ("今天 09:15", "2024-09-25T09:15:00+08:00"),
        ("前天 23:00", "2024-09-23T23:00:00+08:00"),
        ("3 hours ago", "2024-09-24T22:45:08+08:00"),
        ("yesterday 08:30", "2024-09-24T08:30:00+08:00"),
        ("  发布于 2024-09-24 15:46:00 ", "2024-09-24T15:46:00+08:00"),
        ("", None),
        (None, None),
        ("暂无", None),
        ("not a date", None),
        ("2024-13-45 10:00", None),  # impossible date
    ],
)
def test_parse_datetime(raw: str | None, expected: str | None) -> None:
    assert P.to_iso(P.parse_datetime(raw, tz=CN, reference=REF)) == expected


def test_parse_datetime_naive_time_read_in_profile_zone() -> None:
    got = P.parse_datetime("2024-09-24 15:46", tz="Europe/London", reference=REF)
    assert P.to_iso(got) == "2024-09-24T15:46:00+01:00"


def test_parse_datetime_dateparser_fallback() -> None:
    # not one of the fast-path shapes; dateparser reads it
    got = P.parse_datetime("Tuesday 24th of September 2024", tz=CN, reference=REF)
    assert got is not None and (got.year, got.month, got.day) == (2024, 9, 24)


def test_bad_zone_is_named() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        P.parse_datetime("2024-09-24", tz="Mars/Olympus")


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("http://Example.COM:80/a.html?from=x", None, "http://example.com/a.html"),
        ("https://example.com:443/a?utm_source=f&utm_medium=r&id=3", None, "https://example.com/a?id=3"),
        ("https://example.com:8443/a", None, "https://example.com:8443/a"),
        ("/keji/1.html?spm=a.b.c#comments", "http://127.0.0.1:8000/x/y.html", "http://127.0.0.1:8000/keji/1.html"),
        ("2.html", "http://s.cn/keji/1.html", "http://s.cn/keji/2.html"),
        ("http://s.cn/a?b=2&a=1", None, "http://s.cn/a?a=1&b=2"),
        ("http://s.cn/a?UTM_Campaign=x&FROM=y", None, "http://s.cn/a"),
        ("http://s.cn/中文.html", None, "http://s.cn/%E4%B8%AD%E6%96%87.html"),
        ("http://s.cn", None, "http://s.cn/"),
        ("  http://s.cn/a  ", None, "http://s.cn/a"),
        ("javascript:void(0)", "http://s.cn/", None),
        ("mailto:a@b.cn", None, None),
        ("#top", "http://s.cn/", None),
        ("", None, None),
        (None, None, None),
        ("ftp://s.cn/a", None, None),
        ("http://", None, None),
    ],
)
def test_canonical_url(url: str | None, base: str | None, expected: str | None) -> None:
    assert P.canonical_url(url, base) == expected


def test_canonical_url_custom_tracking_and_index() -> None:
    assert P.canonical_url("http://s.cn/a?ref=x&id=1", tracking=("ref",)) == "http://s.cn/a?id=1"
    assert P.canonical_url("http://s.cn/a?from=x", tracking=("ref",)) == "http://s.cn/a?from=x"
    assert P.canonical_url("http://s.cn/news/index.html", strip_index=True) == "http://s.cn/news/"
    assert P.canonical_url("http://s.cn/news/index.html") == "http://s.cn/news/index.html"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("暂无", None),
        ("无", None),
        ("unavailable", None),
        ("N/A", None),
        ("http://www.people.com.cn/n1/2024/0924/c1.html?from=x", "http://www.people.com.cn/n1/2024/0924/c1.html"),
        ("原文见 https://news.cn/a.html 。", "https://news.cn/a.html"),
        ("www.xinhuanet.com/a.htm", "http://www.xinhuanet.com/a.htm"),
        ("/local/path.html", None),  # not a URL of its own: no base given
        ("see the paper", None),
    ],
)
def test_original_url(value: str, expected: str | None) -> None:
    assert P.original_url(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\u3000b", "a b"),
        ("\u00a0 a \t\n b\u00a0", "a b"),
        ("工行\u200b北京", "工行北京"),
        ("\ufeff标题", "标题"),
        ("  ", ""),
        (None, ""),
        ("a\u2003\u2009b", "a b"),
    ],
)
def test_normalize_space(text: str | None, expected: str) -> None:
    assert P.normalize_space(text) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("工行北京分行:科技赋能 - 快照资讯网", "工行北京分行:科技赋能"),
        ("某某新闻标题_某某网", "某某新闻标题"),
        ("Bank opens branch | Snap News", "Bank opens branch"),
        ("2024-2025 年度报告", "2024-2025 年度报告"),  # a dash inside the headline stays
        ("短 - 网", "短 - 网"),  # too short to be a headline once cut
        ("A股 - 大涨 - 财经网", "A股 - 大涨"),  # only the last part is the site
    ],
)
def test_strip_site_suffix(title: str, expected: str) -> None:
    assert P.strip_site_suffix(title) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("以上内容为资讯信息快照,由td.fyun.cc爬虫进行采集并收录", "td.fyun.cc"),
        ("This page is a cached snapshot collected by the crawler of Snap.Example.org.", "snap.example.org"),
        ("由 kz.newsnap.cn:8080 采集", "kz.newsnap.cn"),
        ("本站未对信息做任何修改", None),
        (None, None),
    ],
)
def test_collector_host(text: str | None, expected: str | None) -> None:
    assert P.collector_host(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("工商银行北京市分行坚持以人民为中心", "zh"),
        ("The bank opened a new branch in Beijing on Tuesday.", "en"),
        ("华为发布 Mate 70 Pro 手机", "zh"),
        ("", "und"),
        ("12345", "und"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert P.detect_language(text) == expected


def test_content_hash_ignores_spacing_and_width() -> None:
    a = P.content_hash("标题", "第一段。\n\n第二段。")
    assert a == P.content_hash(" 标题 ", "第一段。 第二段。")
    assert a == P.content_hash("标题", "第一段。\u3000第二段。")
    assert a != P.content_hash("标题", "第一段。第三段。")
    assert len(a) == 64 and int(a, 16) >= 0


TEXT_ZH = "以上内容为资讯信息快照，由爬虫进行采集并收录。工商银行北京市分行坚持以人民为中心的价值取向。" * 5


@pytest.mark.parametrize(
    ("encoding", "content_type", "meta", "expected"),
    [
        ("gbk", "text/html; charset=gbk", "", "gb18030"),
        ("gbk", "text/html", '<meta charset="gbk">', "gb18030"),
        ("gb2312", "text/html", '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', "gb18030"),
        ("gbk", "text/html", "", "gb18030"),  # declared nowhere
        ("gb18030", None, "", "gb18030"),
        ("big5", "text/html; charset=big5", "", "big5hkscs"),
        ("big5", None, "", "big5hkscs"),  # declared nowhere
        ("utf-8", None, "", "utf-8"),
        ("gbk", "text/html; charset=utf-8", "", "gb18030"),  # declared wrong
        ("utf-8", "text/html; charset=gbk", "", "utf-8"),  # declared wrong the other way
    ],
)
def test_sniff_encoding(encoding: str, content_type: str | None, meta: str, expected: str) -> None:
    text = (
        TEXT_ZH
        if encoding != "big5"
        else "以上內容為資訊快照，由爬蟲進行採集並收錄。銀行北京分行堅持以人民為中心的價值取向。" * 5
    )
    body = f"<html><head>{meta}</head><body><p>{text}</p></body></html>".encode(encoding)
    got = P.sniff_encoding(body, content_type)
    assert got == expected
    assert text in body.decode(got)
