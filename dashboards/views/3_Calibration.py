"""Calibration of the current model (reliability diagram, ECE) and the confidences of one
day's predictions against the review-queue threshold."""

from datetime import datetime, time, timedelta, timezone

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("Calibration")
_, cur, _ = ui.models(ctx)
last = ui.query("last_prediction_at", ctx.url)
if cur is None and last is None:
    ui.guide("No model and no predictions yet. " + ui.FIRST_STEPS)

st.subheader("Reliability on the held-out set")
rep = ui.report(cur["path"]) if cur else None
if rep is None:
    st.info("No current model with a report.json. " + ui.FIRST_STEPS)
else:
    rel = queries.reliability(rep)
    c1, c2 = st.columns([1, 3])
    c1.metric("ECE", f"{rep['ece']:.3f}", help="expected calibration error: mean gap between "
              "confidence and accuracy, weighted by bin size (15 bins)")
    c1.caption(f"{cur['version']}, {rep.get('n', '?')} held-out tickets")
    diag = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    xy = dict(x=alt.X("confidence:Q", title="mean confidence", scale=alt.Scale(domain=[0, 1])),
              y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])))
    tips = [alt.Tooltip("lo:Q", format=".1f"), alt.Tooltip("hi:Q", format=".1f"), "count",
            alt.Tooltip("confidence:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f")]
    pts = (alt.Chart(rel).mark_line().encode(**xy)
           + alt.Chart(rel).mark_circle(opacity=0.8).encode(
               **xy, size=alt.Size("count:Q", title="tickets", scale=alt.Scale(range=[40, 400])), tooltip=tips))
    c2.altair_chart((diag + pts).properties(height=320), width="stretch")

st.subheader("Confidences of one day's predictions")
if last is None:
    ui.guide(ui.ROUTE_FIRST)
today = now().date()
day = st.date_input("day (UTC)", value=today if last.date() >= today else last.date(), max_value=today)
start = datetime.combine(day, time(0), tzinfo=timezone.utc)
end = start + timedelta(days=1)
thr = float(ctx.cfg.classify.threshold)
hist = ui.query("confidence_histogram", ctx.url, start, end)
low, n = ui.query("below", ctx.url, start, end, thr)
c1, c2, c3 = st.columns(3)
c1.metric("predictions", f"{n:,}")
c2.metric(f"below the threshold {thr:g}", f"{low:,}")
c3.metric("share sent to review", f"{low / n:.1%}" if n else "-")
if n == 0:
    st.info(f"No predictions on {day}; the latest are from {last:%Y-%m-%d %H:%M} UTC.")
bars = alt.Chart(hist).mark_bar().encode(
    x=alt.X("lo:Q", bin="binned", title="confidence", scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
    y=alt.Y("tickets:Q", title="predictions"), tooltip=["lo", "hi", "tickets"])
rule = alt.Chart(pd.DataFrame({"t": [thr], "label": [f"queue threshold {thr:g}"]}))
line = rule.mark_rule(color="red", strokeWidth=2).encode(x="t:Q")
text = rule.mark_text(color="red", align="left", dx=4).encode(x="t:Q", y=alt.value(12), text="label:N")
st.altair_chart((bars + line + text).properties(height=300), width="stretch")
st.caption("Tickets left of the red line go to the review queue (classify.threshold).")
