"""Strict settings: unknown sections and keys, config paths, the home and every number's range."""

import typing

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from router import ROOT, config
from tests.conftest import SAMPLE
from router.cli import app


def bad(tmp_path, text: str, *words, env=None):
    f = tmp_path / "router.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as e:
        config.load(f, env=env or {})
    assert all(w in str(e.value) for w in words), str(e.value)


def test_unknown_sections_and_keys_name_the_closest_valid_name(tmp_path):
    bad(tmp_path, "[clasify]\nthreshold = 0.5\n", "unknown section [clasify]", "did you mean [classify]")
    bad(tmp_path, "[classify]\ntopk = 2\n", "[classify] unknown key 'topk'", "did you mean top_k")
    bad(tmp_path, "threshold = 0.5\n", "'threshold' is outside any section")
    with pytest.raises(ValueError, match=r"ROUTER_LABELLING__PORT: unknown section \[labelling\].*\[labeling\]"):
        config.load(env={"ROUTER_LABELLING__PORT": "1"})
    assert config.load(env={"ROUTER_TEST_PG_URL": "x", "ROUTER_CONFIG": ""})  # not settings: left alone


def test_numbers_out_of_range_are_errors(tmp_path):
    bad(tmp_path, "[classify]\ntop_k = 0\n", "[classify] top_k", "greater than or equal to 1")
    bad(tmp_path, "[labeling]\nclaim_minutes = -5\n", "[labeling] claim_minutes")
    bad(tmp_path, "[labeling]\nclaim_minutes = 1e308\n", "less than or equal to 1440")
    bad(tmp_path, "[queue]\naudit_rate = 1.5\n", "[queue] audit_rate")
    bad(tmp_path, "[ensemble]\nweights = [0.5, -1]\n", "[ensemble] weights.1")
    with pytest.raises(ValueError, match="port"):
        config.load(env={"ROUTER_DASHBOARDS__PORT": "70000"})


def test_every_number_has_its_range_shown_by_config_defaults():
    numeric = []
    for name, section in config.Settings.model_fields.items():
        for key, f in section.annotation.model_fields.items():
            if typing.get_origin(f.annotation) is list:
                continue
            kinds = set(typing.get_args(f.annotation)) - {type(None)} or {f.annotation}
            if kinds <= {int, float} and bool not in kinds:
                numeric.append((name, key, config._range(f)))
    assert len(numeric) > 40 and all(r for *_, r in numeric), [x for x in numeric if not x[2]]
    out = CliRunner().invoke(app, ["config", "--defaults"]).output
    assert "(>= 1, <= 1440)" in out.split("claim_minutes")[0].rsplit("\n", 2)[-2]
    assert "top_k = 3                               # >= 1, <= 100" in out


def test_config_paths_and_home_must_be_what_they_say(home, tmp_path, monkeypatch):
    run = lambda *a: CliRunner().invoke(app, list(a))  # noqa: E731
    monkeypatch.setenv("ROUTER_CONFIG", str(tmp_path))
    res = run("models")
    assert res.exit_code == 2 and "(ROUTER_CONFIG) is a folder" in res.output, res.output
    monkeypatch.setenv("ROUTER_CONFIG", str(tmp_path / "missing.toml"))
    res = run("models")
    assert res.exit_code == 2 and "missing.toml (ROUTER_CONFIG) does not exist" in res.output
    monkeypatch.delenv("ROUTER_CONFIG")
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(tmp_path / "file"))
    res = run("models")
    assert res.exit_code == 2 and "ROUTER_PATHS__HOME" in res.output and "is a file" in res.output, res.output
    assert "Traceback" not in res.output
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(tmp_path / "file" / "below"))
    res = run("import", str(SAMPLE / "history.jsonl"))                # a command that starts a store
    assert res.exit_code == 2 and "cannot create the folder" in res.output, res.output


@pytest.mark.parametrize("script", ["labeling/app.py", "dashboards/views/0_Overview.py"])
def test_the_apps_show_a_settings_error_not_an_exception_page(home, tmp_path, monkeypatch, script):
    (tmp_path / "bad.toml").write_text("[clasify]\n")
    monkeypatch.setenv("ROUTER_CONFIG", str(tmp_path / "bad.toml"))
    at = AppTest.from_file(str(ROOT / script), default_timeout=60).run()
    assert not at.exception and "clasify" in at.error[0].value.replace("\\", "")
