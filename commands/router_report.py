"""What ``switchyard router eval`` prints: the figures, the single models, the verdicts,
and each tier's calibrated point on the test split."""

from commands.console import Column, print_table
from schemas.router_artifact import Calibration, RouterManifest
from schemas.router_eval import CalibratedResult, CascadeReport, EvalReport

FIGURE_COLUMNS = (
    Column("", 16),
    Column("cost/prompt", 11, right=True),
    Column("quality", 7, right=True),
    Column("AIQ", 6, right=True),
    Column("cost@95%", 10, right=True),
    Column("q@strong$", 9, right=True),
)
SINGLE_COLUMNS = (Column("single model", 28), Column("cost/prompt", right=True), Column("quality"))


def print_report(report: EvalReport) -> None:
    """The readable report ``switchyard router eval`` prints: tables, then the verdicts."""
    print(
        f"{report.n} test prompts ({report.dropped} dropped: a model had no outcome); "
        f"strongest {report.strongest_model}, cheapest {report.cheapest_model}\n"
    )
    figures = {"router": report.router, **report.baselines}
    print_table(
        FIGURE_COLUMNS,
        [
            (name, _usd(f.cost_usd), _num(f.quality), _num(f.aiq),
             _usd(f.cost_at_95pct_strongest), _num(f.quality_at_strongest_cost))
            for name, f in figures.items()
        ],
    )  # fmt: skip
    print()
    single = [(s.model, _usd(s.cost_usd), f"{s.quality:.4f}") for s in report.single_models]
    print_table(SINGLE_COLUMNS, single)
    print("\n" + "\n".join(_verdicts(report)))
    if report.calibrated:
        print(f"\nsettings chosen on the train split, on these {report.n} test prompts:")
        print_table(CALIBRATED_COLUMNS, [_calibrated_row(c) for c in report.calibrated])
    if report.cascade is not None:
        _print_cascade(report.cascade, report.n)


CALIBRATED_COLUMNS = (
    Column("tier", 18),
    Column("goal", 12),
    Column("setting", 9, right=True),
    Column("train q/c", 13, right=True),
    Column("test quality share (95% CI)", 28, right=True),
    Column("test cost share (95% CI)", 26, right=True),
    Column("vs zero-router", 14, right=True),
)


def _calibrated_row(c: CalibratedResult) -> tuple[str, ...]:
    goal = f"quality {c.goal:.3f}" if c.absolute else f"{c.goal:.0%} strongest"
    hull = "-" if c.zero_router_quality is None else f"{c.quality - c.zero_router_quality:+.4f}"
    return (
        c.name,
        goal + ("" if c.reached_on_train else " (!)"),
        f"{c.setting:.4g}",
        f"{c.train_quality_share:.1%}/{c.train_cost_share:.1%}",
        f"{c.quality_share:.1%} ({c.quality_share_ci.low:.1%}-{c.quality_share_ci.high:.1%})",
        f"{c.cost_share:.1%} ({c.cost_share_ci.low:.1%}-{c.cost_share_ci.high:.1%})",
        hull,
    )


def _print_cascade(cascade: CascadeReport, n: int) -> None:
    ratio = cascade.cost_at_95pct_ratio
    aucs = ", ".join(
        f"{m} {a:.3f}" if a is not None else f"{m} n/a" for m, a in cascade.check_auc.items()
    )
    print(
        f"\ncascade with learned checks (cost counts every model called); check AUC on "
        f"test: {aucs}\n95% of the strongest's quality at "
        + (f"{ratio:.1%} of its cost" if ratio is not None else "no cost on its frontier")
        + f" (swept on test); swept settings at 20-80% below the zero-router: "
        f"{cascade.settings_below_zero_router_20_80} of {cascade.settings_20_80}"
    )
    print(f"settings chosen on the train split, on these {n} test prompts:")
    print_table(CALIBRATED_COLUMNS, [_calibrated_row(c) for c in cascade.calibrated])
    print(
        "escalated / straight to the strongest: "
        + ", ".join(
            f"{t} {cascade.escalated_share[t]:.0%} / {cascade.straight_share[t]:.0%}"
            for t in cascade.escalated_share
        )
    )


def _verdicts(report: EvalReport) -> list[str]:
    ratio = report.cost_at_95pct_ratio
    margins = (
        f"{c.fraction:.0%} {c.margin:+.4f}" if c.margin is not None else f"{c.fraction:.0%} n/a"
        for c in report.hull_check
    )
    lines = [
        f"95% of the strongest's quality ({0.95 * report.strongest_quality:.4f}) at "
        + (f"{ratio:.1%} of its cost" if ratio is not None else "no cost on the frontier"),
        "router - zero-router at a share of the strongest's cost: " + "  ".join(margins),
        "above the zero-router from 20% to 80%: "
        + ("yes" if report.above_zero_router_20_80 else "no"),
    ]
    lines.append(
        f"swept settings at 20-80% of the strongest's cost below the zero-router: "
        f"{report.settings_below_zero_router_20_80} of {report.settings_20_80}"
    )
    if report.random_cpt_50 is not None:
        lines.append(
            f"CPT(50%) {_pct(report.cpt_50)} (random 50%), "
            f"CPT(80%) {_pct(report.cpt_80)} (random 80%)"
        )
    return lines


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.3g}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_calibration(calibration: Calibration | None) -> None:
    """The tiers' calibrated points, as ``router train`` prints them."""
    if calibration is None:
        print("  tiers not calibrated: no train row has an outcome for every model")
        return
    print(
        f"  tiers calibrated on {calibration.rows} train rows ({calibration.folds}-fold "
        f"out-of-fold predictions), shares of {calibration.strongest_model}:"
    )
    for tier, p in calibration.tiers.items():
        goal = f"quality {p.goal:g}" if p.absolute else f"{p.goal:.0%}"
        state = "" if p.reached else "  NOT reached: best predicted quality instead"
        print(
            f"    {tier:<9} goal {goal:<13} lambda {p.lam:<10.4g} quality "
            f"{p.quality / calibration.strongest_quality:.1%}, cost "
            f"{p.cost_usd / calibration.strongest_cost_usd:.1%}{state}"
        )


def print_checks(manifest: RouterManifest) -> None:
    """The learned answer checks and the cascade's calibrated points, or why there are none."""
    if manifest.checks is None:
        print(f"  {manifest.checks_note or 'no learned answer checks'}")
        return
    for fit in manifest.checks.verifiers:
        auc = "n/a" if fit.oof_auc is None else f"{fit.oof_auc:.3f}"
        print(
            f"  answer check for {fit.model}: {fit.train_rows} answers, C={fit.c:g}, CV log-loss "
            f"{fit.cv_log_loss:.4f} (mean alone {fit.cv_mean_log_loss:.4f}), out-of-fold AUC {auc}"
        )
    if manifest.checks_note:
        print(f"  no answer check for some models: {manifest.checks_note}")
    if manifest.cascade is not None:
        print("  cascade with learned checks:")
        print_calibration(manifest.cascade)
