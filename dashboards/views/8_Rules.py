"""Dispatch catalogue rules (派单目录): each rule's hits and how often dispatchers or returns overturned it."""

import streamlit as st

from dashboards import ui

ctx = ui.page("派单规则")
df = ui.query("rule_stats", ctx)
if df.empty:
    ui.guide("还没有派单规则。组长可用 `router rules add 关键词 部门 --note 三定/权责清单依据` 添加，"
             "之后 `router classify` 会按规则派单。")
df = ui.named(ctx.catalog, df, "department")
df["district"] = df["district"].map(lambda d: ctx.catalog.name(d) if isinstance(d, str) else "全市")
df["state"] = df["active"].map({True: "生效", False: "已停用"})
cols = st.columns(3)
cols[0].metric("生效规则", int(df["active"].sum()))
cols[1].metric("规则派单", int(df["hits"].sum()))
cols[2].metric("被改派或退单", int((df["overturned"] + df["returned"]).sum()))
st.dataframe(df.sort_values(["overturn_rate", "hits"], ascending=False, na_position="last")[
    ["id", "pattern", "department_name", "district", "note", "state", "hits", "overturned", "returned", "overturn_rate"]],
    hide_index=True, column_config={
        "id": "编号", "pattern": "关键词/规则", "department_name": "派往部门", "district": "限定辖区", "note": "依据",
        "state": "状态", "hits": st.column_config.NumberColumn("命中工单"),
        "overturned": st.column_config.NumberColumn("调度员改派"), "returned": st.column_config.NumberColumn("部门退单"),
        "overturn_rate": st.column_config.NumberColumn("推翻率", format="percent")})
