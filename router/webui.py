"""What both Streamlit apps (labeling/, dashboards/) share in the browser: Chinese in place of the few
English texts Streamlit draws itself. Streamlit has no translations: CSS hides its form hint ("Press
Enter to submit form") and puts Chinese over the search lists' "No results" and the keyboard-only
"Skip to main content" link; a script puts Chinese in its dialog for a lost connection; `router label`
and `router dashboard` run it with --client.toolbarMode minimal, so its English menu (Print, Record
screen, theme) and running indicator ("Stop") are not shown. Each app draws ZH_STYLE, and ZH_SCRIPT
in a container with the key "zh" (hidden by ZH_STYLE)."""

import json

ZH_STYLE = """<style>
[data-testid="InputInstructions"] { display: none; }
[role="listbox"][data-empty="true"] [role="option"] > span { font-size: 0; }
[role="listbox"][data-empty="true"] [role="option"] > span::after { content: "没有匹配项"; font-size: 0.875rem; }
.stSkipToContent { font-size: 0; }
.stSkipToContent::after { content: "跳到正文"; font-size: 1rem; }
[data-testid="stLayoutWrapper"]:has(> .st-key-zh) { display: none; }
</style>"""

ZH = {"Connection error": "连接中断",
      "Streamlit server is not responding. Are you connected to the internet?":
          "服务器没有响应：请检查网络，稍后刷新页面；仍然不行请联系管理员。"}

# Streamlit's texts in ZH are replaced as they appear (once per page: the observer stays)
ZH_SCRIPT = """<script>
if (!window.routerZh) {
  window.routerZh = true;
  const zh = %s;
  const fix = n => { const t = zh[n.textContent.trim()]; if (t) n.textContent = t; };
  const walk = root => { const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                         for (let n; (n = w.nextNode());) fix(n); };
  walk(document.body);
  new MutationObserver(ms => ms.forEach(m => m.type === "characterData" ? fix(m.target)
      : m.addedNodes.forEach(n => n.nodeType === 3 ? fix(n) : n.nodeType === 1 && walk(n))))
    .observe(document.body, {childList: true, subtree: true, characterData: true});
}
</script>""" % json.dumps(ZH, ensure_ascii=False)
