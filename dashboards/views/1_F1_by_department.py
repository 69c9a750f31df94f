"""Per-department F1 of the current model, worst first, with the change against the version it
replaced; F1 over model versions."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui

ctx = ui.page("Per-department F1")
vs, cur, prev = ui.models(ctx)
if cur is None:
    ui.guide("No current model yet. " + ui.FIRST_STEPS)

rep = ui.report(cur["path"])
if rep is None:
    st.warning(f"{cur['version']} has no report.json in {cur['path']}: precision and recall are missing.")
    m = cur["metrics"]
    rep = {"per_department": {d: {"precision": None, "recall": None, "f1": f,
                                  "support": m.get("per_department_support", {}).get(d)}
                              for d, f in m.get("per_department_f1", {}).items()}}
m, pm = cur["metrics"], (prev or {}).get("metrics", {})


def delta(key):
    return f"{m[key] - pm[key]:+.3f}" if key in m and key in pm else None


cols = st.columns(4)
for col, key, name in zip(cols, ("accuracy", "macro_f1", "weighted_f1", "ece"),
                          ("accuracy", "macro-F1", "weighted F1", "ECE")):
    col.metric(name, f"{m[key]:.3f}" if key in m else "-", delta(key),
               delta_color="inverse" if key == "ece" else "normal")
st.caption(f"current model **{cur['version']}**, held-out set of {m.get('n', '?')} tickets; "
           + (f"changes against **{prev['version']}**, the version it replaced." if prev
              else "no earlier version to compare with."))

df = ui.named(ctx.catalog, queries.per_department(rep, pm or None), "department")
worst = ui.how_many("departments in the chart (worst first)", len(df), 25)
top = df.head(worst)
order = list(top["department_name"])
y = alt.Y("department_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=240, labelOverlap=False))
tips = ["department", "department_name", alt.Tooltip("f1:Q", format=".3f"),
        alt.Tooltip("previous_f1:Q", format=".3f"), alt.Tooltip("change:Q", format="+.3f"), "support"]
f1 = (alt.Chart(top).mark_bar(color="#4c78a8").encode(
          x=alt.X("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])), y=y, tooltip=tips)
      + alt.Chart(top).mark_tick(color="black", thickness=2).encode(x="previous_f1:Q", y=y))
change = alt.Chart(top).mark_bar().encode(
    x=alt.X("change:Q", title="change vs previous"), y=alt.Y("department_name:N", sort=order, axis=None),
    color=alt.condition("datum.change < 0", alt.value("#d62728"), alt.value("#2ca02c")), tooltip=tips)
h = 22 * len(top)
st.altair_chart(alt.hconcat(f1.properties(width=520, height=h), change.properties(width=200, height=h)),
                width="content")
st.caption("Bars: F1 of the current model; black ticks: F1 of the previous version.")
st.dataframe(df, hide_index=True, column_config={
    "f1": st.column_config.NumberColumn("F1", format="%.3f"),
    "precision": st.column_config.NumberColumn(format="%.3f"),
    "recall": st.column_config.NumberColumn(format="%.3f"),
    "previous_f1": st.column_config.NumberColumn("previous F1", format="%.3f"),
    "change": st.column_config.NumberColumn("change", format="%+.3f")})

st.subheader("F1 over model versions")
hist = queries.f1_by_version(vs)
macro = [{"version": v["version"], "created_at": v["created_at"], "f1": v["metrics"].get("macro_f1")}
         for v in vs if "macro_f1" in v["metrics"]]
pick = st.multiselect("departments", list(df["department"]), default=list(df["department"].head(5)),
                      format_func=lambda d: ui.label(ctx.catalog, d))
lines = hist[hist["department"].isin(pick)].assign(
    series=lambda x: [ctx.catalog.name(d) for d in x["department"]])
series = alt.Chart(lines).mark_line(point=True).encode(
    x=alt.X("created_at:T", title="trained at"), y=alt.Y("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])),
    color=alt.Color("series:N", title="department"),
    tooltip=["version", "series", alt.Tooltip("f1:Q", format=".3f")])
mac = alt.Chart(pd.DataFrame(macro)).mark_line(point=True, strokeDash=[6, 3], color="black").encode(
    x="created_at:T", y="f1:Q", tooltip=["version", alt.Tooltip("f1:Q", format=".3f", title="macro-F1")])
st.altair_chart((series + mac).properties(height=320), width="stretch")
st.caption("Dashed black: macro-F1. Every version's F1 is measured on its own held-out split.")
