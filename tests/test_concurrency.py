"""Ten reviewer processes claim, decide, undo and sign out while `router import`, then `router classify`
and `router retrain` write to the same store: no errors, no lost decisions, no ticket claimed by
two reviewers (bench/concurrency.py does the work and the checks, incidents on; here 100 decisions each and an
import of 2,000 tickets, 1,000 each and 100,000 for the figures in the README)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


from router import ROOT


def stress(tmp_path, url: str = "", decisions: int = 100, import_tickets: int = 2000) -> dict:
    out = tmp_path / "res.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "concurrency.py"), "--decisions", str(decisions),
                        "--out", str(out), "--import-tickets", str(import_tickets), *(["--url", url] if url else [])],
                       env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, capture_output=True, text=True,
                       timeout=1800)
    assert out.exists(), r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert r.returncode == 0, (res, r.stdout[-3000:])
    return res


def check(res: dict, decisions: int = 100) -> None:
    assert res["errors"] == 0 and res["error_kinds"] == {}
    assert res["phases"]["classify_retrain"]["decisions"] == 10 * decisions
    assert res["lost_decisions"] == 0 and res["bad_undos"] == 0
    assert res["double_claims"] == 0
    assert res["undone_decisions_in_store"] == res["undone_labels_expected"] > 0 and res["bad_label_groups"] == 0
    ph = res["phases"]["classify_retrain"]
    assert ph["classify_runs_during"] >= 1 and ph["retrain_runs_during"] >= 1
    assert ph["classify_failed_runs"] == 0 and ph["retrain_failed_runs"] == 0
    imp = res["phases"]["import"]
    assert imp["rc"] == 0 and imp["tickets_stored"] == imp["labels_stored"] == 2000 and imp["decisions"] > 0


def test_reviewers_with_classify_and_retrain_on_sqlite(tmp_path):
    check(stress(tmp_path))


def test_reviewers_with_classify_and_retrain_on_postgresql(tmp_path, pg_url):
    check(stress(tmp_path, pg_url))
