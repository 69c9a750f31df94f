"""The CPU baseline's variants on four data sets, in one run (issue 21).

    python bench/baseline_compare.py [--banking77 ../shared/datasets/banking77/train.csv] [--quick]

Data sets (train -> test):
- sample: data/sample/history.jsonl -> test.jsonl (the default generated style: short, templated);
- month: data/sample/month/history.jsonl + day01..day10 -> month/test.jsonl (in-scope tickets);
- realistic: data/realistic/history.jsonl -> test.jsonl (`generate.py --style realistic`: a
  title, then 150-800 characters of petition-site prose);
- banking77: train.csv, stratified 80/20, seed 42 (English, no titles).
Variants:
- main: the baseline as on main before issue 21 (char_wb 1-4 + word 1-2 TF-IDF in one block,
  CalibratedClassifierCV(LinearSVC(C=2), sigmoid, 3 folds));
- plain: sklearn TfidfVectorizer(char 1-3) + LinearSVC(), the issue's reference;
- one block: router.baseline with the title left in the text (no title block);
- blocks, chars only: router.baseline as the first issue-21 session shipped it (character 1-3-grams,
  no words, LinearSVC C=1);
- blocks: router.baseline as shipped (title and text blocks of character 1-3-grams and word
  1-2-grams, the title's weight chosen among 0.3 / 1 / 3 by 3-fold cross-validation, sublinear
  tf, LinearSVC C=2), and with each fixed title weight,
  without sublinear tf, and with jieba word 1-grams of the text as a third block (sklearn
  TfidfVectorizer(tokenizer=jieba.lcut)).
Accuracy and macro-F1 on the test split; ECE where the variant gives calibrated probabilities
(main, blocks); fit seconds; tickets/s of predict over the test split.
Writes bench/results/baseline_compare.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from router import ROOT
from router.classifier import model_input

B77 = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _xy(rows):
    rows = [r for r in rows if r.get("label")]
    return [model_input(r["text"], r.get("title")) for r in rows], [r["label"] for r in rows]


def datasets(banking77: Path):
    s, m, r = ROOT / "data" / "sample", ROOT / "data" / "sample" / "month", ROOT / "data" / "realistic"
    out = {"sample": (_xy(_rows(s / "history.jsonl")), _xy(_rows(s / "test.jsonl"))),
           "month": (_xy(_rows(m / "history.jsonl") + [x for d in range(1, 11) for x in _rows(m / f"day{d:02d}.jsonl")]),
                     _xy(_rows(m / "test.jsonl"))),
           "realistic": (_xy(_rows(r / "history.jsonl")), _xy(_rows(r / "test.jsonl")))}
    if banking77.exists():
        import pandas as pd
        from sklearn.model_selection import train_test_split

        df = pd.read_csv(banking77)
        tr, te = train_test_split(df, test_size=0.2, stratify=df.category, random_state=42)
        out["banking77"] = ((tr.text.tolist(), tr.category.tolist()), (te.text.tolist(), te.category.tolist()))
    return out


def main_before():
    """The baseline as main had it before issue 21 (router/baseline.py at that commit)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    return make_pipeline(make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, max_features=300000),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")),
        CalibratedClassifierCV(LinearSVC(C=2.0, class_weight="balanced"), method="sigmoid", cv=3))


def plain():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LinearSVC())


class Words:
    """router.baseline's blocks plus jieba word 1-grams of the text as a third block."""

    def __init__(self, weight: float = 1.0, **kw):
        from router.baseline import BaselineClassifier

        self.base, self.weight = BaselineClassifier(calibration_folds=0, title_weight=1.0, **kw), weight

    def _x(self, texts, fit=False):
        from scipy import sparse

        from router.baseline import split

        bodies = split(texts)[1]
        w = self.words.fit_transform(bodies) if fit else self.words.transform(bodies)
        return sparse.hstack([self.base.features(texts), w * self.weight], format="csr")

    def fit(self, texts, labels):
        import jieba
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        jieba.setLogLevel(60)
        self.base.fit(texts[:0] + list(texts), labels)  # the blocks' vocabularies
        self.words = TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None, lowercase=True, sublinear_tf=True)
        self.svm = LinearSVC(C=self.base.C / 10, class_weight="balanced").fit(self._x(texts, True), labels)
        self.classes_ = self.svm.classes_
        return self

    def predict(self, texts):
        return self.svm.predict(self._x(texts))


def variants(quick: bool):
    from router.baseline import BaselineClassifier

    class OneBlock(BaselineClassifier):
        """The title stays inside the text: `【title】` is not split off."""

        def fit(self, texts, labels):
            return super().fit(["·" + t for t in texts], labels)

        def margins(self, texts):
            return super().margins(["·" + t for t in texts])

    out = {"main": main_before, "plain": plain,
           "blocks, chars only (C=1)": lambda: BaselineClassifier(words=0, C=10.0),
           "blocks (shipped: title weight by CV)": BaselineClassifier}
    if not quick:
        out["one block"] = lambda: OneBlock(calibration_folds=0, title_weight=1.0)
    if not quick:
        out.update({f"blocks, title x{w:g}": (lambda w=w: BaselineClassifier(title_weight=w, calibration_folds=0))
                    for w in (0.3, 1.0, 3.0)})
        out.update({"blocks x1, no sublinear tf": lambda: BaselineClassifier(title_weight=1.0, sublinear=False,
                                                                             calibration_folds=0),
                    "blocks x1 + jieba words": Words})
    return out


def run(make, train, test) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from router.calibration import ece

    clf = make()
    t0 = time.perf_counter()
    clf.fit(*train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    calibrated = hasattr(clf, "predict_proba") and getattr(clf, "calibration_folds", 3) > 0
    if calibrated:
        proba = clf.predict_proba(test[0])
        pred = np.asarray(clf.classes_)[proba.argmax(1)]
    else:
        pred = clf.predict(test[0])
    pred_s = time.perf_counter() - t0
    y = np.asarray(test[1])
    res = {"accuracy": round(float(accuracy_score(y, pred)), 4),
           "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
           "fit_s": round(fit_s, 1), "tickets_per_s": round(len(y) / pred_s)}
    if getattr(clf, "title_weights_tried", None):
        res["title_weight"] = clf.title_w
    if calibrated:
        pos = {c: i for i, c in enumerate(clf.classes_)}
        known = np.array([c in pos for c in y])
        res["ece"] = round(ece(proba[known], np.array([pos[c] for c in y[known]])), 4)
    return res


def main(banking77: Path = typer.Option(B77, help="Banking77 train.csv (text,category); skipped if absent"),
         quick: bool = typer.Option(False, help="main, plain, blocks chars-only and blocks only"),
         only: str = typer.Option("", help="comma-separated data sets (default all)"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "baseline_compare.json")):
    data = datasets(banking77)
    names = [n for n in data if not only or n in only.split(",")]
    res = {"results": {}, "sizes": {n: {"train": len(data[n][0][0]), "test": len(data[n][1][0])} for n in names}}
    con = Console(width=150)
    for n in names:
        for v, make in variants(quick).items():
            r = res["results"].setdefault(v, {})[n] = run(make, *data[n])
            con.print(f"{n:10s} {v:26s} {r}")
    res.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               load_average=os.getloadavg()[0], date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/baseline_compare.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    t = Table(title="CPU baseline variants: accuracy / macro-F1 (ECE) on each test split")
    t.add_column("variant")
    for n in names:
        t.add_column(f"{n} ({res['sizes'][n]['train']:,} -> {res['sizes'][n]['test']:,})", justify="right")
    for v, per in res["results"].items():
        t.add_row(v, *[f"{per[n]['accuracy']:.3f} / {per[n]['macro_f1']:.3f}"
                       + (f" ({per[n]['ece']:.3f})" if "ece" in per[n] else "") for n in names])
    con.print(t)


if __name__ == "__main__":
    typer.run(main)
