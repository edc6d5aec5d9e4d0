"""The quality-vs-cost picture of a router evaluation, as a PNG (matplotlib, Agg backend)."""

from pathlib import Path

from schemas.router_eval import EvalReport, Pair


def write_plot(report: EvalReport, path: Path, title: str) -> None:
    """Router frontier and points, calibrated tiers (and the cascade's), zero-router hull,
    random line, single models, oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    try:
        points = report.points
        ax.scatter(
            [p.cost_usd for p in points],
            [p.quality for p in points],
            s=4,
            alpha=0.35,
            color="tab:blue",
            label="router settings (lambda sweep)",
        )
        right = report.strongest_cost * 1.05
        _line(ax, report.router.frontier, right, "router frontier", "tab:blue", "-")
        _line(
            ax,
            report.baselines["zero_router"].frontier,
            right,
            "zero-router hull",
            "tab:gray",
            "--",
        )
        _line(ax, report.baselines["random"].frontier, right, "random mix", "tab:orange", ":")
        if report.cascade is not None:
            _line(ax, report.cascade.frontier, right, "cascade frontier", "tab:purple", "-")
        for results, marker, who in (
            (report.calibrated, "D", "router"),
            (report.cascade.calibrated if report.cascade else [], "^", "cascade"),
        ):
            for c in results:
                ax.scatter([c.cost_usd], [c.quality], s=60, marker=marker, color="tab:red")
                ax.annotate(f"{who} {c.name}", (c.cost_usd, c.quality), fontsize=7,
                            xytext=(4, 4), textcoords="offset points")  # fmt: skip
        for single in report.single_models:
            ax.scatter([single.cost_usd], [single.quality], s=50, marker="s", color="black")
            ax.annotate(single.model, (single.cost_usd, single.quality), fontsize=8,
                        xytext=(4, -10), textcoords="offset points")  # fmt: skip
        ax.scatter([report.oracle_cost], [report.oracle_quality], s=80, marker="*",
                   color="tab:green", label="oracle")  # fmt: skip
        ax.axhline(0.95 * report.strongest_quality, color="tab:red", lw=0.8, alpha=0.6,
                   label="95% of strongest")  # fmt: skip
        ax.set_xlabel("mean cost per prompt (USD)")
        ax.set_ylabel("mean quality (score)")
        ax.set_title(f"{title}: AIQ {report.aiq:.3f} (random {report.random_aiq:.3f})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
    finally:
        plt.close(fig)


def _line(
    ax: object, frontier: list[Pair], right: float, label: str, color: str, style: str
) -> None:
    if not frontier:
        return
    xs = [x for x, _ in frontier]
    ys = [y for _, y in frontier]
    xs.append(max(right, xs[-1]))  # frontiers extend flat to the right
    ys.append(ys[-1])
    ax.plot(xs, ys, style, color=color, label=label, lw=1.5)  # type: ignore[attr-defined]
