"""The router's dashboards (`router dashboard`): how the model and the dispatch centre are doing.

Streamlit runs this file; it names the pages, which live in dashboards/views/ (not pages/: a
folder named pages/ beside the entry script makes Streamlit serve the first session after a
start as an old-style multipage app, and a deep link then shows "Page not found").
All pages read the store named by the router's configuration (router.toml, $ROUTER_CONFIG,
ROUTER_STORE__URL ...); days and times are in [queue] timezone.
"""

import streamlit as st

from router import webui

PAGES = [  # file, title, url path (the default page is served at /), one line for the overview
    ("views/0_Overview.py", "总览", "overview", ""),
    ("views/1_F1_by_department.py", "各部门 F1", "f1", "由差到好，与上一版本相比的变化；各版本的 F1"),
    ("views/2_Confusion.py", "混淆分析", "confusion", "最易混淆的部门热力图；点选混淆最多的部门对，查看其工单"),
    ("views/3_Calibration.py", "置信度校准", "calibration", "可靠性图与 ECE；某一天的置信度分布与复核阈值"),
    ("views/4_Review_queue.py", "复核队列", "queue", "队列规模、每位标注员的处理量、抽检准确率及其置信区间"),
    ("views/5_Drift.py", "分布漂移", "drift", "近期工单的部门分布与训练数据对比"),
    ("views/6_Model_history.py", "模型历史", "history", "各版本、上线决策及理由、回滚"),
    ("views/7_Returns.py", "退单与派单异议", "returns", "一次派单准确率、退单率与退单原因、待审核异议及其时长、多次改派"),
    ("views/8_Rules.py", "派单规则", "rules", "派单目录规则的命中数与被改派、退单的比例"),
    ("views/9_Incidents.py", "并单与预警", "incidents", "当日最大、增长最快的并单事件（分辖区、分部门）与苗头性诉求预警"),
]

if __name__ == "__main__":
    page = st.navigation([st.Page(f, title=t, url_path=u, default=(u == "overview")) for f, t, u, _ in PAGES])
    with webui.guard():  # an error in any page: a Chinese message, the traceback in the server's log
        page.run()
