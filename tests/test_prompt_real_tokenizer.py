"""The routing prompt on the real DeepSeek-R1-Distill-Qwen-7B tokenizer and chat template (CPU, no weights).

Skipped where ../shared/tokenizers is absent (it sits beside the checkout, not in it)."""

from __future__ import annotations

import json

import pytest

from router import ROOT
from router.llm.prompt import build_prompt

# ../shared beside the checkout (or beside the folder of worktrees that holds it)
TOKENIZER = next((d / "shared/tokenizers/deepseek-r1-distill-qwen-7b-tokenizer" for d in (ROOT.parent, ROOT.parents[1])
                  if (d / "shared/tokenizers/deepseek-r1-distill-qwen-7b-tokenizer").is_dir()),
                 ROOT.parent / "shared/tokenizers/deepseek-r1-distill-qwen-7b-tokenizer")
pytestmark = pytest.mark.skipif(not (TOKENIZER / "tokenizer.json").exists(),
                                reason=f"real tokenizer not found at {TOKENIZER}")
USER, ASSISTANT, THINK, THINK_END, EOS = 151644, 151645, 151648, 151649, 151643


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER)


@pytest.fixture(scope="module")
def prompt(tok, catalog):
    return build_prompt(tok, catalog)


def day_texts() -> list[str]:
    return [json.loads(x)["text"] for x in (ROOT / "data/sample/day.jsonl").read_text(encoding="utf-8").splitlines()]


def test_special_tokens_are_single_ids(tok):
    for text, i in [("<｜User｜>", USER), ("<｜Assistant｜>", ASSISTANT), ("<think>", THINK), ("</think>", THINK_END)]:
        assert tok(text, add_special_tokens=False)["input_ids"] == [i]
    assert tok.eos_token_id == EOS


def test_gguf_template_gets_an_empty_closed_think_block(prompt):
    # The GGUF template's generation prompt ends at <｜Assistant｜>; the prompt opens and closes <think>.
    assert prompt.suffix[0] == ASSISTANT and prompt.suffix.count(ASSISTANT) == 1
    assert prompt.suffix.count(THINK) == 1 and prompt.suffix.count(THINK_END) == 1
    assert prompt.suffix.index(THINK) < prompt.suffix.index(THINK_END) == len(prompt.suffix) - 2
    assert prompt.text_suffix == "<｜Assistant｜><think>\n\n</think>\n\n"
    assert prompt.prefix[1] == USER and ASSISTANT not in prompt.prefix and THINK not in prompt.prefix


def test_official_template_that_opens_think_gives_the_same_ids(tok, catalog, prompt):
    # The newer official template adds "<think>\n" itself: it must be closed, not opened twice.
    official = tok.chat_template.replace("{{'<｜Assistant｜>'}}", "{{'<｜Assistant｜><think>\\n'}}")
    assert official != tok.chat_template
    tok2 = type(tok).from_pretrained(TOKENIZER)
    tok2.chat_template = official
    assert tok2.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                    add_generation_prompt=True).endswith("<think>\n")
    p2 = build_prompt(tok2, catalog)
    assert p2.suffix == prompt.suffix and p2.prefix == prompt.prefix


def test_think_no_leaves_the_template_as_is(tok, catalog):
    p = build_prompt(tok, catalog, {"think": "no"})
    assert p.suffix == [ASSISTANT] and THINK not in p.suffix


def test_prefix_ids_identical_for_every_ticket(prompt):
    texts = day_texts()
    n = len(prompt.prefix)
    assert 5000 < n < 5600                                      # the default prompt: ~5,251 tokens
    for t in texts[:200]:
        ids = prompt.ids(t)
        assert ids[:n] == prompt.prefix and ids[-len(prompt.suffix):] == prompt.suffix
    # Joining the parts' ids equals encoding the whole rendered text: no token spans a boundary.
    t = texts[0]
    whole = prompt.tokenizer(prompt.text_prefix + " ".join(t.split()) + prompt.text_suffix,
                             add_special_tokens=False)["input_ids"]
    assert whole == prompt.ids(t)


def test_label_ids_are_stable(tok, catalog, prompt):
    # Number labels: single digits (Qwen splits numbers digit by digit), the same after the cue.
    digit = {str(i): tok.convert_tokens_to_ids(str(i)) for i in range(10)}
    assert prompt.label_ids[:9] == [[digit[str(i)]] for i in range(1, 10)]
    assert prompt.label_ids[9] == [digit["1"], digit["0"]]
    assert all(1 <= len(x) <= 2 for x in prompt.label_ids)
    for lab, ids in zip(prompt.labels, prompt.label_ids):       # in context, after the answer cue
        ctx = tok(prompt.text_suffix + lab, add_special_tokens=False)["input_ids"]
        assert ctx == prompt.suffix + ids
    assert build_prompt(tok, catalog).label_ids == prompt.label_ids
    names = build_prompt(tok, catalog, {"label": "name", "department": "{label}"})
    for lab, ids in zip(names.labels, names.label_ids):
        assert tok(names.text_suffix + lab, add_special_tokens=False)["input_ids"] == names.suffix + ids
        assert tok.decode(ids) == lab


def test_sample_ticket_lengths(prompt):
    lens = sorted(len(prompt.ticket(t)) for t in day_texts())
    mean = sum(lens) / len(lens)
    assert 35 < mean < 60 and lens[-1] <= prompt.max_ticket_tokens + len(prompt.suffix)
    long = prompt.ticket("市民反映" * 2000)
    assert len(long) == prompt.max_ticket_tokens + len(prompt.suffix)
