"""Drift: the department mix of recent predictions against the labeled data the current model
could learn from, with the Jensen-Shannon divergence between the two."""

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("Drift")
last = ui.query("last_prediction_at", ctx.url)
if last is None:
    ui.guide(ui.ROUTE_FIRST)
_, cur, _ = ui.models(ctx)

days = st.slider("recent window (days)", 1, 60, 7)
end = now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
start = end - timedelta(days=days)
recent = ui.query("predicted_mix", ctx.url, start, end)
until = cur["created_at"] if cur else None
reference = ui.query("label_mix", ctx.url, until)
if reference.empty:
    ui.guide("No labeled tickets to compare with: import history with "
             "`router import data/sample/history.jsonl`.")
if recent.empty:
    ui.guide(f"No predictions in the last {days} days (the latest are from {last:%Y-%m-%d %H:%M} UTC); "
             "widen the window or route new tickets with `router classify`.")

jsd = queries.js_divergence(recent, reference)
c1, c2, c3 = st.columns(3)
c1.metric("Jensen-Shannon divergence", f"{jsd:.4f}", help="base 2: 0 = the same mix, 1 = no overlap")
c2.metric(f"predictions, last {days} days", f"{int(recent.sum()):,}")
c3.metric("labels (training data)", f"{int(reference.sum()):,}")
st.caption("Training data: labels (not undone) created up to "
           + (f"{until:%Y-%m-%d %H:%M} UTC, when {cur['version']} was trained." if cur else "now."))

mix = ui.named(ctx.catalog, queries.mix_table(recent, reference), "department")
n = ui.how_many("departments in the chart (largest change first)", len(mix), 20)
top = mix.head(n)
long = top.melt(["department", "department_name"], ["recent_share", "training_share"], "mix", "share")
long["mix"] = long["mix"].map({"recent_share": f"last {days} days", "training_share": "training data"})
st.altair_chart(alt.Chart(long).mark_bar().encode(
    y=alt.Y("department_name:N", sort=list(top["department_name"]), title=None, axis=alt.Axis(labelLimit=240)),
    x=alt.X("share:Q", axis=alt.Axis(format="%")), yOffset="mix:N", color=alt.Color("mix:N", title=None),
    tooltip=["department", "department_name", "mix", alt.Tooltip("share:Q", format=".2%")]
).properties(height=34 * len(top) + 30), width="stretch")
st.dataframe(mix, hide_index=True, column_config={
    c: st.column_config.NumberColumn(format="percent") for c in ("recent_share", "training_share", "change")})

st.subheader("Daily divergence from the training data")
daily = ui.query("predicted_daily_mix", ctx.url, end - timedelta(days=30))
rows = [{"day": d, "predictions": int(g["n"].sum()),
         "divergence": queries.js_divergence(g.set_index("department")["n"], reference)}
        for d, g in daily.groupby("day")]
st.altair_chart(alt.Chart(pd.DataFrame(rows, columns=["day", "predictions", "divergence"]))
                .mark_line(point=True).encode(x=alt.X("day:T", title="UTC day"),
                                              y=alt.Y("divergence:Q", title="JS divergence"),
                                              tooltip=["day:T", "predictions",
                                                       alt.Tooltip("divergence:Q", format=".4f")])
                .properties(height=240), width="stretch")
