"""HTML rendering of the sample site, modelled on the captured aggregator page.

Markup conventions (the extractor's authors rely on these; see the package docstring):

* article: ``h1.title``, ``div.info`` (类别/发布时间/来源 inline), ``div.content`` (first ``<p>`` is
  ``本文转自:…`` when the story was reposted), ``div.disclaimer`` (disclaimer, 快照生成时间, notice,
  信息原文地址), ``div.related`` and ``div.more`` lists;
* link list entry:
  ``<li><a class="t" href>title</a><p class="s">snippet</p><span class="d">date</span></li>``;
  an entry without headline keeps its link on an *empty* ``<a class="t" href="…"></a>``;
* categories differ on purpose (sub-heading tag, info-line layout, paragraph indent, empty
  信息原文地址 form) so that selector-free extraction is exercised.

Text goes through :func:`html.escape`; non-ASCII that GBK lacks is written as entities
(``&nbsp;``, ``&copy;``) so every page can be encoded in its section's charset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape

from snapcrawl.sample.content import NOTICE, SITE_NAME, Article, Category, Link

GENERATOR = "snapcrawl-sample-site"
SUBSCRIBE_PATH = "/subscribe/"
_INDENT = "\u3000\u3000"


def _t(text: str) -> str:
    return escape(text, quote=False)


def _a(value: str) -> str:
    return escape(value, quote=True)


def _head(title: str, charset: str | None) -> list[str]:
    lines = ["<!DOCTYPE html>", '<html lang="zh-CN">', "<head>"]
    if charset:
        lines.append(f'<meta charset="{charset}">')
    lines += [
        f'<meta name="generator" content="{GENERATOR}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_t(title)}</title>",
        "</head>",
        "<body>",
    ]
    return lines


def _nav(categories: Sequence[Category]) -> list[str]:
    lines = [
        f'<div class="header"><a class="logo" href="/">{SITE_NAME}</a></div>',
        '<ul class="nav">',
        '<li><a href="/">首页</a></li>',
        f'<li><a href="{SUBSCRIBE_PATH}">我的订阅</a></li>',
    ]
    lines += [f'<li><a href="/{c.slug}/">{c.label}</a></li>' for c in categories]
    lines.append("</ul>")
    return lines


def _footer() -> list[str]:
    return [
        '<div class="footer">',
        f"<p>Copyright &copy; 2023-2025 {SITE_NAME} 版权所有</p>",
        "<p>本站为资讯信息快照查询服务,快照内容来源于公开网络。</p>",
        "</div>",
        "</body>",
        "</html>",
        "",
    ]


def link_item(link: Link) -> str:
    """One related/more entry; a headline-less entry keeps its href on an empty anchor."""
    extra = "" if link.internal else ' target="_blank"'
    title = _t(link.title) if link.title is not None else ""
    return (
        f'<li><a class="t" href="{_a(link.href)}"{extra}>{title}</a>'
        f'<p class="s">{_t(link.snippet)}</p><span class="d">{link.date}</span></li>'
    )


def _info_line(article: Article, cat: Category) -> str:
    label = f'<a href="/{cat.slug}/">{cat.label}</a>' if cat.link_category else cat.label
    parts = [f"类别:{label}", f"发布时间:{article.published}", f"来源:{_t(article.source)}"]
    if cat.info_style == "spans":
        return '<div class="info">' + " ".join(f"<span>{p}</span>" for p in parts) + "</div>"
    sep = "&nbsp;" if cat.info_style == "nbsp" else " "
    return '<div class="info">' + sep.join(parts) + "</div>"


def _body(article: Article, cat: Category) -> list[str]:
    lines = ['<div class="content">']
    if article.reposted_from:
        lines.append(f"<p>本文转自:{_t(article.reposted_from)}</p>")
    indent = _INDENT if cat.indent else ""
    for block in article.blocks:
        if block.kind == "p":
            lines.append(f"<p>{indent}{_t(block.text)}</p>")
        elif cat.heading_tag == "h3":
            lines.append(f"<h3>{_t(block.text)}</h3>")
        else:
            lines.append(f"<p><strong>{_t(block.text)}</strong></p>")
    lines.append("</div>")
    return lines


def _script_body(article: Article, cat: Category) -> list[str]:
    """An empty body container filled by a script from inline JSON (the 专题 section).

    Without JavaScript the page shows title, info line and disclaimer but no article text.
    """
    data = json.dumps(
        {"blocks": [{"kind": b.kind, "text": b.text} for b in article.blocks]}, ensure_ascii=False
    ).replace("</", "<\\/")
    heading = "h3" if cat.heading_tag == "h3" else "strong"  # <strong> goes inside a <p>, as in _body
    return [
        '<div class="content" id="article-body"></div>',
        "<script>",
        f"var ARTICLE = {data};",
        "(function () {",
        '  var box = document.getElementById("article-body");',
        "  ARTICLE.blocks.forEach(function (b) {",
        f'    var el = document.createElement(b.kind === "h" ? "{heading}" : "p");',
        "    el.textContent = b.text;",
        '    if (el.tagName === "STRONG") { var p = document.createElement("p"); p.appendChild(el); el = p; }',
        "    box.appendChild(el);",
        "  });",
        "})();",
        "</script>",
    ]


def _disclaimer(article: Article, cat: Category) -> list[str]:
    if article.original_url:
        url = _a(article.original_url)
        original = f'<a href="{url}" target="_blank">{_t(article.original_url)}</a>'
    else:
        original = '<a href="" target="_blank"></a>' if cat.empty_original == "anchor" else ""
    return [
        '<div class="disclaimer">',
        f"<p>{_t(article.disclaimer)}</p>",
        f"<p>快照生成时间:{article.captured}</p>",
        f"<p>{_t(NOTICE)}</p>",
        f"<p>信息原文地址:{original}</p>",
        "</div>",
    ]


def _link_list(css: str, heading: str, links: Iterable[Link]) -> list[str]:
    items = [link_item(link) for link in links]
    return [f'<div class="{css}">', f"<h3>{_t(heading)}</h3>", "<ul>", *items, "</ul>", "</div>"]


def article_html(
    article: Article, cat: Category, categories: Sequence[Category], body_script: bool = False
) -> str:
    """A snapshot article page as the aggregator serves it (``body_script``: body inserted by JavaScript)."""
    charset = cat.encoding if article.declare_charset else None
    lines = _head(f"{article.title} - {SITE_NAME}", charset)
    lines += _nav(categories)
    lines += [
        '<div class="main">',
        f'<h1 class="title">{_t(article.title)}</h1>',
        _info_line(article, cat),
        *(_script_body(article, cat) if body_script else _body(article, cat)),
        *_disclaimer(article, cat),
        *_link_list("related", "相关资讯", article.related),
        *_link_list("more", f"更多关于{cat.label}的资讯:", article.more),
        "</div>",
    ]
    lines += _footer()
    return "\n".join(lines)


def listing_path(cat: Category, page: int) -> str:
    """``/keji/`` for page 1, ``/keji/index_2.html`` after it."""
    return f"/{cat.slug}/" if page == 1 else f"/{cat.slug}/index_{page}.html"


def listing_html(
    cat: Category,
    categories: Sequence[Category],
    entries: Sequence[tuple[str, str, str, str]],
    page: int,
    pages: int,
) -> str:
    """One page of a category listing; ``entries`` are (href, title, snippet, date).

    Deliberately has none of an article's markers (no ``h1.title``, info line, disclaimer or
    快照生成时间) so nothing can mistake it for an article.
    """
    suffix = "" if page == 1 else f" 第{page}页"
    lines = _head(f"{cat.label}{suffix} - {SITE_NAME}", cat.encoding)
    lines += _nav(categories)
    lines += ['<div class="main">', f'<h2 class="list-title">{cat.label}资讯</h2>', '<ul class="list">']
    for href, title, snippet, date in entries:
        lines.append(
            f'<li><a href="{_a(href)}">{_t(title)}</a><p>{_t(snippet)}</p>'
            f'<span class="date">{date}</span></li>'
        )
    lines.append("</ul>")
    pager = []
    if page > 1:
        pager.append(f'<a class="prev" href="{listing_path(cat, page - 1)}">上一页</a>')
    for n in range(1, pages + 1):
        pager.append(f"<span>{n}</span>" if n == page else f'<a href="{listing_path(cat, n)}">{n}</a>')
    if page < pages:
        pager.append(f'<a class="next" href="{listing_path(cat, page + 1)}">下一页</a>')
    lines += ['<div class="pager">' + " ".join(pager) + "</div>", "</div>"]
    lines += _footer()
    return "\n".join(lines)


def home_html(categories: Sequence[Category]) -> str:
    """Home page: the channel directory only (so it stays identical across editions)."""
    lines = _head(f"{SITE_NAME} - 资讯信息快照查询", "utf-8")
    lines += _nav(categories)
    lines += ['<div class="main">', "<h2>资讯频道</h2>", '<ul class="channels">']
    for c in categories:
        lines.append(f'<li><a href="/{c.slug}/">{c.label}</a><p>{c.description}</p></li>')
    lines += ["</ul>", "</div>"]
    lines += _footer()
    return "\n".join(lines)


def subscribe_html(categories: Sequence[Category]) -> str:
    """The 我的订阅 page every nav bar links to: neither article nor listing."""
    lines = _head(f"我的订阅 - {SITE_NAME}", "utf-8")
    lines += _nav(categories)
    lines += ['<div class="main">', "<h2>我的订阅</h2>", "<p>请登录后查看您订阅的资讯频道。</p>", "</div>"]
    lines += _footer()
    return "\n".join(lines)


def error_html(status: int, reason: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{status} {reason}</title></head>\n'
        f"<body><h1>{status} {reason}</h1></body></html>\n"
    )
