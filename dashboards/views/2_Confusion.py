"""Confusion of the current model: a heatmap of the most-confused departments, and the
most-confused department pairs, each opening its tickets (held-out tickets the model sent to
the wrong department, or routed tickets that dispatchers corrected)."""

from datetime import timedelta

import altair as alt
import streamlit as st

from dashboards import queries, ui
from router.store import now

ctx = ui.page("混淆分析")
_, cur, _ = ui.models(ctx)
if cur is None:
    ui.guide("还没有在用的模型。" + ui.FIRST_STEPS)
rep = ui.report(ctx, cur["path"])
if rep is None or "confusion" not in rep:
    ui.guide(f"{cur['version']} 在 {cur['path']} 下没有带混淆矩阵的 report.json：请用 `router train` 训练新版本。")

labels = rep["confusion"]["labels"]
n = ui.how_many("热力图中的部门数（错分最多的优先）", len(labels), 20)
keep = queries.confused_departments(rep, n)
cells = queries.confusion_cells(rep)
cells = ui.named(ctx.catalog, cells[cells["true"].isin(keep) & cells["predicted"].isin(keep)], "true", "predicted")
order = [ctx.catalog.name(d) for d in keep]
axis = alt.Axis(labelFontSize=11, labelLimit=200, labelOverlap=False)
heat = alt.Chart(cells).mark_rect(stroke="white", strokeWidth=0.5).encode(
    x=alt.X("predicted_name:N", sort=order, title="模型分派到", axis=alt.Axis(labelAngle=-45, labelFontSize=11,
                                                                       labelLimit=200, labelOverlap=False)),
    y=alt.Y("true_name:N", sort=order, title="实际部门", axis=axis),
    color=alt.Color("share:Q", title="占实际部门的比例",
                    scale=alt.Scale(scheme="blues", domain=[0, 1]),
                    legend=alt.Legend(format=".0%", orient="top", gradientLength=200)),
    tooltip=[alt.Tooltip("true_name:N", title="实际部门"), alt.Tooltip("predicted_name:N", title="模型分派到"),
             alt.Tooltip("tickets:Q", title="工单数"), alt.Tooltip("share:Q", format=".1%", title="占比")])
side = max(200, 18 * len(keep))
# "pad": the cells keep their size and the labels add to it (Streamlit would fit it all into `side`)
ui.chart(heat.properties(width=side, height=side, autosize=alt.AutoSizeParams(type="pad")), width="content")
st.caption(f"{cur['version']} 的留出测试集（{rep.get('n', '?')} 条工单），按行归一化；只画出错分最多的 "
           f"{len(keep)} 个部门（共 {len(labels)} 个），用滑块增减；悬停在格子上查看工单数和占比。")

st.subheader("最易混淆的部门对")
held_out, corrected = "留出测试集", "标注员近 30 天的纠正"
source = st.radio("来源", [held_out, corrected], horizontal=True)
if source == held_out:
    pairs = queries.confused_pairs(rep)
else:
    pairs = ui.query("corrected_pairs", ctx,
                     (now() - timedelta(days=30)).replace(minute=0, second=0, microsecond=0))
if pairs.empty:
    st.info("这里没有混淆的部门对。" if source == held_out else
            "近 30 天没有纠正：标注员在标注应用中处理队列里的工单后，他们的纠正会出现在这里。")
    st.stop()
pairs = ui.named(ctx.catalog, pairs, "true", "predicted")
event = st.dataframe(pairs, hide_index=True, on_select="rerun", selection_mode="single-row", key="pairs",
                     column_config={"true": st.column_config.TextColumn("实际编号"),
                                    "true_name": st.column_config.TextColumn("实际部门"),
                                    "predicted": st.column_config.TextColumn("分派编号"),
                                    "predicted_name": st.column_config.TextColumn("模型分派到"),
                                    "tickets": st.column_config.NumberColumn("工单数"),
                                    "share_of_true": st.column_config.NumberColumn(
                                        "占比", format="percent", help="占实际部门工单的比例")},
                     column_order=["true_name", "predicted_name", "tickets", "share_of_true"])  # ids: in the heading below
rows = event.selection.rows if event and event.selection.rows else [0]
pair = pairs.iloc[rows[0]]
st.subheader(f"分派到 {ui.label(ctx.catalog, pair['predicted'])}，实际为 {ui.label(ctx.catalog, pair['true'])}")
st.caption("在上表中点选一行可查看另一对。")
text = st.column_config.TextColumn("工单内容", width="large")
conf = st.column_config.NumberColumn("置信度", format="%.3f")
if source == held_out:
    ex = queries.held_out_examples(ui.connect(ctx.url), rep, pair["predicted"], pair["true"])
    if ex is None:
        st.info(f"{cur['version']} 的 report.json 没有记录错分的留出工单（训练时还不保存这份清单）："
                "用 `router train` 重新训练后即可查看。")
    elif ex.empty:
        st.info("这一对的留出工单未记录。")
    else:
        st.caption("模型最有把握的错分在前；工单内容取自库中。")
        st.dataframe(ex, hide_index=True, key="examples",
                     column_config={"ticket": st.column_config.TextColumn("工单编号"), "text": text,
                                    "confidence": conf})
else:
    ex = ui.query("examples", ctx, pair["predicted"], pair["true"])
    if ex.empty:
        st.info("库中没有被模型分派到前者、又被标注为后者的工单。")
    else:
        ex["labeled_at"] = ctx.local(ex["labeled_at"])
        st.caption("最新的标注在前。")
        st.dataframe(ex, hide_index=True, key="examples",
                     column_config={"ticket": st.column_config.TextColumn("工单编号"), "text": text,
                                    "confidence": conf, "model_version": st.column_config.TextColumn("模型版本"),
                                    "label_source": st.column_config.TextColumn("标注来源"),
                                    "reviewer": st.column_config.TextColumn("标注员"),
                                    "labeled_at": st.column_config.DatetimeColumn(f"标注时间（{ctx.zone}）",
                                                                                  format="YYYY-MM-DD HH:mm")})
