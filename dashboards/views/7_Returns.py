"""Returns and disputes: the numbers centres are judged by, per day and per department:
first-dispatch accuracy (一次派单准确率), return rate and reasons, open disputes and their age,
re-dispatch chains (router/returns.py)."""

import altair as alt
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("退单与派单异议")
days = st.slider("显示天数", 7, 180, 30)
start, end = queries.window(days, now().replace(minute=0, second=0, microsecond=0), ctx.tz)
fd = ui.query("first_dispatch", ctx, start, ctx.tz)
if fd.empty:
    ui.guide(f"最近 {days} 天没有分派过的工单。" + ui.ROUTE_FIRST + "\n\n部门退回的工单用 "
             "`router returns import 退单.jsonl` 导入，由组长在标注应用中审核。")
    st.stop()

total = fd[["dispatched", "returned", "redispatched", "right"]].sum()
cols = st.columns(4)
cols[0].metric("一次派单准确率", f"{total['right'] / total['dispatched']:.1%}",
               help="分派后既未被退单、也未被改派的工单占比")
cols[1].metric("退单率", f"{total['returned'] / total['dispatched']:.1%}", help="分派后被部门退回（至少一次）的工单占比")
cols[2].metric("分派工单", f"{int(total['dispatched']):,}")
opened = ui.query("open_disputes", ctx, now())
cols[3].metric("待审核异议", f"{len(opened):,}", help="部门退单后尚未由组长审核的工单")

st.subheader("每日一次派单准确率与退单率")
daily = fd.groupby("day")[["dispatched", "returned", "right"]].sum().reset_index()
daily["一次派单准确率"] = daily["right"] / daily["dispatched"]
daily["退单率"] = daily["returned"] / daily["dispatched"]
rates = daily.melt("day", ["一次派单准确率", "退单率"], "rate", "share")
ui.chart(alt.Chart(rates).mark_line(point=True).encode(
    x=alt.X("day:T", title=f"分派日期（{ctx.zone}）", axis=alt.Axis(format="%m-%d")),
    y=alt.Y("share:Q", title="占比", axis=alt.Axis(format="%")),
    color=alt.Color("rate:N", title=None),
    tooltip=[alt.Tooltip("day:T", title="日期", format="%Y-%m-%d"), alt.Tooltip("rate:N", title="指标"),
             alt.Tooltip("share:Q", title="占比", format=".1%")]).properties(height=240), width="stretch")
st.caption("按工单首次分派的日期统计；退单与改派发生在分派之后，近几天的数字还会下降。")

st.subheader("各部门")
dept = fd.groupby("department")[["dispatched", "returned", "redispatched", "right"]].sum().reset_index()
dept["accuracy"] = dept["right"] / dept["dispatched"]
dept["return_rate"] = dept["returned"] / dept["dispatched"]
dept["name"] = [ctx.catalog.name(d) for d in dept["department"]]
st.dataframe(dept.sort_values("accuracy")[["name", "dispatched", "accuracy", "return_rate", "returned", "redispatched"]],
             hide_index=True, column_config={
                 "name": st.column_config.TextColumn("首次分派部门"), "dispatched": st.column_config.NumberColumn("分派"),
                 "accuracy": st.column_config.NumberColumn("一次派单准确率", format="percent"),
                 "return_rate": st.column_config.NumberColumn("退单率", format="percent"),
                 "returned": st.column_config.NumberColumn("被退单"), "redispatched": st.column_config.NumberColumn("被改派")})

st.subheader("退单原因")
why = ui.query("return_reasons", ctx, start, ctx.tz)
if why.empty:
    st.info(f"最近 {days} 天没有退单。")
else:
    ui.chart(alt.Chart(why).mark_bar().encode(
        x=alt.X("day:T", title=f"退单日期（{ctx.zone}）", axis=alt.Axis(format="%m-%d")),
        y=alt.Y("sum(returns):Q", title="退单数"),
        color=alt.Color("reason:N", title="退单原因"),
        tooltip=[alt.Tooltip("day:T", title="日期", format="%Y-%m-%d"), alt.Tooltip("reason:N", title="原因"),
                 alt.Tooltip("sum(returns):Q", title="退单数")]).properties(height=220), width="stretch")
    by = why.groupby(["department", "reason"])["returns"].sum().unstack(fill_value=0)
    by.index = [ctx.catalog.name(d) for d in by.index]
    st.dataframe(by.rename_axis("退单部门"))

st.subheader("待审核异议")
if opened.empty:
    st.info("没有待审核的派单异议。")
else:
    opened["name"] = [ctx.catalog.name(d) for d in opened["department"]]
    st.dataframe(opened[["ticket", "name", "reason", "note", "age_days"]], hide_index=True, column_config={
        "ticket": st.column_config.TextColumn("工单"), "name": st.column_config.TextColumn("退单部门"),
        "reason": st.column_config.TextColumn("退单原因"), "note": st.column_config.TextColumn("退单说明"),
        "age_days": st.column_config.NumberColumn("已等待（天）", format="%.1f")})

st.subheader("多次改派（退单两次及以上）")
chains = ui.query("redispatch_chains", ctx)
if chains.empty:
    st.info("没有被退单两次及以上的工单。")
else:
    chains["path"] = [" → ".join(ctx.catalog.name(d) for d in c) for c in chains["departments"]]
    st.dataframe(chains[["ticket", "returns", "path"]], hide_index=True, column_config={
        "ticket": st.column_config.TextColumn("工单"), "returns": st.column_config.NumberColumn("退单次数"),
        "path": st.column_config.TextColumn("依次退单的部门")})
