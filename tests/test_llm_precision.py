"""[llm] precision: the choice of nf4 | bf16 | fp8, and FP8 serving (LoRA merged, FP8 linears) on the tiny
random Qwen2, on CPU (torch's CPU float8 kernels run the same e4m3 arithmetic as the GPU's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from router.config import Settings
from router.llm import LoadError
from router.llm.fp8 import FP8Linear, quantize_rows, supported
from router.llm.load import load_model, pick_precision
from router.llm.model import LLMClassifier
from router.llm.score import Scorer
from tests.test_llm_mechanics import SHORT, lm, prompt, tickets, tiny  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not supported("cpu"), reason="this torch has no float8 matrix product")


def test_precision_choice():
    assert pick_precision("auto", "cpu") == "bf16"
    assert pick_precision(None, "cpu", quantize=False) == "bf16"
    assert pick_precision("fp8", "cpu") == "fp8"
    with pytest.raises(LoadError, match="precision must be one of"):
        pick_precision("int4", "cpu")
    with pytest.raises(LoadError, match="CUDA"):
        pick_precision("nf4", "cpu")
    if torch.cuda.is_available():  # auto on a GPU: fp8 where it has FP8 tensor cores, else nf4
        want = "fp8" if torch.cuda.get_device_capability() >= (8, 9) else "nf4"
        assert pick_precision("auto", "cuda") == want
        assert pick_precision("auto", "cuda", quantize=True) == "nf4"


def test_fp8_linear_is_the_product_of_the_scaled_float8_values():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    f = FP8Linear(lin)
    assert f.weight.dtype == torch.float8_e4m3fn and f.scale.shape == (1, 48)
    y = f(x)
    qx, sx = quantize_rows(x.reshape(-1, 64))
    emulated = (qx.float() * sx) @ (f.weight.float() * f.scale.T).T + lin.bias
    assert y.shape == (5, 7, 48)
    assert torch.allclose(y.reshape(-1, 48), emulated, atol=1e-4)
    exact = lin(x)
    rel = (y - exact).norm() / exact.norm()
    assert 1e-4 < rel < 0.05                        # e4m3 rounding: close, but not the same numbers


def test_fp8_model_scores_like_full_precision(tiny, lm, prompt):  # noqa: F811
    model, tok = lm
    fp8, _ = load_model(str(tiny), device="cpu", precision="fp8")
    layer = fp8.get_decoder().layers[0]
    assert isinstance(layer.self_attn.q_proj, FP8Linear) and isinstance(layer.mlp.down_proj, FP8Linear)
    assert not isinstance(fp8.get_output_embeddings(), FP8Linear)
    texts = tickets(24)
    ref = Scorer(model, prompt).logprobs(texts, batch_size=8)
    got = Scorer(fp8, prompt).logprobs(texts, batch_size=8)
    assert np.isfinite(got).all() and not np.allclose(got, ref, atol=1e-3)
    # Random weights of 0.2 spread make the tiny model's scores spiky; FP8 must still follow them.
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.98
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.8


def test_fp8_merges_the_lora_adapter(tiny, lm, prompt, tmp_path):  # noqa: F811
    from peft import LoraConfig, get_peft_model

    base = load_model(str(tiny), device="cpu")[0]
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    texts = tickets(16)
    plain = Scorer(lm[0], prompt).logprobs(texts, 8)
    adapted = Scorer(load_model(str(tiny), adapter=tmp_path / "adapter", device="cpu")[0], prompt).logprobs(texts, 8)
    fp8 = load_model(str(tiny), adapter=tmp_path / "adapter", device="cpu", precision="fp8")[0]
    assert not hasattr(fp8, "peft_config")                    # merged into the base, then converted
    got = Scorer(fp8, prompt).logprobs(texts, 8)
    assert np.abs(got - adapted).mean() < 0.5 * np.abs(adapted - plain).mean()
    with pytest.raises(LoadError, match="serving"):
        load_model(str(tiny), adapter=tmp_path / "adapter", device="cpu", precision="fp8", trainable=True)


def test_classifier_reads_precision_from_config(tiny, catalog):  # noqa: F811
    clf = LLMClassifier.from_settings(Settings(llm={"precision": "fp8"}), None, catalog, base=str(tiny), device="cpu",
                                     template=SHORT)
    p = clf.predict_proba(tickets(3))
    assert np.allclose(p.sum(1), 1) and isinstance(clf._model.get_decoder().layers[0].mlp.up_proj, FP8Linear)
    assert LLMClassifier(Settings(), catalog=catalog, base=str(tiny)).precision == "auto"
