"""Incidents (并单) and early warnings (风险性苗头性诉求预警): the day's largest and fastest-growing incidents,
per district and per department; an incident with [incidents] alert_size tickets within alert_hours is raised."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from dashboards import ui

ctx = ui.page("并单与预警")
newest = ui.query("incident_days", ctx)
if newest is None:
    ui.guide("还没有并单。`router classify` 会把同一地点、内容相近的重复诉求并为一个事件（[incidents] 设置）。")
inc_cfg = ctx.cfg.incidents
day = st.date_input("日期", value=ctx.local(newest).date())
start = datetime.combine(day, time(0), tzinfo=ZoneInfo(ctx.tz))
df = ui.query("incidents", ctx, start, start + timedelta(days=1), inc_cfg.alert_size, inc_cfg.alert_hours)
if df.empty:
    ui.guide(f"{day:%Y-%m-%d} 没有并单事件。")
df = ui.named(ctx.catalog, df, "department", "district")
alerts = df[df["alert"]]
for _, r in alerts.iterrows():
    st.error(f"预警：{r['place']}（{r['district_name'] or '辖区不明'}）{inc_cfg.alert_hours:g} 小时内 {r['peak']} 张诉求，"
             f"派往 {r['department_name']}（事件 {r['id']}）")
cols = st.columns(3)
cols[0].metric("当日并单事件", len(df))
cols[1].metric("并入事件的工单", int(df["today"].sum()))
cols[2].metric("预警", len(alerts))
# short headers (help on hover), times in the centre's zone: at 1024 px every column shows
show = ["id", "place", "district_name", "department_name", "today", "size", "per_hour", "peak", "span"]
num, when = st.column_config.NumberColumn, f"（{ctx.zone}）"
grid = {"id": num("事件", format="%d"), "place": "地点", "district_name": "辖区", "department_name": "部门",
        "today": num("当日", format="%d", help="当日并入事件的工单"), "size": num("累计", format="%d", help="事件累计的工单"),
        "per_hour": num("每小时", format="%.1f", help="当日每小时的工单（首张到最新）"),
        "peak": num("峰值", help=f"任意 {inc_cfg.alert_hours:g} 小时内最多的工单；达到 {inc_cfg.alert_size} 即预警"),
        "span": st.column_config.TextColumn("时段", width=96, help="当日首张至最新工单的受理时间" + when)}
df["span"] = [f"{a:%H:%M}–{b:%H:%M}" for a, b in zip(ctx.local(df["first"]), ctx.local(df["last"]))]
st.subheader("最大的事件")
st.dataframe(df.sort_values("today", ascending=False)[show].head(20), hide_index=True, column_config=grid)
st.subheader("增长最快的事件")
st.dataframe(df.sort_values("per_hour", ascending=False)[show].head(20), hide_index=True, column_config=grid)
left, right = st.columns(2)
left.subheader("各辖区")
left.dataframe(df.groupby("district_name", dropna=False).agg(事件=("id", "count"), 工单=("today", "sum"))
               .sort_values("工单", ascending=False).reset_index().rename(columns={"district_name": "辖区"}), hide_index=True)
right.subheader("各部门")
right.dataframe(df.groupby("department_name", dropna=False).agg(事件=("id", "count"), 工单=("today", "sum"))
                .sort_values("工单", ascending=False).reset_index().rename(columns={"department_name": "部门"}), hide_index=True)
st.subheader("事件的工单")
pick = st.selectbox("选择事件", df["id"].tolist(), index=0 if len(alerts) == 0 else df["id"].tolist().index(alerts["id"].iloc[0]),
                    format_func=lambda i: f"{i} · {df.set_index('id').loc[i, 'place']} · {df.set_index('id').loc[i, 'today']} 张")
tickets = ui.query("incident_tickets", ctx, int(pick))
st.dataframe(tickets.assign(received_at=ctx.local(tickets["received_at"]),
                            duplicate_of=tickets["duplicate_of"].fillna(""), title=tickets["title"].fillna("")),
             hide_index=True, column_config={
                 "id": "工单", "received_at": st.column_config.DatetimeColumn("受理时间" + when, format="MM-DD HH:mm"),
                 "duplicate_of": st.column_config.TextColumn("重复于", help="与之重复的工单"), "title": "标题",
                 "text": st.column_config.TextColumn("内容", width="large")})
