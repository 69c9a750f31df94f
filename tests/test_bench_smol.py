"""The SmolLM2 benchmarks' LLM path (bench/clinc150_nofit.py --llm, bench/smol_lora.py), run on
a tiny random model and a small CLINC150-shaped file: rows, metrics and the training budget."""

import json

import pytest

from bench import clinc150_nofit, smol_lora
from router.catalog import NONE

INTENTS = {"balance": "what is my account balance today", "weather": "will it rain in the city tomorrow",
           "alarm": "set an alarm for seven in the morning"}
OOS = "how tall is the tallest mountain on earth"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("clinc")
    rows = lambda n: [[f"{t} {k}", y] for y, t in INTENTS.items() for k in range(n)]  # noqa: E731
    oos = lambda n: [[f"{OOS} {k}", "oos"] for k in range(n)]  # noqa: E731
    (d / "train_val.json").write_text(json.dumps({"train": rows(10), "oos_train": oos(8), "val": rows(3),
                                                  "oos_val": oos(3)}))
    from tests.tiny_llm import build

    build(d / "model", [*INTENTS.values(), OOS, "balance weather alarm", "无合适部门"] * 5)
    return d


def test_llm_rows_and_budget(data, tmp_path):
    out = tmp_path / "llm.json"
    res = clinc150_nofit.main(["--data", str(data / "train_val.json"), "--llm", str(data / "model"),
                               "--llm-epochs", "3", "--llm-batch", "4", "--budget-s", "0",
                               "--work", str(tmp_path / "work"), "--out", str(out), "--targets", "0.8"])
    assert json.loads(out.read_text())["rows"] == res["rows"]
    names = [r["name"] for r in res["rows"]]
    assert names == ["SmolLM2+LoRA, handling off", "SmolLM2+LoRA, none class only",
                     "SmolLM2+LoRA, none class + score @0.8"]
    off, _, scored = res["rows"]
    assert off["oos_recall"] == 0 and off["n_val"] == 12 and off["n_fit"] == 27 + 4
    assert scored["threshold"] is not None and 0 <= scored["auroc"] <= 1
    # a zero budget stops training after its first optimizer step, and says so
    s = res["setup"]
    assert s["steps"] == 1 and s["planned_steps"] > 1 and s["stopped_by_budget"]
    assert s["none_label"] == "无合适部门"


def test_subset_keeps_every_oos_example():
    fit = [(f"t{k}", y) for y in ("a", "b") for k in range(5)] + [("o1", NONE), ("o2", NONE)]
    sub = clinc150_nofit.subset(fit, 2, seed=0)
    assert sorted(y for _, y in sub) == ["a", "a", "b", "b", NONE, NONE]
    assert clinc150_nofit.subset(fit, None, seed=0) == fit


def test_run_cfg_needs_no_bitsandbytes_on_cpu(tmp_path):
    cfg = smol_lora.run_cfg({"user": "{ticket}"}, tmp_path, 1e-3, 1, 8)
    assert cfg.sft.optim == "adamw_torch" and cfg.llm.precision == "bf16" and cfg.paths.home == str(tmp_path)
