"""The review queue: its size over time, dispatchers' decisions per day, and the audit sample's
agreement with the model (an unbiased accuracy estimate with a Wilson interval)."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("Review queue")
if not ui.query("has_rows", ctx.url, "queueitem"):
    ui.guide("The review queue has never held a ticket. `router classify` queues tickets whose "
             f"confidence is below classify.threshold ({ctx.cfg.classify.threshold:g}). "
             + ui.ROUTE_FIRST)

days = st.slider("days", 7, 180, 30)
start, end = queries.window(days, now().replace(minute=0, second=0, microsecond=0))
size = ui.query("queue_size", ctx.url, start, end)
reasons = ui.query("pending_by_reason", ctx.url)
cols = st.columns(3)
cols[0].metric("open now", f"{int(size['open'].iloc[-1]):,}")
for col, (reason, k) in zip(cols[1:], reasons.itertuples(index=False)):
    col.metric(f"pending: {reason}", f"{k:,}")

st.subheader("Queue size (open items at the end of each UTC day)")
base = alt.Chart(size).encode(x=alt.X("day:T", title=None))
flow = size.melt("day", ["added", "closed"], "flow", "items")
st.altair_chart(
    (base.mark_area(opacity=0.3).encode(y=alt.Y("open:Q", title="items"), tooltip=["day:T", "open"])
     + alt.Chart(flow).mark_line(point=True).encode(x="day:T", y="items:Q", color="flow:N",
                                                    tooltip=["day:T", "flow", "items"])
     ).properties(height=280), width="stretch")

st.subheader("Decisions per reviewer per day")
dec = ui.query("decisions", ctx.url, start)
if dec.empty:
    st.info(f"No dispatcher decisions in the last {days} days: they appear once dispatchers work the "
            "queue in the labeling app.")
else:
    st.altair_chart(alt.Chart(dec).mark_bar().encode(
        x=alt.X("day:T", title=None), y=alt.Y("decisions:Q"), color="reviewer:N",
        tooltip=["day:T", "reviewer", "decisions"]).properties(height=260), width="stretch")
    table = dec.pivot_table(index="reviewer", values="decisions", aggfunc=["sum", "mean"]).reset_index()
    table.columns = ["reviewer", "decisions", "per active day"]
    st.dataframe(table.sort_values("decisions", ascending=False), hide_index=True,
                 column_config={"per active day": st.column_config.NumberColumn(format="%.1f")})

st.subheader("Audit: agreement of a random sample with the model")
audit = ui.query("audit_daily", ctx.url)
if audit.empty:
    st.info("No audit labels yet: a random share of confident tickets is queued as 'audit'; once "
            "dispatchers label them, their agreement with the model estimates its accuracy without the "
            "queue's bias towards hard tickets.")
    st.stop()
k, n = int(audit["agree"].sum()), int(audit["audited"].sum())
lo, hi = queries.wilson(k, n)
recent = audit[audit["day"] >= pd.Timestamp(start.date())]
rk, rn = int(recent["agree"].sum()), int(recent["audited"].sum())
rlo, rhi = queries.wilson(rk, rn)
c1, c2 = st.columns(2)
c1.metric("agreement, all audits", f"{k / n:.1%}", help=f"95% Wilson interval {lo:.1%} - {hi:.1%}")
c1.caption(f"{k:,} of {n:,} audited tickets; 95% CI **{lo:.1%} - {hi:.1%}**")
c2.metric(f"agreement, last {days} days", f"{rk / rn:.1%}" if rn else "-")
c2.caption(f"{rk:,} of {rn:,}; 95% CI **{rlo:.1%} - {rhi:.1%}**" if rn else "no audits in the window")
weekly = audit.set_index("day")[["audited", "agree"]].resample("W-MON", label="left", closed="left").sum()
weekly = weekly[weekly["audited"] > 0].reset_index()
ci = [queries.wilson(a, b) for a, b in zip(weekly["agree"], weekly["audited"])]
weekly["agreement"] = weekly["agree"] / weekly["audited"]
weekly["low"], weekly["high"] = [c[0] for c in ci], [c[1] for c in ci]
wb = alt.Chart(weekly).encode(x=alt.X("day:T", title="week"))
st.altair_chart((wb.mark_area(opacity=0.25).encode(y=alt.Y("low:Q", title="agreement",
                                                           scale=alt.Scale(zero=False)), y2="high:Q")
                 + wb.mark_line(point=True).encode(
                     y="agreement:Q", tooltip=["day:T", "audited", "agree",
                                               alt.Tooltip("agreement:Q", format=".1%"),
                                               alt.Tooltip("low:Q", format=".1%"),
                                               alt.Tooltip("high:Q", format=".1%")])
                 ).properties(height=260), width="stretch")
st.caption("Weekly agreement with its 95% Wilson interval (band).")
