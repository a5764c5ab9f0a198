"""Word lists for the synthetic deployment: people's names, employers, places (演示数据用词).

Every name made from these is synthetic. Division codes are real (GB/T 2260, read from
python-stdnum's table), so that identity numbers and union codes validate as real ones do.
"""

from __future__ import annotations

import re
from functools import cache

from stdnum import numdb

# The most common surnames, with rough weights (per mille of the population).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 72),
    ("李", 71),
    ("张", 69),
    ("刘", 54),
    ("陈", 45),
    ("杨", 31),
    ("黄", 23),
    ("赵", 22),
    ("吴", 20),
    ("周", 19),
    ("徐", 17),
    ("孙", 15),
    ("马", 14),
    ("朱", 13),
    ("胡", 12),
    ("郭", 11),
    ("何", 11),
    ("林", 11),
    ("高", 10),
    ("罗", 9),
    ("郑", 9),
    ("梁", 8),
    ("谢", 7),
    ("宋", 6),
    ("唐", 6),
    ("许", 6),
    ("韩", 6),
    ("冯", 6),
    ("邓", 6),
    ("曹", 5),
    ("彭", 5),
    ("曾", 5),
    ("肖", 5),
    ("田", 5),
    ("董", 5),
    ("袁", 4),
    ("潘", 4),
    ("于", 4),
    ("蒋", 4),
    ("蔡", 4),
    ("余", 4),
    ("杜", 4),
    ("叶", 4),
    ("程", 4),
    ("苏", 3),
    ("魏", 3),
    ("吕", 3),
    ("丁", 3),
    ("任", 3),
    ("沈", 3),
    ("姚", 3),
    ("卢", 3),
    ("姜", 3),
    ("崔", 3),
    ("钟", 3),
    ("谭", 3),
    ("陆", 3),
    ("汪", 3),
    ("范", 3),
    ("金", 3),
    ("石", 2),
    ("廖", 2),
    ("贾", 2),
    ("夏", 2),
    ("韦", 2),
    ("方", 2),
    ("邹", 2),
    ("熊", 2),
    ("孟", 2),
    ("秦", 2),
    ("邱", 2),
    ("江", 2),
    ("尹", 2),
    ("薛", 2),
    ("闫", 2),
    ("段", 2),
    ("雷", 2),
    ("侯", 2),
    ("龙", 2),
    ("史", 2),
    ("陶", 2),
    ("黎", 2),
    ("贺", 2),
    ("顾", 2),
    ("毛", 2),
    ("郝", 2),
    ("龚", 2),
    ("邵", 2),
    ("万", 2),
    ("钱", 2),
    ("严", 2),
    ("覃", 1),
    ("武", 1),
    ("戴", 1),
    ("莫", 1),
    ("孔", 1),
    ("向", 1),
    ("汤", 1),
    ("欧阳", 1),
    ("诸葛", 1),
)

GIVEN_MALE = (
    "伟",
    "强",
    "磊",
    "军",
    "勇",
    "杰",
    "涛",
    "斌",
    "超",
    "明",
    "刚",
    "平",
    "辉",
    "鹏",
    "华",
    "飞",
    "鑫",
    "波",
    "宇",
    "浩",
    "凯",
    "健",
    "俊",
    "帆",
    "帅",
    "旭",
    "宁",
    "龙",
    "林",
    "洋",
    "建国",
    "志强",
    "永刚",
    "海峰",
    "晓东",
    "文博",
    "子豪",
    "浩然",
    "俊杰",
    "宇轩",
    "建华",
    "国庆",
    "卫东",
    "振华",
    "明辉",
    "天佑",
    "嘉诚",
    "一鸣",
    "思远",
    "立新",
)
GIVEN_FEMALE = (
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "艳",
    "娟",
    "霞",
    "秀英",
    "玲",
    "桂英",
    "丹",
    "萍",
    "红",
    "燕",
    "婷",
    "雪",
    "慧",
    "颖",
    "琳",
    "洁",
    "倩",
    "佳",
    "璐",
    "欣",
    "悦",
    "晶",
    "蕾",
    "莉",
    "梦琪",
    "雨涵",
    "欣怡",
    "诗涵",
    "思琪",
    "晓燕",
    "丽华",
    "美玲",
    "春梅",
    "海燕",
    "婉清",
    "紫涵",
    "佳怡",
    "静怡",
    "雅婷",
    "淑珍",
    "秀兰",
    "月娥",
    "彩霞",
    "文静",
    "一诺",
)

# 字号 (trade names) and 行业 (lines of business) of synthetic employers.
TRADE_WORDS = (
    "西子",
    "之江",
    "钱塘",
    "湖畔",
    "云栖",
    "天目",
    "华立",
    "恒远",
    "鼎盛",
    "瑞丰",
    "新锐",
    "博远",
    "中天",
    "安信",
    "宏达",
    "汇通",
    "启明",
    "晨光",
    "星河",
    "蓝海",
    "青禾",
    "金桥",
    "银泰",
    "百川",
    "明远",
    "正泰",
    "永安",
    "嘉和",
    "德润",
    "宝晟",
    "长运",
    "众创",
    "智联",
    "易达",
    "合力",
    "诚信",
    "万通",
    "华数",
    "精工",
    "文澜",
    "龙井",
    "紫金",
    "白鹭",
    "灵峰",
)
INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("科技", "有限公司"),
    ("信息技术", "有限公司"),
    ("网络科技", "有限公司"),
    ("电子", "股份有限公司"),
    ("精密机械", "有限公司"),
    ("建设工程", "有限公司"),
    ("物业服务", "有限公司"),
    ("餐饮管理", "有限公司"),
    ("食品", "有限公司"),
    ("医药", "股份有限公司"),
    ("商贸", "有限公司"),
    ("文化传媒", "有限公司"),
    ("酒店管理", "有限公司"),
    ("纺织", "有限公司"),
    ("环保科技", "有限公司"),
    ("教育科技", "有限公司"),
    ("汽车服务", "有限公司"),
    ("生物科技", "有限公司"),
)
# Employers whose staff are largely platform workers (新就业形态劳动者).
PLATFORM_INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("物流", "有限公司"),
    ("快递服务", "有限公司"),
    ("供应链管理", "有限公司"),
    ("同城配送", "有限公司"),
    ("网约车服务", "有限公司"),
)

# What a joint base union (联合基层工会) of small employers gathers.
JOINT_UNION_KINDS = (
    "小微企业",
    "商圈",
    "楼宇",
    "园区",
    "社区",
    "市场",
    "餐饮行业",
    "家政服务业",
    "美容美发业",
    "汽车维修业",
)

# 西湖区 (330106): its real streets (街道) and towns (镇).
XIHU_TOWNSHIPS = (
    "北山街道",
    "西溪街道",
    "灵隐街道",
    "翠苑街道",
    "文新街道",
    "古荡街道",
    "西湖街道",
    "留下街道",
    "转塘街道",
    "蒋村街道",
    "三墩镇",
    "双浦镇",
)
# Plausible township and street names for counties whose real list is not kept here.
TOWNSHIP_STEMS = (
    "城东",
    "城西",
    "城南",
    "城北",
    "城关",
    "新城",
    "东湖",
    "南湖",
    "北岸",
    "江滨",
    "临江",
    "白沙",
    "青山",
    "石桥",
    "长乐",
    "永和",
    "新塘",
    "龙山",
    "凤凰",
    "桃源",
    "云溪",
    "清河",
)
TOWNSHIP_KINDS = ("街道", "镇", "乡")

# Home provinces of many migrant workers (农民工) in Zhejiang.
MIGRANT_PROVINCES = ("34", "41", "36", "51", "52", "43", "42", "45", "53", "62")

EXPENSES: tuple[tuple[str, str], ...] = (
    ("501", "职工文体活动"),
    ("501", "三八妇女节活动"),
    ("501", "职工运动会"),
    ("501", "五一劳动节职工活动"),
    ("503", "职工培训"),
    ("50302", "职工之家建设"),
    ("503", "职工疗休养"),
    ("510", "办公用品"),
    ("501", "读书月活动"),
    ("503", "职工体检"),
)


def weighted_surnames() -> tuple[list[str], list[int]]:
    return [s for s, _ in SURNAMES], [w for _, w in SURNAMES]


# Grouping rows of the table, not divisions of their own.
_NOT_DIVISIONS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_BRACKET = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")


def _current_name(text: str) -> str | None:
    """The division's name today, or None when it was abolished ("[-2011]大方县")."""
    last = text.split(",")[-1]
    match = _BRACKET.match(last)
    if match is None:
        return last
    if match.group(2) is not None:
        return None
    return match.group(3)


@cache
def divisions() -> dict[str, str]:
    """Every current division (province, city, county) in GB/T 2260: code -> name."""
    result: dict[str, str] = {}
    for _, province, _, _, rest in numdb.get("cn/loc").prefixes:
        for _, tail, _, props, _ in rest:
            name = _current_name(props.get("county", ""))
            if name and name not in _NOT_DIVISIONS:
                result[province + tail] = name
    return result


def counties_of(prefix: str) -> list[tuple[str, str]]:
    """The current counties, districts and county-level cities under a province or city code."""
    return [
        (code, name)
        for code, name in sorted(divisions().items())
        if code.startswith(prefix) and not code.endswith("00")
    ]


def cities_of(province: str) -> list[tuple[str, str]]:
    return [
        (code, name)
        for code, name in sorted(divisions().items())
        if code.startswith(province) and code.endswith("00") and not code.endswith("0000")
    ]
