"""Overview: what the store holds, the current model, and where to look next."""

import streamlit as st

from dashboards import ui
from dashboards.app import PAGES

ctx = ui.page("工单分派看板")
n = ui.query("counts", ctx)
if not any(n.values()):
    ui.guide("库中还没有数据。" + ui.FIRST_STEPS + "\n\n然后分派工单："
             "`router classify data/sample/day.jsonl`。")

vs = ui.query("versions", ctx)
cur = next((v for v in vs if v["status"] == "current"), None)
cols = st.columns(5)
cols[0].metric("工单", f"{n['tickets']:,}", help="库中的全部工单（导入的历史工单与分派过的工单）")
cols[1].metric("模型分派", f"{n['predictions']:,}", help="模型给出的分派结果条数")
cols[2].metric("人工标注", f"{n['labels']:,}", help="导入的历史标注与标注员的确认、纠正、抽检")
cols[3].metric("待复核", f"{n['pending']:,}", help="复核队列中等待标注员处理的工单")
cols[4].metric("模型版本", n["models"])
if cur is None:
    st.info("还没有在用的模型。" + ui.FIRST_STEPS)
else:
    m = cur["metrics"]
    st.caption(f"在用模型 **{cur['version']}**（{cur['kind']}）：准确率 {m.get('accuracy', 0):.3f}，"
               f"宏平均 F1 {m.get('macro_f1', 0):.3f}，ECE {m.get('ece', 0):.3f}；"
               f"训练于 {ctx.stamp(cur['created_at'])}（{ctx.zone}）")

st.subheader("各页内容")
for path, title, _, text in PAGES[1:]:
    st.page_link(path, label=f"{title}：{text}")
