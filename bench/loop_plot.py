"""Several bench/loop_sim.py runs' curves on one plot: each run's current-model accuracy (solid) and its
members' (dotted, dash-dot), plus the first run's `--compare` curve (dashed black), for side-by-side runs.

    python bench/loop_plot.py RUN.json:LABEL RUN2.json:LABEL2 --out PNG [--title TEXT]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def main(runs: list[str] = typer.Argument(..., help="FILE.json:LABEL, one per run"),
         out: Path = typer.Option(..., help="the PNG to write"),
         title: str = typer.Option("", help="the plot's title")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    ref = None
    for k, arg in enumerate(runs):
        path, _, label = arg.rpartition(":") if ":" in arg else (arg, "", Path(arg).stem)
        res = json.loads(Path(path).read_text())
        g = next(iter(res["summary"].values()))   # the first kind/strategy/budget
        ax.plot(range(len(g["accuracy"])), g["accuracy"], color=f"C{k}", lw=2, label=label)
        for j, (member, curve) in enumerate(sorted(g.get("members", {}).items())):
            ax.plot(range(len(curve)), curve, color=f"C{k}", ls=(":", "-.")[j % 2], lw=1,
                    label=f"{label}: its {member} member")
        ref = ref or res.get("compare")
    if ref:
        ax.plot(range(len(ref["accuracy"])), ref["accuracy"], color="k", ls="--", lw=1,
                label=f"{ref['name']} ({ref['file']})")
    ax.set(xlabel="day", ylabel="held-out accuracy of the current model", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
