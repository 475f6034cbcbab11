"""Deterministic corpus of the sample snapshot site.

The crawler, extractor and deduplicator are tested against a site whose every byte is known
in advance, so all text here is either written out verbatim (the seed page, captured from a
real aggregator and reproduced character for character, half-width ``:``/``,`` included) or
generated from :mod:`snapcrawl.sample.vocab` with ``random.Random(CORPUS_SEED)``.  Nothing
depends on the clock, the environment or hash randomisation.

This module only produces data (:class:`Corpus`); :mod:`snapcrawl.sample.render` turns it into
HTML and :mod:`snapcrawl.sample.site` into served pages plus ground truth.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from snapcrawl.sample import vocab

CORPUS_SEED = 20240924
TIME_FMT = "%Y-%m-%d %H:%M:%S"
SITE_NAME = "快照资讯网"
DISCLAIMER_TEMPLATE = (
    "以上内容为资讯信息快照,由{host}爬虫进行采集并收录,本站未对信息做任何修改,信息内容不代表本站立场。"
)
EDITOR_LINE = "责任编辑:王某"
# 城市公园夜间延时开放 (社会 #3) is re-published under /zhuanzai/ with a new headline.
NEAR_DUPLICATE_OF = "shehui/3"

# Generated text uses the same half-width punctuation as the captured seed page.
_HALF_WIDTH = str.maketrans({",": ",", ":": ":", "(": "(", ")": ")", "!": "!", "?": "?", ";": ";"})


def half_width(text: str) -> str:
    """Normalise full-width ASCII-like punctuation the way the aggregator's pages show it."""
    return text.translate(_HALF_WIDTH)


@dataclass(frozen=True)
class Block:
    """One body block: a paragraph (``"p"``) or a sub-heading (``"h"``)."""

    kind: Literal["p", "h"]
    text: str


@dataclass(frozen=True)
class Link:
    """One entry of a 相关资讯 / 更多关于…的资讯 list.

    ``href`` is written into the page verbatim (it may carry tracking parameters or a
    fragment); ``url`` is its canonical form: a site path for internal links, an absolute
    URL for outside outlets.  ``title`` is None for entries the page shows without headline.
    """

    title: str | None
    snippet: str
    date: str
    href: str
    url: str

    @property
    def internal(self) -> bool:
        return self.url.startswith("/")


@dataclass(frozen=True)
class Category:
    """A site section and the markup quirks its pages use (so extractors can't rely on one shape)."""

    slug: str
    label: str
    description: str
    encoding: Literal["utf-8", "gbk"]
    heading_tag: Literal["strong", "h3"]  # sub-heading as <p><strong>…</strong></p> or <h3>
    info_style: Literal["nbsp", "space", "spans"]  # how the 类别/发布时间/来源 line is laid out
    link_category: bool  # category name in the info line is a link to the listing
    indent: bool  # paragraphs start with two ideographic spaces
    empty_original: Literal["plain", "anchor"]  # empty 信息原文地址 as bare label or empty <a href="">


@dataclass(frozen=True)
class Article:
    """Everything shown on one article snapshot page."""

    id: str
    cat: str
    path: str
    title: str
    published: str
    source: str
    reposted_from: str | None
    collector: str
    captured: str
    original_url: str | None
    blocks: tuple[Block, ...]
    related: tuple[Link, ...] = ()
    more: tuple[Link, ...] = ()
    declare_charset: bool = True

    @property
    def text(self) -> str:
        """Body text run together, as aggregator snippets quote it."""
        return "".join(b.text for b in self.blocks)

    @property
    def lead(self) -> str:
        return next(b.text for b in self.blocks if b.kind == "p")

    @property
    def disclaimer(self) -> str:
        return DISCLAIMER_TEMPLATE.format(host=self.collector)


@dataclass(frozen=True)
class BrokenLink:
    """A listing entry whose target is broken: ``kind`` is ``"404"``, ``"500"`` or ``"empty"``."""

    cat: str
    path: str
    kind: Literal["404", "500", "empty"]
    title: str
    snippet: str
    date: str


@dataclass(frozen=True)
class Corpus:
    """The whole site's content for edition 1, plus what edition 2 changes."""

    categories: tuple[Category, ...]
    articles: tuple[Article, ...]  # real category articles, edition 1 (seed first)
    near_duplicate: Article  # re-published copy of ``near_duplicate_of``
    near_duplicate_of: str
    broken: tuple[BrokenLink, ...]
    seed_path: str
    edition2_changed: Article  # replaces the article with the same path
    edition2_new: tuple[Article, ...]

    def category(self, slug: str) -> Category:
        return next(c for c in self.categories if c.slug == slug)


CATEGORIES: tuple[Category, ...] = (
    Category("keji", "科技", "前沿科技、数字经济与创新创业资讯快照",
             "utf-8", "strong", "nbsp", link_category=False, indent=False, empty_original="plain"),
    Category("caijing", "财经", "宏观经济、金融市场与产业动态资讯快照",
             "utf-8", "h3", "space", link_category=True, indent=False, empty_original="anchor"),
    Category("shehui", "社会", "民生热点、城市治理与社会新闻资讯快照",
             "utf-8", "strong", "spans", link_category=False, indent=True, empty_original="plain"),
    Category("tiyu", "体育", "赛事动态、全民健身与体育产业资讯快照",
             "gbk", "h3", "spans", link_category=True, indent=False, empty_original="anchor"),
)


def article_id(key: str) -> str:
    """Stable 16-hex-digit id, shaped like the seed's ``a5123a2fe4da1fb3``."""
    return hashlib.sha1(f"snapcrawl-sample/{key}".encode()).hexdigest()[:16]


def article_path(cat: str, published: str, aid: str) -> str:
    return f"/{cat}/{published[:10].replace('-', '')}/{aid}.html"


# --------------------------------------------------------------------------------------------
# The seed page, verbatim.  Source: a real snapshot page captured as text
# (000_a5123a2fe4da1fb3.txt); the characters below are copied from it unchanged.
# --------------------------------------------------------------------------------------------

SEED_ID = "a5123a2fe4da1fb3"
SEED_PATH = "/keji/20240924/a5123a2fe4da1fb3.html"
SEED_CATEGORY = "科技"
SEED_PUBLISHED = "2024-09-24 15:46:00"
SEED_SOURCE = "人民资讯"
SEED_REPOSTED_FROM = "人民网-北京频道"
SEED_COLLECTOR = "td.fyun.cc"
SEED_CAPTURED = "2024-09-24 17:45:08"
SEED_ORIGINAL_URL: str | None = None  # the page shows an empty 信息原文地址
SEED_TITLE = "工行北京分行:科技赋能与共建共治,筑牢反诈防线"
SEED_BLOCKS: tuple[Block, ...] = (
    Block("p", "面对电信网络诈骗持续高发的态势,工商银行北京市分行坚持以人民为中心的价值取向,以金融科技赋"
               "能涉诈防控,通过人机融合、警银协作等举措,积极推动涉诈风险“早识别、早预警、早发现、早处置”,"
               "为防控电信诈骗提供金融支撑和安全保障。"),
    Block("h", "深化科技赋能,智控模型精准护航"),
    Block("p", "为了实现涉诈交易秒级预警和风险账户实时精准管控,工商银行运用大数据、机器学习、社区挖掘等现"
               "代信息技术手段,打造“融安e核”智能风控系统,基于企业账户属性、资金结算信息等千余个特征,构建"
               "覆盖企业全生命周期、全业务流程的立体化智能反诈监控模型。今年以来,工行北京分行依托“融安e核"
               "”系统,精准识别、及时管控对公风险账户7000个,有强化涉诈风险识别和风险阻断。"),
    Block("h", "强化管理创新,人机融合高效防控"),
    Block("p", "面对电信诈骗手法不断演变升级的严峻形势,工行北京分行把风险防控机制建设作为重点工作,积极推"
               "动科技智能防控与专业化人工识别的深度融合。定期复盘推演各类电诈犯罪作案手法,总结研判涉诈新"
               "特征、新形势,持续开展智能模型迭代更新,确保涉诈账户目标“精准打击”。加强风险长线跟踪分析,通"
               "过风险账户关联挖掘、聚合运算等技术,进一步提高风险提示的有效性和风险动向把控精度,在识别涉"
               "诈团伙作案特征、捕捉账户风险变化形势方面积累了丰富经验。"),
    Block("h", "坚持共建共治,联防联控合力防诈"),
    Block("p", "以“融安e核”风险防控系统为基础,工行北京分行持续构建“内外协同,防治一体”的反诈防线。对外,不"
               "断深化警银协作,在信息共享、联动反应机制建设方面,积极探索联防联控着力点。近年来,线下警银联"
               "动防堵电信诈骗150余起、防止客户资金损失2700余万元。对内,加强跨专业、跨机构协调配合,围绕涉"
               "赌、涉诈资金链治理等重点工作,推动“高效预警-精准识别-迅速治理”全流程风险管理链条顺畅运转,"
               "提升风险防控的科学性、精准性和有效性。今年以来,该行涉案账户数量持续处于北京地区同业低位。"),
    Block("p", "下一步,工行北京分行将始终坚持客户至上,立足当前电信诈骗网络案件发案形势,进一步压实主体责任"
               ",精准研判、精细操作、精确打击,推进电信网络诈骗行业治理、源头治理、综合治理取得更大成效,为"
               "首都金融安全稳定贡献工行力量。"),
)
SEED_DISCLAIMER = (
    "以上内容为资讯信息快照,由td.fyun.cc爬虫进行采集并收录,本站未对信息做任何修改,信息内容不代表本站立场。"
)
NOTICE = "本站信息快照查询为非营利公共服务,如有侵权请联系我们进行删除。"
SEED_RELATED_RAW: tuple[tuple[str | None, str, str], ...] = (
    ("工行北京分行倾力助推首都消费恢复升级",
     "本文转自:北京日报金融“供暖”消费“升温”工行北京分行倾力助推首都消费恢复升级消费回暖的大潮里,涌动着人民"
     "群众的获得感和幸福感,蕴藏着中国经济的强劲韧性。工商银行北京分行锚定“扩",
     "2023-09-29 04:50:00"),
    ("工行北京分行积极培育中国特色金融文化 全力助推金融强国建设",
     "...营之本,立业之基。银行是经营信用与风险的金融企业。工行北京分行将诚实守信融入经营发展,围绕爱国主义"
     "教育、诚信教育、道德教育等加强精神文明建设和企业文化建设,持续打造“诚信工行",
     "2024-07-01 17:23:00"),
    ("工商银行北京市分行:已开展股票回购增持专项再贷款业务10单,投放金额超100亿元",
     "...披露,在人民银行北京市分行的悉心指导与大力支持下,工行北京分行始终将服务资本市场的稳定发展作为重要"
     "使命,以高度的政治责任感和敏锐的市场洞察力,积极开展股票回购增持专项行动。自",
     "2025-04-27 18:54:00"),
    ("工行河北省分行以高质量金融服务助力京津冀协同发展",
     "...1+5+4+33”重点承接平台体系建设,全方位服务河北省承接北京非首都功能疏解,以高质量金融服务助推河北省综"
     "合承载能力不断提升。主动加强与总行及北京、天津分行沟通联络,聚焦服",
     "2024-03-18 17:52:00"),
    ("多家国有大行春招“缩水”,单家最高缩减近1万人,AI研发人才成亮点",
     "...,建设银行河北省分行今年也停止春招,工商银行更是有北京分行、山东分行、湖北分行、河南分行、湖南分行"
     "、深圳分行等6家境内一级分行没有参与春季招聘。进一步来看,即便参与春招的各银",
     "2025-03-14 12:55:00"),
    ("践行金融为民 服务首都民生",
     "本文转自:北京日报践行金融为民 服务首都民生——工行北京分行以首善标准淬炼高质量金融服务秉持为民情怀,满"
     "足人民期待。近年来,工商银行北京分行高标定位落实监管部门和总行要求,以“体",
     "2023-10-01 03:30:00"),
    ("“1000亿元”意向融资 !浙江工行为智能物联产业集群建设助力",
     "...信方案。量身定制线上产品 构建产业链共赢生态圈2008年北京奥运会、第19届杭州亚运会……每一场体育盛事里"
     ",赛场里激烈的比拼都牵动人心。而在赛场外,也有着一场看不见的激烈对抗",
     "2024-08-22 18:27:00"),
    (None,
     "...道为更好地满足老年人、境外来华人员等群体支付需求,工行北京分行在公共出行领域持续创新举措,针对出租"
     "车司机在途巡游零钞兑换不便问题,设置常态化“零钱包”集中兑换点,保障出租车司",
     "2024-04-24 14:55:00"),
    ("打造“新国门”支付服务“新窗口” 工行北京分行大兴国际机场外币兑换机正式上线运营",
     "...说。为解决外籍来华人员“有钱难花”的问题,3月22日,工行北京分行在大兴国际机场境外来宾支付服务中心投放"
     "的外币兑换机正式上线运营。该设备支持客户将外币现钞直接兑换为人民币现金",
     "2024-03-22 17:40:00"),
)
SEED_MORE_RAW: tuple[tuple[str | None, str, str], ...] = (
    (None,
     "从“装满”到“装对” 让“上下楼”变“上下游”杭州日报讯 近日,由上城资本集团产业基金战略投资的北京智谱华章科"
     "技股份有限公司正式在香港联合交易所挂牌上市",
     "2026-01-14 08:22:00"),
    ("新闻纵深丨绿色“充电宝”上线,“捕电之网”更加坚韧",
     "河北南网容量最大的电网侧独立储能项目并网投运绿色“充电宝”上线,“捕电之网”更加坚韧阅读提示2025年12月15"
     "日,位于邢台市信都区的龙岗储能电站并网投运",
     "2026-01-14 08:35:00"),
    ("京东联合中纺协制定软壳冲锋衣团体标准",
     "中国消费者报北京讯(记者桑雪骐)日前,ISPO Beijing 2026亚洲运动用品与时尚展在北京举行。展会期间,软壳冲"
     "锋衣团体标准制定工作正式启动",
     "2026-01-14 09:53:00"),
    (None,
     "厦门网讯(厦门日报记者 林露虹)1月12日,天猫发布《2025年度新品牌发展报告》,报告显示,厦门入围“2025年天猫"
     "十大创牌之城”",
     "2026-01-14 08:54:00"),
    ("一线见闻|异构机器人雄安进“课堂”",
     "1月6日,在中国雄安集团数字城市科技有限公司的具身智能训练场内,数据采集员正对异构机器人进行具身智能训练"
     "。 河北日报记者 刘光昱摄“小雄",
     "2026-01-14 08:46:00"),
    (None,
     "今年伊始,“车厘子价格暴跌”登上热搜。13日,记者走访线下商超发现,今年的车厘子价格确实更加“亲民”,较刚上市"
     "的时候,有的降价幅度接近40%",
     "2026-01-14 09:23:00"),
    (None,
     "工信部发布首批再制造机电产品典型应用案例我省入选数量全国第一河北日报讯(记者米彦泽)近日,工信部公布了"
     "首批再制造机电产品典型应用案例",
     "2026-01-14 07:59:00"),
    (None,
     "出海抢订单实现“开门红”杭州日报讯 在日前举行的2026年美国消费电子展(CES)上,来自嘉兴海宁的莲偶科技(海宁"
     ")有限公司表现抢眼",
     "2026-01-14 06:51:00"),
    (None,
     "每日商报讯 喜讯传来,余杭区中泰中学在2025世界机器人大赛总决赛中再创辉煌!经过激烈角逐,学校学子勇夺一项"
     "冠军、一项二等奖的优异成绩",
     "2026-01-14 07:21:00"),
    (None,
     "央媒看太原1月12日,央视“中国三农报道”栏目,以《年夜饭主打本地风味 预订火爆》为题,报道了太原年夜饭市场"
     "预订情况。报道称",
     "2026-01-14 07:47:00"),
    (None,
     "中国网1月14日讯国家安全部微信公众号14日刊文称,不少用户的手机上都曾收到“XX想给你隔空投送一张照片”的请"
     "求提示,“隔空投送”作为日常分享文件",
     "2026-01-14 07:49:00"),
    ("《2025加盟投资人群洞察报告》:“80后”仍是主力、“00后”快速崛起",
     "中新经纬1月13日电 近日,中国特许加盟展&盟享加发布《2025加盟投资人群洞察报告》,(以下简称“报告”),中新经"
     "纬研究院受权发布",
     "2026-01-13 20:35:00"),
    ("“哭哭马”凭啥“马倒成功”",
     "一只义乌产的马年玩偶,因嘴巴被缝反了方向,从“笑笑马”变成“哭哭马”,却意外成了全网追捧的“团宠”。从网友晒"
     "图引发讨论到疯狂玩梗",
     "2026-01-13 17:04:00"),
    ("苏州工业园区创新协同机制 激发共建研发机构新活力",
     "为进一步推动研发机构面向产业发展需求,加强产学研对接和成果转移转化,让创新资源释放最大价值,近年来,苏州"
     "工业园区科技创新委员会持续探索完善科研机构共建协同机制",
     "2026-01-13 17:20:00"),
    (None,
     "大皖新闻讯 位于灵璧经济开发区的安徽儒特智能装备股份有限公司,依托自主研发的新能源电池固态电解质研磨设"
     "备,实现研磨精度从微米级向纳米级的关键技术突破",
     "2026-01-13 17:27:00"),
)

# Where the seed's related entries point.  Entries whose story is also on this site link to a
# companion article (keys below), some with tracking parameters; the others go to outside
# outlets and must never be fetched.
SEED_RELATED_HREFS: tuple[str, ...] = (
    "companion:A",
    "companion:B?from=related",
    "http://www.people.com.cn/n1/2025/0427/c1004-40467788.html",
    "https://news.example-outlet.cn/202403/18/hb-icbc-jjj.shtml",
    "https://finance.example-daily.com.cn/a/20250314/bank-spring-hiring.html",
    "companion:C#comments",
    "http://zj.people.com.cn/n2/2024/0822/c186327-40953312.html",
    "companion:E",
    "companion:D?utm_source=feed&utm_medium=rel",
)

# Companion articles: the stories behind the seed's internal related entries (财经).  Their
# text is written so that each seed snippet is an exact excerpt of the page it links to.
_COMPANIONS: dict[str, tuple[str, str, str, str | None, tuple[Block, ...]]] = {
    "A": (
        "工行北京分行倾力助推首都消费恢复升级", "2023-09-29 04:50:00", "北京日报", "北京日报",
        (
            Block("h", "金融“供暖”消费“升温”"),
            Block("h", "工行北京分行倾力助推首都消费恢复升级"),
            Block("p", "消费回暖的大潮里,涌动着人民群众的获得感和幸福感,蕴藏着中国经济的强劲韧性。工商银行"
                       "北京分行锚定"
                       "“扩大内需”战略基点,围绕餐饮、文旅、汽车、家居等重点消费场景,推出一系列金融惠民举措,"
                       "以金融“暖流”助推首都消费恢复升级。"),
            Block("p", "在商圈建设方面,工行北京分行与多个重点商圈开展合作,为入驻商户提供收单、结算和融资一"
                       "体化服务,"
                       "并通过满减优惠、分期免息等方式激发居民消费意愿。"),
            Block("h", "科技赋能 打造便民支付场景"),
            Block("p", "依托数字化能力,该行持续优化手机银行和线上商城服务,围绕居民日常生活推出缴费、出行、"
                       "就医等便民场景,"
                       "让金融服务更加触手可及。"),
            Block("p", "下一步,工行北京分行将继续发挥综合金融服务优势,加大对消费领域的信贷支持力度,"
                       "为首都国际消费中心城市建设贡献金融力量。"),
        ),
    ),
    "B": (
        "工行北京分行积极培育中国特色金融文化 全力助推金融强国建设", "2024-07-01 17:23:00", "人民资讯", None,
        (
            Block("p", "近日,工行北京分行召开金融文化建设推进会,部署深入践行中国特色金融文化的具体举措,"
                       "推动金融文化建设与经营发展深度融合。"),
            Block("h", "坚持诚实守信 夯实立业之基"),
            Block("p", "诚实守信是经营之本,立业之基。银行是经营信用与风险的金融企业。工行北京分行将诚实守信"
                       "融入经营发展,"
                       "围绕爱国主义教育、诚信教育、道德教育等加强精神文明建设和企业文化建设,持续打造“诚信"
                       "工行”品牌,"
                       "引导全行员工守信用、担责任、讲道德。"),
            Block("h", "坚持以义取利 践行金融为民"),
            Block("p", "该行坚持把服务实体经济作为根本宗旨,持续加大对科技创新、绿色发展、普惠小微等领域的金"
                       "融支持,"
                       "在服务首都经济社会发展中实现自身高质量发展。"),
            Block("p", "下一步,工行北京分行将持续深化金融文化建设,以实际行动助推金融强国建设。"),
        ),
    ),
    "C": (
        "践行金融为民 服务首都民生", "2023-10-01 03:30:00", "北京日报", "北京日报",
        (
            Block("h", "践行金融为民 服务首都民生"),
            Block("h", "——工行北京分行以首善标准淬炼高质量金融服务"),
            Block("p", "秉持为民情怀,满足人民期待。近年来,工商银行北京分行高标定位落实监管部门和总行要求,"
                       "以“体系化、数字化、场景化”为抓手,持续提升金融服务的覆盖面和便利度,"
                       "让金融发展成果更多更公平惠及首都百姓。"),
            Block("p", "在养老金融领域,该行打造适老化服务网点,配备爱心座椅、老花镜和应急药箱,"
                       "并为行动不便的老年客户提供上门服务。"),
            Block("h", "深耕民生场景 服务触手可及"),
            Block("p", "围绕教育、医疗、社保等民生领域,工行北京分行推出智慧校园、智慧医疗等一批数字化服务方"
                       "案,"
                       "让群众少跑腿、好办事。"),
        ),
    ),
    "D": (
        "打造“新国门”支付服务“新窗口” 工行北京分行大兴国际机场外币兑换机正式上线运营",
        "2024-03-22 17:40:00", "人民资讯", None,
        (
            Block("p", "“下了飞机就能把外币换成人民币现金,非常方便。”刚刚抵达北京的一位外籍旅客在体验后说。"
                       "为解决外籍来华人员“有钱难花”的问题,3月22日,工行北京分行在大兴国际机场境外来宾支付服"
                       "务中心"
                       "投放的外币兑换机正式上线运营。该设备支持客户将外币现钞直接兑换为人民币现金,支持多个"
                       "币种,"
                       "操作界面提供中英文等多种语言。"),
            Block("h", "优化支付服务 提升外籍人员支付便利性"),
            Block("p", "近期,工行北京分行围绕境外来华人员支付需求,在机场、酒店、景区等重点区域加大外卡受理"
                       "终端布放力度,"
                       "并在营业网点设置“零钱包”,满足外籍人员小额现金使用需求。"),
            Block("p", "下一步,该行将持续完善多元化支付服务体系,为境外来宾提供更加便捷、高效的支付服务。"),
        ),
    ),
    "E": (
        "工行北京分行设立常态化“零钱包”兑换点 便利出租车司机找零", "2024-04-24 14:55:00", "北京日报"
                                                                                          "客户端", None,
        (
            Block("p", "北京日报客户端记者 孙宇 通讯员 陈晨报道"),
            Block("p", "为更好地满足老年人、境外来华人员等群体支付需求,工行北京分行在公共出行领域持续创新举"
                       "措,"
                       "针对出租车司机在途巡游零钞兑换不便问题,设置常态化“零钱包”集中兑换点,保障出租车司机"
                       "找零需求,"
                       "进一步提升现金服务水平。"),
            Block("h", "多措并举 优化现金服务"),
            Block("p", "据介绍,“零钱包”按照不同面额进行组合,司机师傅可在营业时间内到指定网点快速兑换,无需"
                       "填写单据。"),
            Block("p", "该行相关负责人表示,将持续做好现金服务工作,推动移动支付与现金支付协调发展,"
                       "为各类群体提供便捷的支付服务。"),
        ),
    ),
}

_SEED_MORE_OUTLETS = (
    "https://news.example-outlet.cn/tech/{d}/{h}.shtml",
    "http://www.people.com.cn/n1/{y}/{md}/c1004-{n}.html",
    "https://www.xinwen-example.cn/article/{h}.html",
)


def _seed_more_href(index: int, snippet: str, date: str) -> str:
    """Outside-outlet URL for a seed 更多 entry; derived from its text so it never changes."""
    h = hashlib.sha1(snippet.encode()).hexdigest()
    return _SEED_MORE_OUTLETS[index % 3].format(
        d=date[:10].replace("-", ""), y=date[:4], md=date[5:7] + date[8:10], h=h[:12],
        n=int(h[:7], 16) % 90000000,
    )


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

_START = datetime(2023, 1, 3, 0, 0, 0)
_END = datetime(2025, 11, 25, 0, 0, 0)
_TRACKING_SUFFIXES = ("", "", "", "", "?from=related", "?utm_source=feed&utm_medium=rel", "#comments")
_OUTLETS = (
    "http://www.people.com.cn/n1/{y}/{md}/c{a}-{b}.html",
    "https://news.example-outlet.cn/{y}{md}/{h}.shtml",
    "http://finance.example-daily.com.cn/a/{y}{md}/{b}.html",
    "https://www.xinwen-example.cn/article/{h}.html",
)
_ORIGINALS = (
    "http://bj.people.com.cn/n2/{y}/{md}/c{a}-{b}.html",
    "https://www.example-news.com.cn/{cat}/{y}{md}/{h}.html",
    "http://news.example-daily.com.cn/{y}-{m}/{d}/content_{b}.htm",
)
# (category, kind, published, title, snippet) of listing entries whose page is broken.
_BROKEN: tuple[tuple[str, Literal["404", "500", "empty"], str, str, str], ...] = (
    ("keji", "404", "2024-06-11 10:20:00", "智慧灯杆集成多种功能 城市道路更“聪明”",
     "一根灯杆集成了照明、监控、环境监测和充电等多种功能,正在成为新型城市基础设施的重要组成部分..."),
    ("caijing", "500", "2023-11-02 16:05:00", "三季度末银行业总资产同比增长 信贷结构持续优化",
     "三季度末,我国银行业金融机构本外币资产总额同比增长,制造业中长期贷款和普惠小微贷款保持较快增速..."),
    ("shehui", "empty", "2025-01-08 08:40:00", "寒潮来袭 多地启动应急响应保障群众温暖过冬",
     "受强冷空气影响,多地气温大幅下降,有关部门启动应急响应,加强供暖、供电和交通保障..."),
)


def _fmt(dt: datetime) -> str:
    return dt.strftime(TIME_FMT)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, TIME_FMT)


def _url(rng: random.Random, templates: tuple[str, ...], when: datetime, cat: str = "") -> str:
    return rng.choice(templates).format(
        y=when.year, m=f"{when.month:02d}", d=f"{when.day:02d}", md=when.strftime("%m%d"), cat=cat,
        a=rng.randint(1000, 99999), b=rng.randint(30000000, 49999999), h=f"{rng.getrandbits(48):012x}",
    )


def _fill(rng: random.Random, template: str, spec: vocab.Spec, published: datetime) -> str:
    before = published - timedelta(days=rng.randint(1, 3))
    text = template.format(
        place=spec.place, org=spec.org, topic=spec.topic, month=before.month, day=before.day,
        n1=rng.randint(2, 60), n2=rng.randint(12, 480), n3=rng.randint(1200, 98000), pct=rng.randint(5, 98),
        small=f"{rng.randint(1, 30) / 10:.1f}", m=rng.randint(2, 11),
    )
    if spec.org.startswith(spec.place):  # "北京北京市教委" reads wrong; say "北京市教委"
        text = text.replace(spec.place + spec.org, spec.org)
    return half_width(text)


def _blocks(
    rng: random.Random, cat: str, spec: vocab.Spec, published: datetime, total: int | None = None
) -> tuple[Block, ...]:
    """3-8 blocks (``total`` forces a count): a lead paragraph, more paragraphs, up to three sub-headings."""
    pools = vocab.POOLS[cat]
    sentences = list(pools.sentences)
    rng.shuffle(sentences)
    headings = list(pools.headings)
    rng.shuffle(headings)
    total = total or rng.randint(3, 8)
    n_heads = rng.randint(0, min(3, (total - 1) // 2)) if total > 3 else rng.randint(0, 1)
    n_paras = total - n_heads
    head_before = set(rng.sample(range(1, n_paras), n_heads))  # never before the lead

    def paragraph(first: str = "", count: int = 2) -> Block:
        parts = [first] if first else []
        for _ in range(count):
            if sentences:
                parts.append(_fill(rng, sentences.pop(), spec, published))
        return Block("p", "".join(parts))

    out = [paragraph(_fill(rng, rng.choice(pools.leads), spec, published), rng.randint(2, 3))]
    # Stay within the sentence pool (20+ templates) so no sentence repeats inside an article.
    low, high = (2, 3) if n_paras <= 5 else (1, 2)
    for i in range(1, n_paras):
        if i in head_before:
            out.append(Block("h", half_width(headings.pop())))
        out.append(paragraph(count=rng.randint(low, high)))
    return tuple(out)


def _draft(
    rng: random.Random, cat: str, key: str, spec: vocab.Spec, published: datetime, total: int | None = None
) -> Article:
    """An article without its link lists (those need the whole corpus)."""
    aid = article_id(key)
    captured = published + timedelta(minutes=rng.randint(25, 2880), seconds=rng.randint(0, 59))
    reposted = rng.choice(vocab.REPOSTED_FROM) if rng.random() < 0.45 else None
    original = None if rng.random() < 0.3 else _url(rng, _ORIGINALS, published, cat)
    return Article(
        id=aid, cat=cat, path=article_path(cat, _fmt(published), aid), title=half_width(spec.title),
        published=_fmt(published), source=rng.choice(vocab.SOURCES[cat]), reposted_from=reposted,
        collector=rng.choice(vocab.COLLECTORS), captured=_fmt(captured), original_url=original,
        blocks=_blocks(rng, cat, spec, published, total),
    )


def _random_time(rng: random.Random) -> datetime:
    span = int((_END - _START).total_seconds()) // 60
    return _START + timedelta(minutes=rng.randint(0, span))


def _excerpt(rng: random.Random, target: Article) -> str:
    """A related-list snippet: mid-body excerpt with leading ``...``, or the 本文转自 run-in."""
    length = rng.randint(72, 88)
    text = target.text
    if target.reposted_from and rng.random() < 0.35:
        return ("本文转自:" + target.reposted_from + text)[:length]
    start = rng.randint(1, max(1, min(len(text) - length, len(text) // 2)))
    return "..." + text[start:start + length - 3]


def _related(rng: random.Random, article: Article, pool: list[Article]) -> tuple[Link, ...]:
    """4-9 entries mixing other pages of this site (some with tracking params) and outside outlets."""
    same = [a for a in pool if a.cat == article.cat and a.path != article.path]
    other = [a for a in pool if a.cat != article.cat]
    used: set[str] = set()
    links: list[Link] = []
    wanted = rng.randint(4, 9)
    for _ in range(100):  # bounded: a pick may be skipped as a repeat
        if len(links) == wanted:
            break
        if rng.random() < 0.65:
            choices = [a for a in (same if rng.random() < 0.7 else other) if a.path not in used]
            if not choices:
                continue
            target = rng.choice(choices)
            used.add(target.path)
            title: str | None = None if rng.random() < 0.2 else target.title
            links.append(Link(title, _excerpt(rng, target), target.published,
                              target.path + rng.choice(_TRACKING_SUFFIXES), target.path))
        else:
            head, lead = rng.choice(vocab.POOLS[article.cat].external)
            if head in used:
                continue
            used.add(head)
            when = _random_time(rng)
            url = _url(rng, _OUTLETS, when)
            start = rng.randint(2, 8)
            snippet = "..." + half_width(lead)[start:start + rng.randint(40, 70)]
            title = None if rng.random() < 0.2 else half_width(head)
            links.append(Link(title, snippet, _fmt(when), url, url))
    return tuple(_ensure_untitled(rng, links))


def _more(rng: random.Random, article: Article, pool: list[Article]) -> tuple[Link, ...]:
    """8-15 same-category entries, all dated after the snapshot time; some without headline."""
    captured = _parse(article.captured)
    later = [a for a in pool if a.cat == article.cat and _parse(a.published) > captured + timedelta(hours=1)]
    later.sort(key=lambda a: a.published)
    return more_links(rng, article, later, 0)


def more_links(rng: random.Random, article: Article, later: list[Article], start: int) -> tuple[Link, ...]:
    """The more-in-category entries drawn from ``later[start:]`` (same-category articles dated after
    the snapshot, oldest first) plus outside outlets; shared with the benchmark site's generator."""
    captured = _parse(article.captured)
    count = rng.randint(8, 15)
    picked = later[start : start + rng.randint(3, 8)]
    links: list[Link] = []
    for target in picked:
        title: str | None = target.title if rng.random() < 0.6 else None
        run_in = target.text if title else target.title + target.text
        links.append(Link(title, run_in[: rng.randint(56, 78)], target.published, target.path, target.path))
    externals = list(vocab.POOLS[article.cat].external)
    rng.shuffle(externals)
    while len(links) < count and externals:
        head, lead = externals.pop()
        when = captured.replace(second=0) + timedelta(minutes=rng.randint(61, 60 * 24 * 40))
        url = _url(rng, _OUTLETS, when)
        title = half_width(head) if rng.random() < 0.6 else None
        run_in = half_width(lead) if title else half_width(head + lead)
        links.append(Link(title, run_in[: rng.randint(56, 78)], _fmt(when), url, url))
    rng.shuffle(links)
    return tuple(_ensure_untitled(rng, links))


def _ensure_untitled(rng: random.Random, links: list[Link]) -> list[Link]:
    """Every list shows at least one headline-less entry and at least one with a headline."""
    if links and all(link.title is not None for link in links):
        i = rng.randrange(len(links))
        link = links[i]
        links[i] = replace(link, title=None)
    return links


def _seed_article() -> Article:
    return Article(
        id=SEED_ID, cat="keji", path=SEED_PATH, title=SEED_TITLE, published=SEED_PUBLISHED,
        source=SEED_SOURCE, reposted_from=SEED_REPOSTED_FROM, collector=SEED_COLLECTOR,
        captured=SEED_CAPTURED, original_url=SEED_ORIGINAL_URL, blocks=SEED_BLOCKS,
    )


def _seed_links(companions: dict[str, Article]) -> tuple[tuple[Link, ...], tuple[Link, ...]]:
    related = []
    for (title, snippet, date), href in zip(SEED_RELATED_RAW, SEED_RELATED_HREFS, strict=True):
        if href.startswith("companion:"):
            key, suffix = href[len("companion:"):][0], href[len("companion:") + 1:]
            path = companions[key].path
            related.append(Link(title, snippet, date, path + suffix, path))
        else:
            related.append(Link(title, snippet, date, href, href))
    more = []
    for i, (title, snippet, date) in enumerate(SEED_MORE_RAW):
        url = _seed_more_href(i, snippet, date)
        more.append(Link(title, snippet, date, url, url))
    return tuple(related), tuple(more)


def build_corpus() -> Corpus:
    """Build the complete, deterministic corpus (same result on every call)."""
    rng = random.Random(CORPUS_SEED)

    companions: dict[str, Article] = {}
    for key, (title, published, source, reposted, blocks) in _COMPANIONS.items():
        aid = article_id(f"caijing/companion-{key}")
        pub = _parse(published)
        captured = pub + timedelta(minutes=rng.randint(40, 600), seconds=rng.randint(0, 59))
        companions[key] = Article(
            id=aid, cat="caijing", path=article_path("caijing", published, aid), title=title,
            published=published, source=source, reposted_from=reposted,
            collector=rng.choice(vocab.COLLECTORS), captured=_fmt(captured),
            original_url=None if key in "CE" else _url(rng, _ORIGINALS, pub, "caijing"),
            blocks=blocks,
        )

    drafts: list[Article] = [_seed_article(), *companions.values()]
    for cat, specs in vocab.SPECS.items():
        for n, spec in enumerate(specs):
            key = f"{cat}/{n}"
            # The story that gets re-published (NEAR_DUPLICATE_OF) is long, as such copies
            # usually are, so one reworded sentence leaves it clearly a near-duplicate.
            total = 8 if key == NEAR_DUPLICATE_OF else None
            drafts.append(_draft(rng, cat, key, spec, _random_time(rng), total))

    # The 体育 (GBK) section has one page that declares no charset anywhere.
    undeclared = [d for d in drafts if d.cat == "tiyu"][5]
    articles: list[Article] = []
    for d in drafts:
        if d.path == SEED_PATH:
            related, more = _seed_links(companions)
            articles.append(replace(d, related=related, more=more))
        else:
            articles.append(replace(d, related=_related(rng, d, drafts), more=_more(rng, d, drafts),
                                    declare_charset=d.path != undeclared.path))

    near_dup_of = next(a for a in articles if a.id == article_id(NEAR_DUPLICATE_OF))
    near_duplicate = _near_duplicate(near_dup_of)

    broken = tuple(
        BrokenLink(cat, article_path(cat, published, article_id(f"broken/{kind}")), kind,
                   half_width(title), half_width(snippet), published)
        for cat, kind, published, title, snippet in _BROKEN
    )

    changed_base = next(a for a in articles if a.cat == "keji" and a.path != SEED_PATH
                        and sum(b.kind == "p" for b in a.blocks) >= 3)
    changed = _edition2_change(changed_base)
    new = []
    for n, spec in enumerate(vocab.EDITION2_SPECS):
        d = _draft(rng, "keji", f"keji/e2-{n}", spec, datetime(2025, 12, 26 + n, 9 + 5 * n, 30, 0))
        new.append(replace(d, related=_related(rng, d, drafts), more=_more(rng, d, drafts)))

    return Corpus(
        categories=CATEGORIES, articles=tuple(articles), near_duplicate=near_duplicate,
        near_duplicate_of=near_dup_of.path, broken=broken, seed_path=SEED_PATH,
        edition2_changed=changed, edition2_new=tuple(new),
    )


def _near_duplicate(original: Article) -> Article:
    """Re-published copy: new headline and URL, one sentence reworded, editor line appended."""
    blocks = list(original.blocks)
    p_index = [i for i, b in enumerate(blocks) if b.kind == "p"][1]
    sentences = blocks[p_index].text.split("。")
    sentences[0] = "记者了解到,这一做法得到了周边居民的普遍认可"
    blocks[p_index] = Block("p", "。".join(sentences))
    blocks.append(Block("p", EDITOR_LINE))
    aid = article_id("zhuanzai/0")
    captured = _parse(original.captured) + timedelta(minutes=5)
    return replace(
        original, id=aid, path=f"/zhuanzai/{aid}.html", title="夜间延时开放 城市公园成市民纳凉好去处",
        captured=_fmt(captured), blocks=tuple(blocks),
    )


def _edition2_change(article: Article) -> Article:
    """Edition 2's update of one article: its last paragraph gains a sentence (same URL)."""
    blocks = list(article.blocks)
    last = max(i for i, b in enumerate(blocks) if b.kind == "p")
    blocks[last] = Block("p", blocks[last].text + "截至发稿时,首批项目已全部完成验收并投入试运行。")
    return replace(article, blocks=tuple(blocks))


# --------------------------------------------------------------------------------------------
# The 专题 section (site variant "js"): pages whose body a script inserts from inline JSON, as
# some aggregators build their pages.  Generated from its own seed so the main corpus above is
# byte-for-byte unchanged whether or not the variant is used.
# --------------------------------------------------------------------------------------------

JS_CATEGORY = Category("js", "专题", "专题报道:正文由页面脚本加载的资讯快照",
                       "utf-8", "h3", "space", link_category=False, indent=False, empty_original="plain")
JS_SEED = 20250301
JS_SPECS: tuple[vocab.Spec, ...] = (
    vocab.Spec("专题|数字政务服务“一网通办”覆盖率持续提升", "上海", "上海市大数据中心", "数字政务"),
    vocab.Spec("专题|智慧农业示范基地引入无人农机作业", "黑龙江", "北大荒农垦集团", "智慧农业"),
    vocab.Spec("专题|城市更新中的老旧小区加装电梯提速", "杭州", "杭州市住房保障和房产管理局", "老旧小区改造"),
    vocab.Spec("专题|新能源汽车下乡活动带动县域消费", "合肥", "安徽省商务厅", "新能源汽车消费"),
)


def build_js_articles(corpus: Corpus) -> tuple[Article, ...]:
    """The 专题 articles (wording from the 科技 pools; own ids, URLs and category; no 本文转自 line)."""
    rng = random.Random(JS_SEED)
    out: list[Article] = []
    for n, spec in enumerate(JS_SPECS):
        d = _draft(rng, "keji", f"js/{n}", spec, _random_time(rng))
        # the link lists draw on the 科技 pools and stories, like a 科技 page's would
        d = replace(d, related=_related(rng, d, list(corpus.articles)), more=_more(rng, d, list(corpus.articles)))
        out.append(replace(d, cat="js", path=article_path("js", d.published, d.id), reposted_from=None))
    return tuple(out)
