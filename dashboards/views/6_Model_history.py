"""Model history: every version with its metrics, and the registry's promotions, refusals and
rollbacks with their reasons."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import ui

ctx = ui.page("Model history")
vs = ui.query("versions", ctx.url)
if not vs:
    ui.guide("No model versions yet. " + ui.FIRST_STEPS)
ev = ui.query("events", ctx.url)

table = pd.DataFrame([{"version": v["version"], "kind": v["kind"], "status": v["status"],
                       "created_at": v["created_at"], "promoted_at": v["promoted_at"],
                       "accuracy": v["metrics"].get("accuracy"), "macro_f1": v["metrics"].get("macro_f1"),
                       "ece": v["metrics"].get("ece"), "train_tickets": v["data_snapshot"].get("n_train"),
                       "test_tickets": v["data_snapshot"].get("n_test")} for v in vs])
cols = st.columns([3, 1, 1, 1])
cur = table[table["status"] == "current"]
cols[0].metric("current", cur["version"].iloc[0] if len(cur) else "none")
cols[1].metric("versions", len(table))
cols[2].metric("promotions", int((ev["action"] == "promoted").sum()))
cols[3].metric("rollbacks", int((ev["action"] == "rolled_back").sum()))

st.subheader("Macro-F1 by version")
st.altair_chart(alt.Chart(table).mark_line(point=alt.OverlayMarkDef(size=90, filled=True)).encode(
    x=alt.X("created_at:T", title="trained at"), y=alt.Y("macro_f1:Q", title="macro-F1",
                                                         scale=alt.Scale(zero=False)),
    tooltip=["version", "status", alt.Tooltip("macro_f1:Q", format=".3f"),
             alt.Tooltip("accuracy:Q", format=".3f")]).properties(height=260)
    + alt.Chart(table).mark_point(size=160, filled=True).encode(
        x="created_at:T", y="macro_f1:Q", color=alt.Color("status:N",
                                                          scale=alt.Scale(domain=["current", "candidate", "retired"],
                                                                          range=["#2ca02c", "#ff7f0e", "#999999"]))),
    width="stretch")

st.subheader("Versions")
fmt = st.column_config.NumberColumn(format="%.4f")
st.dataframe(table.sort_values("created_at", ascending=False), hide_index=True,
             column_config={"accuracy": fmt, "macro_f1": st.column_config.NumberColumn("macro-F1", format="%.4f"),
                            "ece": st.column_config.NumberColumn("ECE", format="%.4f")})

st.subheader("Promotion decisions and rollbacks")
if ev.empty:
    st.info("No registry events yet.")
else:
    st.altair_chart(alt.Chart(ev).mark_point(size=140, filled=True).encode(
        x=alt.X("at:T", title=None), y=alt.Y("action:N", title=None), color="action:N",
        tooltip=["at:T", "version", "action", "reason"]).properties(height=160), width="stretch")
    rb = ev[ev["action"] == "rolled_back"]
    if len(rb):
        st.warning(f"{len(rb)} rollback(s); latest {rb['at'].iloc[0]:%Y-%m-%d %H:%M} UTC to "
                   f"{rb['version'].iloc[0]}: {rb['reason'].iloc[0]}")
    st.dataframe(ev, hide_index=True, column_config={"at": st.column_config.DatetimeColumn("at (UTC)")})
