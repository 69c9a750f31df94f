"""The router's dashboards (`router dashboard`): how the model and the dispatch centre are doing.

Streamlit runs this file; it names the pages in dashboards/pages/. All pages read the store
named by the router's configuration (router.toml, $ROUTER_CONFIG, ROUTER_STORE__URL ...).
"""

import streamlit as st

PAGES = [  # file, title, url path, one line for the overview
    ("pages/0_Overview.py", "Overview", "overview", ""),
    ("pages/1_F1_by_department.py", "Per-department F1", "f1", "Per-department F1, worst first; F1 over versions"),
    ("pages/2_Confusion.py", "Confusion", "confusion", "Confusion heatmap; the most-confused pairs, with tickets"),
    ("pages/3_Calibration.py", "Calibration", "calibration", "Reliability diagram, ECE; today's confidences"),
    ("pages/4_Review_queue.py", "Review queue", "queue", "Queue size, decisions per reviewer, audit accuracy"),
    ("pages/5_Drift.py", "Drift", "drift", "Department mix of recent tickets against the training data"),
    ("pages/6_Model_history.py", "Model history", "history", "Versions, promotion decisions, rollbacks"),
]

if __name__ == "__main__":
    st.navigation([st.Page(f, title=t, url_path=u, default=(u == "overview")) for f, t, u, _ in PAGES]).run()
