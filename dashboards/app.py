"""The router's dashboards (`router dashboard`): how the model and the dispatch centre are doing.

Streamlit runs this file; it names the pages, which live in dashboards/views/ (not pages/: a
folder named pages/ beside the entry script makes Streamlit serve the first session after a
start as an old-style multipage app, and a deep link then shows "Page not found").
All pages read the store named by the router's configuration (router.toml, $ROUTER_CONFIG,
ROUTER_STORE__URL ...).
"""

import streamlit as st

PAGES = [  # file, title, url path (the default page is served at /), one line for the overview
    ("views/0_Overview.py", "Overview", "overview", ""),
    ("views/1_F1_by_department.py", "Per-department F1", "f1",
     "worst first, with the change against the previous version; F1 over versions"),
    ("views/2_Confusion.py", "Confusion", "confusion", "heatmap; the most-confused pairs open their tickets"),
    ("views/3_Calibration.py", "Calibration", "calibration",
     "reliability diagram, ECE; today's confidences against the queue threshold"),
    ("views/4_Review_queue.py", "Review queue", "queue",
     "queue size, decisions per reviewer, audited accuracy with its interval"),
    ("views/5_Drift.py", "Drift", "drift", "department mix of recent tickets against the training data"),
    ("views/6_Model_history.py", "Model history", "history",
     "versions, promotion decisions and their reasons, rollbacks"),
]

if __name__ == "__main__":
    st.navigation([st.Page(f, title=t, url_path=u, default=(u == "overview")) for f, t, u, _ in PAGES]).run()
