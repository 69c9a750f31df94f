"""Confusion-matrix heatmap of the current model; the most-confused department pairs, each
opening the routed tickets that the model sent to one department and dispatchers to the other."""

from datetime import timedelta

import altair as alt
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("Confusion")
_, cur, _ = ui.models(ctx)
if cur is None:
    ui.guide("No current model yet. " + ui.FIRST_STEPS)
rep = ui.report(cur["path"])
if rep is None or "confusion" not in rep:
    ui.guide(f"{cur['version']} has no report.json with a confusion matrix in {cur['path']}: "
             "train a new version with `router train`.")

cells = ui.named(ctx.catalog, queries.confusion_cells(rep), "true", "predicted")
order = [ctx.catalog.name(d) for d in rep["confusion"]["labels"]]
axis = alt.Axis(labelFontSize=9, labelOverlap=False, labelLimit=150)
heat = alt.Chart(cells).mark_rect().encode(
    x=alt.X("predicted_name:N", sort=order, title="predicted", axis=axis),
    y=alt.Y("true_name:N", sort=order, title="true", axis=axis),
    color=alt.Color("share:Q", title="share of true", scale=alt.Scale(scheme="blues", domain=[0, 1])),
    tooltip=["true", "true_name", "predicted", "predicted_name", "tickets",
             alt.Tooltip("share:Q", format=".1%")])
st.altair_chart(heat.properties(height=max(400, 14 * len(order))), width="stretch")
st.caption(f"Held-out test set of {cur['version']} ({rep.get('n', '?')} tickets), rows normalised.")

st.subheader("Most-confused pairs")
held_out, corrected = "held-out test set", "dispatchers' corrections, last 30 days"
source = st.radio("pairs from", [held_out, corrected], horizontal=True)
if source == held_out:
    pairs = queries.confused_pairs(rep)
else:
    pairs = ui.query("corrected_pairs", ctx.url,
                     (now() - timedelta(days=30)).replace(minute=0, second=0, microsecond=0))
if pairs.empty:
    st.info("No confused pairs here." if source == held_out else
            "No corrections in the last 30 days: dispatchers' decisions appear here once they label "
            "queued tickets in the labeling app.")
    st.stop()
pairs = ui.named(ctx.catalog, pairs, "true", "predicted")
event = st.dataframe(pairs, hide_index=True, on_select="rerun", selection_mode="single-row", key="pairs",
                     column_config={"share_of_true": st.column_config.NumberColumn("share of true",
                                                                                    format="percent")})
rows = event.selection.rows if event and event.selection.rows else [0]
pair = pairs.iloc[rows[0]]
st.subheader(f"Predicted {ui.label(ctx.catalog, pair['predicted'])}, labeled {ui.label(ctx.catalog, pair['true'])}")
st.caption("Select a row above to open another pair. Newest labels first.")
ex = ui.query("examples", ctx.url, pair["predicted"], pair["true"])
if ex.empty:
    st.info("No routed ticket in the store was predicted as this department and labeled as the other "
            "(held-out tickets come from the training data, not from routing).")
else:
    st.dataframe(ex, hide_index=True, key="examples",
                 column_config={"text": st.column_config.TextColumn("text", width="large"),
                                "confidence": st.column_config.NumberColumn(format="%.3f"),
                                "labeled_at": st.column_config.DatetimeColumn("labeled at (UTC)")})
