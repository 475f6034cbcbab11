"""The words snapshot pages use to label their parts, in Chinese and English.

Data, not logic: the generic extractor compiles these into regular expressions once.
A site profile may add labels for a field (``[labels]`` in its TOML).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: field -> labels, most specific first. Labels in ``GENERIC`` are trusted less (see SnapshotPage).
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "category": (
        "所属栏目",
        "所属分类",
        "所属频道",
        "新闻类别",
        "类别",
        "栏目",
        "分类",
        "频道",
        "Category",
        "Section",
        "Channel",
    ),
    "published_at": (
        "发布时间",
        "发表时间",
        "发布日期",
        "发表日期",
        "发文时间",
        "刊发时间",
        "时间",
        "日期",
        "Published at",
        "Published on",
        "Published",
        "Publish time",
        "Publication date",
        "Posted on",
        "Posted",
        "Date",
        "Time",
    ),
    "source": ("文章来源", "新闻来源", "信息来源", "稿件来源", "来源", "出处", "Source"),
    "reposted_from": ("本文转自", "本文转载自", "转载自", "转载于", "转自", "Reposted from", "Republished from", "Via"),
    "captured_at": (
        "快照生成时间",
        "快照生成日期",
        "快照时间",
        "快照日期",
        "采集时间",
        "收录时间",
        "抓取时间",
        "Snapshot taken",
        "Snapshot time",
        "Snapshot generated",
        "Snapshot date",
        "Snapshot created",
        "Cached on",
        "Captured on",
        "Captured at",
        "Captured",
    ),
    "original_url": (
        "信息原文地址",
        "原文链接地址",
        "原文链接",
        "原文地址",
        "原文网址",
        "原始链接",
        "原始地址",
        "文章原址",
        "原文",
        "Original article",
        "Original URL",
        "Original link",
        "Original source",
        "Original",
    ),
}
#: Labels that are too common in running text to trust far from the title.
GENERIC = frozenset({"时间", "日期", "Date", "Time", "原文", "Original", "Posted", "Captured"})
#: Labels of fields snapcrawl does not export; they end the value of a preceding label.
OTHER_LABELS: tuple[str, ...] = (
    "责任编辑",
    "作者",
    "记者",
    "编辑",
    "责编",
    "通讯员",
    "摄影",
    "浏览次数",
    "浏览量",
    "浏览",
    "阅读量",
    "阅读数",
    "点击数",
    "点击量",
    "点击",
    "字号",
    "评论数",
    "评论",
    "标签",
    "关键词",
    "关键字",
    "更新时间",
    "编号",
    "Author",
    "Authors",
    "By",
    "Editor",
    "Tags",
    "Keywords",
    "Views",
    "Updated",
    "Last updated",
    "Words",
)

RELATED_HEADING_RE = re.compile(
    r"^(?:相[关關](?:阅读|閱讀|资讯|資訊|新闻|新聞|文章|推荐|推薦|报道|報道|链接|鏈接|内容|內容|快照|信息)?|"
    r"延伸阅读|延伸閱讀|推荐阅读|推薦閱讀|相关推荐阅读|猜你喜欢|"
    r"Related(?:\s+(?:articles?|stories|news|reading|links|posts|content|coverage))?|See also|"
    r"You may also like|Further reading)\s*[:：]?$",
    re.I,
)
MORE_HEADING_RE = re.compile(
    r"^(?:更多(?:关于|關於)?(?P<cat1>[^\s:：]{1,20}?)的?(?:资讯|資訊|新闻|新聞|文章|内容|內容|快照|信息)|"
    r"同[类類](?:资讯|資訊|新闻|新聞|文章|快照|信息)|同栏目(?:资讯|新闻|文章|信息)?|本[类類](?:资讯|資訊|新闻|新聞|文章|信息)|"
    r"同分类(?:资讯|新闻|文章)|更多(?:资讯|新闻)|"
    r"More\s+(?:in|from|about|on)\s+(?P<cat2>[^:：]{1,40}?)|More\s+(?P<cat3>[^:：]{1,30}?)\s+(?:news|stories|articles))"
    r"\s*[:：]?$",
    re.I,
)
#: Words that make a "更多X资讯" heading generic rather than a category (更多精彩资讯, 更多最新资讯).
NOT_A_CATEGORY = frozenset(
    {"精彩", "最新", "热门", "相关", "推荐", "热点", "latest", "popular", "top", "stories", "news"}
)

DISCLAIMER_ZH_A = re.compile(r"快照|缓存|镜像")
DISCLAIMER_ZH_B = re.compile(r"采集|採集|收录|收錄|爬虫|爬蟲|抓取|自动|自動|收集|蜘蛛|机器人|機器人|程序")
# A (what the page is) and B (how it was made) are disjoint, so a tagline like "news, archived as
# it happened" alone is not a disclaimer
DISCLAIMER_EN_A = re.compile(r"\b(?:snapshots?|cached|cache|mirror(?:ed)?)\b", re.I)
DISCLAIMER_EN_B = re.compile(
    r"\b(?:crawl\w*|collect\w*|captur\w*|archiv\w*|automatic\w*|spider|bot|gathered|indexed|scrap\w*)\b", re.I
)
NOTICE_RE = re.compile(
    r"侵权|侵權|删除|刪除|(?:非营利|非營利|非盈利|公益)性?的?(?:公共)?(?:服务|服務)|版权问题|联系(?:我们|本站)|聯繫我們|"
    r"take\s?down|remov(?:e|al)|infring\w*|non-?profit|public service|copyright (?:holder|owner)|contact us",
    re.I,
)
#: Lines of page furniture that may sit inside an article container.
FURNITURE_LINE_RE = re.compile(
    r"^(?:广告|廣告|推广|推廣|赞助|Advertisement|Sponsored)(?:[\s·:：|].{0,60})?$|"
    r"^(?:分享到|分享至|打印本页|打印|关闭窗口|关闭|返回顶部|收藏|扫一扫|【?字号|"
    r"Share(?: this)?|Print|Back to top|Tweet|Email)\b.{0,40}$",
    re.I,
)
MORE_LINK_RE = re.compile(
    r"^(?:加载更多|載入更多|(?:点击|點擊)?查看(?:更多|全部).{0,12}|更多|更多>+|>+|下一页|上一页|"
    r"more|load more|see more|view all|see all|all|"
    r"view more|more (?:news|stories)|next|"
    r"\d+(?:\s+\d+)*)\s*(?:>>|»|›|…)?$",
    re.I,
)
#: a counter or button alone on a line of an entry card
ENTRY_WIDGET_LINE_RE = re.compile(
    r"^(?:评论|評論|点赞|點讚|分享|收藏|阅读|閱讀|comments?|shares?|likes?)(?:\s*[(（]?\d+[)）]?)?$", re.I
)
#: counters and buttons that cards append to an entry ("评论", "点赞 12", "Comments")
ENTRY_WIDGET_TAIL_RE = re.compile(
    r"(?:\s+(?:(?:评论|評論|点赞|點讚|分享|收藏|阅读|閱讀|comments?|shares?|likes?)(?:\s*[(（]?\d+[)）]?)?"
    r"|(?:详情|詳情|详细|全文|阅读全文|閱讀全文|查看全文|read more|more)\s*(?:>>|»|›|>)?))+$",
    re.I,
)
#: "查看全部 >" / "更多>>" at the end of a list heading's line
HEADING_MORE_SUFFIX_RE = re.compile(
    r"\s*(?:查看全部|查看更多|更多|全部|more|view all|see all)\s*(?:>>|»|›|>|\+)?\s*$", re.I
)
BREADCRUMB_SEP_RE = re.compile(r"\s*(?:>|&gt;|»|›|→|/|＞|>>)\s*")
BREADCRUMB_HOME_RE = re.compile(r"^(?:首页|主页|网站首页|当前位置[:：]?.*|您的位置[:：]?.*|Home)$", re.I)
BREADCRUMB_LEAF = frozenset({"正文", "详情", "内容", "文章", "article", "正文内容", "快照"})
SNIPPET_CLASS_RE = re.compile(r"snippet|summary|desc|abstract|intro|digest|brief|excerpt|zy|jj", re.I)
TITLE_CLASS_RE = re.compile(r"(?:^|[\s_-])(?:title|tit|headline|hd|bt|biaoti)(?:$|[\s_-])", re.I)
DATE_CLASS_RE = re.compile(r"date|time|pubtime|riqi|sj", re.I)


def compile_labels(
    field_labels: Mapping[str, Iterable[str]], other: Iterable[str] = OTHER_LABELS
) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex finding any label followed by a colon, and a label -> field map ("" = other).

    CJK labels need only a colon after them (CJK text has no spaces to delimit words);
    Latin ones must also start a word, so "Update:" never reads as "Date:".
    """
    owner: dict[str, str] = {}
    for fname, words in field_labels.items():
        for w in words:
            owner.setdefault(w.lower(), fname)
    for w in other:
        owner.setdefault(w.lower(), "")
    words_sorted = sorted(owner, key=len, reverse=True)
    cjk = [re.escape(w) for w in words_sorted if not w[0].isascii()]
    latin = [re.escape(w).replace(r"\ ", r"\s+") for w in words_sorted if w[0].isascii()]
    pattern = r"(?:(?P<cjk>" + "|".join(cjk) + r")\s*[:：]|(?<![A-Za-z])(?P<latin>" + "|".join(latin) + r")\s*[:：])"
    return re.compile(pattern, re.I), owner


def compile_label_only(field_labels: Mapping[str, Iterable[str]]) -> re.Pattern[str]:
    """A line that is nothing but a label (its value is in the next element: td, dd, span)."""
    words = sorted({w for ws in field_labels.values() for w in ws} | set(OTHER_LABELS), key=len, reverse=True)
    alt = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"^[【\[]?(?P<label>{alt})[】\]]?\s*[:：]?$", re.I)
