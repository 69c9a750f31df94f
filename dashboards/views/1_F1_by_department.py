"""Per-department F1 of the current model, worst first, with the change against the version it
replaced; F1 over model versions."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui

ctx = ui.page("各部门 F1")
vs, cur, prev = ui.models(ctx)
if cur is None:
    ui.guide("还没有在用的模型。" + ui.FIRST_STEPS)

rep = ui.report(ctx, cur["path"])
if rep is None:
    st.warning(f"{cur['version']} 在 {cur['path']} 下没有 report.json：缺少精确率和召回率。")
    m = cur["metrics"]
    rep = {"per_department": {d: {"precision": None, "recall": None, "f1": f,
                                  "support": m.get("per_department_support", {}).get(d)}
                              for d, f in m.get("per_department_f1", {}).items()}}
m, pm = cur["metrics"], (prev or {}).get("metrics", {})

HELP = {"accuracy": "留出测试集上分派正确的比例",
        "macro_f1": "各部门 F1 的平均值，每个部门同等权重，小部门做得差也会拉低它",
        "weighted_f1": "按各部门工单数加权的 F1",
        "ece": "期望校准误差：置信度与实际准确率的平均差距，越小越好"}
cols = st.columns(4)
for col, key, name in zip(cols, ("accuracy", "macro_f1", "weighted_f1", "ece"),
                          ("准确率", "宏平均 F1", "加权 F1", "ECE")):
    d = m[key] - pm[key] if key in m and key in pm else None
    flat = d is not None and round(d, 3) == 0  # no arrow for "no change"
    col.metric(name, f"{m[key]:.3f}" if key in m else "-", None if d is None else f"{d:+.3f}",
               delta_color="off" if flat else ("inverse" if key == "ece" else "normal"),
               delta_arrow="off" if flat else "auto", help=HELP[key])
st.caption(f"在用模型 **{cur['version']}**，留出测试集 {m.get('n', '?')} 条工单；"
           + (f"变化相对于它替换的版本 **{prev['version']}**。" if prev else "没有可比较的上一版本。"))

df = ui.named(ctx.catalog, queries.per_department(rep, pm or None), "department")
worst = ui.how_many("图中部门数（由差到好）", len(df), 25)
top = df.head(worst)
order = list(top["department_name"])
y = alt.Y("department_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=240, labelOverlap=False))
tips = [alt.Tooltip("department_name:N", title="部门"), alt.Tooltip("department:N", title="编号"),
        alt.Tooltip("f1:Q", format=".3f", title="F1"), alt.Tooltip("previous_f1:Q", format=".3f", title="上一版本 F1"),
        alt.Tooltip("change:Q", format="+.3f", title="变化"), alt.Tooltip("support:Q", title="测试工单数")]
if top["previous_f1"].isna().all():  # no previous version: no "上一版本 F1: null"
    tips = tips[:3] + tips[5:]
h = 22 * len(top)
f1 = (alt.Chart(top).mark_bar(color="#4c78a8").encode(
          x=alt.X("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])), y=y, tooltip=tips)
      + alt.Chart(top).mark_tick(color="black", thickness=2).encode(x="previous_f1:Q", y=y)
      ).properties(width=230, height=h)
changed = top.dropna(subset=["change"]).assign(
    direction=lambda x: ["升" if c > 0.0005 else "降" if c < -0.0005 else "不变" for c in x["change"]])
if changed.empty:
    chart = f1
    st.caption("蓝条：在用模型的 F1。没有上一版本，无法显示变化。")
else:
    span = max(0.05, float(changed["change"].abs().max()))  # symmetric, never a zero-width axis
    change = alt.Chart(changed).mark_bar().encode(
        x=alt.X("change:Q", title="变化", scale=alt.Scale(domain=[-span, span]),
                axis=alt.Axis(format="+.2f", tickCount=5)),
        y=alt.Y("department_name:N", sort=order, axis=None, scale=alt.Scale(domain=order)),
        color=alt.Color("direction:N", legend=None, scale=alt.Scale(domain=["升", "降", "不变"],
                                                                   range=["#2ca02c", "#d62728", "#999999"])),
        tooltip=tips).properties(width=110, height=h)
    chart = alt.hconcat(f1, change, spacing=8)
    st.caption("蓝条：在用模型的 F1；黑色短线：上一版本的 F1。右侧：F1 的变化（绿升红降，灰色为不变）。")
ui.chart(chart, width="content")
pct = st.column_config.NumberColumn
# short headers (help on hover) and the id last: at 1024 px every column shows
st.dataframe(df, hide_index=True, column_order=["department_name", "f1", "change", "previous_f1", "precision",
                                                "recall", "support", "department"], column_config={
    "department": st.column_config.TextColumn("编号"), "department_name": st.column_config.TextColumn("部门"),
    "f1": pct("F1", format="%.3f"), "precision": pct("精确率", format="%.3f"),
    "recall": pct("召回率", format="%.3f"), "support": pct("工单数", help="留出测试集中这个部门的工单数"),
    "previous_f1": pct("上版 F1", format="%.3f", help="上一版本在它自己的留出测试集上的 F1"),
    "change": pct("变化", format="%+.3f", help="F1 减去上一版本的 F1")})

st.subheader("各版本的 F1")
hist = queries.f1_by_version(vs)
hist["created_at"] = ctx.local(hist["created_at"]) if len(hist) else hist["created_at"]
macro = pd.DataFrame([{"version": v["version"], "created_at": ctx.local(v["created_at"]),
                       "f1": v["metrics"].get("macro_f1")} for v in vs if "macro_f1" in v["metrics"]],
                     columns=["version", "created_at", "f1"])
pick = st.multiselect("部门", list(df["department"]), default=list(df["department"].head(5)),
                      format_func=lambda d: ui.label(ctx.catalog, d))
lines = hist[hist["department"].isin(pick)].assign(
    series=lambda x: [ctx.catalog.name(d) for d in x["department"]])
x = alt.X("created_at:T", title=f"训练时间（{ctx.zone}）", axis=alt.Axis(format="%m-%d %H:%M"))
series = alt.Chart(lines).mark_line(point=True).encode(
    x=x, y=alt.Y("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])),
    color=alt.Color("series:N", title="部门", legend=alt.Legend(orient="bottom", columns=3, labelLimit=220)),
    tooltip=[alt.Tooltip("version:N", title="版本"), alt.Tooltip("series:N", title="部门"),
             alt.Tooltip("f1:Q", format=".3f")])
mac = alt.Chart(macro).mark_line(point=True, strokeDash=[6, 3], color="black").encode(
    x=x, y="f1:Q", tooltip=[alt.Tooltip("version:N", title="版本"),
                            alt.Tooltip("f1:Q", format=".3f", title="宏平均 F1")])
ui.chart((series + mac).properties(height=320), width="stretch")
st.caption("黑色虚线：宏平均 F1。每个版本的 F1 都在它自己的留出测试集上测得。")
