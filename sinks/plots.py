"""PNG plots of eval results (matplotlib, no display needed)."""

from pathlib import Path
from typing import Any


def plot_frontier(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strong = result["strongest_cost"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs, ys = zip(*result["frontier"], strict=True)
    ax.plot([x / strong for x in xs], ys, "-o", ms=3, label="learned router (frontier)")
    singles = sorted((v["cost"], v["quality"], m) for m, v in result["models"].items())
    ax.plot(
        [s[0] / strong for s in singles],
        [s[1] for s in singles],
        "--",
        color="grey",
        label="zero router / random mix",
    )
    for c, q, m in singles:
        ax.annotate(m, (c / strong, q), fontsize=7, xytext=(3, -10), textcoords="offset points")
        ax.plot([c / strong], [q], "s", color="black")
    ax.plot(
        [result["oracle_cost"] / strong],
        [result["oracle_quality"]],
        "*",
        ms=10,
        color="green",
        label="per-prompt oracle",
    )
    ax.axhline(
        0.95 * result["strongest_quality"],
        color="red",
        lw=0.8,
        ls=":",
        label="95% of the strongest",
    )
    ax.set_xlabel("mean cost per prompt, as a share of the strongest model's")
    ax.set_ylabel("mean quality (test split)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
