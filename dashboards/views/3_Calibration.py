"""Calibration of the current model (reliability diagram, ECE) and the confidences of one
day's predictions against the review-queue threshold."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("置信度校准")
_, cur, _ = ui.models(ctx)
last = ui.query("last_prediction_at", ctx)
if cur is None and last is None:
    ui.guide("还没有模型，也没有分派结果。" + ui.FIRST_STEPS)

st.subheader("留出测试集上的可靠性")
rep = ui.report(ctx, cur["path"]) if cur else None
if rep is None:
    st.info("没有带 report.json 的在用模型。" + ui.FIRST_STEPS)
else:
    rel = queries.reliability(rep)
    c1, c2 = st.columns([1, 3])
    c1.metric("ECE", f"{rep['ece']:.3f}", help="期望校准误差：各置信度区间内置信度与准确率之差的平均，"
              "按区间工单数加权（15 个区间）；越小，模型说的把握越可信")
    c1.caption(f"{cur['version']}，留出测试集 {rep.get('n', '?')} 条工单")
    diag = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    xy = dict(x=alt.X("confidence:Q", title="平均置信度", scale=alt.Scale(domain=[0, 1])),
              y=alt.Y("accuracy:Q", title="准确率", scale=alt.Scale(domain=[0, 1])))
    tips = [alt.Tooltip("lo:Q", format=".1f", title="区间下限"), alt.Tooltip("hi:Q", format=".1f", title="区间上限"),
            alt.Tooltip("count:Q", title="工单数"), alt.Tooltip("confidence:Q", format=".3f", title="平均置信度"),
            alt.Tooltip("accuracy:Q", format=".3f", title="准确率")]
    pts = (alt.Chart(rel).mark_line().encode(**xy)
           + alt.Chart(rel).mark_circle(opacity=0.8).encode(
               **xy, size=alt.Size("count:Q", title="工单数", scale=alt.Scale(range=[40, 400])), tooltip=tips))
    ui.chart((diag + pts).properties(height=320), where=c2)
    c2.caption("点落在灰色虚线上表示置信度与准确率一致；在线下方表示模型过于自信。")

st.subheader("某一天分派结果的置信度")
if last is None:
    ui.guide(ui.ROUTE_FIRST)
today, last_day = ctx.local(now()).date(), ctx.local(last).date()
day = st.date_input(f"日期（{ctx.zone}）", value=min(today, last_day), max_value=max(today, last_day))
start = datetime.combine(day, time(0), tzinfo=ZoneInfo(ctx.tz))
end = start + timedelta(days=1)
thr = ctx.threshold()
hist = ui.query("confidence_histogram", ctx, start, end)
low, n = ui.query("below", ctx, start, end, thr)
c1, c2, c3 = st.columns(3)
c1.metric("分派条数", f"{n:,}")
c2.metric(f"低于阈值 {thr:g}", f"{low:,}", help="置信度低于复核阈值的工单进入复核队列")
c3.metric("送复核的比例", f"{low / n:.1%}" if n else "-")
if n == 0:
    st.info(f"{day} 没有分派结果；最近一次分派在 {ctx.stamp(last)}（{ctx.zone}）。")
bars = alt.Chart(hist).mark_bar().encode(
    x=alt.X("lo:Q", bin="binned", title="置信度", scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
    y=alt.Y("tickets:Q", title="分派条数"),
    tooltip=[alt.Tooltip("lo:Q", title="下限"), alt.Tooltip("hi:Q", title="上限"), alt.Tooltip("tickets:Q", title="条数")])
rule = alt.Chart(pd.DataFrame({"t": [thr], "label": [f"复核阈值 {thr:g}"]}))
line = rule.mark_rule(color="red", strokeWidth=2).encode(x="t:Q")
text = rule.mark_text(color="red", align="left", dx=4).encode(x="t:Q", y=alt.value(12), text="label:N")
ui.chart((bars + line + text).properties(height=300), width="stretch")
st.caption(f"红线（复核阈值 {thr:g}）左侧的工单进入复核队列。")
