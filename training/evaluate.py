"""Evaluation report: accuracy, macro/weighted P/R/F1, per-department P/R/F1/support,
no-fit ("no department fits") precision/recall/AUROC, ECE, confusion matrix; saved as JSON + Markdown + PNG next to the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from router import nofit
from router.calibration import ece, reliability
from router.catalog import Catalog


def report(proba: np.ndarray, y_true: list[str], classes: list[str], catalog: Catalog | None = None,
           y_pred: list[str] | None = None, score: np.ndarray | None = None) -> dict:
    """`y_pred`: the routed departments (with the no-fit decision, router/nofit.py); default the
    top class. `score`: the out-of-scope score, for the no-fit AUROC. Held-out labels the model
    has no class for (e.g. no-fit before it learnt them) count as never predicted."""
    classes = [str(c) for c in classes]
    missing = sorted(set(y_true) - set(classes))
    if missing:
        proba = np.hstack([proba, np.zeros((len(proba), len(missing)))])
        classes = classes + missing
    pos = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([pos[y] for y in y_true], dtype=int)
    y_pred = list(y_pred) if y_pred is not None else [classes[j] for j in proba.argmax(axis=1)]
    present = sorted(set(y_true) | set(y_pred), key=pos.get)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    out = {"n": len(y_true), "accuracy": float(accuracy_score(y_true, y_pred)), "ece": ece(proba, y_idx),
           "reliability": reliability(proba, y_idx)}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average=avg,
                                                        zero_division=0)
        out[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    out["per_department"] = {
        c: {"name": catalog.name(c) if catalog else c, "precision": float(pi), "recall": float(ri),
            "f1": float(fi), "support": int(si)}
        for c, pi, ri, fi, si in zip(present, p, r, f, s)}
    cm = confusion_matrix(y_true, y_pred, labels=present)
    out["confusion"] = {"labels": present, "matrix": cm.tolist()}
    out["nofit"] = nofit.metrics(y_true, y_pred, score)
    return out


def misrouted(proba: np.ndarray, y_true: list[str], classes: list[str], ids: list[str],
              per_pair: int = 20) -> list[dict]:
    """Held-out tickets the model got wrong, at most `per_pair` per (true, predicted) pair, most
    confident first: what the dashboards open for a confused pair."""
    pred = proba.argmax(axis=1)
    out, seen = [], {}
    for k in np.argsort(-proba.max(axis=1), kind="stable"):
        t, p = y_true[k], classes[pred[k]]
        if t != p and seen.get((t, p), 0) < per_pair:
            seen[(t, p)] = seen.get((t, p), 0) + 1
            out.append({"ticket": ids[k], "true": t, "predicted": p, "confidence": round(float(proba[k, pred[k]]), 4)})
    return out


def compare(new: dict, old: dict | None) -> dict:
    """Per-department F1 change of `new` against `old` (both `report` dicts)."""
    if not old:
        return {}
    return {d: round(m["f1"] - old["per_department"][d]["f1"], 4)
            for d, m in new["per_department"].items() if d in old.get("per_department", {})}


def _extras(rep: dict) -> list[str]:
    """Lines for calibration, the newest corrections and the current model, when the report has them."""
    out = []
    if "calibration" in rep:
        c = rep["calibration"]
        out.append(f"- calibration: temperature {c['temperature']:.3f} fitted on {c['n_calibration']} training "
                   f"tickets; ECE {c['ece_before']:.4f} before, {c['ece_after']:.4f} after")
    if "newest_corrections" in rep:
        n = rep["newest_corrections"]
        out.append(f"- newest held-out corrections (n = {n['n']}): accuracy {n['accuracy']:.4f}, "
                   f"macro-F1 {n['macro_f1']:.4f}")
    cur = rep.get("current")
    if cur and "error" in cur:
        out.append(f"- current model {cur['version']}: {cur['error']}")
    elif cur:
        line = (f"- current model {cur['version']} on the same tickets: accuracy {cur['accuracy']:.4f}, "
                f"macro-F1 {cur['macro_f1']:.4f}, ECE {cur['ece']:.4f}")
        if "newest_corrections" in cur:
            line += f"; newest corrections accuracy {cur['newest_corrections']['accuracy']:.4f}"
        out.append(line)
    return out + [""] if out else out


def _nofit_line(rep: dict) -> list[str]:
    n = rep.get("nofit")
    if not n:
        return []
    auroc = f", AUROC of the score {n['auroc']:.4f}" if "auroc" in n else ""
    thr = f" (threshold {n['threshold']:.3f}, {n.get('threshold_source', '')})" if n.get("threshold") is not None else ""
    if not n["support"]:
        return [f"- no department fits: n/a (0 held out, {n['flagged']} flagged){thr}", ""]
    return [f"- no department fits: precision {n['precision']:.4f}, recall {n['recall']:.4f} "
            f"({n['support']} no-fit held-out tickets, {n['flagged']} flagged){auroc}{thr}", ""]


def markdown(rep: dict, title: str) -> str:
    lines = [f"# {title}", "",
             f"n = {rep['n']}, accuracy **{rep['accuracy']:.4f}**, macro-F1 **{rep['macro']['f1']:.4f}**, "
             f"weighted-F1 {rep['weighted']['f1']:.4f}, ECE {rep['ece']:.4f}", "",
             *_nofit_line(rep),
             *_extras(rep),
             "| department | name | precision | recall | F1 | support | ΔF1 |", "|---|---|---|---|---|---|---|"]
    delta = rep.get("delta_f1", {})
    for d, m in sorted(rep["per_department"].items(), key=lambda kv: kv[1]["f1"]):
        dd = f"{delta[d]:+.3f}" if d in delta else ""
        lines.append(f"| {d} | {m['name']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
                     f"| {m['support']} | {dd} |")
    return "\n".join(lines) + "\n"


def confusion_png(rep: dict, path: Path) -> None:
    """The row-normalised confusion matrix as a picture (sklearn's ConfusionMatrixDisplay)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels, cm = rep["confusion"]["labels"], np.array(rep["confusion"]["matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(6, len(labels) * 0.18)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(norm, display_labels=labels).plot(
        ax=ax, cmap="Blues", include_values=False, colorbar=False, xticks_rotation=90, im_kw={"vmin": 0, "vmax": 1})
    ax.tick_params(labelsize=6)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion (row-normalised), accuracy {rep['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(rep: dict, folder: Path, title: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(rep, ensure_ascii=False, indent=1))
    (folder / "report.md").write_text(markdown(rep, title))
    confusion_png(rep, folder / "confusion.png")


def summary(rep: dict) -> dict:
    """The headline numbers stored in the registry row."""
    n = rep.get("nofit", {})
    return {"n": rep["n"], "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
            "weighted_f1": rep["weighted"]["f1"], "ece": rep["ece"],
            "nofit_precision": n.get("precision"), "nofit_recall": n.get("recall"),
            "nofit_support": n.get("support"),
            "per_department_f1": {d: m["f1"] for d, m in rep["per_department"].items()},
            "per_department_support": {d: m["support"] for d, m in rep["per_department"].items()}}
