"""Model history: every version with its metrics, and the registry's promotions, refusals and
rollbacks with their reasons."""

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
st.altair_chart(alt.Chart(table).mark_line(point=alt.OverlayMarkDef(size=90, filled=True)).encode(
    x=x, y=alt.Y("macro_f1:Q", title="宏平均 F1", scale=alt.Scale(zero=False)),
    tooltip=[alt.Tooltip("version:N", title="版本"), alt.Tooltip("status:N", title="状态"),
             alt.Tooltip("macro_f1:Q", format=".3f", title="宏平均 F1"),
             alt.Tooltip("accuracy:Q", format=".3f", title="准确率")]).properties(height=260)
    + alt.Chart(table).mark_point(size=160, filled=True).encode(
        x="created_at:T", y="macro_f1:Q",
        color=alt.Color("status:N", title="状态", scale=alt.Scale(domain=list(STATUS.values()),
                                                                range=["#2ca02c", "#ff7f0e", "#999999"]))),
    width="stretch")

st.subheader("版本")
# a table, not a grid: at 1024 px every column shows, long names and times wrap instead of being cut off
st.caption(f"时间均为{ctx.zone}。")


def fixed(x, fmt="{:.4f}"):
    return "-" if x is None or pd.isna(x) else fmt.format(x)


t = table.sort_values("created_at", ascending=False)
st.table(pd.DataFrame({
    "版本": t["version"], "类型": t["kind"].map(lambda k: f"{KINDS[k]}（{k}）" if k in KINDS else k), "状态": t["status"],
    "训练时间": t["created_at"].map(lambda d: fixed(d, "{:%Y-%m-%d %H:%M}")),
    "上线时间": t["promoted_at"].map(lambda d: fixed(d, "{:%Y-%m-%d %H:%M}")),
    "准确率": t["accuracy"].map(fixed), "宏平均 F1": t["macro_f1"].map(fixed), "ECE": t["ece"].map(fixed),
    "训练 / 测试工单": [f"{fixed(a, '{:,.0f}')} / {fixed(b, '{:,.0f}')}"
                     for a, b in zip(t["train_tickets"], t["test_tickets"])]}), hide_index=True)

st.subheader("上线决策与回滚")
if ev.empty:
    st.info("注册表中还没有记录。")
else:
    st.altair_chart(alt.Chart(ev).mark_point(size=140, filled=True).encode(
        x=alt.X("at:T", title=f"时间（{ctx.zone}）", axis=alt.Axis(format="%m-%d %H:%M")),
        y=alt.Y("action_name:N", title=None, axis=alt.Axis(labelLimit=200)),
        color=alt.Color("action_name:N", legend=None),
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
