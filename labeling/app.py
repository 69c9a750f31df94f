"""The labeling app: dispatchers work the review queue.

    router label                       # or: streamlit run labeling/app.py

Sign in with your account (`router users add`), or as [labeling] auth says (router/users.py); each
ticket shows when and how it came in (time in [queue] timezone, channel), its text (plain text, never
rendered), the model's top 3 departments with their probabilities, then the decision buttons,
then the suggestions' duties (with a district's places). Keys 1/2/3 accept a suggestion, S skips, N flags "no department
fits", U undoes the last decision; any other department can be picked from a searchable list, and
co-handling departments (协办) added to any decision.
Each decision is written to the store at once (labeling/actions.py).

Disputes (派单异议审核, router/returns.py): a ticket a department returned is shown to leads (accounts
with the role `lead`) before any other: the ticket, the dispatch it returns with its confidence,
the return's reason and note, the model's other suggestions; the lead upholds the dispatch,
re-dispatches, or sets a lead department plus co-handlers (U undoes that too). Dispatchers see the
open disputes read-only.
"""

from __future__ import annotations

import html
import logging
import math
import re
from datetime import timezone
from zoneinfo import ZoneInfo

import streamlit as st
from sqlmodel import Session

from labeling import actions
from labeling.actions import SKIP, AccountGone, DecisionError
from router import config, returns, rules, users, webui
from router.catalog import EMERGENCY, LEGAL, NONE, RESERVED, load_catalog
from router.nofit import NONE_DUTIES
from router.places import Places
from router.store import StoreBusy, Ticket, connect

DISPOSITIONS = [*EMERGENCY, LEGAL]  # a dispatcher can mark a ticket for an emergency line or the legal channel
BUSY = "数据库正忙（其他程序正在大量写入），本次操作未记录，请稍后重试。"
_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(s: str) -> str:
    """`s` escaped for places that render markdown (messages, labels)."""
    return _MD.sub(r"\\\1", str(s))


@st.cache_resource(show_spinner=False)
def resources(url: str, catalog_path: str, busy_ms: int, log_path: str, retry_s: float):
    log = logging.getLogger("router.users")  # sign-ins and failures, never a password
    if not any(getattr(h, "baseFilename", None) == log_path for h in log.handlers):
        h = logging.FileHandler(log_path, encoding="utf-8")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
    return connect(url, busy_ms, retry_seconds=retry_s), load_catalog(catalog_path)


def settings():
    cfg = config.load()
    logs = config.home(cfg) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    engine, catalog = resources(config.store_url(cfg), str(config.resolve(cfg.paths.catalog)),
                                cfg.store.busy_timeout_ms, str((logs / "labeling.log").resolve()),
                                cfg.store.retry_seconds)
    return cfg, engine, catalog, cfg.labeling.claim_minutes, cfg.queue.timezone


def sign_in(engine, cfg) -> None:
    """The sign-in form; sets st.session_state.reviewer (and role) only for a good sign-in."""
    st.title("工单分派标注")
    try:
        mode, password = users.auth_mode(cfg, engine)
    except users.UserError as e:
        st.error(f"登录设置有误：{plain(e)}")
        return
    if mode == "accounts" and not users.any_users(engine):
        st.error("尚未创建账号：请管理员运行 router users add 姓名。")
        return
    with st.form("sign_in"):
        name = st.text_input("姓名", max_chars=40, placeholder="请输入您的姓名")
        given = st.text_input("密码", type="password") if mode != "names" else ""
        if st.form_submit_button("开始标注", type="primary"):
            ip = st.context.ip_address
            ip = ip if isinstance(ip, str) else None  # None on localhost (and in AppTest)
            if not name.strip():
                st.error("请填写姓名。")
                return
            if mode != "accounts":
                try:
                    users.reviewer_name(engine, name)
                except users.UserError as e:
                    st.error(f"姓名不可用：{plain(e)}")
                    return
            got = (users.sign_in(engine, name, given, ip) if mode == "accounts" else
                   users.check_shared(name, given, password, ip) if mode == "shared_password" else
                   users.SignIn(name.strip()))
            if got.wait_s:
                st.error(f"密码错误次数过多，请 {math.ceil(got.wait_s)} 秒后再试。")
            elif got.name is None:
                st.error("姓名或密码错误。" if mode == "accounts" else "密码错误。")
            else:
                st.session_state.reviewer, st.session_state.role = got.name, got.role
                st.session_state.auth = mode
                st.rerun()


def signed_in(engine, cfg) -> str | None:
    """The signed-in reviewer; None (signed out) once their account is gone or the mode changed."""
    reviewer = st.session_state.get("reviewer")
    if reviewer and st.session_state.get("auth") == "accounts" and users.get(engine, reviewer) is None:
        reviewer = None
    if reviewer:
        try:
            if users.auth_mode(cfg, engine)[0] != st.session_state.get("auth"):
                reviewer = None
        except users.UserError:
            reviewer = None
    if not reviewer:
        for k in ("reviewer", "role", "auth"):
            st.session_state.pop(k, None)
    return reviewer


def act(engine, catalog, reviewer: str, queue_id: int, choice: str | None) -> None:
    """Button callback: record the decision before the page is drawn again."""
    if choice is None:
        st.session_state.flash = ("warning", "请先在列表中选择一个部门。")
        return
    try:
        actions.decide(engine, reviewer, queue_id, choice, st.session_state.get("co") or (),
                       account=st.session_state.get("auth") == "accounts")
    except AccountGone:
        signed_out("您的账号已被删除，本次操作未记录。")
        return
    except DecisionError:
        st.session_state.flash = ("error", "该工单已被处理或已被他人领取，已为您换下一条。")
        return
    except StoreBusy:
        st.session_state.flash = ("error", BUSY)
        return
    st.session_state["other"] = None  # the next ticket starts with an empty list
    st.session_state["co"] = []
    msg = {SKIP: "已跳过", NONE: "已标记：无合适部门"}.get(choice, f"已分派到 {catalog.name(choice)}")
    st.session_state.flash = ("success", msg)


def correct(engine, catalog, reviewer: str, queue_id: int) -> None:
    """The "改派" button: the department picked in the list (read now, not when drawn)."""
    act(engine, catalog, reviewer, queue_id, st.session_state.get("other"))


def signed_out(message: str) -> None:
    for k in ("reviewer", "role", "auth"):
        st.session_state.pop(k, None)
    st.session_state.flash = ("error", message)


def split_out(engine, reviewer: str) -> None:
    """The "拆分" button: the picked member leaves the incident and gets its own queue item."""
    tid = st.session_state.get("split_pick")
    if not tid:
        st.session_state.flash = ("warning", "请先选择要拆分的工单。")
        return
    try:
        actions.split(engine, reviewer, tid)
        st.session_state.flash = ("info", f"工单 {tid} 已拆出并单，单独复核。")
    except DecisionError as e:
        st.session_state.flash = ("warning", str(e))
    except StoreBusy:
        st.session_state.flash = ("error", BUSY)
    st.session_state["split_pick"] = None


def take_back(engine, reviewer: str, claim_minutes: float) -> None:
    try:
        qid = actions.undo(engine, reviewer, claim_minutes, account=st.session_state.get("auth") == "accounts")
    except AccountGone:
        signed_out("您的账号已被删除，本次操作未记录。")
        return
    except DecisionError:
        st.session_state.flash = ("warning", "该工单此后已由他人处理，无法撤销。")
        return
    except StoreBusy:
        st.session_state.flash = ("error", BUSY)
        return
    st.session_state["other"] = None
    st.session_state.flash = ("info", "已撤销上一步。") if qid else ("warning", "没有可以撤销的操作。")


CHANNELS = {"phone": "电话", "web": "网站", "wechat": "微信", "app": "App", "email": "邮件", "sms": "短信"}

# Laptop screens (1024x700): less padding at the top, suggestion names wrap instead of being cut
# off, long ticket texts scroll inside their box, so the decision buttons and the correction list
# stay above the fold.
STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; padding-bottom: 2rem; }
[data-testid="stLayoutWrapper"]:has(> .st-key-scroll_top, > .st-key-preload) { display: none; }
[class*="st-key-accept_"] button { height: auto; min-height: 2.75rem; }
[class*="st-key-accept_"] button p { white-space: normal; overflow-wrap: anywhere; text-align: left; }
.st-key-ticket_text { max-height: 9.5rem; overflow-y: auto; }
[class*="st-key-duties_"] { font-size: 0.875rem; }
</style>"""


def sidebar(engine, reviewer: str, tz: str) -> None:
    c = actions.counts(engine, reviewer, tz)
    with st.sidebar:
        st.text(f"标注人：{reviewer}")
        st.metric("我今日已处理", c.mine)
        st.text(f"确认 {c.confirmed} · 纠正 {c.corrected} · 无合适部门 {c.no_fit}\n抽检 {c.audited} · 跳过 {c.skipped}")
        st.metric("全组今日标注", c.team)
        st.metric("待处理工单", c.pending)
        total = c.mine + c.pending
        st.progress(c.mine / total if total else 1.0, text=f"今日进度 {c.mine}/{total}")
        st.text("快捷键：1/2/3 采纳建议 · S 跳过\nN 无合适部门 · U 撤销")
        if st.button("退出登录", key="sign_out"):
            try:
                actions.release(engine, reviewer)
            except StoreBusy:  # the claims expire after claim_minutes anyway
                pass
            del st.session_state["reviewer"]
            st.rerun()


def scroll_top(queue_id: int | None) -> None:
    """Each new ticket starts at the top of the page (text and list in view), not where the last one
    was left: the script runs when its text changes, i.e. when the ticket shown changes."""
    with st.container(key="scroll_top"):  # hidden; first in the page, so its place never moves
        st.html(f"<script>/* ticket {queue_id} */ for (const el of [document.querySelector("
                "'[data-testid=\"stMain\"]'), document.scrollingElement]) el && el.scrollTo(0, 0);</script>",
                unsafe_allow_javascript=True)


def show_flash() -> None:
    kind, msg = st.session_state.pop("flash", (None, None))
    if kind:
        getattr(st, kind)(plain(msg))


def received(engine, ticket_id: str, tz: str) -> str:
    """The ticket's received time in `tz` and its channel, for the line above its text."""
    with Session(engine) as s:
        t = s.get(Ticket, ticket_id)
    at = t.received_at if t else None
    when = "受理时间未知" if at is None else \
        f"受理 {(at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"
    return f"{when} · {CHANNELS.get(t.channel, t.channel) if t and t.channel else '渠道未知'}"


_places: dict[int, tuple] = {}


def places(catalog) -> Places:
    """The catalogue's gazetteer, compiled once per catalogue object."""
    if id(catalog) not in _places:
        _places[id(catalog)] = (catalog, Places(catalog))
    return _places[id(catalog)][1]


def highlighted(text: str, spans) -> str:
    """The ticket text as escaped HTML (shown as typed, never rendered) with the places marked."""
    out, at = [], 0
    for a, b in spans:
        out += [html.escape(text[at:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        at = b
    out.append(html.escape(text[at:]))
    return '<div class="ticket-text" style="white-space: pre-wrap">' + "".join(out) + "</div>"


def duties(catalog, dept: str) -> None:
    """A department's duties and, for a district, its places (plain text)."""
    d = catalog.by_id.get(dept)
    st.text(d.duties if d else (NONE_DUTIES if dept == NONE else RESERVED[dept][1] if dept in RESERVED
                                else "（目录中无此部门）"))
    if d and d.places:
        st.text("辖区地名：" + "、".join(d.places))


def ticket_view(engine, catalog, reviewer: str, item: actions.Item, tz: str) -> None:
    note = {"audit": "    （抽检：模型较有把握，请核实）", "no_fit": "    （模型判断：无合适部门，请核实）",
            "emergency": "    （紧急警情：请立即转 110/119/120/122）"}
    st.text(f"工单 {item.ticket_id} · {received(engine, item.ticket_id, tz)}" + note.get(item.reason, ""))
    if item.title:
        st.text(f"标题：{item.title}")
    found = places(catalog).find(item.text)
    if found.names:
        where = "、".join(found.names)
        st.text(f"地点：{where} → " + (catalog.name(found.district) if found.district else
                                      "不止一个辖区：" + "、".join(catalog.name(d) for ds in found.ambiguous.values() for d in ds)))
    if item.members:
        st.text(f"并单：同一事件另有 {len(item.members)} 张未处理工单，本次决定一并处理")
        with st.expander("并单工单（可拆分）"):
            for tid, text in item.members[:50]:
                st.text(f"{tid}：{text[:120]}")
            st.selectbox("拆出不属于同一事件的工单", [m[0] for m in item.members], index=None, key="split_pick")
            st.button("拆分", key="split", on_click=split_out, args=(engine, reviewer))
    with st.container(border=True, key="ticket_text"):
        if found.spans:
            st.html(highlighted(item.text, found.spans))
        else:
            st.text(item.text)


def suggestions(engine, catalog, reviewer: str, item: actions.Item) -> None:
    """The model's top 3 as buttons (keys 1/2/3)."""
    st.markdown("##### 模型建议")
    cols = st.columns(3)
    for i, ((dept, p), col) in enumerate(zip(item.top[:3], cols), start=1):
        col.button(f"{i} · {plain(catalog.name(dept))}　{p:.0%}", key=f"accept_{i}", shortcut=str(i),
                   type="primary" if i == 1 else "secondary", width="stretch",
                   on_click=act, args=(engine, catalog, reviewer, item.queue_id, dept))


def correction(engine, catalog, reviewer: str, item: actions.Item) -> None:
    """Right under the decision buttons: any other department, and co-handling departments."""
    pick_col, go_col = st.columns([4, 1], vertical_alignment="bottom")
    with pick_col:
        choice = st.selectbox("改派其他部门（输入名称可搜索）", catalog.ids + DISPOSITIONS, index=None, key="other",
                              format_func=lambda d: f"{catalog.name(d)}（{d}）", placeholder="输入部门名称搜索…")
    with go_col:
        st.button("改派", key="correct", width="stretch", on_click=correct,
                  args=(engine, catalog, reviewer, item.queue_id))
    if choice:
        duties(catalog, choice)
    st.multiselect("协办部门（可选，随本次分派一并记录）", catalog.ids, key="co",
                   format_func=lambda d: f"{catalog.name(d)}（{d}）", placeholder="需要多部门协同办理时选择")


def details(catalog, item: actions.Item) -> None:
    """Below the list: the suggestions' duties."""
    st.markdown("##### 部门职责")
    for i, ((dept, _), col) in enumerate(zip(item.top[:3], st.columns(3)), start=1):
        with col, st.container(key=f"duties_{i}"):
            st.markdown(f"**{plain(catalog.name(dept))}**")
            duties(catalog, dept)


def settle(engine, catalog, lead: str, queue_id: int, outcome: str) -> None:
    """Dispute buttons: read the picked departments now, record the lead's decision."""
    dept = st.session_state.get("d_lead") if outcome != returns.UPHOLD else None
    co = st.session_state.get("d_co") or [] if outcome == returns.CO_HANDLE else []
    if outcome != returns.UPHOLD and not dept:
        st.session_state.flash = ("warning", "请先选择改派（主办）部门。")
        return
    try:
        label = returns.decide(engine, lead, queue_id, outcome, dept, co, catalog)
    except returns.DisputeError as e:
        st.session_state.flash = ("error", str(e))
        return
    except StoreBusy:
        st.session_state.flash = ("error", BUSY)
        return
    st.session_state["d_lead"], st.session_state["d_co"] = None, []
    st.session_state.flash = ("success", "已维持原派单" if outcome == returns.UPHOLD else
                              f"已改派到 {catalog.name(label.department)}" + (
                                  "，协办：" + "、".join(catalog.name(c) for c in label.co_departments)
                                  if label.co_departments else ""))


def dispute_lines(catalog, d: returns.Dispute, tz: str) -> list[str]:
    at = d.ret.returned_at.astimezone(ZoneInfo(tz))
    conf = "人工派单" if d.confidence is None else f"模型置信度 {d.confidence:.0%}"
    return [f"原派单：{catalog.name(d.dispatched)}（{conf}）"
            + (f" · 协办：{'、'.join(catalog.name(c) for c in d.co)}" if d.co else ""),
            f"退单部门：{catalog.name(d.ret.department)} · 退单原因：{d.ret.reason} · 退单时间 {at:%Y-%m-%d %H:%M}",
            f"退单说明：{d.ret.note or '（无）'}"]


def dispute_view(engine, catalog, lead: str, item: actions.Item, tz: str, claim_minutes: float) -> None:
    """A lead's dispute (派单异议审核): the ticket, the dispatch, the return, the decision."""
    with Session(engine) as s:
        d = returns.dispute(s, item.queue_id)
    st.text(f"派单异议审核 · 工单 {item.ticket_id} · {received(engine, item.ticket_id, tz)}")
    if item.title:
        st.text(f"标题：{item.title}")
    with st.container(border=True, key="ticket_text"):
        st.text(item.text)
    for line in dispute_lines(catalog, d, tz):
        st.text(line)
    others = [(dept, p) for dept, p in d.top if dept != d.dispatched][:3]
    st.text("模型其他建议：" + ("；".join(f"{catalog.name(x)} {p:.0%}" for x, p in others) or "（无）"))
    if d.wrong:
        st.text("已知错误部门：" + "、".join(catalog.name(w) for w in d.wrong))
    st.button("维持原派单（退单不成立）", key="uphold", type="primary", width="stretch",
              on_click=settle, args=(engine, catalog, lead, item.queue_id, returns.UPHOLD))
    pick, co = st.columns(2)
    ids = [x for x, _ in others] + [x for x in catalog.ids if x not in {y for y, _ in others}]
    pick.selectbox("改派 / 主办部门", ids, index=None, key="d_lead",
                   format_func=lambda x: f"{catalog.name(x)}（{x}）", placeholder="输入部门名称搜索…")
    co.multiselect("协办部门", catalog.ids, key="d_co", format_func=lambda x: f"{catalog.name(x)}（{x}）")
    a, b = st.columns(2)
    a.button("改派（退单成立）", key="redispatch", width="stretch",
             on_click=settle, args=(engine, catalog, lead, item.queue_id, returns.REDISPATCH))
    b.button("设主办 + 协办", key="co_handle", width="stretch",
             on_click=settle, args=(engine, catalog, lead, item.queue_id, returns.CO_HANDLE))
    st.button("撤销上一步", key="undo", shortcut="U", on_click=take_back, args=(engine, lead, claim_minutes))


def read_only_disputes(engine, catalog, tz: str) -> None:
    """Dispatchers: the open disputes, which only leads decide."""
    open_ = returns.open_disputes(engine)
    if not open_:
        return
    with st.expander(f"派单异议（{len(open_)} 件待组长审核，只读）"):
        for d in open_:
            st.text(f"工单 {d.ticket_id} · 已等待 {d.age_days:.1f} 天\n" + "\n".join(dispute_lines(catalog, d, tz)))


def rules_panel(engine, catalog, cfg, reviewer: str) -> None:
    """Leads only: the dispatch catalogue's rules (派单目录), add one or disable one (router/rules.py)."""
    account = users.get(engine, reviewer)
    if account is None or account.role != "lead":
        return
    with st.sidebar.expander("派单目录规则（组长）"):
        for r in rules.listed(engine):
            st.text(f"#{r.id} {'正则 ' if r.regex else ''}{r.pattern} → {catalog.name(r.department)}"
                    + (f"（限 {catalog.name(r.district)}）" if r.district else "") + f"\n依据：{r.note}")
        with st.form("rule_add", clear_on_submit=True):
            pattern = st.text_input("关键词或正则", key="rule_pattern")
            regex = st.checkbox("按正则表达式匹配", key="rule_regex")
            dept = st.selectbox("派往部门", catalog.ids + DISPOSITIONS[-1:], index=None, key="rule_dept",
                                format_func=lambda d: f"{catalog.name(d)}（{d}）")
            district = st.selectbox("限定辖区（可不选）", [d.id for d in catalog.active if d.places], index=None,
                                    key="rule_district", format_func=catalog.name)
            note = st.text_input("依据（三定规定/权责清单条目）", key="rule_note")
            if st.form_submit_button("添加规则"):
                try:
                    if not dept or not note.strip():
                        raise rules.RuleError("请选择部门并填写依据。")
                    rule, warnings = rules.add(engine, catalog, pattern, dept, regex=regex, district=district,
                                               note=note.strip(), by=reviewer, max_share=cfg.rules.max_share)
                    st.session_state.flash = ("success", f"已添加规则 #{rule.id}" + "".join("；" + w for w in warnings))
                except rules.RuleError as e:
                    st.session_state.flash = ("error", f"规则未添加：{e}")
                st.rerun()
        with st.form("rule_disable"):
            rid = st.number_input("停用规则编号", min_value=1, step=1, key="rule_off")
            if st.form_submit_button("停用"):
                try:
                    rules.disable(engine, int(rid), reviewer)
                    st.session_state.flash = ("info", f"规则 #{int(rid)} 已停用（保留在历史中）")
                except rules.RuleError as e:
                    st.session_state.flash = ("error", str(e))
                st.rerun()


@webui.guard()  # an uncaught error: a Chinese message, the traceback in the server's log
def main() -> None:
    st.set_page_config(page_title="工单分派标注", layout="wide")
    st.html(STYLE + webui.ZH_STYLE)
    with st.container(key="zh"):
        st.html(webui.ZH_SCRIPT, unsafe_allow_javascript=True)
    try:
        cfg, engine, catalog, claim_minutes, tz = settings()
    except (ValueError, OSError) as e:  # settings, catalogue or store (a newer schema: StoreVersionError)
        st.error(f"无法启动标注：{plain(e)}")
        st.stop()
    reviewer = signed_in(engine, cfg)
    if not reviewer:
        sign_in(engine, cfg)
        # Streamlit fetches a widget's code when the page first draws one: a hidden button here fetches
        # the buttons' code before sign-in, so the first ticket's keys (1/2/3/S/N/U) work as soon as it shows.
        with st.container(key="preload"):
            st.button("开始标注", key="preload_button", disabled=True)
        return
    sidebar(engine, reviewer, tz)
    rules_panel(engine, catalog, cfg, reviewer)
    try:
        item = actions.next_item(engine, reviewer, claim_minutes)
    except StoreBusy:
        show_flash()
        st.error(BUSY)
        st.button("重试", key="retry_claim")
        return
    scroll_top(item.queue_id if item else None)
    show_flash()
    if item is not None and item.reason == "returned":
        dispute_view(engine, catalog, reviewer, item, tz, claim_minutes)  # next_item gives disputes to leads only
        return
    read_only_disputes(engine, catalog, tz)
    # The ticket is drawn last, into its place above the buttons: the browser shows it only once the
    # buttons, which hold the keys 1/2/3/S/N/U, are on the page (else a key pressed at once is lost).
    ticket = st.container()
    if item is None:
        st.info("队列已清空，暂无待处理工单。")
    else:
        suggestions(engine, catalog, reviewer, item)
    qid = item.queue_id if item else None
    a, b, c = st.columns(3)
    a.button("跳过", key="skip", shortcut="S", disabled=item is None, width="stretch",
             on_click=act, args=(engine, catalog, reviewer, qid, SKIP))
    b.button("无合适部门", key="no_fit", shortcut="N", disabled=item is None, width="stretch",
             on_click=act, args=(engine, catalog, reviewer, qid, NONE))
    c.button("撤销上一步", key="undo", shortcut="U", width="stretch",
             on_click=take_back, args=(engine, reviewer, claim_minutes))
    if item is not None:
        correction(engine, catalog, reviewer, item)
        with ticket:
            ticket_view(engine, catalog, reviewer, item, tz)
        details(catalog, item)

main()
