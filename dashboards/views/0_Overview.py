"""Overview: what the store holds, the current model, and where to look next."""

import streamlit as st

from dashboards import ui
from dashboards.app import PAGES

ctx = ui.page("Ticket router dashboards")
n = ui.query("counts", ctx.url)
if not any(n.values()):
    ui.guide("The store is empty. " + ui.FIRST_STEPS + "\n\nthen route tickets with "
             "`router classify data/sample/day.jsonl`.")

vs = ui.query("versions", ctx.url)
cur = next((v for v in vs if v["status"] == "current"), None)
cols = st.columns(5)
cols[0].metric("tickets", f"{n['tickets']:,}")
cols[1].metric("predictions", f"{n['predictions']:,}")
cols[2].metric("labels", f"{n['labels']:,}")
cols[3].metric("pending in the queue", f"{n['pending']:,}")
cols[4].metric("model versions", n["models"])
if cur is None:
    st.info("No current model. " + ui.FIRST_STEPS)
else:
    m = cur["metrics"]
    st.caption(f"current model **{cur['version']}** ({cur['kind']}): accuracy {m.get('accuracy', 0):.3f}, "
               f"macro-F1 {m.get('macro_f1', 0):.3f}, ECE {m.get('ece', 0):.3f}")

st.subheader("Pages")
for path, title, _, text in PAGES[1:]:
    st.page_link(path, label=f"{title}: {text}")
