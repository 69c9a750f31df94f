"""Side-by-side bench/loop_sim.py runs (the same data and seed, one setting changed): a table of each
run's figures, each run's daily gap to the first, and one plot of their curves (each run's current-model
accuracy solid, its members dotted and dash-dot, the first run's `--compare` curve dashed black).

    python bench/loop_compare.py RUN.json:LABEL RUN2.json:LABEL2 [--target 0.87] [--out PNG] [--json FILE]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer


def curves(path: Path) -> dict:
    """The first kind/strategy/budget's daily accuracy and its members' (one seed: the run's own days)."""
    res = json.loads(path.read_text())
    g = next(iter(res["summary"].values()))
    return {"accuracy": np.array(g["accuracy"]), "members": {k: np.array(v) for k, v in g.get("members", {}).items()},
            "compare": res.get("compare"), "gpu": res.get("gpu")}


def figures(c: dict, target: float | None) -> dict:
    acc = c["accuracy"]
    out = {"days_run": len(acc) - 1, "last_day": float(acc[-1]), "mean_last_5": float(acc[-5:].mean()),
           "largest_daily_drop": float(max(0.0, -np.diff(acc).min())) if len(acc) > 1 else 0.0}
    if target is not None:
        out["days_at_target"] = [int(d) for d in np.flatnonzero(acc >= target)]
    if c["members"]:
        best = np.max(np.stack(list(c["members"].values())), axis=0)
        out["over_better_member"] = float((acc - best).mean())
        out["days_below_better_member"] = int((acc < best).sum())
    return out


def paired(a: dict, b: dict) -> dict:
    """b against a, day by day, over the days both ran."""
    n = min(len(a["accuracy"]), len(b["accuracy"]))
    d = b["accuracy"][:n] - a["accuracy"][:n]
    out = {"days": n, "ahead": int((d > 0).sum()), "behind": int((d < 0).sum()), "mean_gap": float(d.mean()),
           "mean_gap_last_10": float(d[-10:].mean())}
    for k in set(a["members"]) & set(b["members"]):
        out[f"{k}_member_gap"] = float((b["members"][k][:n] - a["members"][k][:n]).mean())
    return out


def plot(runs: dict[str, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for k, (label, c) in enumerate(runs.items()):
        ax.plot(range(len(c["accuracy"])), c["accuracy"], color=f"C{k}", lw=2, label=label)
        for j, (member, curve) in enumerate(sorted(c["members"].items())):
            ax.plot(range(len(curve)), curve, color=f"C{k}", ls=(":", "-.")[j % 2], lw=1,
                    label=f"{label}: its {member} member")
    ref = next(iter(runs.values()))["compare"]
    if ref:
        ax.plot(range(len(ref["accuracy"])), ref["accuracy"], color="k", ls="--", lw=1,
                label=f"{ref['name']} ({ref['file']})")
    ax.set(xlabel="day", ylabel="held-out accuracy of the current model", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main(runs: list[str] = typer.Argument(..., help="FILE.json:LABEL, one per run; the first is the reference"),
         target: float = typer.Option(None, help="count the days at or above this accuracy"),
         out: Path = typer.Option(None, help="the PNG to write"),
         json_out: Path = typer.Option(None, "--json", help="the figures as JSON"),
         title: str = typer.Option("", help="the plot's title")) -> None:
    loaded: dict[str, dict] = {}
    for arg in runs:
        path, sep, label = arg.rpartition(":")
        path, label = (path, label) if sep else (arg, Path(arg).stem)
        if not Path(path).is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="RUNS")
        loaded[label] = curves(Path(path))
    first = next(iter(loaded))
    res = {"runs": {k: {"file": a.rpartition(":")[0] or a, "gpu": c["gpu"], **figures(c, target)}
                    for (k, c), a in zip(loaded.items(), runs)},
           "paired": {k: paired(loaded[first], c) for k, c in list(loaded.items())[1:]}, "reference": first}
    print(f"{'run':<24} {'days':>4} {'last day':>8} {'last 5':>7} {'max drop':>8} {'vs better member':>16}"
          + ("  days >= target" if target is not None else ""))
    for k, f in res["runs"].items():
        print(f"{k:<24} {f['days_run']:>4} {f['last_day']:>8.3f} {f['mean_last_5']:>7.3f} {f['largest_daily_drop']:>8.3f}"
              f" {f.get('over_better_member', float('nan')):>+16.3f}"
              + (f"  {f['days_at_target']}" if target is not None else ""))
    for k, p in res["paired"].items():
        members = ", ".join(f"{m[:-11]} member {v:+.4f}" for m, v in p.items() if m.endswith("_member_gap"))
        print(f"{k} against {first}: ahead on {p['ahead']} of {p['days']} days, behind on {p['behind']}; "
              f"mean gap {p['mean_gap']:+.4f} (last 10 days {p['mean_gap_last_10']:+.4f}); {members}")
    if json_out:
        json_out.write_text(json.dumps(res, indent=1))
    if out:
        plot(loaded, out, title)
        print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
