"""The routing prompt: one builder for training and inference.

    prompt = build_prompt(tokenizer, catalog, cfg.prompt)
    prompt.prefix                  # token ids shared by every ticket: role + departments + duties
    prompt.ticket(text)            # token ids of one ticket's part (ticket + end of turn + answer cue)
    prompt.ids(text)               # prefix + ticket: the whole prompt
    prompt.labels, prompt.label_ids  # the answer strings (one per class) and their token ids
    prompt.example(text, label)    # (input_ids, target) for fine-tuning: loss on the answer only

The text comes from the [prompt] template in config, rendered through the tokenizer's chat
template. It ends where the answer starts; for reasoning models (an R1-style chat template that
opens `<think>`, or a tokenizer that knows `</think>`) an empty think block is closed first, as in
the seed recipe, so the model answers at once. Token ids are built part by part (prefix, ticket,
suffix) so the prefix is byte-identical for every ticket and its KV cache can be computed once;
training uses the very same ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from router.catalog import Catalog
from router.config import Prompt as Template

SLOT = "\x00TICKET\x00"   # stands for the ticket while rendering the chat template
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass
class Prompt:
    tokenizer: object
    classes: list[str]           # department ids, one per label
    labels: list[str]            # what the model answers for each class
    prefix: list[int]            # shared by every ticket
    suffix: list[int]            # after the ticket: end of the user turn, assistant cue, closed think block
    label_ids: list[list[int]]   # token ids of each label as they follow the prompt
    end_id: int                  # ends an answer (end of turn)
    max_ticket_tokens: int = 512
    text_prefix: str = field(default="", repr=False)
    text_suffix: str = field(default="", repr=False)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def ticket(self, text: str) -> list[int]:
        """The ticket's part of the prompt (truncated to max_ticket_tokens), ending where the answer starts."""
        return self._encode(" ".join(text.split()))[: self.max_ticket_tokens] + self.suffix

    def ids(self, text: str) -> list[int]:
        return self.prefix + self.ticket(text)

    def answer(self, dept_id: str) -> list[int]:
        """Token ids of the full answer for a department: its label, then end of turn."""
        return self.label_ids[self.classes.index(dept_id)] + [self.end_id]

    def example(self, text: str, dept_id: str) -> tuple[list[int], list[int]]:
        """(input_ids, target) for supervised fine-tuning; target is -100 on the prompt."""
        p, a = self.ids(text), self.answer(dept_id)
        return p + a, [-100] * len(p) + a


def _render(tokenizer, messages: list[dict], think: str) -> str:
    kw = {"enable_thinking": False} if think != "no" else {}
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kw)
    tail = text[-40:]
    if think == "no" or THINK_CLOSE in tail:
        return text
    if tail.rstrip().endswith(THINK_OPEN):            # R1-style: the template opened a think block
        return text.rstrip() + "\n\n" + THINK_CLOSE + "\n\n"
    knows_think = THINK_CLOSE in tokenizer.get_vocab()
    if think == "yes" or knows_think:
        return text + THINK_OPEN + "\n\n" + THINK_CLOSE + "\n\n"
    return text


def pick_shots(texts: Sequence[str], labels: Sequence[str], k: int, seed: int = 42,
               classes: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """k labeled tickets per department (a seeded draw among each department's tickets), in class order."""
    import random

    by: dict[str, list[str]] = {}
    for t, y in zip(texts, labels):
        by.setdefault(y, []).append(t)
    rng = random.Random(seed)
    order = list(classes) if classes is not None else sorted(by)
    return [(t, c) for c in order if c in by for t in rng.sample(by[c], min(k, len(by[c])))]


def shots_block(t: Template, shots: Sequence[tuple[str, str]], catalog: Catalog, label_of: dict) -> str:
    """The few-shot block: [prompt] shots_header around one `shot` line per example ('' when none)."""
    lines = [t.shot.format(ticket=" ".join(text.split())[: t.shot_chars], label=label_of[c], name=catalog.name(c))
             for text, c in shots if c in label_of]
    return t.shots_header.format(shots="\n".join(lines)) if lines else ""


def build_prompt(tokenizer, catalog: Catalog, template: Template | Mapping | None = None,
                 classes: Sequence[str] | None = None, shots: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The prompt for `classes` (default: the catalogue's active departments).

    template: the [prompt] settings (router/config.py) or a dict of some of them: system, user (with {city}, {departments}, {ticket}),
    department (one line per department: {label}, {name}, {id}, {duties}), label ("name", "id" or
    "number": 1, 2, ... in class order; then let `department` show the name too, e.g. "{label}. {name}"),
    think ("auto", "yes", "no"), max_ticket_tokens.
    shots: (ticket text, department id) examples for the few-shot block, in the shared prefix.
    """
    t = template if isinstance(template, Template) else Template(**dict(template or {}))
    classes = list(classes) if classes is not None else catalog.ids
    kinds = {"name": lambda i, c: catalog.name(c), "id": lambda i, c: c, "number": lambda i, c: str(i + 1)}
    if t.label not in kinds:
        raise ValueError(f"[prompt] label must be one of {', '.join(kinds)}, not {t.label!r}")
    labels = [kinds[t.label](i, c) for i, c in enumerate(classes)]
    if len(set(labels)) != len(labels):
        raise ValueError("two departments have the same label; labels must be distinct")
    if t.user.count("{ticket}") != 1:
        raise ValueError("[prompt] user must contain {ticket} exactly once")
    lines = "\n".join(t.department.format(label=lab, name=catalog.name(c), id=c,
                                             duties=catalog.by_id[c].duties if c in catalog.by_id else "")
                      for c, lab in zip(classes, labels))
    examples = shots_block(t, shots, catalog, dict(zip(classes, labels)))
    fmt = t.user if "{examples}" in t.user or not examples else t.user.replace("{departments}", "{departments}\n\n{examples}")
    user = fmt.format(city=catalog.city, departments=lines, ticket=SLOT, examples=examples)
    messages = ([{"role": "system", "content": t.system}] if t.system else []) + \
        [{"role": "user", "content": user}]
    text = _render(tokenizer, messages, t.think)
    before, after = text.split(SLOT)
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    end_id = tokenizer.eos_token_id
    if end_id is None:
        raise ValueError("the tokenizer has no end-of-sequence token to end an answer with")
    return Prompt(tokenizer=tokenizer, classes=classes, labels=labels, prefix=enc(before), suffix=enc(after),
                  label_ids=[enc(lab) for lab in labels], end_id=end_id,
                  max_ticket_tokens=t.max_ticket_tokens, text_prefix=before, text_suffix=after)


def overridden(folder, template: Template) -> list[str]:
    """The keys of `template` (router.toml's [prompt]) that differ from the template saved with the
    model version in `folder` (an ensemble's members included). The saved one wins: a version routes
    with the prompt it was trained and calibrated with; router.toml's reaches newly trained versions."""
    out = set()
    for meta in [Path(folder) / "meta.json", *sorted(Path(folder).glob("members/*/meta.json"))]:
        saved = json.loads(meta.read_text()).get("template") if meta.exists() else None
        out |= {k for k, v in template.model_dump().items() if saved and k in saved and saved[k] != v}
    return sorted(out)
