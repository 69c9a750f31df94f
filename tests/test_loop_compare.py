"""bench/loop_compare.py on the stored paired GPU runs (fitted weights against a plain mean, Banking77):
the figures the README quotes, its JSON and plot, and a clear error for a missing run."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from bench import loop_compare

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
FITTED, MEAN = RESULTS / "loop_sim_banking77_llm_e2_fitted.json", RESULTS / "loop_sim_banking77_llm_e2_mean.json"


def run(*args):
    app = typer.Typer()
    app.command()(loop_compare.main)
    return CliRunner().invoke(app, [str(a) for a in args])


def test_paired_figures_json_and_plot(tmp_path):
    out, js = tmp_path / "pair.png", tmp_path / "pair.json"
    res = run(f"{FITTED}:fitted", f"{MEAN}:mean", "--target", 0.87, "--out", out, "--json", js)
    assert res.exit_code == 0, res.output
    assert "mean against fitted: ahead on 26 of 30 days, behind on 4" in res.output
    f = json.loads(js.read_text())
    assert f["runs"]["mean"]["days_at_target"] == [27, 28, 29] and f["runs"]["fitted"]["days_at_target"] == []
    assert f["runs"]["mean"]["gpu"] == "NVIDIA H200" and f["runs"]["mean"]["days_run"] == 29
    assert abs(f["paired"]["mean"]["mean_gap"] - 0.017) < 5e-4
    assert abs(f["paired"]["mean"]["llm_member_gap"]) < 0.005      # the same members: the gap is the weighting
    assert f["runs"]["fitted"]["largest_daily_drop"] > 5 * f["runs"]["mean"]["largest_daily_drop"]
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_run_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # a short path: rich's error box does not wrap it
    res = run(f"{FITTED}:fitted", "nope.json:x")
    assert res.exit_code == 2 and "nope.json: no such file" in res.output, res.output
