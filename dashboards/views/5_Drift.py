"""Drift: the department mix of recent predictions against the labeled data the current model
could learn from, with the Jensen-Shannon divergence between the two."""

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("分布漂移")
last = ui.query("last_prediction_at", ctx)
if last is None:
    ui.guide(ui.ROUTE_FIRST)
_, cur, _ = ui.models(ctx)

days = st.slider("近期窗口（天）", 1, 60, 7)
end = now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
start = end - timedelta(days=days)
recent = ui.query("predicted_mix", ctx, start, end)
until = cur["created_at"] if cur else None
reference = ui.query("label_mix", ctx, until)
if reference.empty:
    ui.guide("没有可对比的已标注工单：请用 `router import data/sample/history.jsonl` 导入历史工单。")
if recent.empty:
    ui.guide(f"近 {days} 天没有分派结果（最近一次在 {ctx.stamp(last)}，{ctx.zone}）；"
             "请放宽窗口，或用 `router classify` 分派新工单。")

jsd = queries.js_divergence(recent, reference)
c1, c2, c3 = st.columns(3)
c1.metric("JS 散度", f"{jsd:.4f}", help="Jensen-Shannon 散度（以 2 为底）：0 表示部门分布相同，1 表示完全不重叠")
c2.metric(f"近 {days} 天分派条数", f"{int(recent.sum()):,}")
c3.metric("训练数据标注条数", f"{int(reference.sum()):,}")
st.caption("训练数据：截至 " + (f"{ctx.stamp(until)}（{ctx.zone}，{cur['version']} 训练时）" if cur else "现在")
           + "的有效标注（未撤销）。")

mix = ui.named(ctx.catalog, queries.mix_table(recent, reference), "department")
n = ui.how_many("图中部门数（变化最大的优先）", len(mix), 20)
top = mix.head(n)
long = top.melt(["department", "department_name"], ["recent_share", "training_share"], "mix", "share")
long["mix"] = long["mix"].map({"recent_share": f"近 {days} 天", "training_share": "训练数据"})
ui.chart(alt.Chart(long).mark_bar().encode(
    y=alt.Y("department_name:N", sort=list(top["department_name"]), title=None, axis=alt.Axis(labelLimit=220)),
    x=alt.X("share:Q", title="占比", axis=alt.Axis(format="%")), yOffset="mix:N",
    color=alt.Color("mix:N", title=None, legend=alt.Legend(orient="top")),
    tooltip=[alt.Tooltip("department_name:N", title="部门"), alt.Tooltip("mix:N", title="数据"),
             alt.Tooltip("share:Q", format=".2%", title="占比")]
).properties(height=34 * len(top) + 30), width="stretch")
pct = st.column_config.NumberColumn
# shares in percent with one decimal each (the "percent" preset drops trailing zeros: 10% beside 4.14%)
shares = ["recent_share", "training_share", "change"]
st.dataframe(mix.assign(**{c: 100 * mix[c] for c in shares}), hide_index=True,
             column_order=["department_name", "recent", "training", *shares, "department"], column_config={
    "department": st.column_config.TextColumn("编号"), "department_name": st.column_config.TextColumn("部门"),
    "recent": pct("近期条数"), "training": pct("训练条数"), "recent_share": pct("近期占比", format="%.1f%%"),
    "training_share": pct("训练占比", format="%.1f%%"),
    "change": pct("变化", format="%+.1f", help="近期占比减去训练占比，单位：百分点")})

st.subheader("每天与训练数据的散度")
daily = ui.query("predicted_daily_mix", ctx, end - timedelta(days=30), ctx.tz)
rows = [{"day": d, "predictions": int(g["n"].sum()),
         "divergence": queries.js_divergence(g.set_index("department")["n"], reference)}
        for d, g in daily.groupby("day")]
ui.chart(alt.Chart(pd.DataFrame(rows, columns=["day", "predictions", "divergence"]))
             .mark_line(point=True).encode(x=alt.X("day:T", title=f"日期（{ctx.zone}）", axis=alt.Axis(format="%m-%d")),
                                           y=alt.Y("divergence:Q", title="JS 散度"),
                                           tooltip=[alt.Tooltip("day:T", title="日期", format="%Y-%m-%d"),
                                                    alt.Tooltip("predictions:Q", title="分派条数"),
                                                    alt.Tooltip("divergence:Q", format=".4f", title="JS 散度")])
             .properties(height=240), width="stretch")
