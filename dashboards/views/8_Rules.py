"""Dispatch catalogue rules (派单目录): each rule's hits and how often dispatchers or returns overturned it."""

import pandas as pd
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
# the numbers before the long 依据 (short headers, help on hover): at 1024 px every column shows
num = st.column_config.NumberColumn
df = df.sort_values(["overturn_rate", "hits"], ascending=False, na_position="last")
df["overturn_rate"] = df["overturn_rate"].map(lambda r: "-" if pd.isna(r) else f"{r:.0%}")  # no hits: "-", not None
st.dataframe(df[
    ["id", "pattern", "department_name", "district", "state", "hits", "overturned", "returned", "overturn_rate", "note"]],
    hide_index=True, column_config={
        "id": "编号", "pattern": "关键词/规则", "department_name": "派往部门", "district": "限定辖区", "note": "依据",
        "state": "状态", "hits": num("命中", help="按这条规则派出的工单"),
        "overturned": num("改派", help="调度员改派（未撤销）的工单"), "returned": num("退单", help="部门退回的工单"),
        "overturn_rate": st.column_config.TextColumn("推翻率", help="改派或退单占命中的比例")})
