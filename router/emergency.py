"""Emergencies (110/119/120/122): a high-recall rule layer the model cannot switch off; and the
legal channel's precision-minded one (`legal`).

A ticket is an emergency when its text names something happening now that one of the emergency
lines must handle (fire, gas leak, people trapped; violence, a missing child, someone about to
harm themselves; a medical emergency; a traffic accident with injuries). The words alone are not
enough: "上次煤气泄漏的事处理了吗", "万一着火怎么办", "想问120的费用怎么报销" speak of a past, hypothetical
or administrative matter. Such a ticket is still an emergency when it also says it is happening now
(现在, 正在, 刚才, 救命, 快来 ...). The model learns the same dispositions from labels
(`emergency-110` ... in imports and the app); routing (router/dispatch.emergencies) takes the rule's
line when the rule fires, whatever the model says, and the model's when only the model does.
"""

from __future__ import annotations

import re

# line -> (strong patterns: an emergency by themselves; weak ones: only when it is happening now)
LINES = {
    "emergency-119": (
        [r"(着火了|起火了|失火了|火灾|火势|烧起来了|烧着了|火很大|大火|全是浓烟|浓烟滚滚|爆炸了|炸了|发生爆炸)",
         r"(被困|困在).{0,6}(火|屋|房|楼|水里|车里|山上)"],
        [r"((?<!烟囱)冒(黑|浓)?烟|浓烟)"]),
    "emergency-120": (
        [r"(晕倒|昏倒|昏迷|不省人事|休克|没有?了?呼吸|没了?心跳|呼吸困难|喘不上气|抽搐|口吐白沫|大出血|血流不止|"
         r"心脏病(犯了|发作)|心梗|脑梗|中风了|快不行了|喝了?农药|吃了?(安眠药|老鼠药)|服毒|(煤气|一氧化碳)中毒)"],
        [r"(流了很多血|摔倒了?起不来|发高烧.{0,4}抽)"]),
    "emergency-110": (
        [r"(持刀|拿着?刀|砍人|捅人|杀人了|抢劫|抢了?我?的?(包|钱|手机)|绑架|劫持|(要|想)自杀|跳楼|跳河|轻生|割腕)",
         r"(小孩|孩子|儿子|女儿|老人)(丢了|.{0,24}(走丢|走失|不见了|找不到了|被人?(抱走|拐)))"],
        [r"(打人|殴打|打架|斗殴|群殴|家暴|往死里打|撬门|偷东西|入室|小偷)"]),
    "emergency-122": (
        [r"(车祸|撞车|相撞|交通事故|追尾|翻车|被车撞|撞(倒|伤)了?(人|行人|老人|小孩))"],
        []),
}
# 122 needs someone hurt; without it a crash is a traffic police matter (or nothing urgent)
HURT = re.compile(r"(受伤|伤了|流血|出血|人倒|倒在地上|躺在地上|起不来|昏迷|不省人事|人被(压|卡)|送医|救护车|骨折|撞伤|撞倒|伤者)")
NO_HURT = re.compile(r"(没有?人?受伤|无人受伤|没伤到人|人没事|人都没事)")
# a past, habitual, hypothetical or administrative mention ...
NOT_NOW = re.compile(
    r"(上次|上回|之前|以前|前几天|前段时间|上个?月|上周|去年|那次|当时|经常|总是|老是|每次|"
    r"已经(处理|修好|解决|灭了|没事|送医|出院|找到)|处理(了|得)(吗|怎么样|如何)|怎么样了|有结果|结果(呢|如何)|进展|"
    r"回访|赔偿|报销|费用|收费|理赔|万一|如果|假如|要是|容易|担心|害怕|怕(会|有)|隐患|检查|演练|培训|宣传|知识|"
    r"消防通道|通道|真(要|的)?着火|灭火器|表扬|感谢|锦旗|咨询|请问|怎么(申请|办理|开)|证明|电话是多少|号码|招聘|整改|新闻|电视上|视频里)")
# ... unless it also says it is happening now
NOW = re.compile(r"(现在|正在|刚刚|刚才|马上|立刻|赶紧|快(来|点|救)|救命|紧急|来不及|此刻|眼下)")

_COMPILED = {ln: ([re.compile(p) for p in strong], [re.compile(p) for p in weak]) for ln, (strong, weak) in LINES.items()}
ORDER = ("emergency-119", "emergency-120", "emergency-110", "emergency-122")


def line(text: str, title: str | None = None) -> str | None:
    """The emergency line a ticket must go to now, or None."""
    s = f"{title}\n{text}" if title else text
    now = NOW.search(s) is not None
    if NOT_NOW.search(s) and not now:
        return None
    for ln in ORDER:
        strong, weak = _COMPILED[ln]
        if any(p.search(s) for p in strong) or now and any(p.search(s) for p in weak):
            if ln != "emergency-122" or HURT.search(s) and not NO_HURT.search(s):
                return ln
    return None


# The legal channel (courts, arbitration, 信访 review, discipline, administrative review, information
# disclosure): only where a ticket names the channel itself or a court case, so it rarely fires on a
# matter a department handles (拖欠工资 alone is hrss, 信访 alone the petition bureau, 起诉/申诉 alone
# are often a threat or a fine's appeal, 纪委 without a report is often "I told them already").
LEGAL = re.compile(
    r"((举报|检举|查处).{0,40}(纪委|纪检|监委|监察委)|(纪委|纪检|监委|监察委).{0,20}(举报|检举|查)|行政复议|劳动(人事)?(争议)?仲裁|仲裁(委|庭|裁决|申请)|申请仲裁|"
    r"申请.{0,4}信息公开|信息公开申请|依申请公开|信访.{0,8}(复查|复核)|(复查|复核)意见|"
    r"法院.{0,12}(判决|判了|没判|执行|起诉|立案|法官|开庭|案子)|(判决|裁定|调解书).{0,8}(生效|不执行|不履行))")


def legal(text: str, title: str | None = None) -> bool:
    """Whether a ticket names a legal channel (it goes there unless a catalogue rule or an emergency wins)."""
    return LEGAL.search(f"{title}\n{text}" if title else text) is not None
