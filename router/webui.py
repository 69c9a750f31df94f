"""What both Streamlit apps (labeling/, dashboards/) share in the browser: Chinese in place of the
English texts Streamlit and its charts draw themselves. Streamlit has no translations: CSS hides its
form hint ("Press Enter to submit form"); a script puts Chinese in place of its other texts as they
appear, on screen and for screen readers (text, aria-label, title, placeholder, aria-roledescription):
"No results", the keyboard-only "Skip to main content" link, the lost-connection and "Page not found"
dialogs, the sidebar's and data grids' buttons and tooltips ("Download as CSV", "Search",
"Fullscreen"), the column menu, the date picker, and Vega's descriptions of charts, axes and legends.
`router label` and `router dashboard` run Streamlit with --client.toolbarMode minimal, so its English
menu (Print, Record screen, theme) and running indicator ("Stop") are not shown. Each app draws
ZH_STYLE, and ZH_SCRIPT in a container with the key "zh" (hidden by ZH_STYLE).

An uncaught error in a page shows CRASH (`guard`), its traceback going to the server's log only; the
servers run with --client.showErrorDetails none (SERVER_FLAGS), and Streamlit's own message for an error
that escapes `guard` (in a button's callback) is replaced by CRASH too."""

import json
from contextlib import contextmanager

import streamlit as st
from streamlit.logger import get_logger

# `streamlit run` options of `router label` and `router dashboard` (and of the browser tests)
SERVER_FLAGS = ["--client.toolbarMode", "minimal", "--client.showErrorDetails", "none"]

CRASH = ("出错了，这一页没能显示完整。请刷新页面（F5）再试；仍然出错，请把出错的时间和页面告诉管理员"
         "（错误详情已记入服务器日志）。")


@contextmanager
def guard():
    """Around a page's code (`with guard():`, or as a decorator): an uncaught error shows CRASH, in Chinese
    and without its traceback, and logs the traceback to the server's log (stderr). st.stop() and
    st.rerun() pass through (they are not Exceptions)."""
    try:
        yield
    except Exception:
        get_logger("router.webui").exception("uncaught error in a page (the user was shown CRASH)")
        st.error(CRASH)


ZH_STYLE = """<style>
[data-testid="InputInstructions"] { display: none; }
[data-testid="stLayoutWrapper"]:has(> .st-key-zh) { display: none; }
</style>"""

# Streamlit's own texts, whole (a text node or an attribute's value)
ZH = {
    # dialogs, links, sidebar
    "Connection error": "连接中断",
    "Streamlit server is not responding. Are you connected to the internet?":
        "服务器没有响应：请检查网络，稍后刷新页面；仍然不行请联系管理员。",
    "Page not found": "没有这个页面",
    "The page that you have requested does not seem to exist. Running the app's main page.":
        "没有这个页面，已打开首页。",
    "Close": "关闭", "Skip to main content": "跳到正文", "Link to heading": "本节链接",
    "Sidebar": "侧栏", "Collapse sidebar": "收起侧栏", "Expand sidebar": "展开侧栏", "App pages": "页面",
    "View more": "更多", "View less": "收起", "Show more": "更多", "Show less": "收起",
    # lists, inputs
    "No results": "没有匹配项", "Choose an option": "请选择", "Choose options": "请选择",
    "No options to select.": "没有可选项", "No options to select": "没有可选项",
    "Clear all": "全部清除", "Clear value": "清除", "Clear": "清除", "Clear selection": "清除选择",
    "Show password": "显示密码", "Hide password": "隐藏密码", "Increment": "加一", "Decrement": "减一",
    "Select...": "请选择", "Dismiss": "关闭", "Show suggestions": "显示选项",
    "Suggestions": "选项", "Open": "展开", "Selected values": "已选", "Choose date": "选择日期",
    # data grids: toolbar, column menu, cells
    "Show/hide columns": "显示/隐藏列", "Download as CSV": "下载 CSV", "Search": "搜索",
    "Fullscreen": "全屏", "Close fullscreen": "退出全屏", "Exit fullscreen": "退出全屏",
    "Toggle fullscreen": "切换全屏", "Sort ascending": "升序", "Sort descending": "降序",
    "Format": "格式", "Autosize": "自动列宽", "Pin column": "固定列", "Unpin column": "取消固定",
    "Hide column": "隐藏列", "Copy column name": "复制列名", "Copy to clipboard": "复制",
    "Copy": "复制", "Select all": "全选", "Dataframe column menu": "列菜单", "Statistics": "统计",
    "Values": "值", "Empty": "空值", "Count": "计数", "Distinct": "不同值", "Sum": "合计", "Average": "平均",
    "Median": "中位数", "Minimum": "最小", "Maximum": "最大", "Standard deviation": "标准差", "Range": "范围",
    "Minimum length": "最短", "Maximum length": "最长", "Average length": "平均长度",
    "text": "文本", "number": "数字", "datetime": "日期时间", "date": "日期", "time": "时间", "checkbox": "勾选",
    "list": "列表", "link": "链接", "selectbox": "选项", "progress": "进度",
    "Automatic": "自动", "Localized": "本地格式", "Plain": "原样", "Percent": "百分比",
    "Scientific": "科学计数", "Accounting": "会计格式", "Compact": "紧凑", "Distance": "时距",
    "Calendar": "日历", "Relative": "相对时间",
    # charts' toolbar
    "Show data": "查看数据", "Download as PNG": "下载 PNG", "Copy Vega-Lite spec": "复制图表定义",
    # an uncaught error outside `guard` (client.showErrorDetails none)
    "This app has encountered an error. The original error message is redacted to prevent data leaks. Full error "
    "details have been recorded in the logs (if you're on Streamlit Cloud, click on 'Manage app' in the lower "
    "right of your app).": CRASH,
}

# Texts with a variable part: [JavaScript regular expression, replacement]; the first match wins
ZH_PATTERNS = [
    [r"^Help for (.+)$", "「$1」的说明"],
    [r"^You have requested page /(.*), but no corresponding file was found in the app's pages/ directory\. "
     r"Running the app's main page\.$", "没有页面 /$1，已打开首页。"],
    [r"^Top values frequency chart(.*)$", "最常见的值$1"], [r"^Distribution histogram(.*)$", "分布直方图$1"],
    [r"^True/false distribution chart(.*)$", "是/否分布图$1"],
    [r"^Remove (.+)$", "移除 $1"], [r"^Shortcut (.+)$", "快捷键 $1"],
    [r"^(\d+) options? available\.$", "共 $1 项。"], [r"^(.+), selected$", "$1，已选"],
    [r"^day, (.+)$", "$1：日"], [r"^month, (.+)$", "$1：月"], [r"^year, (.+)$", "$1：年"],
    [r"^Selected Date: (\w+) (\d+), (\d{4})$", "{date}"],
]

# Vega's descriptions of charts for screen readers (attributes only): "{axis}" and "{legend}" are
# rewritten by the script ("X-axis titled 'T' for a time scale with values from A to B"); a mark's
# description keeps only the value of a "field: value" pair named by a raw (lowercase ASCII) field name
VEGA = [
    [r"^(Vega )?visualization$", "图表"], [r"^axis$", "坐标轴"], [r"^legend$", "图例"], [r"^point$", "点"],
    [r"^line$", "折线"], [r"^bar$", "条形"], [r"^circle$", "圆点"], [r"^square$", "方块"], [r"^tick$", "刻度线"],
    [r"^rule$", "参考线"], [r"^rect$", "矩形"], [r"^area$", "面积"], [r"^text$", "文字"], [r"^arc$", "扇形"],
    [r"^[a-z ]*mark container$", "图形组"], [r"^[a-z ]*mark$", "图形"],
    [r"^([XY])-axis(?: titled '(.*)')? for a \w+ scale with (.*)$", "{axis}"],
    [r"^(?:\w+ )?legend(?: titled '(.*)')? for .* with (.*)$", "{legend}"],
    [r"(?:^|; )[a-z][a-z0-9_]*: ", "{fields}"],
]

# Streamlit's texts are replaced as they appear (once per page: the observer stays). Text the apps
# draw themselves (markdown, text, code, tables: ticket texts included) is never touched.
ZH_SCRIPT = """<script>
if (!window.routerZh) {
  window.routerZh = true;
  const zh = %s, rx = ps => ps.map(([re, to]) => [new RegExp(re), to]);
  const patterns = rx(%s), vega = rx(%s);
  const values = v => v.replace(/^values from (.+) to (.+)$/, "取值 $1 至 $2")
      .replace(/^(\\d+) values?: (.*?)(?:, ending with (.*))?$/,
               (_, n, a, b) => `${n} 个值：${a}${b ? "……" + b : ""}`)
      .replace(/^(\\d+) boundar(?:y|ies): (.*)$/, "$1 个分界：$2");
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                  "October", "November", "December"];
  const special = {
    date: (m, k) => `已选日期：${m[3]}年${MONTHS.indexOf(m[1]) + 1}月${+m[2]}日`,
    axis: (m, k) => `${m[1] === "X" ? "横轴" : "纵轴"}${m[2] ? "“" + m[2] + "”" : ""}，${values(m[3])}`,
    legend: (m, k) => `图例${m[1] && m[1].trim() ? "“" + m[1] + "”" : ""}，${values(m[2])}`,
    fields: (m, k) => k.split("; ").map(p => p.replace(/^[a-z][a-z0-9_]*: /, "")).join("; "),
  };
  const tr = (s, ps) => {
    const k = s.trim();
    if (!/[A-Za-z]{3}/.test(k)) return null;
    if (zh[k]) return zh[k];
    for (const [re, to] of ps) {
      const m = k.match(re);
      if (m) return to[0] === "{" ? special[to.slice(1, -1)](m, k) : k.replace(re, to);
    }
    return null;
  };
  const OWN = "[data-testid=stMarkdownContainer], [data-testid=stText], [data-testid=stCode], "
            + "[data-testid=stTable], [data-testid=stCaptionContainer]";
  const POPUP = "[role=dialog], [role=tooltip], [data-testid=stTooltipContent]";
  const ATTRS = ["aria-label", "title", "placeholder", "aria-roledescription"];
  const text = n => {
    const el = n.parentElement;
    if (!el || ["SCRIPT", "STYLE"].includes(el.tagName) || (el.closest(OWN) && !el.closest(POPUP))) return;
    const t = tr(n.textContent, patterns);
    if (t) n.textContent = t;
  };
  const attr = (el, a) => {
    const v = el.getAttribute(a), t = v && tr(v, [...patterns, ...(el.closest(".vega-embed") ? vega : [])]);
    if (t && t !== v) el.setAttribute(a, t);
  };
  const walk = root => {
    const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n; (n = w.nextNode());) text(n);
    for (const el of [root, ...root.querySelectorAll("*")]) ATTRS.forEach(a => el.hasAttribute(a) && attr(el, a));
  };
  walk(document.body);
  new MutationObserver(ms => ms.forEach(m => m.type === "characterData" ? text(m.target)
      : m.type === "attributes" ? attr(m.target, m.attributeName)
      : m.addedNodes.forEach(n => n.nodeType === 3 ? text(n) : n.nodeType === 1 && walk(n))))
    .observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true,
                             attributeFilter: ATTRS});
}
</script>""" % (json.dumps(ZH, ensure_ascii=False), json.dumps(ZH_PATTERNS), json.dumps(VEGA, ensure_ascii=False))
