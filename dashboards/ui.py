"""What every dashboard page shares: the configured store and catalogue, cached queries,
department names, and the guidance shown when the store has nothing to show yet."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import streamlit as st

from dashboards import queries
from router import config, webui
from router.catalog import Catalog, CatalogError, load_catalog
from router.store import StoreVersionError, connect

FIRST_STEPS = ("请先导入已标注的历史工单并训练模型：\n\n"
               "```\nrouter import data/sample/history.jsonl\nrouter train\n```")
ROUTE_FIRST = ("还没有分派过的工单。请用当前模型分派一天的工单：\n\n"
               "```\nrouter classify data/sample/day.jsonl\n```")


# Laptop screens (up to 1200 px wide): a narrower sidebar (the page names are short) and less padding
# give the pages ~785 px instead of ~560 px at 1024 px, so the grids show every column
LAYOUT = """<style>
@media (max-width: 1200px) {
  [data-testid="stSidebar"][data-collapsed="false"] { width: 190px !important; min-width: 190px !important; }
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; }
}
</style>"""


# Vertical axes' titles read horizontally, above the axis's top end: Chinese turned 90° is hard to read
Y_TITLE = dict(titleAngle=0, titleAlign="right", titleBaseline="bottom", titleX=0, titleY=-8)


@dataclass
class Ctx:
    cfg: config.Settings
    catalog: Catalog
    url: str
    tz: str      # [queue] timezone: the pages' days and times

    def local(self, t):
        """A stored UTC time (or a Series of them) as wall-clock time in the centre's zone."""
        return queries.local(t, self.tz)

    @property
    def zone(self) -> str:
        """The zone's name as a caption says it."""
        return "北京时间" if self.tz in ("Asia/Shanghai", "PRC") else self.tz

    def threshold(self) -> float:
        """The confidence threshold in force: [classify] threshold, or the current version's own ("auto")."""
        from router import registry

        return registry.threshold(self.cfg, registry.current(connect(self.url)))[0]

    def stamp(self, t) -> str:
        return f"{self.local(t):%Y-%m-%d %H:%M}" if t is not None else "-"


@st.cache_resource
def _catalog(path: str) -> Catalog:
    return load_catalog(path)


def page(title: str) -> Ctx:
    """Set up a page: layout, title, config, catalogue and store (with a clear error if broken)."""
    st.set_page_config(page_title=f"{title} - 工单分派", layout="wide")
    st.html(webui.ZH_STYLE + LAYOUT)
    with st.container(key="zh"):
        st.html(webui.ZH_SCRIPT, unsafe_allow_javascript=True)
    st.title(title)
    try:
        cfg = config.load()
        catalog = _catalog(str(config.resolve(cfg.paths.catalog)))
        url = config.store_url(cfg)
        connect(url, cfg.store.busy_timeout_ms)
    except StoreVersionError as e:
        st.error(f"无法打开数据库：{e}")
        st.stop()
    except (CatalogError, FileNotFoundError, ValueError) as e:
        st.error(f"无法读取分派系统的配置：{e}")
        st.stop()
    return Ctx(cfg, catalog, url, cfg.queue.timezone)


def query(name: str, ctx: Ctx, *args):
    """queries.<name>(store, *args), cached per store for [dashboards] cache_ttl_s seconds."""
    return _cached("_query", ctx.cfg.dashboards.cache_ttl_s)(name, ctx.url, *args)


def report(ctx: Ctx, path: str) -> dict | None:
    """A version's saved report, cached like `query`."""
    return _cached("_report", ctx.cfg.dashboards.cache_ttl_s)(path)


def models(ctx: Ctx) -> tuple[list, dict | None, dict | None]:
    """The registry's versions, the current one and the one it replaced (None when absent)."""
    vs = query("versions", ctx)
    return (vs, *queries.current_and_previous(vs))


@st.cache_resource
def _cached(fn: str, ttl: float):
    """`fn` cached for `ttl` seconds (the settings are read by the page, not at import)."""
    return st.cache_data(ttl=ttl, show_spinner=False)(globals()[fn])


def _query(name: str, url: str, *args):
    return getattr(queries, name)(connect(url), *args)


def _report(path: str) -> dict | None:
    return queries.report(path)


def chart(c: alt.TopLevelMixin, width: str = "stretch", where=st) -> None:
    """Draw an Altair chart in `where` (the page, or a column) with every y-axis title horizontal (Y_TITLE)."""
    where.altair_chart(c.configure_axisY(**Y_TITLE), width=width)


def guide(message: str) -> None:
    """Say what to do first, and stop rendering the page."""
    st.info(message)
    st.stop()


def named(catalog: Catalog, df, *cols: str):
    """Add '<col>_name' columns holding the catalogue names of department id columns."""
    df = df.copy()
    for c in cols:
        df.insert(df.columns.get_loc(c) + 1, f"{c}_name", [catalog.name(d) for d in df[c]])
    return df


def how_many(text: str, n: int, default: int) -> int:
    """A slider for how many of `n` rows to chart (all of them when there are few)."""
    return st.slider(text, 5, n, min(default, n)) if n > 5 else n


def label(catalog: Catalog, dept: str) -> str:
    return f"{catalog.name(dept)}（{dept}）"
