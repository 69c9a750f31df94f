#!/usr/bin/env python3
"""Seeded generator of synthetic 12345-hotline tickets for the 江临市 router.

Method
------
Every ticket is produced by a small stochastic grammar, using nothing but the
Python standard library and ``random.Random``:

1. **Class sizes.**  Departments are ranked by how often a real city hotline
   sees them (``POPULARITY``, most frequent first).  History counts follow an
   exponential decay from ``TOP_COUNT`` down to ``BOTTOM_COUNT`` (a long tail:
   the biggest classes have a few hundred tickets, the smallest ~16).  The test
   split uses the same proportions; the unlabeled "day" is sampled from them.
2. **Scenario.**  Each department has several distinct scenarios (``SCEN``;
   the 12 district/county governments share ``DISTRICT_SCEN`` and are told
   apart only by the place names of their own gazetteer).  A scenario has a
   short title and several phrasings with slots (``{xq}`` 小区, ``{road}``,
   ``{street}``, ``{village}``, ``{time}``, ``{money}``, ``{company}``, ...)
   that are filled from ``SLOTS`` / the gazetteer ``GAZ``.  Many scenarios are
   deliberately confusable across departments, and the label hinges on a
   subtle cue (违建 on an existing roof → 城管, on a construction site → 住建,
   on a rural homestead → 区县政府; 路边违停 → 交警, 停车场收费 → 交通运输局,
   小区车位 → 住建; 邻居夜间吵闹 → 公安, 工地/工厂噪声 → 生态环境, 商户喇叭 →
   城管; 停水 → 自来水公司, 河道 → 水务局, 下水道 → 排水公司; 公司欠薪 → 人社,
   工地欠薪 → 住建 ...).
3. **Wrapping.**  Colloquial openings and closings, caller emotions, the
   operator's transcription style for phone calls ("来电人反映：…诉求：…"),
   occasionally a second phrasing of the same problem, rambling irrelevant
   details (some of them naming *other* departments: "之前打过派出所电话说不归
   他们管"), very short tickets ("停水了") and very long ones.
4. **Noise.**  Homophone typos (的/得, 在/再, 反映/反应 …) at ``TYPO_RATE`` per
   eligible character, dropped characters at ``DROP_RATE``, and genuinely
   ambiguous tickets: with probability ``AMBIG_RATE`` a ticket written from a
   confusable scenario keeps its text but takes the label of a plausible
   partner department (``PARTNERS``) — as real dispatchers disagree too.

5. **No department fits.**  ``make_nofit`` writes tickets that no department in
   the catalogue should get, of four kinds (``NOFIT_KINDS``): ``consult`` (a
   question the operator answers on the spot, often naming a department: "请问市
   公积金中心的电话是多少？"), ``out_of_area`` (a real problem outside 江临市's
   remit, in another city or a national matter, written like a department's
   ticket: "我在杭州打工，…拖欠我三个月工资"), ``incomplete`` (silent, cut off,
   unintelligible calls; "测试") and ``abusive`` (insults, pranks).  They carry
   ``"label": null`` and ``"no_fit": <kind>``; ``NO_FIT_SHARE`` (3%) of the month.
6. **The month** (``write_month``), for the 30-day loop simulation: day 1 is
   ``MONTH_START`` (2026-10-17), day 30 is 2026-11-15.  A small labeled history
   before it (``MONTH_HISTORY_PER_DEPT`` = 5 per department, as the Banking77
   loop, plus 3% no-fit); each day ~``MONTH_PER_DAY`` regular tickets (fewer at
   weekends, more on the typhoon days), whose department mix drifts: every
   ``TOPICS`` entry (typhoon, post-holiday tourism, cold/heating, exams, the
   双十一 shopping festival, year-end wages) has an intensity over the days and a
   gain per department, a department's volume is its base times
   ``1 + sum(gain * intensity)``, and the extra share is written from the
   topic's own seasonal scenarios ("什么时候开始供暖？").  On top, incident
   bursts (``BURSTS``; ``BURST_RATE`` per day plus ``BURST_ANCHORS``): 10–40
   near-identical tickets about one incident at one place (a burst main, a
   flooded road, a whole compound without heating) within a few hours, all to
   one department.  Then 3% no-fit tickets.  A held-out test set
   (``N_MONTH_TEST``) follows the month's average mix, without bursts.

Difficulty knobs: ``TYPO_RATE``, ``DROP_RATE``, ``AMBIG_RATE``, ``SHORT_RATE``,
``LONG_RATE``, ``DISTRACTOR_RATE``, ``PREFIX_DISTRICT_RATE`` (how often the
district name is spelled out next to a 小区/街道 name).

Determinism: independent ``random.Random`` streams derived from ``--seed``:
history, test, day (the original sample, unchanged by the additions), then
nofit, month history, month test, the burst schedule and one per month day; the department list, gazetteer and every choice list
are plain ordered lists, JSON is written with a fixed field order and
``ensure_ascii=False``.  Re-running with the same seed gives byte-identical
files.

Usage::

    python data/generate.py [--seed 42] [--out data/sample]

writes ``history.jsonl`` (~5000 labeled), ``test.jsonl`` (~800 labeled,
held out, different RNG stream), ``day.jsonl`` (~500 unlabeled), ``nofit.jsonl``
(180 no-department tickets) and ``month/`` (``history.jsonl``, ``test.jsonl``,
``day01.jsonl`` … ``day30.jsonl``, every ticket labeled, and ``meta.json``: per
day its date, size, no-fit count and the ids of each burst; per topic its
intensity by day).
"""
import argparse
import datetime
import json
import math
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------- knobs ---
N_HISTORY = 5000
N_TEST = 800
N_DAY = 500
TOP_COUNT = 250          # approx size of the largest class in history
BOTTOM_COUNT = 16        # size of the smallest class in history
TYPO_RATE = 0.05         # per character that has a homophone in TYPOS
DROP_RATE = 0.006        # per character
AMBIG_RATE = 0.05        # ticket relabelled to a confusable partner
VAGUE_RATE = 0.16        # ticket uses a cue-less phrasing shared by several depts
NO_PLACE_RATE = 0.30     # district-gov ticket that names no place ("我们村")
SHORT_RATE = 0.07        # very short tickets
LONG_RATE = 0.12         # long rambling tickets
DISTRACTOR_RATE = 0.12   # mentions another department in passing
PREFIX_DISTRICT_RATE = 0.35

# Popularity rank (most frequent first).  Must contain all 70 ids.
POPULARITY = [
    "urban-mgmt", "housing", "hrss", "market-regulation", "traffic-police",
    "water-supply", "power-supply", "police", "transport", "education",
    "district-linjiang", "district-donghu", "medical-insurance", "ecology",
    "municipal-facilities", "bus-group", "gas", "heating", "district-xishan",
    "health", "real-estate-registry", "sanitation", "mobile", "telecom",
    "drainage", "district-beian", "housing-fund", "commerce", "civil-affairs",
    "fire-rescue", "district-nanpu", "landscaping", "natural-resources",
    "county-qingshi", "tax", "metro", "water-affairs", "postal", "district-xingang",
    "expropriation", "first-hospital", "zone-hitech", "emergency", "cdc",
    "unicom", "county-yunxi", "agriculture", "gov-services", "culture-tourism",
    "petition", "data-bureau", "city-anping", "development-reform", "county-baisha",
    "zone-econ-dev", "highway", "financial-regulation", "veterans",
    "disabled-federation", "justice", "civil-defense", "cable-tv", "sports",
    "women-federation", "trade-union", "tobacco", "industry-it", "finance",
    "science-tech", "meteorology",
]

# ------------------------------------------------------------ gazetteer ---
GAZ = {
    "district-linjiang": dict(name="临江区", streets=["江滨街道", "望江街道", "中山街道", "解放街道"],
                              xq=["滨江花园", "望江苑", "中山新村", "锦绣江南", "临江壹号", "解放路小区"],
                              villages=["沙湾村", "江口社区"], roads=["滨江路", "中山路", "解放大道", "望江路"]),
    "district-donghu": dict(name="东湖区", streets=["湖滨街道", "东风街道", "桃源街道", "月湖街道"],
                            xq=["东湖湾", "月湖名邸", "桃源小区", "东风花园", "翠湖天地", "湖畔人家"],
                            villages=["荷塘村", "东湖渔村"], roads=["东湖路", "东风路", "桃源大道", "月湖北路"]),
    "district-xishan": dict(name="西山区", streets=["西山街道", "枫林街道", "石桥街道", "凤凰街道"],
                            xq=["枫林苑", "西山美庐", "石桥新村", "凤凰城", "山水华庭", "西苑小区"],
                            villages=["石桥村", "松岗村", "凤鸣村"], roads=["西山路", "枫林路", "凤凰大道", "石桥街"]),
    "district-beian": dict(name="北岸区", streets=["北岸街道", "新华街道", "长乐街道", "北站街道"],
                           xq=["北岸明珠", "新华里", "长乐花园", "北站新城", "金色港湾", "铁路二村"],
                           villages=["长乐村", "柳树湾村"], roads=["北岸大道", "新华路", "长乐路", "站前路"]),
    "district-nanpu": dict(name="南浦区", streets=["南浦街道", "白鹭街道", "宝塔街道", "南门街道"],
                           xq=["白鹭洲花园", "宝塔苑", "南门小区", "南浦新城", "幸福里", "紫荆园"],
                           villages=["白鹭村", "南坪村", "塔下村"], roads=["南浦大道", "白鹭路", "宝塔路", "南门街"]),
    "district-xingang": dict(name="新港区", streets=["新港街道", "海关街道", "码头街道", "盐田镇"],
                             xq=["港湾丽都", "海关新村", "码头小区", "蓝湾国际", "新港雅苑", "盐田家园"],
                             villages=["盐田村", "渔港村", "新围村"], roads=["新港大道", "海关路", "码头路", "临港一路"]),
    "county-qingshi": dict(name="青石县", streets=["青石镇", "龙潭镇", "石门乡", "城关镇"],
                           xq=["青石花园", "县委大院", "龙潭新居", "城关小区", "翡翠城"],
                           villages=["龙潭村", "石门村", "上坪村", "下湾村"], roads=["青石大道", "城关路", "龙潭路", "县前街"]),
    "county-yunxi": dict(name="云溪县", streets=["云溪镇", "双河镇", "竹林乡", "溪口镇"],
                         xq=["云溪名苑", "双河小区", "溪口新村", "竹韵家园", "云溪一品"],
                         villages=["双河村", "竹林村", "溪口村", "云峰村"], roads=["云溪大道", "双河路", "溪口街", "竹林路"]),
    "county-baisha": dict(name="白沙县", streets=["白沙镇", "金沙镇", "清水乡", "马坪镇"],
                          xq=["白沙花苑", "金沙湾", "清水小区", "马坪新村", "县医院宿舍"],
                          villages=["金沙村", "清水村", "马坪村", "牛角村"], roads=["白沙大道", "金沙路", "清水街", "马坪路"]),
    "city-anping": dict(name="安平市", streets=["安平街道", "平安镇", "太和镇", "永宁街道"],
                        xq=["安平壹号院", "太和家园", "永宁花园", "平安小区", "安平世纪城"],
                        villages=["太和村", "永宁村", "坝上村"], roads=["安平大道", "太和路", "永宁路", "人民北路"]),
    "zone-hitech": dict(name="高新区", streets=["创新街道", "科技城街道", "软件园社区", "云谷社区"],
                        xq=["科技城花园", "云谷公寓", "创新家园", "人才公寓", "高新枫景"],
                        villages=["云谷村", "科苑社区"], roads=["创新大道", "科技一路", "软件园路", "云谷路"]),
    "zone-econ-dev": dict(name="经开区", streets=["经开街道", "工业园社区", "临港工业园", "金桥街道"],
                          xq=["金桥花园", "经开新城", "工业园宿舍", "金桥人家", "开发区公寓"],
                          villages=["金桥村", "大圩村"], roads=["经开大道", "金桥路", "工业一路", "物流大道"]),
}
GAZ_IDS = list(GAZ.keys())

# ---------------------------------------------------------------- slots ---
SLOTS = {
    "time": ["晚上十一点多", "凌晨一两点", "半夜十二点以后", "晚上十点", "凌晨三点", "早上五点多", "中午", "每天晚上", "昨天夜里", "今天早上"],
    "days": ["三天", "好几天", "一个星期", "半个多月", "两个月", "快一年", "好几个月", "十来天"],
    "money": ["三千多", "8500", "两万多", "一万二", "4600", "五万", "六千", "1.3万", "九千八", "三万七"],
    "month": ["两个月", "三个月", "半年", "四个月", "一年多", "五个月"],
    "company": ["宏达建筑公司", "江临恒通物流有限公司", "鑫源电子厂", "天成商贸公司", "华晟装饰工程公司", "锦程餐饮管理公司",
                "江临美佳超市", "瑞丰纺织厂", "蓝海科技有限公司", "众鑫劳务公司"],
    "builder": ["中建某局", "江临城建集团", "华晟建设", "恒基建筑", "鸿运建设工程公司", "省二建"],
    "developer": ["碧X园", "恒茂地产", "江临置业", "万嘉房地产", "金地华府开发商", "融信"],
    "shop": ["一家奶茶店", "水果店", "手机店", "服装店", "一家超市", "烧烤店", "药店", "理发店", "小饭馆", "便利店"],
    "food": ["卤肉", "牛奶", "面包", "月饼", "外卖", "凉菜", "蛋糕", "零食", "饮料"],
    "bus": ["12路", "K3路", "106路", "28路", "游2路", "B15路", "301路", "7路"],
    "line": ["地铁1号线", "地铁2号线", "地铁3号线", "4号线"],
    "station": ["江临火车站", "市民中心站", "东湖公园站", "中山广场站", "大学城站", "北岸站"],
    "school": ["实验小学", "第三中学", "育才小学", "外国语学校", "第十二中学", "阳光幼儿园", "师范附小"],
    "name": ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"],
    "floor": ["楼上", "隔壁", "楼下", "对门", "楼上那家", "隔壁单元"],
    "bld": ["3栋", "12栋", "5幢", "8号楼", "2单元", "16栋", "7号楼"],
    "num": ["两", "三", "四", "五", "十几", "二十多"],
    "fac": ["化工厂", "塑料厂", "家具厂", "石材加工厂", "食品厂", "电镀厂", "搅拌站", "养猪场"],
    "hospital": ["市中医院", "妇幼保健院", "人民医院", "第二人民医院", "骨科医院"],
    "age": ["七十多岁", "八十多", "六十五", "七十", "九十岁"],
    "tail": ["3321", "0917", "5588", "7264", "1130", "6609"],
    "plate": ["临A", "临B", "临A·D", "临C"],
}


# ------------------------------------------------------------ scenarios ---
# dept id -> list of (title, [phrasings]).  Phrasings may use slots.
S = {}

S["urban-mgmt"] = [
    ("楼顶违建", ["{xq}{bld}顶楼住户最近在楼顶搭钢结构房子，天天在上面电焊，已经搭了一半了。", "我们{xq}有人在楼顶私自加盖一层，彩钢瓦都运上去了，正在施工，这是违章建筑吧。", "举报{bld}的业主在楼顶违建阳光房，正在搭，物业说管不了。"]),
    ("阳台外扩/一楼扩院", ["{xq}一楼住户把院子往外扩了两米多，还在砌墙，占了公共绿地。", "{bld}有户人家把阳台往外挑出去一截，工人这几天一直在弄，存在安全隐患。", "一楼商户在外墙私自开门搭雨棚，现在还在施工。"]),
    ("沿街违建", ["{road}上一家门面在人行道上搭了个铁皮棚子，越搭越大。", "{road}沿街的店铺私搭乱建，把门口都封起来当仓库。"]),
    ("占道经营/流动摊贩", ["{road}{xq}门口每天傍晚一堆流动摊贩摆摊，把路都堵了。", "{road}路口小贩占道经营，卖水果卖菜的占了半条马路，行人只能走机动车道。", "{shop}天天把货摆到人行道上，店外经营，走路都走不过去。", "夜市摆摊摆到{xq}门口，垃圾一地，人都进不去。"]),
    ("商户高音喇叭", ["{road}{shop}门口放个大喇叭循环播放促销广告，从早喊到晚，吵死了。", "{xq}楼下的{shop}用音响招揽生意，声音特别大，白天在家根本没法休息。", "沿街商铺用高音喇叭叫卖“清仓甩卖”，天天放，{road}这一段都能听到。"]),
    ("烧烤油烟", ["{xq}楼下的露天烧烤每天晚上烟熏火燎，油烟直接往楼上飘，窗户都不敢开。", "{road}夜宵摊在路边烧烤，油烟很大，还摆桌子到人行道。"]),
    ("广告招牌/渣土", ["{road}有个户外广告牌摇摇晃晃的，刮风的时候怕掉下来砸人。", "渣土车晚上从{road}过，一路掉泥土，第二天路上全是泥。", "{road}有人乱贴小广告，电线杆上墙上都是办证的牛皮癣。"]),
]
S["housing"] = [
    ("物业服务差", ["{xq}物业不作为，楼道灯坏了半个月都没人修，垃圾也不及时清。", "我们{xq}的物业公司收了物业费什么都不管，保安形同虚设，小区里经常丢电动车。", "投诉{xq}物业，电梯坏了{days}了，物业一直拖着不修，老人上下楼很困难。"]),
    ("物业乱收费/小区停车", ["{xq}物业私自涨停车费，从每月150涨到300，也没开业主大会。", "小区里的车位被外来车辆占了，物业收了停车管理费却不管，业主回来没地方停。", "{xq}物业把消防通道划成车位出租，还收我们业主的临时停车费。", "物业强制收取{money}的装修保证金，还不给开收据。"]),
    ("工地施工扬尘/无证施工", ["{road}那个工地没有围挡，扬尘很大，{xq}的居民家里全是灰。", "{xq}旁边的工地好像没有施工许可证就开工了，工地上也没挂公示牌。", "{builder}在{road}的工地，渣土就堆在路边没有覆盖，工地门口冲洗设备也没有。"]),
    ("工地欠薪", ["我在{builder}承建的{road}项目工地干活，包工头拖欠我们{num}十个农民工工资{money}，快过年了还不给。", "建筑工地的农民工工资被拖欠{month}了，项目是{builder}做的，总包说钱给了劳务班组，劳务班组说没收到。", "我是搞装修木工的，在{xq}二期工地干了{month}，工钱{money}一直拖着。"]),
    ("商品房交房质量", ["{developer}开发的{xq}交房后墙面开裂、屋顶漏水，开发商一直推。", "买的{xq}期房到期不交房，{developer}说资金链有问题，已经延期{month}了。", "新房交付面积比合同少了好几平方，开发商不给说法。"]),
    ("电梯/维修资金/老旧小区改造", ["{xq}电梯经常困人，维保单位来了也修不好，想申请用维修资金换电梯。", "我们{xq}老旧小区改造，外墙保温做得很差，施工队半路走了。", "公租房申请了一年多还没有轮到，想问问保障房的排队进度。"]),
]
S["hrss"] = [
    ("公司欠薪", ["{company}拖欠我{month}工资共{money}元，老板一直说下个月发，现在电话都不接了。", "我在{company}上班，离职{month}了工资还没结清，{money}块。", "我们厂{company}已经{month}没发工资了，车间几十个工人都没拿到钱。"]),
    ("劳动合同/辞退", ["在{company}干了{num}年，一直不签劳动合同，现在突然把我辞退了，也不给经济补偿。", "公司强迫我们自愿离职，不给赔偿金，还威胁不开离职证明。", "{company}试用期随意延长，加班也没有加班费，一天干12个小时。"]),
    ("社保缴纳/养老", ["{company}没给我交社保，入职{month}了一直说在办。", "我想咨询一下养老保险退休手续怎么办，我今年满60了。", "退休金这个月少发了几百块，想问问是什么原因。", "工伤认定申请交上去{days}了，一直没有结果。"]),
    ("社保卡/就业补贴", ["社保卡丢了想补办，去银行说要到人社窗口。", "想问一下灵活就业人员的社保补贴怎么申请。", "大学生创业补贴申请材料交了快{month}还没批下来。", "我参加的职业技能培训结业了，补贴一直没到账。"]),
]
S["market-regulation"] = [
    ("食品安全", ["在{road}{shop}买的{food}已经过期了，还在货架上卖。", "昨天在{xq}门口的小饭馆吃饭，吃完一家人都拉肚子，后厨特别脏。", "点的外卖里吃出了虫子，商家还不承认，平台也不管。", "{shop}卖的{food}没有生产日期，是三无产品。"]),
    ("价格/明码标价/缺斤短两", ["{road}菜市场有摊贩缺斤短两，买两斤只有一斤六两。", "{shop}商品没有明码标价，结账的时候比货架上贵了一倍。", "景区附近的小卖部一瓶水卖十块，价格欺诈。"]),
    ("消费纠纷/商品质量", ["在{shop}买的手机用了三天就坏了，店家不给退也不给换。", "网上买的衣服质量很差，商家拒绝七天无理由退货。", "{company}卖给我的电动车电池是翻新的，虚假宣传。", "买的家电安装后就出问题，售后一直推诿。"]),
    ("药品/特种设备/执照", ["{road}的一家药店卖处方药不要处方。", "商场里的扶梯经常突然停，很危险，也没看到检验合格标志。", "{road}有家店没有营业执照在经营，开了好几个月了。", "想咨询个体工商户营业执照注销要什么材料。"]),
]
S["traffic-police"] = [
    ("道路违停", ["{road}{xq}门口的马路上每天违停一大排车，把公交站都占了。", "有辆{plate}牌照的车停在{road}路边挡住我家门口，打电话也不接，车停了{days}了。", "{road}人行道和非机动车道上全是乱停的车，晚上更严重，希望交警来贴条。", "{school}门口接送孩子的车在马路上随意停放，每天早上堵得水泄不通。"]),
    ("信号灯/标志标线", ["{road}和{road2}交叉口的红绿灯坏了，一直黄灯闪，很危险。", "{road}路口的左转绿灯时间太短了，每次只能过三四辆车。", "{road}的斑马线都磨没了，建议重新画一下，再加个减速带。"]),
    ("交通违法/事故/业务", ["每天晚上{road}有人飙车炸街，声音特别大，改装车。", "我的驾驶证快到期了，想问下换证要带什么。", "前天在{road}发生的交通事故，认定书一直没出来。", "{road}上大货车白天闯禁行，还闯红灯。"]),
]
S["water-supply"] = [
    ("停水", ["{xq}从{time}开始停水了，也没提前通知，什么时候来水？", "我们{bld}又停水了，一个星期停了三次。", "{street}一带全部没水了，是不是管道爆了。"]),
    ("水压/水质", ["{xq}高层水压特别小，{floor}十几楼水龙头只能滴水。", "家里自来水发黄，还有铁锈味，烧开了底下一层沉淀。", "{xq}自来水浑浊，有漂白粉的味道很重，这水能喝吗。"]),
    ("爆管漏水/水表水费", ["{road}路边地下自来水管爆了，水一直往外冒，浪费得很。", "这个月水费突然{money}块，平时才几十，怀疑水表坏了。", "水表井里一直在漏水，水表在转但家里没用水。", "新房想开通自来水户，要准备什么材料，过户怎么办。"]),
]
S["power-supply"] = [
    ("停电", ["{xq}{bld}突然停电了，没有接到任何通知。", "{street}这片从{time}就停电了，冰箱里东西都坏了。", "我们这里一个月停了好几次电，每次几个小时。"]),
    ("电压/线路隐患", ["家里电压不稳，灯一闪一闪的，空调都开不起来。", "{road}有根电线杆歪了，电线垂得很低，快碰到人了。", "{xq}配电箱一直在冒火花，有烧焦味。"]),
    ("电费/电表/报装", ["电费比上个月多了一倍，家里也没多用电，怀疑电表有问题。", "想在自家车位装个充电桩，电力报装怎么申请。", "新房子电表装了{days}还没通电。"]),
]
S["police"] = [
    ("邻居夜间噪音", ["{xq}{floor}的邻居每天{time}还在喝酒唱歌大声吵闹，敲门沟通也没用。", "{floor}住户半夜拖桌子、蹦跳、大吵大闹，严重影响休息，报警好几次了。", "{xq}{bld}有人家里开麻将馆，每天打到{time}，吵得人睡不着。"]),
    ("广场舞/聚众扰民", ["{xq}门口广场跳广场舞的音响开得特别大，晚上九点多还在跳。", "小区旁边有人聚众喝酒闹事，{time}还在大喊大叫。"]),
    ("诈骗/治安", ["我被网上刷单的骗了{money}块，想问问怎么报案。", "{xq}最近老是有人撬门，电动车电瓶也被偷了好几个。", "{road}附近有一家按摩店怀疑有违法活动。", "有人在{xq}里搞传销，天天拉人去开会。"]),
    ("户籍证件/犬只", ["孩子上户口要准备什么材料，派出所让我跑了好几趟。", "身份证丢了，想问补办需要多久，异地能办吗。", "{xq}有人遛大型犬不拴绳，还是禁养犬，把小孩吓哭了。", "办护照的预约一直约不上。"]),
]
S["transport"] = [
    ("出租车/网约车", ["今天坐出租车从{station}到{xq}，司机绕路还不打表，要了我{num}十块。", "{station}门口出租车拒载，说距离太近不拉。", "网约车司机中途把我赶下车，平台客服也不处理。", "出租车司机一路抽烟打电话，还跟乘客议价。"]),
    ("公交线路调整", ["建议在{xq}附近增设一个公交站点，最近的站要走一公里。", "{bus}公交线路调整后不经过{road}了，很多老人出行不方便，能不能恢复。", "希望开通一条从{street}到{station}的公交线路。"]),
    ("停车场收费", ["{road}的一个停车场乱收费，停了半小时收了二十块，也没有收费公示。", "医院旁边的经营性停车场收费标准太高了，还不给开票。", "商场停车场说好免费两小时，结果出来照样收费。"]),
    ("驾校/客运/货运", ["报的驾校收了钱一直不安排练车，也不退费。", "长途汽车站的大巴超载，过道里都坐满了人。", "货车司机想问道路运输证年审在哪里办。"]),
]
S["education"] = [
    ("入学划片/招生", ["我家住{xq}，孩子明年上小学，划片到底是{school}还是别的学校？", "孩子是随迁子女，积分入学的材料都交了，还没分到学位。", "幼升小报名系统打不开，明天就截止了。"]),
    ("学校收费/教师补课", ["{school}老师暗示家长让孩子去他开的补习班，不去就不管孩子。", "{school}强制收取校服费和资料费，还不给收据。", "学校放学太早，又要求家长每天批改作业，负担很重。"]),
    ("校外培训/校园安全", ["{road}有一家培训机构周末给初中生上学科课，还预收了一年的学费。", "孩子在{school}被同学欺负，老师不处理。", "{school}食堂的饭菜很差，孩子吃了好几次肚子痛。"]),
    ("转学/学籍/考试", ["孩子想从外地转学回来，学籍转不过来。", "想咨询今年中考的加分政策。", "孩子高中毕业证丢了，补办证明去哪开。"]),
]
S["medical-insurance"] = [
    ("医保报销", ["我在{hospital}住院花了{money}，医保只报了一点点，比例是不是算错了。", "异地就医备案怎么办，我在外地住院要报销。", "门诊慢特病申请交上去了，审核一直没通过。"]),
    ("医保缴费/医保卡", ["城乡居民医保今年要交多少钱，在哪里交。", "医保卡在药店刷不了，提示状态异常。", "职工医保断缴了{month}，现在补缴还能不能报销。"]),
    ("骗保/集采", ["{road}有个诊所拿病人的医保卡刷药，怀疑骗保。", "集采的药在{hospital}开不到，只能买贵的。"]),
]
S["ecology"] = [
    ("工业废气异味", ["{street}附近的{fac}每天晚上偷偷排废气，味道很刺鼻，{xq}的居民窗户都不敢开。", "{road}那边有一股很浓的化学品臭味，怀疑是{fac}在排放。", "{fac}烟囱冒黑烟，附近的菜叶子上都是灰。"]),
    ("工地/工厂噪声", ["{xq}旁边的工地{time}还在施工打桩，噪音特别大，是不是有夜间施工许可。", "{fac}的机器24小时开着，轰隆隆的噪音隔着几百米都能听见。", "{road}工地晚上浇混凝土，搅拌车和振捣棒的声音吵到凌晨。"]),
    ("污水直排/固废", ["有工厂往{village}旁边的小河里直排污水，河水都变色了，死鱼漂了一片。", "有人在{road}边上偷倒建筑垃圾和化工桶，有危险废物。", "{fac}的污水池渗漏，附近井水都不能喝了。"]),
    ("环评/辐射", ["{xq}楼顶要装通信基站，担心辐射，想问问有没有做环评。", "{road}新建的项目没有环评就开工了，离居民楼很近。"]),
]
S["municipal-facilities"] = [
    ("路面坑洼", ["{road}{xq}门口的路面有个大坑，晚上骑电动车很容易摔。", "{road}的沥青路坑坑洼洼，下雨全是积水坑。"]),
    ("路灯", ["{road}一整段路灯都不亮了，晚上黑漆漆的。", "{road}靠近{xq}的那几盏路灯坏了{days}了。"]),
    ("井盖/人行道", ["{road}人行道上有个井盖缺了，有人掉下去过。", "{road}的井盖松动，车一压就哐当响，半夜吵得很。", "{road}人行道地砖翘起来好多块，老人容易绊倒。", "过街天桥的扶手断了，栏杆摇摇晃晃。"]),
]
S["bus-group"] = [
    ("司机服务/甩站", ["{bus}公交车到{station}不停车，我在站台招手他直接开过去了。", "{bus}司机态度很差，老人上车还没坐稳就急刹车，还骂人。", "{bus}公交车司机开车打电话，车开得很猛。"]),
    ("发车间隔/车况", ["{bus}等了四十分钟才来一辆，发车间隔太长了。", "{bus}车上空调不开，夏天闷死了。", "{bus}末班车提前开走了。"]),
    ("公交卡/乘车码", ["公交卡充值了钱没到账。", "老年卡刷卡提示失效，怎么续期。", "乘车码扫了两次扣了两次钱。"]),
]
S["gas"] = [
    ("燃气泄漏", ["{xq}{bld}楼道里有很浓的燃气味，怀疑漏气了，快来看看！", "家里燃气表那边一直有煤气味。", "{road}路边好像燃气管道漏气了，闻到很大的味道。"]),
    ("停气/开通", ["{xq}停气了，做不了饭，什么时候恢复？", "新房想开通燃气点火，预约了{days}还没人来。"]),
    ("燃气费/安检/改造", ["燃气费突然多扣了几百块，燃气表是不是有问题。", "燃气公司上门安检强制要求换燃气报警器，收费{num}百块，这合理吗？", "小区燃气管道改造挖开了一个月没恢复。"]),
]
S["heating"] = [
    ("暖气不热", ["{xq}暖气一点都不热，室温才十四度，家里有老人和孩子。", "{bld}暖气片上面热下面凉，温度不达标。", "今年供暖以来暖气就是温的，打热力公司电话没人来。"]),
    ("暖气漏水/管网", ["暖气管道漏水，把楼下邻居家都泡了。", "{road}供热管网维修挖开了好多天。"]),
    ("供热费/报停", ["房子没人住想申请报停供暖，怎么办理。", "供热费今年怎么涨了，按面积收费算得不对。"]),
]
S["health"] = [
    ("医院服务/医疗纠纷", ["{hospital}的医生态度很差，问两句就不耐烦。", "我父亲在{hospital}做完手术出现并发症，医院不承认有责任。", "{hospital}开了一大堆不必要的检查，花了{money}。"]),
    ("非法行医/诊所", ["{xq}附近有个诊所没有资质，还在给人输液。", "{road}有人在小旅馆里搞非法医美注射。"]),
    ("出生证明/托育/饮用水卫生", ["孩子的出生医学证明名字写错了，怎么改。", "{xq}的二次供水水箱很久没清洗，想让卫生监督的人查一下。", "想咨询一下二孩三孩的育儿补贴政策。", "{road}一家托育机构环境很差，孩子老生病。"]),
]
S["real-estate-registry"] = [
    ("办证难", ["{xq}交房{num}年了，房产证到现在还办不下来。", "{developer}开发的{xq}一直没有办理首次登记，业主都拿不到不动产权证。"]),
    ("过户/抵押/查档", ["二手房过户要准备哪些材料，要多久。", "房贷还完了，抵押登记怎么注销。", "想查一下我名下有没有房产，查档在哪里办。", "不动产登记大厅预约号一直约不上。"]),
]
S["sanitation"] = [
    ("垃圾清运", ["{xq}门口的垃圾桶满了{days}都没人清运，臭气熏天。", "{road}的垃圾中转站味道太大了，夏天苍蝇乱飞。"]),
    ("道路保洁/公厕", ["{road}的公共厕所太脏了，没有水也没有纸。", "{road}路面好几天没人扫，落叶垃圾一大堆。", "环卫车每天{time}就开始作业，声音太大了。"]),
]
S["mobile"] = [
    ("信号差", ["{xq}移动信号特别差，在家里打电话都听不清。", "{street}这一片移动4G经常没信号。"]),
    ("资费/扣费", ["移动给我开了个什么业务，每月多扣十几块，我根本没办过。", "移动营业员忽悠我办了合约机，现在想取消说要违约金。", "想携号转网，移动一直说不符合条件。"]),
    ("宽带", ["移动宽带三天两头断网，报修了也没人来。"]),
]
S["telecom"] = [
    ("宽带断网", ["电信宽带断网{days}了，报修没人来。", "{xq}电信宽带网速特别慢，晚上根本打不开视频。"]),
    ("套餐扣费/销户", ["电信每个月多扣我{num}十块，说是增值业务。", "想把电信固话销户，营业厅说要回办理地。", "电信营业厅工作人员态度恶劣。"]),
]
S["unicom"] = [
    ("联通问题", ["联通手机卡突然停机了，我明明有话费。", "联通宽带合约到期了还在扣费。", "{xq}联通信号一格都没有。", "联通营业厅给老人办了两张副卡，每月扣费。"]),
]
S["drainage"] = [
    ("下水道堵塞/污水外溢", ["{xq}门口的下水道堵了，污水漫到路面上，臭得不行。", "{road}窨井一直往外冒污水，好几天了。", "{xq}外面的市政污水管堵塞，小区的化粪池满溢出来。"]),
    ("道路积水", ["一下雨{road}就积水，水深到膝盖，雨水井都堵了。", "{road}地下通道积水排不出去，车都过不了。"]),
]
S["housing-fund"] = [
    ("公积金", ["{company}不给我们缴住房公积金。", "想提取公积金付房租，需要什么手续。", "公积金贷款审批交上去{days}了还没放款。", "离职回老家了，公积金怎么转移或者销户提取。", "公积金APP上显示单位欠缴了{month}。"]),
]
S["commerce"] = [
    ("预付卡跑路", ["{road}那家健身房突然关门了，我办的会员卡还有{money}没用完，老板跑了。", "在{xq}楼下理发店充了{money}的卡，现在店关了联系不上人。", "美容院倒闭了，我充值的{money}不退，还让我去另一家店转卡。", "洗车店办的年卡，现在说换老板了以前的卡不认了。"]),
    ("消费券/报废车/回收", ["政府发的消费券领了用不了，商家说没参加活动。", "汽车报废回收的补贴怎么申请。", "{road}的农贸市场改造停了半年，摊位都没地方摆。"]),
]
S["civil-affairs"] = [
    ("低保/救助", ["我家困难，想申请低保，街道说不符合条件。", "{road}桥洞下面住着一个流浪汉，天冷了能不能救助一下。", "临时救助申请交了{month}没有消息。"]),
    ("养老/高龄津贴", ["我妈{age}了，高龄津贴一直没发。", "{road}养老院护工虐待老人，伙食也很差。"]),
    ("婚姻殡葬", ["想问一下婚姻登记要不要预约。", "公墓收费太贵了，一个墓位要{money}，还收管理费。"]),
]
S["fire-rescue"] = [
    ("消防通道", ["{xq}消防通道被车堵得死死的，真着火了消防车根本进不来。", "{road}商场安全出口被锁住了，还堆满了货物。"]),
    ("楼道堆物/电动车充电", ["{xq}{bld}楼道里堆满了杂物，还有人拉电线给电动车充电，太危险了。", "有人把电动车推进电梯上楼充电。"]),
    ("消防设施", ["{xq}的消防栓没有水，灭火器都过期了。", "{road}一家KTV消防设施不齐全，疏散通道被堵。"]),
]
S["landscaping"] = [
    ("行道树", ["{road}的行道树树枝断了挂在半空，随时会掉下来砸人。", "{xq}外面路边的树长得太高，挡住了我家窗户采光，能不能修剪一下。", "台风把{road}的一棵大树刮倒了，横在人行道上。"]),
    ("绿地/公园", ["{road}的公共绿地被人毁了种菜。", "公园里的座椅和凉亭坏了很久了。", "有人在{road}绿化带里砍树。"]),
]
S["natural-resources"] = [
    ("规划/间距采光", ["{xq}对面新盖的楼离我们太近了，把采光全挡住了，这符合规划吗？", "{developer}擅自变更规划，原来的绿地改成了商业楼。"]),
    ("非法占地/采矿", ["{village}有人非法占用基本农田建厂房。", "{village}后山有人偷偷开山采石。"]),
    ("征地/地名", ["{village}的土地要被征收，想查一下征地批文。", "{road}的路名牌写错了。"]),
]
S["tax"] = [
    ("发票", ["在{shop}消费了{money}，店家拒绝开发票。", "开票的时候商家说要加收税点。"]),
    ("个税/申报", ["个税APP上多了一个我不认识的任职单位。", "个税汇算退税一直显示审核中。", "小规模纳税人季度申报怎么操作。"]),
    ("社保费缴纳", ["城乡居民养老保险在税务APP上怎么缴费。"]),
]
S["metro"] = [
    ("地铁运营/服务", ["{line}早高峰太挤了，能不能加密班次。", "{line}{station}的电梯坏了好几天，老人拎东西上不去。", "{station}安检员态度很差。", "{line}车厢空调太冷了。"]),
    ("票务/施工", ["地铁扫码进站扣了两次钱。", "{line}施工围挡占了{road}半条路。"]),
]
S["water-affairs"] = [
    ("河道", ["{village}旁边的河道里全是垃圾，水都发臭了，河长也不管。", "{road}旁边的河里有人非法采砂，晚上挖沙船一直在作业。", "{village}的河堤有一段塌了，汛期很危险。"]),
    ("防汛/水库", ["{village}上游的水库是不是要泄洪，下游的村民需要转移吗。", "汛期到了，{street}的防汛沙袋准备好了吗。"]),
    ("取水/节水/政策", ["二次供水的改造是谁负责，想咨询政策。", "有企业私自打井取地下水。", "阶梯水价的用水量是怎么核定的。"]),
]
S["postal"] = [
    ("快递", ["快递显示已签收但我根本没收到。", "快递员从来不送货上门，直接放驿站还要收费。", "快递柜超时收费，我才放了一天就要钱。", "寄的东西被快递公司摔坏了，理赔不给处理。", "{xq}的快递驿站乱收取件费，一件一块钱。"]),
]
S["expropriation"] = [
    ("征收补偿", ["{road}旧城改造，我家房子被征收，评估价太低了。", "{xq}拆迁{month}了，过渡费一直没发。", "征收安置房到现在还没有交付，说好的两年。", "房屋征收的补偿方案没有公示就让签字。"]),
]
S["first-hospital"] = [
    ("市一院", ["市一院挂号太难了，专家号一放出来就没了。", "在市第一人民医院门诊排队排了三个小时。", "一院的护士态度很差，家属问个问题都被吼。", "市一医院做核磁要等一个月，能不能快一点。", "市一院住院收费清单里有很多没用过的项目。"]),
]
S["emergency"] = [
    ("安全生产", ["{company}车间工人不戴防护，机器没有安全罩，已经有人受伤了。", "{village}有个小作坊违规生产烟花爆竹。"]),
    ("危化品/非法加油", ["{road}有人用油罐车在路边非法卖柴油。", "{fac}的危险化学品露天堆放。"]),
    ("防灾减灾", ["{street}的应急避难场所被占用做停车场了。", "受灾后的救助物资怎么申请。"]),
]
S["cdc"] = [
    ("疫苗/传染病", ["孩子打疫苗在哪里预约，社区医院说没有苗。", "被狗咬了，狂犬疫苗要打几针。", "流感疫苗今年什么时候可以打。"]),
    ("消杀", ["{xq}老鼠特别多，能不能安排消杀。", "{village}蚊子太多了，担心登革热。"]),
]
S["gov-services"] = [
    ("政务大厅服务", ["政务服务中心窗口工作人员态度很差，材料反复让我补。", "去{area}政务大厅办事排队排了一上午，窗口只开了两个。", "办个营业执照跑了四趟还没办好，说好的最多跑一次呢。"]),
]
S["data-bureau"] = [
    ("政务APP故障", ["江临通APP一直登录不上，提示系统错误。", "政务服务网上办事，提交材料一直卡在上传页面。", "电子证照在江临通里调不出来，窗口又要求出示。"]),
]
S["agriculture"] = [
    ("农资/补贴", ["在{village}买的种子是假的，出苗率不到三成。", "耕地地力补贴今年没有发到我们{village}。"]),
    ("动物防疫/病死畜禽", ["有人往{village}的河边扔病死猪。", "{village}的私人屠宰点没有检疫。"]),
    ("人居环境", ["{village}的农村旱厕改造搞了一半没人管了。"]),
]
S["culture-tourism"] = [
    ("旅游", ["跟旅行社报团游，导游强制购物，不买就甩脸色。", "景区门票涨价了，也没有公示。"]),
    ("文化市场", ["{road}的网吧让未成年人进去上网。", "{road}的KTV营业到凌晨，还有未成年人。", "图书馆开放时间能不能延长到晚上。"]),
]
S["petition"] = [
    ("重复投诉不满", ["我这个问题已经反映过{num}次了，每次都回复已处理，实际根本没解决，要求复查。", "对上次的处理结果不满意，部门之间互相推诿，我要求信访局督办。", "我上个月的信访件到现在没有回复。"]),
]
S["development-reform"] = [
    ("价格政策/项目", ["阶梯电价的标准是谁定的，我们家人多不合理。", "{road}那个重点工程停工一年了，什么时候复工。", "政府定价的停车收费标准什么时候调整。", "企业想做信用修复，去哪里申请。"]),
]
S["highway"] = [
    ("公路", ["{village}通往县城的公路坑坑洼洼，货车把路都压坏了。", "国道边上有人堆放砂石，占了半个车道。", "{village}那段县道的桥护栏断了。", "超载的货车天天从{village}的乡道过。"]),
]
S["financial-regulation"] = [
    ("非法集资/催收", ["{company}承诺年化百分之二十的高收益，现在老板跑了，我们投了{money}。", "网贷平台暴力催收，打电话骚扰我通讯录里的人。", "{road}有一家公司专门骗老人投资养老项目。"]),
]
S["veterans"] = [
    ("退役军人", ["我是退役军人，想咨询退役军人优待证怎么办理。", "我家的光荣牌一直没有挂。", "参战退役人员的补助今年少发了。", "退役士兵安置的岗位一直没落实。"]),
]
S["disabled-federation"] = [
    ("残疾人", ["孩子自闭症，残疾儿童康复救助怎么申请。", "残疾人证评残预约不上。", "重度残疾人护理补贴停发了{month}。", "申请的轮椅辅具一直没发下来。"]),
]
S["justice"] = [
    ("法律援助/律师公证", ["我想申请法律援助，打官司没钱请律师。", "律师收了我{money}代理费什么都没做。", "公证处办个公证要这么多材料。", "社区矫正人员在{xq}又在闹事。"]),
]
S["civil-defense"] = [
    ("人防工程", ["{xq}的人防地下室被开发商当车位卖了，这合法吗？", "人防车位的管理费收得太高了。", "昨天防空警报响了，是不是在试鸣？", "人防工程漏水，地下车库一直积水。"]),
]
S["cable-tv"] = [
    ("有线电视", ["有线电视没信号了，机顶盒一直显示无信号。", "有线电视收视费涨了，还强制捆绑宽带。", "广电机顶盒坏了，维修要收费吗。"]),
]
S["sports"] = [
    ("体育设施", ["{xq}旁边公园的健身器材坏了，有老人受伤。", "体育中心游泳馆收费太贵，还没有救生员。", "体育馆周末对外开放时间太短了。"]),
]
S["women-federation"] = [
    ("家暴/妇女权益", ["我老公经常打我，我想申请人身保护令，不知道找谁。", "面试的时候公司问我有没有结婚生孩子，说女的不要。", "离婚后孩子抚养费对方一直不给。"]),
]
S["trade-union"] = [
    ("工会", ["单位扣了工会会费，但是从来没有发过福利。", "我们是困难职工，想申请工会的帮扶。", "公司没有成立工会，怎么组建。"]),
]
S["tobacco"] = [
    ("烟草", ["{road}的便利店卖烟给未成年人。", "{xq}楼下的小卖部卖假烟。", "想开个烟酒店，烟草专卖零售许可证怎么办。"]),
]
S["industry-it"] = [
    ("工信", ["我们企业想申报专精特新，要什么条件。", "工业企业的技改补贴什么时候兑现。", "收音机里老是有黑广播在卖药。"]),
]
S["finance"] = [
    ("财政", ["政府采购项目评标不公平，我们要投诉。", "财政补贴资金说好今年发，一直没到账。", "行政事业单位收费不开财政票据。"]),
]
S["science-tech"] = [
    ("科技", ["高新技术企业认定的申报时间是什么时候。", "科技型中小企业研发费用补贴怎么申请。", "科技项目资金拨付进度慢。"]),
]
S["meteorology"] = [
    ("气象", ["想开一个气象证明，证明那天下了暴雨。", "天气预报说没雨，结果下了大暴雨，预报太不准了。", "新建厂房的防雷检测去哪里做。"]),
]

DISTRICT_SCEN = [
    ("宅基地违建", ["{street}{village}有村民在宅基地上违规建了三层楼，还在往上加盖。", "{village}有人占用村集体土地建房，村委会不管。", "我们{village}邻居家在宅基地上建房超高超面积，挡了我家路。"]),
    ("村务/村干部", ["{street}{village}的村务一直不公开，集体土地租金去哪了没人知道。", "{village}村干部优亲厚友，低保都给了自己亲戚。", "{village}的村委会选举有问题。"]),
    ("社区/街道事务", ["{street}的社区工作人员态度差，开个证明推来推去。", "{street}{xq}是老旧小区，没有物业，垃圾没人管，街道也不管。", "{street}背街小巷路灯少、路面破，希望街道整治一下。"]),
    ("集体土地拆迁", ["{village}集体土地征收，安置补偿标准跟隔壁村不一样。", "{street}{village}拆迁的安置房一直没建好，过渡费也停了。"]),
    ("邻里纠纷/综合", ["{xq}邻居在公共过道装门占为己有，社区调解不了。", "{street}的{xq}楼栋门口有人养了很多鸡鸭，卫生太差。", "{village}修路占了我家的地，没有任何补偿。"]),
]

SHORTS = {
    "water-supply": ["停水了", "没水了", "水压小", "{xq}停水", "又停水了？"],
    "power-supply": ["停电了", "没电了", "{xq}停电", "电压不稳"],
    "gas": ["有燃气味", "煤气味很大", "停气了"],
    "heating": ["暖气不热", "暖气不热啊", "暖气漏水"],
    "telecom": ["电信宽带断网"], "mobile": ["移动没信号"], "unicom": ["联通停机"],
    "municipal-facilities": ["路灯不亮", "{road}井盖没了", "路灯坏了"],
    "traffic-police": ["{road}红绿灯坏了", "有车堵我家门口", "违停"],
    "police": ["楼上太吵", "邻居吵架", "{xq}有人打架"],
    "urban-mgmt": ["占道经营", "{road}有人摆摊", "有人违建"],
    "sanitation": ["垃圾没人收", "公厕太脏"],
    "drainage": ["下水道堵了", "{road}积水"],
    "housing": ["物业不管事", "投诉物业"],
    "hrss": ["老板欠工资", "拖欠工资"],
    "bus-group": ["{bus}不停站", "{bus}半天不来"],
    "cable-tv": ["电视没信号"],
    "market-regulation": ["买到过期食品"],
}

# Confusable partners used for genuinely ambiguous tickets (and by design the
# scenarios above overlap in vocabulary along these edges).
PARTNERS = {
    "urban-mgmt": ["housing", "sanitation", "municipal-facilities", "natural-resources", "landscaping"],
    "housing": ["urban-mgmt", "hrss", "real-estate-registry", "fire-rescue"],
    "hrss": ["housing", "trade-union", "medical-insurance"],
    "market-regulation": ["commerce", "health", "development-reform"],
    "commerce": ["market-regulation"],
    "traffic-police": ["transport", "housing", "municipal-facilities"],
    "transport": ["traffic-police", "bus-group", "development-reform"],
    "bus-group": ["transport"],
    "police": ["ecology", "urban-mgmt"],
    "ecology": ["police", "housing", "water-affairs"],
    "water-supply": ["water-affairs", "drainage"],
    "water-affairs": ["water-supply", "ecology"],
    "drainage": ["water-supply", "municipal-facilities"],
    "municipal-facilities": ["urban-mgmt", "highway", "drainage"],
    "highway": ["municipal-facilities"],
    "health": ["first-hospital", "cdc", "medical-insurance"],
    "first-hospital": ["health"],
    "medical-insurance": ["health", "hrss"],
    "telecom": ["mobile", "unicom"], "mobile": ["telecom", "unicom"], "unicom": ["telecom", "mobile"],
    "sanitation": ["urban-mgmt"],
    "landscaping": ["urban-mgmt"],
    "fire-rescue": ["emergency", "housing"],
    "emergency": ["fire-rescue"],
    "real-estate-registry": ["housing"],
    "expropriation": ["natural-resources"],
    "gov-services": ["data-bureau"], "data-bureau": ["gov-services"],
    "civil-affairs": ["disabled-federation"],
    "women-federation": ["police"],
    "trade-union": ["hrss"],
    "development-reform": ["market-regulation"],
    "natural-resources": ["urban-mgmt"],
}
for _g in GAZ_IDS:
    PARTNERS[_g] = ["urban-mgmt", "expropriation", "civil-affairs"]
PARTNERS["expropriation"].extend(["district-linjiang"])

# Vague phrasings shared by several departments: the cue that decides the
# department is missing, so the label is intrinsically uncertain (weights are
# only documentation of which department usually gets such a ticket).
# "DISTRICT" stands for all 12 district/county governments.
VAGUE = [
    (["urban-mgmt", "housing", "DISTRICT", "natural-resources"],
     ["有人在搭房子，天天叮叮当当的，是不是违建？", "{xq}附近有人违章搭建，麻烦来查一下。", "举报违建，{road}那边正在盖，没人管。", "有人乱建房子占地方。"]),
    (["traffic-police", "transport", "housing"],
     ["停车太难了，乱停乱放也没人管。", "{xq}附近停车乱收费，车还乱停。", "车位的问题想反映一下。"]),
    (["police", "ecology", "urban-mgmt", "sanitation"],
     ["晚上太吵了，根本睡不着，{time}还有噪音。", "{xq}附近噪音扰民很严重。", "每天都很吵，影响休息。"]),
    (["water-supply", "water-affairs", "drainage"],
     ["{xq}这边的水有问题，麻烦来看看。", "{road}那边一直在冒水。", "用水的事想反映一下。"]),
    (["hrss", "housing", "trade-union"],
     ["干了{month}的活，工钱一直不给。", "老板欠我们{money}块钱不给。", "工钱的事没人管。"]),
    (["market-regulation", "commerce", "postal"],
     ["{shop}关门了，我的钱退不回来。", "在店里消费被坑了，商家不退钱。", "买东西被骗了，商家不处理。"]),
    (["health", "first-hospital", "medical-insurance", "cdc"],
     ["看病花了{money}，觉得不合理。", "去医院看病体验很差，收费也贵。", "打针看病的事想问一下。"]),
    (["telecom", "mobile", "unicom", "cable-tv"],
     ["手机卡乱扣费。", "家里网断了，电视也看不了。", "手机信号太差了。", "营业厅乱给办业务。"]),
    (["municipal-facilities", "highway", "drainage", "urban-mgmt"],
     ["{road}路面坏了很久没人修。", "路上有个大坑，还积水。", "这条路太烂了。"]),
    (["sanitation", "urban-mgmt", "landscaping"],
     ["{road}太脏了，垃圾到处都是。", "路边的环境卫生太差了。"]),
    (["landscaping", "urban-mgmt", "housing"],
     ["树太高了挡光，能不能修剪一下。", "绿化带被破坏了。"]),
    (["fire-rescue", "emergency", "housing"],
     ["{xq}有很大的安全隐患，怕出事。", "这里太危险了，容易着火。"]),
    (["gov-services", "data-bureau", "real-estate-registry"],
     ["网上办事办不了，去大厅也办不了。", "办个事太难了，来回跑。"]),
    (["civil-affairs", "disabled-federation", "veterans", "hrss"],
     ["家里困难，补贴一直没发。", "补助申请了很久没消息。"]),
    (["real-estate-registry", "housing", "expropriation"],
     ["房子的事开发商一直拖着。", "房子的问题拖了好几年了。"]),
    (["bus-group", "transport", "metro"],
     ["坐车太不方便了，等很久。", "{bus}太不方便了。"]),
    (["police", "women-federation", "civil-affairs"],
     ["家里有人打人，不知道找谁。", "家庭矛盾，需要帮助。"]),
    (["ecology", "water-affairs", "agriculture"],
     ["河里的水很臭，还有死鱼。", "{village}附近的水被污染了。"]),
    (["expropriation", "DISTRICT", "natural-resources"],
     ["拆迁补偿不合理。", "征地的补偿款一直没到位。"]),
    (["petition", "DISTRICT", "urban-mgmt", "housing"],
     ["反映了好多次都没人管。", "这个问题一直推来推去。"]),
    (["DISTRICT", "civil-affairs", "housing"],
     ["社区不作为。", "{xq}没人管，乱七八糟的。"]),
]
VAGUE_BY_LABEL = {}
for _cands, _phr in VAGUE:
    for _c in _cands:
        for _lab in (GAZ_IDS if _c == "DISTRICT" else [_c]):
            VAGUE_BY_LABEL.setdefault(_lab, []).append(_phr)

# --------------------------------------------------------------- wrapping ---
OPENINGS = ["", "", "", "你好，", "您好，", "喂，你好，", "你好我想反映个事，", "您好，我要投诉，", "我想问一下，",
            "我是{xq}的业主，", "我住在{street}，", "你好，我想咨询个问题，", "12345吗？", "麻烦记一下，",
            "我要反映一个问题，", "你好，我是{name}先生，", "您好我是{name}女士，"]
EMOTIONS = ["真的气死我了，", "我已经忍了很久了，", "太不像话了！", "实在没办法才打这个电话，", "我们老百姓真的很无奈，",
            "这个事情拖了很久了，", "真的受不了了，", "说实话我很失望，"]
REQUESTS = ["希望有关部门管一管。", "请尽快派人来处理。", "麻烦给个答复。", "希望尽快解决。", "请相关部门核实处理。",
            "要求给个说法。", "希望能重视一下。", "能不能帮忙协调一下。", "请帮忙查一下。"]
CLOSINGS = ["谢谢。", "麻烦尽快处理，谢谢！", "谢谢你们。", "我电话尾号{tail}，处理了回个电话。", "辛苦了。",
            "不要再推来推去了。", "等你们回复。", ""]
RAMBLE = ["我是退休老师，在这边住了十几年了。", "上次也打过电话，说会处理，后来就没下文了。", "我家老人身体不好，有高血压。",
          "昨天还下了一天雨。", "孩子今年高三，正是关键的时候。", "我们这栋楼住的大多是老年人。", "我平时上夜班，白天要睡觉。",
          "我老婆刚生完孩子还在坐月子。", "说实话我也不想老打电话麻烦你们。", "我们小区还是十几年前的老房子。",
          "隔壁小区好像也有这种情况。", "我还拍了照片和视频，可以提供。", "周围的邻居都有意见，只是没人出头。",
          "这个情况从去年就开始了。", "我之前在网上也留过言。"]
DISTRACTORS = ["之前打过{other}的电话，说这个不归他们管。", "我也找过{other}，他们让我打12345。", "社区让我去找{other}，{other}又说找社区。",
               "不知道这个是不是{other}管的。", "上次{other}来看过一次就走了。"]
OTHER_NAMES = ["派出所", "居委会", "物业", "街道办", "城管", "交警", "住建局", "环保局", "市场监管局", "社区", "村委会", "供电所"]
OPERATOR = ["来电人反映：{b}来电人诉求：{r}", "市民来电反映：{b}诉求：{r}", "来电反映{b}{r}", "市民反映：{b}"]

TYPOS = [("的", "得"), ("在", "再"), ("已", "以"), ("做", "作"), ("那", "哪"), ("像", "象"), ("反映", "反应"),
         ("物业", "物叶"), ("投诉", "头诉"), ("工资", "工姿"), ("一直", "一只"), ("小区", "小曲"), ("噪音", "燥音"),
         ("暖气", "暖汽"), ("停车", "亭车"), ("拖欠", "拖钱"), ("麻烦", "麻凡"), ("处理", "处里"), ("现在", "先在"),
         ("已经", "以经"), ("燃气", "然气"), ("违建", "违见"), ("宽带", "宽代"), ("部门", "步门"), ("报销", "报消")]

CHANNELS = [("phone", 55), ("web", 15), ("wechat", 18), ("app", 12)]
HOUR_W = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 13, 11, 8, 9, 11, 11, 10, 9, 8, 8, 7, 5, 3, 2]


# ------------------------------------------------------------- machinery ---
def load_departments():
    with open(os.path.join(HERE, "departments.json"), encoding="utf-8") as f:
        deps = json.load(f)["departments"]
    ids = [d["id"] for d in deps]
    assert sorted(ids) == sorted(POPULARITY), set(ids) ^ set(POPULARITY)
    for i in ids:
        assert i in S or i in GAZ, i
    return deps


def class_counts(total, top, bottom, n):
    """Exponential decay top..bottom over n ranks, rescaled to sum to total
    (bottom is kept fixed, the rest is scaled)."""
    raw = [top * (bottom / top) ** (k / (n - 1)) for k in range(n)]
    extra = [r - bottom for r in raw]
    scale = (total - bottom * n) / sum(extra)
    counts = [bottom + int(round(e * scale)) for e in extra]
    counts[0] += total - sum(counts)
    return counts


def history_counts():
    """Each department's ticket count in the history, in POPULARITY order (the day and month mix too)."""
    return class_counts(N_HISTORY, TOP_COUNT, BOTTOM_COUNT, len(POPULARITY))


def wchoice(rng, pairs):
    tot = sum(w for _, w in pairs)
    x = rng.random() * tot
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


class Ticket:
    def __init__(self, rng, label):
        self.rng = rng
        self.label = label
        self.gaz = label if label in GAZ else rng.choice(GAZ_IDS)
        self.cache = {}

    def slot(self, key):
        if key in self.cache:
            return self.cache[key]
        rng, g = self.rng, GAZ[self.gaz]
        pre = g["name"] if rng.random() < PREFIX_DISTRICT_RATE else ""
        if key == "xq":
            v = pre + rng.choice(g["xq"]) + rng.choice(["", "", "小区", ""])
        elif key == "street":
            v = pre + rng.choice(g["streets"])
        elif key == "village":
            v = pre + rng.choice(g["villages"])
        elif key in ("road", "road2"):
            v = (pre if key == "road" else "") + rng.choice(g["roads"])
            if key == "road2" and v == self.cache.get("road", "").replace(g["name"], ""):
                v = rng.choice(g["roads"])
        elif key == "area":
            v = g["name"]
        elif key == "other":
            v = rng.choice(OTHER_NAMES)
        elif key == "name":
            v = rng.choice(SLOTS["name"])
        else:
            v = rng.choice(SLOTS[key])
        self.cache[key] = v
        return v

    def fill(self, tpl):
        return re.sub(r"\{(\w+)\}", lambda m: self.slot(m.group(1)), tpl)


def add_typos(rng, text):
    out = text
    for a, b in TYPOS:
        if a in out and rng.random() < TYPO_RATE * out.count(a) * 3:
            parts = out.split(a)
            j = rng.randrange(len(parts) - 1)
            out = a.join(parts[:j + 1]) + b + a.join(parts[j + 1:])
    if DROP_RATE > 0:
        chars = []
        for ch in out:
            if ch not in "，。？！：" and rng.random() < DROP_RATE:
                continue
            chars.append(ch)
        out = "".join(chars)
    return out


def make_text(rng, label, scen=None):
    """(text, title, channel) of one ticket of department ``label``; ``scen`` overrides
    the department's scenario list (seasonal and out-of-area tickets)."""
    t = Ticket(rng, label)
    scen = scen or (DISTRICT_SCEN if label in GAZ else S[label])
    title, phr = rng.choice(scen)
    title = rng.choice(title.split("/"))
    if label in GAZ and rng.random() < NO_PLACE_RATE:
        # caller names no place: the district is not recoverable from text
        for k, v in (("xq", "我们小区"), ("street", "我们这"), ("village", "我们村"), ("road", "我们这边路上")):
            t.cache[k] = v
    if label in VAGUE_BY_LABEL and rng.random() < VAGUE_RATE:
        phr = rng.choice(VAGUE_BY_LABEL[label])
    channel = wchoice(rng, CHANNELS)
    # very short ticket
    if rng.random() < SHORT_RATE:
        pool = SHORTS.get(label)
        if pool and rng.random() < 0.7:
            body = t.fill(rng.choice(pool))
            title = rng.choice(["咨询", "求助", "反映问题"])
        else:
            body = t.fill(rng.choice(phr))
            body = re.split(r"[，。！？]", body)[0]
        return add_typos(rng, body), (title if channel in ("web", "app") and rng.random() < 0.3 else None), channel
    body = t.fill(rng.choice(phr))
    long_mode = rng.random() < LONG_RATE
    if len(phr) > 1 and (long_mode or rng.random() < 0.3):
        other = rng.choice([p for p in phr if t.fill(p) != body] or phr)
        body += rng.choice(["", "另外", "还有，", "而且"]) + t.fill(other)
    pieces = []
    if rng.random() < 0.25:
        pieces.append(rng.choice(EMOTIONS))
    if long_mode:
        r = RAMBLE[:]
        rng.shuffle(r)
        k = rng.randint(3, 7)
        pre, post = r[:k // 2], r[k // 2:k]
        pieces = pre + pieces + [body] + post
    else:
        pieces.append(body)
    if rng.random() < DISTRACTOR_RATE or (long_mode and rng.random() < 0.5):
        pieces.insert(rng.randint(1, len(pieces)), t.fill(rng.choice(DISTRACTORS)))
    request = rng.choice(REQUESTS) if rng.random() < 0.6 else ""
    core = "".join(pieces)
    if channel == "phone" and rng.random() < 0.55:
        text = rng.choice(OPERATOR).format(b=core, r=request or "请相关部门处理。")
        text = text.replace("我", "其") if rng.random() < 0.3 else text
    else:
        text = t.fill(rng.choice(OPENINGS)) + core + request + t.fill(rng.choice(CLOSINGS))
    text = add_typos(rng, text)
    ttl = None
    if channel in ("web", "app", "wechat") and rng.random() < 0.6:
        ttl = rng.choice([title, "关于" + title + "的问题", "投诉" + title, "咨询", "求助", "反映问题"])
    return text, ttl, channel


def received_at(rng, day_lo, day_hi):
    day = rng.randint(day_lo, day_hi)
    hour = wchoice(rng, list(enumerate(HOUR_W)))
    return "2026-11-%02dT%02d:%02d:%02d+08:00" % (day, hour, rng.randrange(60), rng.randrange(60))


def build(rng, labels, prefix, day_lo, day_hi, with_label, text_of=None):
    rows = []
    for lab in labels:
        text, title, channel = (text_of or make_text)(rng, lab)
        true = lab
        if lab in PARTNERS and rng.random() < AMBIG_RATE:
            true = rng.choice(PARTNERS[lab])
        row = {"id": None, "text": text}
        if title:
            row["title"] = title
        row["received_at"] = received_at(rng, day_lo, day_hi)
        row["channel"] = channel
        if with_label:
            row["label"] = true
        rows.append(row)
    rows.sort(key=lambda r: r["received_at"])
    for i, r in enumerate(rows, 1):
        r["id"] = "%s%06d" % (prefix, i)
    return rows


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# ================================================= co-handled tickets (主办 / 协办) ---
# A ticket two departments handle together: the lead department's complaint plus, in the same
# call, a matter of a department whose duties overlap (its PARTNERS): the label stays the lead
# one, `co_departments` names the other. Used by bench/co_handling.py; the shipped files are
# unchanged (call it on their rows).
CO_SHARE = 0.12
CO_JOINS = ["另外，", "还有，", "同时，", "顺便再反映一下，", "而且"]


def co_handled(rng, rows, share=CO_SHARE):
    """Copies of labeled `rows`, `share` of those whose label has PARTNERS made co-handled
    (text extended with a partner's matter, ``co_departments`` = [partner])."""
    out = []
    for r in rows:
        r = dict(r)
        lab = r.get("label")
        if lab in PARTNERS and rng.random() < share:
            other = rng.choice(PARTNERS[lab])
            extra = make_text(rng, other)[0]
            r["text"] = r["text"].rstrip("。！!") + "。" + rng.choice(CO_JOINS) + extra
            r["co_departments"] = [other]
        out.append(r)
    return out


# ================================================= no-department tickets ---
# Tickets that no department in the catalogue should get (``label`` null, ``no_fit`` its
# kind): answered on the spot, outside the city's jurisdiction, incomplete, abusive/prank.
NO_FIT_SHARE = 0.03
N_NOFIT = 180            # data/sample/nofit.jsonl (~3% of history + nofit)
NOFIT_KINDS = [("consult", 40), ("out_of_area", 30), ("incomplete", 18), ("abusive", 12)]
ELSEWHERE = ["杭州", "郑州", "东莞", "隔壁宁川市", "省城", "老家河南周口", "上海", "深圳", "外省", "邻市安和县"]
# questions the operator answers from the knowledge base; many name a department
CONSULT = ["请问市公积金中心的电话是多少？", "想问一下社保局周六上不上班。", "请问政务服务中心在哪里，几点下班？",
           "请问今年元旦放几天假？", "明天{road}那边限不限行，尾号几号限行？", "想问一下12345能不能帮忙查快递。",
           "请问办身份证去哪个派出所，电话多少？", "请问不动产登记中心的地址在哪里？", "请问{hospital}几点开始挂号？",
           "请问从{station}到{xq}坐几路公交车？", "明天会不会下雨，天气预报怎么说？", "流感疫苗的咨询电话是多少？",
           "江临通APP在哪里下载？", "{area}政务大厅周末开不开门？", "请问市民政局婚姻登记处的电话？",
           "想问一下交警大队处理违章的地址。", "请问供电公司的报修电话是多少？", "自来水公司营业厅几点上班？",
           "想问一下燃气公司的客服电话。", "请问人社局在哪个位置，要带什么证件？"]
CONSULT_NOTE = ["", "", "话务员已当场解答。", "已根据知识库答复，市民表示满意。", "已告知相关电话。", "已答复。"]
OUT_OF_AREA = [  # (title, phrasings): the problem is real, but outside 江临市's remit
    ("外地欠薪", ["我在{where}打工，{company}拖欠我{month}工资{money}元，一直不给。", "在{where}的工地干活，包工头跑了，工钱{money}没拿到。"]),
    ("外地房产", ["我在{where}买的房子，开发商延期{month}不交房。", "我老家在{where}，村里有人占了我家的宅基地。"]),
    ("外地公共事业", ["我是{where}的，我们那边停水好几天了。", "我在{where}坐出租车被绕路了，司机多收了{num}十块。", "{where}那边的医院乱收费，花了{money}。"]),
    ("国家政策", ["想反映一下国家的延迟退休政策，能不能改改。", "建议国家提高个税起征点。", "坐高铁在12306退票，手续费太高了。",
              "航空公司航班延误了五个小时，也不赔偿。", "我想投诉电视台的一个节目，内容不健康。"]),
    ("驾照外地", ["驾照是在{where}考的，想在那边换证，你们能办吗？", "我的社保在{where}交的，想查一下缴费记录。"]),
]
# (phone: operator's notes, typed channels: what was typed)
INCOMPLETE = (["喂？喂？你好，听得到吗？", "那个……我想说……算了，我再想想。", "来电人未说明具体诉求即挂断。", "来电无声，多次询问无应答。",
               "市民来电，信号不好，内容无法听清，未能记录诉求。", "来电人表述不清，反复询问仍无法确认诉求和地址。",
               "我要反映……哎等一下，我一会再打。", "你好，那个水……不对，是那个……", "来电人说方言，话务员无法听懂，未能记录诉求。"],
              ["测试", "111", "。。。", "喂", "你好", "在吗", "我要反映", "{xq}"])
ABUSIVE = (["来电人情绪激动，辱骂话务员，无具体诉求，已挂断。", "你们12345就是摆设！什么都不管！", "小孩打电话玩，说要找奥特曼。",
            "来电人询问话务员个人信息，无有效诉求。", "来电人每天拨打数十次，无具体诉求。", "来电人称有外星人在{xq}楼顶降落，要求处理。",
            "恶作剧来电，称自家的猫要投诉狗。", "来电人酒后来电，言语混乱，无有效诉求。", "来电人要求话务员给他唱首歌。"],
           ["你们这些人都是吃干饭的！", "你们12345就是摆设！什么都不管！", "哈哈哈哈哈", "随便发发，看有没有人回", "有外星人在{xq}楼顶降落了，快来抓"])


def make_nofit(rng, kind):
    """(text, title, channel) of a ticket that no department should get."""
    if kind == "out_of_area":
        scen = [(ttl, [p.replace("{where}", rng.choice(ELSEWHERE)) for p in phr]) for ttl, phr in OUT_OF_AREA]
        return make_text(rng, None, scen)
    t = Ticket(rng, None)
    channel = wchoice(rng, [("phone", 75), ("web", 8), ("wechat", 12), ("app", 5)])
    if kind == "consult":
        q = t.fill(rng.choice(CONSULT))
        if channel == "phone":
            text = rng.choice(["市民来电咨询：", "来电人咨询：", "市民咨询："]) + q + rng.choice(CONSULT_NOTE)
        else:
            text = t.fill(rng.choice(OPENINGS)) + q + rng.choice(["", "谢谢。", "麻烦告诉一下。"])
        title = rng.choice(["咨询", "求助"]) if channel != "phone" and rng.random() < 0.5 else None
        return add_typos(rng, text), title, channel
    spoken, typed = INCOMPLETE if kind == "incomplete" else ABUSIVE
    text = t.fill(rng.choice(spoken if channel == "phone" else typed))
    return add_typos(rng, text), None, channel


def nofit_row(rng, kind, when):
    text, title, channel = make_nofit(rng, kind)
    row = {"id": None, "text": text}
    if title:
        row["title"] = title
    row.update(received_at=when, channel=channel, label=None, no_fit=kind)
    return row


# ============================================================ the month ---
# A 30-day month for the loop simulation (day 1 = MONTH_START): a small labeled history
# before it, fresh tickets every day whose department mix drifts with the season, bursts
# of near-duplicate tickets about one incident, and a held-out test set of the month's mix.
MONTH_START = (2026, 10, 17)      # day 1 (a Saturday); day 30 = 2026-11-15
MONTH_DAYS = 30
MONTH_PER_DAY = 380               # regular tickets on a weekday, before the season
WEEKEND = 0.8
MONTH_HISTORY_PER_DEPT = 5        # as the Banking77 loop: 5 labeled per class
MONTH_HISTORY_DAYS = (1, 16)      # history dates: 2026-10-01 … 10-16
N_MONTH_TEST = 1500
BURST_RATE = 0.55                 # chance of an incident burst on a day (plus the anchors)
BURST_SIZE = (10, 40)


def _bump(c, w):
    return lambda t: math.exp(-((t - c) / w) ** 2)


# topic: (intensity over day index t = 0..29, {dept: gain}, {dept: [(title, phrasings)]}).
# A department's volume on day t is its base (popularity) times 1 + sum(gain * intensity);
# the extra share of its tickets is written from the topic's seasonal scenarios.
TOPICS = {
    "typhoon": (_bump(3, 2.0),
                {"drainage": 5, "landscaping": 4, "water-affairs": 3, "meteorology": 4, "emergency": 2,
                 "power-supply": 1.5, "municipal-facilities": 1.5},
                {"drainage": [("台风积水", ["台风过后{road}积水一米多深，车都泡在水里了。", "暴雨下了一夜，{xq}地下车库进水了，雨水排不出去。"])],
                 "landscaping": [("台风倒树", ["台风把{road}的大树刮倒了，压在路边的车上。", "{xq}门口的树被大风吹断了，挡住了路。"])],
                 "water-affairs": [("河水上涨", ["{village}旁边的河水涨得很快，快漫过河堤了。", "台风过后{village}的河堤冲垮了一段。"])],
                 "meteorology": [("台风预警", ["台风什么时候登陆？预警级别是多少？", "台风预警发得太晚了，我们都没准备。"])],
                 "emergency": [("台风转移", ["台风来了，{village}山边的住户要不要转移？", "{street}的避灾点在哪里，门一直锁着。"])],
                 "power-supply": [("台风停电", ["台风过后{xq}一直停电，到现在还没来电。"])],
                 "municipal-facilities": [("暴雨塌陷", ["暴雨过后{road}路面塌陷了一个大坑。"])]}),
    "holiday": (lambda t: max(0.0, 1 - t / 7),
                {"culture-tourism": 3, "transport": 0.5},
                {"culture-tourism": [("假期旅游", ["国庆跟团去玩，导游强制购物，回来想投诉旅行社。", "国庆期间景区门票临时涨价，也没公示。"])]}),
    "cold": (lambda t: 1 / (1 + math.exp(-(t - 17) / 2.5)),
             {"heating": 7, "gas": 1, "cdc": 1.5},
             {"heating": [("供暖", ["天这么冷了，什么时候开始供暖？能不能提前供暖。", "试供暖了，{xq}的暖气还是凉的。",
                                   "暖气打压试水，家里暖气片漏水了，地板都泡了。", "今年的供暖费在哪里交，怎么交？"])],
              "gas": [("壁挂炉", ["天冷了燃气壁挂炉点不着火，是不是燃气压力太小。"])],
              "cdc": [("流感", ["流感疫苗社区医院约不上。", "孩子班上好多人发烧，是不是流感，要不要停课。"])]}),
    "exams": (_bump(19, 3.0),
              {"education": 1.5, "ecology": 0.3},
              {"education": [("期中考试", ["{school}期中考试后按成绩排名还公布出来，孩子压力很大。", "考试前{school}天天补课到晚上九点。"])],
               "ecology": [("考试噪声", ["孩子马上考试了，{xq}旁边的工地{time}还在施工，没法复习。"])]}),
    "shopping": (_bump(26, 2.0),
                 {"postal": 5, "market-regulation": 1.5, "commerce": 0.5},
                 {"postal": [("双十一快递", ["双十一的快递一个星期了还没到，物流信息一直不更新。", "快递驿站把双十一的包裹堆在门口，丢了好几个。"])],
                  "market-regulation": [("双十一", ["双十一买的东西先涨价后降价，是虚假打折。", "双十一预售的定金商家不给退。"])]}),
    "year_end": (lambda t: t / 29,
                 {"hrss": 0.4, "housing": 0.2}, {}),
}

# incident bursts: (dept, season topic or None, title, near-identical phrasings, added details)
BURSTS = [
    ("water-supply", None, "爆管", ["{road}{xq}门口自来水管爆了，水冒得老高，路上全淹了。", "{road}靠近{xq}这里水管爆裂，水一直往外喷。",
                                   "{xq}门口{road}上自来水管爆了，我们家也停水了。"],
     ["已经冒了一个多小时了。", "家里也没水了。", "车都过不去了。", "什么时候能修好？"]),
    ("power-supply", None, "停电", ["{xq}整个小区突然停电了，电梯里还困了人。", "{xq}一带大面积停电，什么时候来电？", "{xq}停电了，没有任何通知。"],
     ["冰箱里的东西都要坏了。", "家里有老人。", "问物业物业也不知道。"]),
    ("gas", None, "燃气管道挖断", ["{road}施工把燃气管道挖断了，味道特别大。", "{road}那边燃气泄漏，整条街都是煤气味。", "{road}{xq}附近燃气管被挖破了，很危险。"],
     ["快派人来！", "我们都不敢开火了。", "小孩都闻到了。"]),
    ("drainage", "typhoon", "暴雨积水", ["{road}积水太深了，水都漫进{xq}了。", "暴雨后{road}全是水，{xq}门口的下水道往外冒水。", "{road}这里积水到膝盖，车都熄火了。"],
     ["一楼都进水了。", "雨水井全堵了。", "老人出不了门。"]),
    ("landscaping", "typhoon", "倒树", ["{road}一棵大树被风刮倒了，挡住了整条路。", "{road}{xq}门口的大树倒了，压到了车。"],
     ["车过不去。", "还压着电线。", "赶紧来处理。"]),
    ("heating", "cold", "小区暖气不热", ["{xq}整个小区暖气都不热，家里才十五度。", "{xq}{bld}暖气一直是凉的，今天都没热。", "我们{xq}暖气停了，到现在都不热。"],
     ["老人孩子都冻感冒了。", "打热力公司电话打不通。", "别的小区都热了。"]),
    ("telecom", None, "宽带断网", ["{xq}电信宽带全部断网了，一个上午都没恢复。", "{xq}整栋楼电信宽带都断了。"],
     ["在家办公受影响。", "孩子上不了网课。", "报修电话打不通。"]),
    ("commerce", None, "预付卡跑路", ["{road}那家健身房突然关门了，老板跑了，我卡里还有{money}。", "{road}的健身房倒闭了，会员卡的钱退不回来。"],
     ["我们几百个会员都没拿到钱。", "门上贴了个告示就跑了。"]),
    ("ecology", None, "化工异味", ["{street}附近有很刺鼻的化学品味道，{xq}的人都闻到了。", "{xq}这边突然一股很臭的气味，像是{fac}在排废气。"],
     ["眼睛都熏得难受。", "窗户都不敢开。"]),
    ("traffic-police", None, "信号灯故障", ["{road}和{road2}路口红绿灯全坏了，路口堵死了。", "{road}路口信号灯不亮，车乱成一团。"],
     ["差点撞车。", "没有交警指挥。"]),
    ("market-regulation", None, "集体腹泻", ["在{road}{shop}吃了饭，好几个人上吐下泻。", "{road}{shop}的东西不干净，吃完都拉肚子。"],
     ["孩子都去医院了。", "要求查一下这家店。"]),
]
BURST_ANCHORS = {3: "drainage", 21: "heating"}   # day index -> burst dept (typhoon, cold snap)


def month_date(t):
    return datetime.date(*MONTH_START) + datetime.timedelta(days=t)


def stamp(date, hour, rng_or_secs):
    s = rng_or_secs if isinstance(rng_or_secs, int) else rng_or_secs.randrange(3600)
    return "%sT%02d:%02d:%02d+08:00" % (date.isoformat(), hour, s // 60, s % 60)


def topic_mix(label, t):
    """Volume factor of ``label`` on day ``t`` and the weighted seasonal scenarios behind it."""
    f, extra = 1.0, []
    for name, (curve, gains, scen) in TOPICS.items():
        g = gains.get(label, 0) * curve(t)
        f += g
        if g > 0 and label in scen:
            extra.append((name, g))
    return f, extra


def day_weights(base, t):
    return [(lab, w * topic_mix(lab, t)[0]) for lab, w in base]


def month_ticket(rng, label, t):
    """One regular ticket of ``label`` on day ``t``: seasonal scenario for the extra share."""
    f, extra = topic_mix(label, t)
    scen = None
    if extra and rng.random() < (f - 1) / f:
        scen = TOPICS[wchoice(rng, extra)][2][label]
    text, title, channel = make_text(rng, label, scen)
    true = label
    if label in PARTNERS and rng.random() < AMBIG_RATE:
        true = rng.choice(PARTNERS[label])
    row = {"id": None, "text": text}
    if title:
        row["title"] = title
    row.update(received_at=None, channel=channel, label=true)
    return row


def burst_rows(rng, spec, date):
    """10-40 near-identical tickets about one incident, within a few hours of one day."""
    dept, _, title, phr, details = spec
    inc = Ticket(rng, dept)
    for k in ("xq", "road", "road2", "street", "bld", "shop", "fac"):
        inc.slot(k)
    n = rng.randint(*BURST_SIZE)
    start = rng.randint(7 * 3600, 19 * 3600)
    span = rng.randint(3600, 4 * 3600)
    rows = []
    for _ in range(n):
        t = Ticket(rng, dept)
        t.gaz, t.cache = inc.gaz, dict(inc.cache)
        body = t.fill(phr[0] if rng.random() < 0.5 else rng.choice(phr))   # most callers say it alike
        if rng.random() < 0.5:
            body += rng.choice(details)
        channel = wchoice(rng, [("phone", 70), ("web", 5), ("wechat", 15), ("app", 10)])
        if channel == "phone" and rng.random() < 0.5:
            text = rng.choice(OPERATOR).format(b=body, r=rng.choice(REQUESTS))
        else:
            text = t.fill(rng.choice(OPENINGS)) + body + t.fill(rng.choice(CLOSINGS))
        row = {"id": None, "text": add_typos(rng, text)}
        if channel != "phone" and rng.random() < 0.4:
            row["title"] = title
        sec = min(start + int(rng.random() ** 1.5 * span), 86399)
        row.update(received_at=stamp(date, sec // 3600, sec % 3600), channel=channel, label=dept)
        rows.append(row)
    return rows


def number(rows, fmt):
    rows.sort(key=lambda r: r["received_at"])
    for i, r in enumerate(rows, 1):
        r["id"] = fmt % i
    return rows


def month_day(seed, t, base, schedule):
    """Tickets of day index ``t`` (regular, bursts, no-fit), numbered in time order."""
    rng = random.Random(seed * 1000 + 100 + t)
    date = month_date(t)
    n = MONTH_PER_DAY * (WEEKEND if date.weekday() >= 5 else 1) * (1 + 0.3 * TOPICS["typhoon"][0](t))
    n = int(round(n * rng.uniform(0.92, 1.08)))
    weights = day_weights(base, t)
    rows = [month_ticket(rng, wchoice(rng, weights), t) for _ in range(n)]
    for r in rows:
        r["received_at"] = stamp(date, wchoice(rng, list(enumerate(HOUR_W))), rng)
    bursts = []
    for spec in schedule.get(t, []):
        b = burst_rows(rng, spec, date)
        bursts.append((spec, b))
        rows += b
    n_nofit = int(round(NO_FIT_SHARE * len(rows) / (1 - NO_FIT_SHARE)))
    rows += [nofit_row(rng, wchoice(rng, NOFIT_KINDS), stamp(date, wchoice(rng, list(enumerate(HOUR_W))), rng))
             for _ in range(n_nofit)]
    number(rows, "M%02d-%%04d" % (t + 1))
    meta = {"day": t + 1, "date": date.isoformat(), "file": "day%02d.jsonl" % (t + 1), "tickets": len(rows),
            "no_fit": n_nofit,
            "bursts": [{"label": s[0], "title": s[2], "ids": sorted(r["id"] for r in b)} for s, b in bursts]}
    return rows, meta


def burst_schedule(seed, base):
    """Which incidents happen on which day: the anchors plus a seeded draw, seasonal ones
    weighted by their topic's intensity."""
    rng = random.Random(seed * 1000 + 7)
    pop = dict(base)
    out = {}
    for t in range(MONTH_DAYS):
        specs = [s for s in BURSTS if s[0] == BURST_ANCHORS.get(t)]
        if rng.random() < BURST_RATE:
            w = [(s, pop[s[0]] * (TOPICS[s[1]][0](t) if s[1] else 0.3)) for s in BURSTS]
            specs.append(wchoice(rng, w))
        if specs:
            out[t] = specs
    return out


def month_history(seed):
    """MONTH_HISTORY_PER_DEPT labeled tickets per department (+3% no-fit), before day 1."""
    rng = random.Random(seed * 1000 + 5)
    labels = [lab for lab in POPULARITY for _ in range(MONTH_HISTORY_PER_DEPT)]
    rng.shuffle(labels)
    rows = build(rng, labels, "X", 1, 1, True)   # times are overwritten below
    n_nofit = int(round(NO_FIT_SHARE * len(rows) / (1 - NO_FIT_SHARE)))
    rows += [nofit_row(rng, wchoice(rng, NOFIT_KINDS), None) for _ in range(n_nofit)]
    for r in rows:
        date = datetime.date(MONTH_START[0], MONTH_START[1], rng.randint(*MONTH_HISTORY_DAYS))
        r["received_at"] = stamp(date, wchoice(rng, list(enumerate(HOUR_W))), rng)
    return number(rows, "MH%04d")


def month_test(seed, base):
    """N_MONTH_TEST labeled held-out tickets of the month's mix (no bursts), 3% no-fit:
    class counts from the mix averaged over the month, each ticket on a day drawn from its
    department's volume over the month."""
    rng = random.Random(seed * 1000 + 6)
    per_day = [dict(day_weights(base, t)) for t in range(MONTH_DAYS)]
    tot = sum(sum(d.values()) for d in per_day)
    n_in = int(round(N_MONTH_TEST * (1 - NO_FIT_SHARE)))
    counts = [max(2, int(round(n_in * sum(d[lab] for d in per_day) / tot))) for lab, _ in base]
    counts[0] += n_in - sum(counts)
    labels = [lab for (lab, _), c in zip(base, counts) for _ in range(c)]
    rng.shuffle(labels)
    rows = []
    for lab in labels:
        t = wchoice(rng, [(t, d[lab]) for t, d in enumerate(per_day)])
        r = month_ticket(rng, lab, t)
        r["received_at"] = stamp(month_date(t), wchoice(rng, list(enumerate(HOUR_W))), rng)
        rows.append(r)
    for _ in range(N_MONTH_TEST - n_in):
        t = rng.randrange(MONTH_DAYS)
        rows.append(nofit_row(rng, wchoice(rng, NOFIT_KINDS),
                              stamp(month_date(t), wchoice(rng, list(enumerate(HOUR_W))), rng)))
    return number(rows, "MT%05d")


# ------------------------------------------- emergencies and legal channels ---
# Rare tickets for 110/119/120/122 (handed over at once) and for the legal channel (courts, arbitration,
# 信访, discipline, administrative review, information disclosure), plus near-misses that use the
# same words for a past, hypothetical or administrative matter (labelled with the department that
# handles them). Own RNG streams and ids (`M05-E001`, `MHE001`), so every other ticket stays as it was.
EMERGENCY_SCEN = {
    "emergency-119": ["{xq}{bld}着火了，浓烟很大，快来救火！", "{road}边上{shop}起火了，火势很大，里面好像还有人。",
                      "家里厨房煤气泄漏着火了，我们跑出来了，快派消防车到{xq}！", "{xq}地下车库有辆车烧起来了，黑烟往楼里冒，快来！",
                      "{village}后山着火了，火往村子这边烧过来了。", "{road}一个液化气罐爆炸了，旁边几家店都炸坏了。",
                      "河水涨上来了，{village}有一家老人被困在屋里出不来。", "{xq}{bld}楼道里电动车烧着了，现在全是浓烟，人下不来。"],
    "emergency-120": ["我爸突然晕倒了，叫不醒，在{xq}{bld}，快派救护车！", "{road}公交站有个老人倒在地上抽搐，口吐白沫。",
                      "邻居家老人心脏病发作了，呼吸困难，家里就她一个人，{xq}。", "我老公喝了农药，现在在{village}家里，快救救他。",
                      "{xq}有一家人煤气中毒了，昏迷不醒。", "{road}工地上有工人从架子上摔下来，大出血，人不省人事。"],
    "emergency-110": ["{road}有人拿着刀在街上追着砍人！快来！", "我孩子在{xq}楼下玩，一转眼不见了，找了半个小时都找不到了。",
                      "{road}有个男的抢了我的包往{road2}跑了。", "楼上正在打架，听到有人喊救命，{xq}{bld}。",
                      "{xq}有个人站在楼顶上说要跳楼。", "我女儿在{road}{shop}门口被人抱走了，快帮帮我！",
                      "隔壁男的正在家暴，往死里打他老婆，{xq}{bld}。"],
    "emergency-122": ["{road}发生车祸，一辆电动车被货车撞了，人倒在地上流血。", "{road}和{road2}路口两辆车相撞，有人受伤卡在车里。",
                      "刚才{road}一个老人被车撞倒了，躺在地上起不来，司机跑了。", "{road}上一辆面包车翻车了，好几个人受伤。"],
}
NEAR_MISS_SCEN = [  # (department, phrasing): emergency words, no emergency
    ("gas", "上次{road}煤气泄漏的事处理了吗？一直没人回复。"), ("fire-rescue", "{xq}楼道里堆满了杂物，万一着火了怎么办？"),
    ("police", "上周我孩子在{road}走丢了，多亏派出所民警帮忙找到，想表扬一下。"),
    ("medical-insurance", "想问一下叫120救护车的费用能不能医保报销。"),
    ("traffic-police", "去年在{road}出了车祸，事故认定书一直没出来。"), ("fire-rescue", "{xq}消防演练警报响了一上午，能不能提前通知。"),
    ("gas", "电视上说最近煤气中毒的多，燃气公司能不能上门检查一下。"),
    ("medical-insurance", "我爸上个月心梗住院，医保报销比例太低了。"), ("fire-rescue", "{xq}的灭火器都过期了，物业也不换。"),
    ("police", "前几天{road}有人打架，想问问处理结果。"),
]
LEGAL_SCEN = ["法院判决对方还我{money}，判决生效半年了对方一直不执行，能不能帮我要回来？", "公司拖欠我{month}工资不给，我想申请劳动仲裁，去哪里立案？",
              "我对{street}城管的罚款决定不服，想申请行政复议。", "我要举报{village}村支书贪污集体资金，请纪委查一查。",
              "我要申请政府信息公开，公开{village}征地补偿的标准和名单。", "我的信访事项已经出了复查意见，我还是不服，想申请复核。",
              "离婚判决孩子归我，对方不让我见孩子，法院的判决不管用吗？", "案子在法院一年多了还没判，你们帮我催一下法官。",
              "我要实名举报{street}的一个干部收受红包，想知道纪委的举报渠道。", "仲裁裁决公司赔我{money}，公司不服起诉了，我该怎么办？"]


def special_row(rng, label, phr, when, gaz=None):
    """One ticket from phrasing `phr` (slots filled from a random district), labelled `label`."""
    t = Ticket(rng, gaz or rng.choice(GAZ_IDS))
    body = t.fill(phr)
    channel = wchoice(rng, [("phone", 80), ("wechat", 10), ("app", 10)]) if label.startswith("emergency") \
        else wchoice(rng, CHANNELS)
    if channel == "phone" and rng.random() < 0.5:
        text = rng.choice(OPERATOR).format(b=body, r=rng.choice(REQUESTS))
    else:
        text = t.fill(rng.choice(OPENINGS)) + body + (t.fill(rng.choice(CLOSINGS)) if rng.random() < 0.5 else "")
    return {"id": None, "text": add_typos(rng, text), "received_at": when, "channel": channel, "label": label}


def special_rows(rng, n_emergency, n_near, n_legal, when):
    rows = [special_row(rng, ln, rng.choice(EMERGENCY_SCEN[ln]), when(rng))
            for ln in rng.choices(sorted(EMERGENCY_SCEN), weights=[3, 3, 2, 2], k=n_emergency)]
    rows += [special_row(rng, d, p, when(rng)) for d, p in (rng.choice(NEAR_MISS_SCEN) for _ in range(n_near))]
    rows += [special_row(rng, "legal-channel", rng.choice(LEGAL_SCEN), when(rng)) for _ in range(n_legal)]
    return rows


def month_specials(seed, t):
    """Day ``t``'s emergencies (1-4), near-misses (1-3) and legal-channel tickets (2-6), ids M%02d-E%03d."""
    rng = random.Random(seed * 1000 + 300 + t)
    date = month_date(t)
    rows = special_rows(rng, rng.randint(1, 4), rng.randint(1, 3), rng.randint(2, 6),
                        lambda r: stamp(date, wchoice(r, list(enumerate(HOUR_W))), r))
    rows.sort(key=lambda r: r["received_at"])
    for i, r in enumerate(rows, 1):
        r["id"] = "M%02d-E%03d" % (t + 1, i)
    return rows


def history_specials(seed):
    """Labelled examples for the month's history: 4 per emergency line, 4 near-misses, 10 legal-channel."""
    rng = random.Random(seed * 1000 + 299)
    rows = [special_row(rng, ln, p, None) for ln in sorted(EMERGENCY_SCEN) for p in rng.sample(EMERGENCY_SCEN[ln], 4)]
    rows += special_rows(rng, 0, 4, 10, lambda r: None)
    for i, r in enumerate(rows, 1):
        date = datetime.date(MONTH_START[0], MONTH_START[1], rng.randint(*MONTH_HISTORY_DAYS))
        r["received_at"], r["id"] = stamp(date, wchoice(rng, list(enumerate(HOUR_W))), rng), "MHE%03d" % i
    return rows


def merged(rows, extra):
    """`rows` with `extra` inserted in time order (stable: existing rows keep their order)."""
    return sorted(rows + extra, key=lambda r: r["received_at"])


def write_month(seed, out, hist_counts):
    base = list(zip(POPULARITY, hist_counts))
    d = os.path.join(out, "month")
    os.makedirs(d, exist_ok=True)
    hist = merged(month_history(seed), history_specials(seed))
    write(os.path.join(d, "history.jsonl"), hist)
    write(os.path.join(d, "test.jsonl"), month_test(seed, base))
    schedule = burst_schedule(seed, base)
    days = []
    for t in range(MONTH_DAYS):
        rows, meta = month_day(seed, t, base, schedule)
        extra = month_specials(seed, t)
        rows = merged(rows, extra)
        meta["tickets"] = len(rows)
        meta["emergencies"] = {r["id"]: r["label"] for r in extra if r["label"].startswith("emergency")}
        meta["legal_channel"] = [r["id"] for r in extra if r["label"] == "legal-channel"]
        meta["near_misses"] = [r["id"] for r in extra if r["label"] not in EMERGENCY_SCEN and r["label"] != "legal-channel"]
        write(os.path.join(d, meta["file"]), rows)
        days.append(meta)
    meta = {"seed": seed, "start": month_date(0).isoformat(), "days": days,
            "topics": {k: {"gains": v[1], "intensity": [round(v[0](t), 3) for t in range(MONTH_DAYS)]}
                       for k, v in TOPICS.items()}}
    with open(os.path.join(d, "meta.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return len(hist), sum(m["tickets"] for m in days), sum(m["no_fit"] for m in days)


# ====================================================== realistic style ---
# ``--style realistic``: tickets as citizens write them on a petition site, not as an operator
# types a call: a short title that names the problem (~10-25 characters), then 150-800
# characters: a greeting, who they are and where they live (the gazetteer), background, the
# complaint told and retold, a second topic from another department in passing, colloquial
# fillers and garbled passages (no punctuation, stutters, homophone typos). The label is the
# title's problem; the text around it is noisy, so a model that lets the text drown the title
# loses (issue 21). Own RNG streams; the default style's files are untouched.
N_REAL_HISTORY, N_REAL_TEST, N_REAL_DAY = 2000, 500, 200
REAL_LEN = (150, 800)
R_TITLES = ["关于{xq}{title}的问题", "关于{area}{street}{title}问题的反映", "反映{road}{title}", "{area}{title}，望尽快解决",
            "投诉{xq}{title}", "{xq}{title}何时能解决？", "{title}的问题请领导重视", "强烈要求解决{road}{title}",
            "{street}{xq}{title}", "{title}！！！", "再次反映{title}问题", "{area}{title}，多次反映无果"]
R_GREET = ["尊敬的领导：您好！", "领导您好，", "尊敬的市长：", "各位领导你们好！", "您好！", "领导好", "", "",
           "尊敬的相关部门领导：", "你好，"]
R_INTRO = ["我是{area}{xq}的一名业主，在这里住了{years}年了。", "本人是{street}的居民，家住{road}附近。",
           "我是一名退休职工，住在{xq}{bld}。", "我是外地来江临打工的，现在租住在{street}。", "我家在{road}边上，{xq}那里。",
           "我是{xq}的住户，家里有老人小孩。", "本人姓{name}，住{area}{street}。", "我们是{xq}的全体业主。"]
R_BACKGROUND = ["这个问题从{month}前就开始了，我们多次反映，一直没有结果。", "之前在网上留过言，也打过12345，回复说已转交，然后就没下文了。",
                "我们找过{other}，{other}说不归他们管，让我们找别的部门。", "社区的人来看过一次，拍了几张照片就走了。",
                "小区里很多人都有意见，大家在业主群里天天说这个事。", "我也知道你们工作忙，但是这个事情实在拖不下去了。",
                "前段时间媒体也报道过类似的情况。", "去年也出现过一次，后来不了了之。", "我已经写了好几次信了。"]
R_AGAIN = ["还是那个问题，", "再说一遍，", "总之就是", "说白了就是", "重点是", "我再强调一下，", "关键是", "就是这个事："]
R_ASIDE = ["另外顺便说一下，", "还有个事，", "对了，", "题外话，", "另外，", "顺便反映一下，"]
R_FILLER = ["那个那个，", "就是说，", "怎么说呢，", "呃，", "额……", "你说这叫什么事啊，", "真的是，", "哎，", "讲真的，",
            "我也不知道该找谁，", "说句不好听的，"]
R_CLOSE = ["望领导百忙之中给予解决，谢谢！", "盼复！", "恳请相关部门高度重视，尽快解决！", "希望政府能给老百姓一个说法。",
           "谢谢领导！", "望早日解决，谢谢。", "不要再推来推去了！", "期待回复。", ""]
R_SLOTS = {"years": ["三", "五", "十几", "二十多", "七八"]}


def garble(rng, s):
    """A colloquial or garbled passage: punctuation dropped, a stutter, exclamations, or
    spaces typed between words on a phone."""
    k = rng.random()
    if k < 0.3:
        return re.sub(r"[，。、；：]", "", s) + " "
    if k < 0.55 and len(s) > 6:
        i = rng.randrange(2, len(s) - 2)
        return s[:i] + s[i - 2:i] + s[i:]
    if k < 0.8:
        return re.sub(r"[。！]$", "", s) + rng.choice(["！！！", "。。。", "？？", "啊！", "!!"])
    return " ".join(s[i:i + rng.randint(2, 5)] for i in range(0, len(s), 4))


def realistic_text(rng, label, scen=None):
    """(text, title, channel) of one ticket of ``label`` in the realistic style."""
    t = Ticket(rng, label)
    t.cache["years"] = rng.choice(R_SLOTS["years"])
    scen = scen or (DISTRICT_SCEN if label in GAZ else S[label])
    title, phr = rng.choice(scen)
    title = rng.choice(title.split("/"))
    head = t.fill(rng.choice(R_TITLES).replace("{title}", title))
    lo, hi = REAL_LEN
    target = min(hi, max(lo, int(rng.lognormvariate(math.log(380), 0.45))))
    main = [t.fill(p) for p in phr]
    rng.shuffle(main)
    other = rng.choice([d for d in POPULARITY if d != label])
    o = Ticket(rng, other)
    o.gaz = t.gaz
    aside = o.fill(rng.choice(rng.choice(DISTRICT_SCEN if other in GAZ else S[other])[1]))
    filler = RAMBLE + [t.fill(b) for b in R_BACKGROUND]
    rng.shuffle(filler)
    parts = [rng.choice(R_GREET), t.fill(rng.choice(R_INTRO)), main[0]]
    tail = [rng.choice(R_AGAIN) + main[1 % len(main)], rng.choice(R_AGAIN) + main[0]]
    if rng.random() < 0.7:
        tail.insert(rng.randrange(len(tail) + 1), rng.choice(R_ASIDE) + aside)
    close = [rng.choice(REQUESTS), rng.choice(R_CLOSE)]
    while sum(map(len, parts + close)) < target and (filler or tail):
        if filler and (not tail or rng.random() < 0.55):
            parts.append(filler.pop())
        else:
            parts.append(tail.pop(0))
        if rng.random() < 0.25:
            parts.insert(rng.randrange(1, len(parts) + 1), rng.choice(R_FILLER))
    parts += tail  # the complaint is always told again
    body = [garble(rng, p) if p and rng.random() < 0.15 else p for p in parts + close]
    text = add_typos(rng, "".join(body))[:hi]
    return text, head, wchoice(rng, [("web", 60), ("app", 25), ("wechat", 15)])


def write_realistic(seed, out, hist_counts):
    """history, test and day files of the realistic style (own RNG streams), class sizes as
    the default sample's, scaled to N_REAL_*."""
    os.makedirs(out, exist_ok=True)
    n = len(POPULARITY)
    counts = [max(3, int(round(c * N_REAL_HISTORY / N_HISTORY))) for c in hist_counts]
    test_counts = [max(2, int(round(c * N_REAL_TEST / N_HISTORY))) for c in hist_counts]
    files = {}
    for name, cnt, k, prefix, labeled in (("history", counts, 11, "RH", True), ("test", test_counts, 12, "RT", True),
                                          ("day", None, 13, "RD", False)):
        rng = random.Random(seed * 1000 + k)
        if cnt is None:
            labels = [wchoice(rng, list(zip(POPULARITY, hist_counts))) for _ in range(N_REAL_DAY)]
        else:
            labels = [lab for lab, c in zip(POPULARITY, cnt) for _ in range(c)]
            rng.shuffle(labels)
        rows = build(rng, labels, prefix, 26 if name == "day" else 1, 26 if name == "day" else 25, labeled,
                     realistic_text)
        write(os.path.join(out, name + ".jsonl"), rows)
        files[name] = len(rows)
    assert n == len(hist_counts)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="default data/sample (data/realistic with --style realistic)")
    ap.add_argument("--style", choices=["default", "realistic"], default="default",
                    help="realistic: long petition-site messages, history/test/day only")
    a = ap.parse_args()
    load_departments()
    hist_counts = history_counts()
    if a.style == "realistic":
        out = a.out or os.path.join(HERE, "realistic")
        print("realistic: %s -> %s" % (write_realistic(a.seed, out, hist_counts), out))
        return
    a.out = a.out or os.path.join(HERE, "sample")
    test_counts = [max(2, int(round(c * N_TEST / N_HISTORY))) for c in hist_counts]

    rng_h = random.Random(a.seed * 1000 + 1)
    rng_t = random.Random(a.seed * 1000 + 2)
    rng_d = random.Random(a.seed * 1000 + 3)

    def labels_for(counts, rng):
        labs = [lab for lab, c in zip(POPULARITY, counts) for _ in range(c)]
        rng.shuffle(labs)
        return labs

    hist = build(rng_h, labels_for(hist_counts, rng_h), "H", 1, 25, True)
    test = build(rng_t, labels_for(test_counts, rng_t), "T", 1, 25, True)
    day_labels = [wchoice(rng_d, list(zip(POPULARITY, hist_counts))) for _ in range(N_DAY)]
    day = build(rng_d, day_labels, "D", 26, 26, False)

    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "history.jsonl"), hist)
    write(os.path.join(a.out, "test.jsonl"), test)
    write(os.path.join(a.out, "day.jsonl"), day)
    print("history %d, test %d, day %d -> %s" % (len(hist), len(test), len(day), a.out))

    # new outputs: own RNG streams, so the three files above stay as they were
    rng_n = random.Random(a.seed * 1000 + 4)
    nofit = number([nofit_row(rng_n, wchoice(rng_n, NOFIT_KINDS), received_at(rng_n, 1, 25))
                    for _ in range(N_NOFIT)], "N%06d")
    write(os.path.join(a.out, "nofit.jsonl"), nofit)
    n_hist, n_days, n_nofit = write_month(a.seed, a.out, hist_counts)
    print("nofit %d; month: history %d, test %d, %d days with %d tickets (%d no-fit) -> %s"
          % (len(nofit), n_hist, N_MONTH_TEST, MONTH_DAYS, n_days, n_nofit, os.path.join(a.out, "month")))


if __name__ == "__main__":
    main()
