"""What both Streamlit apps (labeling/, dashboards/) share in the browser: Chinese in place of the few
English texts Streamlit draws itself. Streamlit has no translations: CSS hides its form hint ("Press
Enter to submit form") and puts Chinese over the search lists' "No results" and the keyboard-only
"Skip to main content" link; `router label` and `router dashboard` run it with --client.toolbarMode
minimal, so its English menu (Print, Record screen, theme) is not shown."""

ZH_STYLE = """<style>
[data-testid="InputInstructions"] { display: none; }
[role="listbox"][data-empty="true"] [role="option"] > span { font-size: 0; }
[role="listbox"][data-empty="true"] [role="option"] > span::after { content: "没有匹配项"; font-size: 0.875rem; }
.stSkipToContent { font-size: 0; }
.stSkipToContent::after { content: "跳到正文"; font-size: 1rem; }
</style>"""
