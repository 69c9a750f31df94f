"""The review queue: its size over time, dispatchers' decisions per day, and the audit sample's
agreement with the model (an unbiased accuracy estimate with a Wilson interval)."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

REASONS = {"low_confidence": "低置信度", "audit": "抽检", "no_fit": "无合适部门", "over_budget": "超出每日预算",
           "emergency": "紧急警情", "returned": "派单异议"}

ctx = ui.page("复核队列")
if not ui.query("has_rows", ctx, "queueitem"):
    ui.guide("复核队列还从未有过工单。`router classify` 会把置信度低于复核阈值"
             f"（{ctx.threshold():g}）的工单放入队列。" + ui.ROUTE_FIRST)

days = st.slider("显示天数", 7, 180, 30)
start, end = queries.window(days, now().replace(minute=0, second=0, microsecond=0), ctx.tz)
first = ui.query("first_queued_at", ctx)
# the chart starts on the day the queue got its first item, not with weeks of zeros before it
since, _ = queries.window(1, queries.utc(first), ctx.tz)
size = ui.query("queue_size", ctx, max(start, since), end, ctx.tz)
reasons = ui.query("pending_by_reason", ctx)
cols = st.columns(4)
cols[0].metric("当前待处理", f"{int(size['open'].iloc[-1]):,}", help="队列中尚未处理的工单")
for col, (reason, k) in zip(cols[1:], reasons.itertuples(index=False)):
    col.metric(f"待处理：{REASONS.get(reason, reason)}", f"{k:,}")

st.subheader("队列规模")
size["date"] = size["day"].dt.strftime("%m-%d")
flow = size.melt(["day", "date"], ["added", "closed"], "flow", "items")
flow["flow"] = flow["flow"].map({"added": "新进入", "closed": "已处理"})
x = alt.X("date:O", title=f"日期（{ctx.zone}）", sort=list(size["date"]), axis=alt.Axis(labelAngle=0, labelOverlap=True))
bars = alt.Chart(flow).mark_bar(opacity=0.7).encode(
    x=x, xOffset="flow:N", y=alt.Y("items:Q", title="工单数"),
    color=alt.Color("flow:N", title=None, scale=alt.Scale(domain=["新进入", "已处理", "日终待处理"],
                                                          range=["#4c78a8", "#2ca02c", "#e45756"])),
    tooltip=[alt.Tooltip("date:O", title="日期"), alt.Tooltip("flow:N", title="类别"),
             alt.Tooltip("items:Q", title="工单数")])
line = alt.Chart(size.assign(kind="日终待处理")).mark_line(point=True, color="#e45756").encode(
    x=x, y="open:Q", color="kind:N",
    tooltip=[alt.Tooltip("date:O", title="日期"), alt.Tooltip("open:Q", title="日终待处理")])
ui.chart((bars + line).properties(height=280), width="stretch")
st.caption("每天新进入和已处理的工单（柱），以及每天结束时仍待处理的工单（线）"
           + (f"；队列从 {ctx.stamp(first)[:10]} 起才有工单，此前的日子不画。" if since > start else "。"))

st.subheader("每位标注员每天的处理量")
dec = ui.query("decisions", ctx, start, ctx.tz)
if dec.empty:
    st.info(f"近 {days} 天没有标注员的处理记录：标注员在标注应用中处理队列后会出现在这里。")
else:
    dec["date"] = dec["day"].dt.strftime("%m-%d")
    ui.chart(alt.Chart(dec).mark_bar().encode(
        x=alt.X("date:O", title=f"日期（{ctx.zone}）", axis=alt.Axis(labelAngle=0, labelOverlap=True)),
        y=alt.Y("decisions:Q", title="处理条数"), color=alt.Color("reviewer:N", title="标注员"),
        tooltip=[alt.Tooltip("date:O", title="日期"), alt.Tooltip("reviewer:N", title="标注员"),
                 alt.Tooltip("decisions:Q", title="处理条数")]).properties(height=260), width="stretch")
    table = dec.pivot_table(index="reviewer", values="decisions", aggfunc=["sum", "mean"]).reset_index()
    table.columns = ["reviewer", "decisions", "per active day"]
    st.dataframe(table.sort_values("decisions", ascending=False), hide_index=True,
                 column_config={"reviewer": st.column_config.TextColumn("标注员"),
                                "decisions": st.column_config.NumberColumn("处理条数"),
                                "per active day": st.column_config.NumberColumn("每个工作日", format="%.1f")})

st.subheader("无合适部门：每日占比")
nf = ui.query("nofit_daily", ctx, start, ctx.tz)
if nf.empty:
    st.info(f"最近 {days} 天没有路由过的工单。")
else:
    rates = nf.melt("day", ["flagged_rate", "label_rate"], "rate", "share").dropna()
    rates["rate"] = rates["rate"].map({"flagged_rate": "模型判为无合适部门", "label_rate": "标注员标为无合适部门"})
    peak = rates["share"].max()
    if not peak:
        st.info(f"最近 {days} 天没有工单被模型判为或被标注员标为无合适部门。")
    ui.chart(alt.Chart(rates).mark_line(point=True).encode(
        x=alt.X("day:T", title=f"日期（{ctx.zone}）", axis=alt.Axis(format="%m-%d", labelAngle=0)),
        y=alt.Y("share:Q", title="占比", axis=alt.Axis(format=".1%"),  # at least 0-1%: all zeros are not a flat axis
                scale=alt.Scale(domain=[0, 0.01]) if peak < 0.01 else alt.Scale()),
        color=alt.Color("rate:N", title=None),
        tooltip=[alt.Tooltip("day:T", title="日期", format="%Y-%m-%d"), alt.Tooltip("rate:N", title="类别"),
                 alt.Tooltip("share:Q", title="占比", format=".1%")]).properties(height=220), width="stretch")
    st.caption("模型路由的工单中判为无合适部门（作为“无合适部门”进入队列）的占比，以及标注员决定中标为无合适部门（N）的占比。")

st.subheader("抽检：随机样本与模型的一致率")
audit = ui.query("audit_daily", ctx, ctx.tz)
if audit.empty:
    st.info("还没有抽检标注：模型较有把握的工单会按一定比例随机进入队列（抽检）；标注员处理后，"
            "他们与模型的一致率就是模型准确率的无偏估计（不受队列偏向难题的影响）。")
    st.stop()
k, n = int(audit["agree"].sum()), int(audit["audited"].sum())
lo, hi = queries.wilson(k, n)
recent = audit[audit["day"] >= pd.Timestamp(ctx.local(start).date())]
rk, rn = int(recent["agree"].sum()), int(recent["audited"].sum())
rlo, rhi = queries.wilson(rk, rn)
c1, c2 = st.columns(2)
c1.metric("一致率（全部抽检）", f"{k / n:.1%}", help=f"95% Wilson 置信区间 {lo:.1%} - {hi:.1%}")
c1.caption(f"{n:,} 条抽检中 {k:,} 条一致；95% 置信区间 **{lo:.1%} - {hi:.1%}**")
c2.metric(f"一致率（近 {days} 天）", f"{rk / rn:.1%}" if rn else "-")
c2.caption(f"{rn:,} 条中 {rk:,} 条；95% 置信区间 **{rlo:.1%} - {rhi:.1%}**" if rn else "这段时间没有抽检")
weekly = audit.set_index("day")[["audited", "agree"]].resample("W-MON", label="left", closed="left").sum()
weekly = weekly[weekly["audited"] > 0].reset_index()
ci = [queries.wilson(a, b) for a, b in zip(weekly["agree"], weekly["audited"])]
weekly["agreement"] = weekly["agree"] / weekly["audited"]
weekly["low"], weekly["high"] = [c[0] for c in ci], [c[1] for c in ci]
wb = alt.Chart(weekly).encode(x=alt.X("day:T", title="周（周一起）", axis=alt.Axis(format="%m-%d")))
ui.chart((wb.mark_area(opacity=0.25).encode(y=alt.Y("low:Q", title="一致率", axis=alt.Axis(format="%"),
                                                        scale=alt.Scale(zero=False)), y2="high:Q")
              + wb.mark_line(point=True).encode(
                  y="agreement:Q", tooltip=[alt.Tooltip("day:T", title="周", format="%Y-%m-%d"),
                                            alt.Tooltip("audited:Q", title="抽检"),
                                            alt.Tooltip("agree:Q", title="一致"),
                                            alt.Tooltip("agreement:Q", format=".1%", title="一致率"),
                                            alt.Tooltip("low:Q", format=".1%", title="区间下限"),
                                            alt.Tooltip("high:Q", format=".1%", title="区间上限")])
              ).properties(height=260), width="stretch")
st.caption("每周的一致率及其 95% Wilson 置信区间（阴影）。")
