"""Model history: every version with its metrics, and the registry's promotions, refusals and
rollbacks with their reasons."""

from html import escape

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import Action, VersionStatus

ACTIONS = {Action.promoted: "上线", Action.rolled_back: "回滚", Action.kept_candidate: "未上线（保留为候选）"}
STATUS = {VersionStatus.current: "在用", VersionStatus.candidate: "候选", VersionStatus.retired: "已退役"}
KINDS = {"baseline": "基线", "llm": "大模型", "ensemble": "集成"}

ctx = ui.page("模型历史")
vs = ui.query("versions", ctx)
if not vs:
    ui.guide("还没有模型版本。" + ui.FIRST_STEPS)
ev = ui.query("events", ctx).copy()
ev["at"] = ctx.local(ev["at"]) if len(ev) else ev["at"]
ev["action_name"] = ev["action"].map(lambda a: ACTIONS.get(a, a))
ev["reason"] = ev["reason"].map(queries.reason_zh)

table = pd.DataFrame([{"version": v["version"], "kind": v["kind"], "status": STATUS.get(v["status"], v["status"]),
                       "created_at": ctx.local(v["created_at"]), "promoted_at": ctx.local(v["promoted_at"]),
                       "accuracy": v["metrics"].get("accuracy"), "macro_f1": v["metrics"].get("macro_f1"),
                       "ece": v["metrics"].get("ece"), "train_tickets": v["data_snapshot"].get("n_train"),
                       "test_tickets": v["data_snapshot"].get("n_test")} for v in vs])
cur = table[table["status"] == "在用"]
st.markdown(f"在用模型：**{cur['version'].iloc[0] if len(cur) else '无'}**")
cols = st.columns(3)
cols[0].metric("版本数", len(table))
cols[1].metric("上线次数", int((ev["action"] == "promoted").sum()))
cols[2].metric("回滚次数", int((ev["action"] == "rolled_back").sum()))

st.subheader("各版本的宏平均 F1")
x = alt.X("created_at:T", title=f"训练时间（{ctx.zone}）", axis=alt.Axis(format="%m-%d %H:%M"))
ui.chart(alt.Chart(table).mark_line(point=alt.OverlayMarkDef(size=90, filled=True)).encode(
    x=x, y=alt.Y("macro_f1:Q", title="宏平均 F1", scale=alt.Scale(zero=False)),
    tooltip=[alt.Tooltip("version:N", title="版本"), alt.Tooltip("status:N", title="状态"),
             alt.Tooltip("macro_f1:Q", format=".3f", title="宏平均 F1"),
             alt.Tooltip("accuracy:Q", format=".3f", title="准确率")]).properties(height=260)
    + alt.Chart(table).mark_point(size=160, filled=True).encode(
        x=x, y=alt.Y("macro_f1:Q", title="宏平均 F1"),
        color=alt.Color("status:N", title="状态", scale=alt.Scale(domain=list(STATUS.values()),
                                                                range=["#2ca02c", "#ff7f0e", "#999999"]))),
    width="stretch")

st.subheader("版本")
st.caption(f"时间均为{ctx.zone}；把鼠标停在表头上可看说明。")
# an HTML table, not a grid: at 1024 px every column shows with its header on one line; the version's
# kind, status and ticket counts sit under its name, its two times in one column; headers explain
# themselves on hover (title)
HEAD = [("版本", "版本名；其下为模型类型、状态、训练 / 测试工单数"),
        ("训练 / 上线", f"训练完成时间，其下为上线时间（{ctx.zone}）"),
        ("准确率", "测试工单上的准确率"), ("宏 F1", "测试工单上各部门 F1 的平均（宏平均 F1）"),
        ("ECE", "期望校准误差：置信度与实际准确率之差，越小越好")]
STYLE = """<style>
table.versions { border-collapse: collapse; font-size: 0.875rem; width: 100%; }
table.versions th, table.versions td { border-bottom: 1px solid rgba(49, 51, 63, 0.1); padding: 0.35rem 0.5rem;
  text-align: left; vertical-align: top; }
table.versions th { font-weight: 400; color: rgba(49, 51, 63, 0.6); white-space: nowrap; }
table.versions th span { border-bottom: 1px dotted; cursor: help; }
table.versions td.n, table.versions td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.versions td.n { text-align: right; }
table.versions small { color: rgba(49, 51, 63, 0.6); }
</style>"""


def fixed(x, fmt="{:.4f}"):
    return "-" if x is None or pd.isna(x) else fmt.format(x)


def row(v) -> str:
    kind = f"{KINDS[v.kind]}（{v.kind}）" if v.kind in KINDS else v.kind
    counts = f"训练 {fixed(v.train_tickets, '{:,.0f}')} / 测试 {fixed(v.test_tickets, '{:,.0f}')} 张"
    when = fixed(v.promoted_at, "{:%Y-%m-%d %H:%M}")
    cells = [f"<b>{escape(v.version)}</b><br><small>{escape(kind)} · {escape(v.status)} · {counts}</small>",
             f"{fixed(v.created_at, '{:%Y-%m-%d %H:%M}')}<br><small>{'未上线' if when == '-' else when}</small>"]
    return ("<tr><td>" + "</td><td class='t'>".join(cells) + "</td>"
            + "".join(f"<td class='n'>{fixed(x)}</td>" for x in (v.accuracy, v.macro_f1, v.ece)) + "</tr>")


heads = "".join(f"<th title='{escape(h)}'><span>{escape(n)}</span></th>" for n, h in HEAD)
st.html(STYLE + f"<table class='versions'><thead><tr>{heads}</tr></thead><tbody>"
        + "".join(row(v) for v in table.sort_values("created_at", ascending=False).itertuples())
        + "</tbody></table>")

st.subheader("上线决策与回滚")
if ev.empty:
    st.info("注册表中还没有记录。")
else:
    # the x scale's padding keeps the first and last points whole (a point on the domain's edge is cut in half)
    ui.chart(alt.Chart(ev).mark_point(size=140, filled=True).encode(
        x=alt.X("at:T", title=f"时间（{ctx.zone}）", axis=alt.Axis(format="%m-%d %H:%M"), scale=alt.Scale(padding=16)),
        y=alt.Y("action_name:N", title=None, axis=alt.Axis(labelLimit=200)),
        color=alt.Color("action_name:N", title="决策", legend=None),
        tooltip=[alt.Tooltip("at:T", title="时间", format="%Y-%m-%d %H:%M"), alt.Tooltip("version:N", title="版本"),
                 alt.Tooltip("action_name:N", title="决策"), alt.Tooltip("reason:N", title="理由")]
    ).properties(height=160), width="stretch")
    rb = ev[ev["action"] == "rolled_back"]
    if len(rb):
        st.warning(f"共回滚 {len(rb)} 次；最近一次在 {rb['at'].iloc[0]:%Y-%m-%d %H:%M}（{ctx.zone}），"
                   f"回滚到 {rb['version'].iloc[0]}：{rb['reason'].iloc[0]}")
    # a table, not a grid: long version names and reasons wrap instead of being cut off
    st.table(ev.assign(at=ev["at"].dt.strftime("%Y-%m-%d %H:%M"))[["at", "version", "action_name", "reason"]]
             .rename(columns={"at": "时间", "version": "版本", "action_name": "决策", "reason": "理由"}),
             hide_index=True)
