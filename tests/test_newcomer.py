"""A newcomer's first commands: which store, what the messages and the help say."""

import subprocess
import sys

from typer.testing import CliRunner

from router import ROOT
from router.cli import app
from router.users import sign_in
from router.store import connect
from tests.conftest import SAMPLE, read_jsonl, write_jsonl

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_outside_the_store_folder_nothing_is_created_and_the_store_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ROUTER_PATHS__HOME", raising=False)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("ROUTER_STORE__URL", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for args in (("models",), ("classify", str(SAMPLE / "day.jsonl")), ("users", "list"), ("retrain",)):
        res = run(*args)
        assert res.exit_code == 2 and f"no store at {elsewhere / '.router' / 'router.db'}" in res.output, res.output
        assert "ROUTER_PATHS__HOME" in res.output and "--config" in res.output
    assert not (elsewhere / ".router").exists()

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)
    res = run("users", "add", "bob", "--password-stdin", input="a long password\nwith two lines\n")
    assert res.exit_code == 0 and f"new store at {site / '.router' / 'router.db'}" in res.output
    assert "unless [labeling] auth says otherwise" in res.output          # printed as text, not rich markup
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(site / ".router"))
    res = run("models")
    assert res.exit_code == 0 and f"store: {site / '.router' / 'router.db'}" in res.output
    assert "holds no tickets and no models" in res.output and "ROUTER_PATHS__HOME" in res.output
    assert sign_in(connect(f"sqlite:///{site}/.router/router.db"), "bob", "a long password\nwith two lines").name
    res = run("users", "passwd", "bob")                                  # piped, without --password-stdin
    assert res.exit_code == 2 and "--password-stdin" in res.output


def test_first_training_says_n_a_for_no_fit_with_none_held_out_and_progress_counts_lines(home, tmp_path):
    history = write_jsonl(tmp_path / "h.jsonl", read_jsonl(SAMPLE / "history.jsonl")[:800])
    res = run("train", "--data", str(history))
    assert res.exit_code == 0, res.output
    assert "no department fits: n/a (0 held out)" in res.output and "precision 0.000" not in res.output
    day = write_jsonl(tmp_path / "day.jsonl", read_jsonl(SAMPLE / "day.jsonl")[:30] + [{"id": "x"}])
    res = run("classify", str(day), "--batch-size", "8")
    assert "31/31" in res.output and "/?" not in res.output, res.output


def test_help_is_as_wide_as_120_columns_and_transformers_future_warnings_are_hidden():
    res = run("classify", "--help")
    assert max(len(x) for x in res.output.splitlines()) > 80 and "(default [classify] threshold)" in res.output
    code = ("import warnings, router.cli; warnings.warn_explicit('old API', FutureWarning, 'x.py', 1, "
            "module='transformers.modeling_utils'); warnings.warn_explicit('ours', FutureWarning, 'x.py', 1, "
            "module='router.x')")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "old API" not in got.stderr and "ours" in got.stderr
