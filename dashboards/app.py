"""The router's dashboards (`router dashboard`): how the model and the dispatch centre are doing.

Streamlit runs this file; the pages live in dashboards/pages/. All pages read the store named
by the router's configuration (router.toml, $ROUTER_CONFIG, ROUTER_STORE__URL ...).
"""

import streamlit as st

from dashboards import ui

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
    st.caption(f"current model {cur['version']} ({cur['kind']}): accuracy {m.get('accuracy', 0):.3f}, "
               f"macro-F1 {m.get('macro_f1', 0):.3f}, ECE {m.get('ece', 0):.3f}")

st.subheader("Pages")
for path, text in [("pages/1_F1_by_department.py", "Per-department F1, worst first, and F1 over versions"),
                   ("pages/2_Confusion.py", "Confusion heatmap and the most-confused pairs, with tickets"),
                   ("pages/3_Calibration.py", "Reliability diagram, ECE, today's confidences"),
                   ("pages/4_Review_queue.py", "Queue size, decisions per reviewer, audit accuracy"),
                   ("pages/5_Drift.py", "Department mix of recent tickets against the training data"),
                   ("pages/6_Model_history.py", "Versions, promotions, rollbacks")]:
    st.page_link(path, label=text)
