"""Pages a health authority reads at a glance: one per run, one per sweep (PNG and PDF).

Each page opens with a sentence that answers the question (how many infections the app
averted), counts are whole people, days are counted as in ``report.json`` (day 0 is the first
day of the run), curves are drawn so that none hides another, and the warnings are described in
plain words, the technical terms (recall, precision) in a footnote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FOOTNOTE = (
    "Technical terms: a true close contact spent at least 15 minutes within 1 m of a person who "
    "reported, in the 14 days before the report. Recall = true close contacts with the app who "
    "were warned / all of them. Precision = warned people who were true close contacts / all "
    "warned people. Risk threshold: the exposure score above which the server warns a phone "
    "(lower: more people warned)."
)
THRESHOLD_STYLES = (("tab:blue", "o", "-"), ("tab:orange", "s", "--"), ("tab:green", "^", ":"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _whole_people(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylim(bottom=0)


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path.with_suffix(".png"), dpi=110)
    fig.savefig(path.with_suffix(".pdf"))


def pct(value: float) -> str:
    """``40 %`` for 0.4."""
    return f"{100 * value:.0f} %"


def run_headline(report: dict[str, Any]) -> str:
    """The sentence that opens a run's page."""
    days, adoption = report["days"], report["adoption"]
    if not report.get("reports"):
        return (
            f"Nobody reported a positive test through the app in these {days} days: the run is "
            f"too short to see the app at work (a positive result comes "
            f"{_delay(report)} days after infection)."
        )
    without = report.get("infected_without_app")
    with_app = report["infected_with_app"]
    if without is None:
        return (
            f"With {pct(adoption)} of people using the app, {with_app:,} people were infected "
            f"over {days} days (no run without the app to compare with)."
        )
    averted = without - with_app
    verb = "averted about" if averted >= 0 else "did not avert any infection:"
    amount = f"{averted:,} infections" if averted >= 0 else f"{-averted:,} more infections"
    return (
        f"With {pct(adoption)} of people using the app, the app {verb} {amount} over {days} days "
        f"({with_app:,} people infected with it, {without:,} without it; one seed, no range)."
    )


def _delay(report: dict[str, Any]) -> str:
    low, high = report.get("test_delay_days", [5, 9])
    return f"{low:g}-{high:g}"


def plot_run(report: dict[str, Any], path: Path) -> None:
    """One page for one run: ``path`` with .png and .pdf."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.6))
    (infected, averted), (app, words) = axes
    with_app = report["curve_with_app"]
    without = report.get("curve_without_app")
    days = [p["day"] for p in with_app]
    if without:
        infected.plot(
            [p["day"] for p in without], [p["infected_total"] for p in without],
            color="tab:red", linestyle="--", marker="s", markevery=7, linewidth=2.2,
            label="without the app", zorder=2,
        )  # fmt: skip
    infected.plot(
        days, [p["infected_total"] for p in with_app], color="tab:blue", marker="o",
        markevery=(3, 7), linewidth=1.6, label="with the app", zorder=3,
    )  # fmt: skip
    if without:
        same = [
            a["infected_total"] == b["infected_total"]
            for a, b in zip(with_app, without, strict=True)
        ]
        apart = same.index(False) if False in same else len(same)
        if apart > 1:
            infected.annotate(
                "the two lines are one until day "
                f"{with_app[min(apart, len(same) - 1)]['day']}: the app had changed nothing yet"
                if apart < len(same)
                else "the two lines are one: the app changed nothing",
                xy=(0.98, 0.04), xycoords="axes fraction", ha="right", fontsize=8.5,
                color="dimgray",
            )  # fmt: skip
    infected.set(title="People infected so far (including those infected at the start)")
    infected.set(xlabel="day of the run (day 0 is the first day, as in report.json)")
    infected.set(ylabel="people")
    infected.legend(loc="upper left")
    _whole_people(infected)
    if without:
        gap = np.array([p["infected_total"] for p in without]) - np.array(
            [p["infected_total"] for p in with_app]
        )
        averted.bar(days, gap, color=np.where(gap >= 0, "tab:green", "tab:gray"), width=0.8)
        averted.axhline(0, color="black", linewidth=0.8)
        averted.set(title="Infections averted so far (without the app minus with it)")
        averted.yaxis.set_major_locator(_integer_locator())
    else:
        averted.text(0.5, 0.5, "no run without the app", ha="center", transform=averted.transAxes)
        averted.set(title="Infections averted so far")
    averted.set(xlabel="day of the run", ylabel="people")
    width = 0.4
    reports = [p["reports"] for p in with_app]
    warned = [p["warned_total"] for p in with_app]
    newly = [b - a for a, b in zip([0, *warned[:-1]], warned, strict=True)]
    app.bar(np.array(days) - width / 2, reports, width, color="tab:orange",
            label="positive people who reported through the app")  # fmt: skip
    app.bar(np.array(days) + width / 2, newly, width, color="tab:purple",
            label="people newly warned by the app")  # fmt: skip
    app.set(title="The app at work, day by day", xlabel="day of the run", ylabel="people")
    app.legend(loc="upper left")
    _whole_people(app)
    if not report.get("reports"):
        app.text(0.5, 0.5, "no report yet: run longer", ha="center", va="center",
                 transform=app.transAxes, fontsize=14, color="tab:red")  # fmt: skip
    for axis in (infected, averted, app):
        axis.xaxis.set_major_locator(_integer_locator())  # whole days
    words.axis("off")
    words.text(0.0, 1.0, run_words(report), va="top", ha="left", fontsize=10.5, wrap=True,
               transform=words.transAxes)  # fmt: skip
    fig.suptitle(_wrap(run_headline(report), 110), fontsize=13, fontweight="bold")
    fig.text(0.01, 0.01, _wrap(FOOTNOTE, 190), fontsize=8, color="dimgray")
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    _save(fig, path)
    plt.close(fig)


def _integer_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def run_words(report: dict[str, Any]) -> str:
    """What the run's warnings were worth, in plain words."""
    phones, adoption = report["phones"], report["adoption"]
    lines = [
        f"A town of {phones:,} people, {report['days']} days, seed {report['seed']};",
        f"{report['registrations']:,} people ({pct(adoption)}) used the app; "
        f"risk threshold {report['risk_threshold']:g}.",
        "",
        f"{report['reports']:,} people who tested positive reported through the app.",
        f"{report['warned']:,} people were warned.",
    ]
    if report["warned"]:
        lines += [
            f"  {report['warned_true_close']:,} of them had really spent 15 minutes within "
            f"1 m of someone who reported; {report['warned'] - report['warned_not_within_2m']:,}"
            " had been within 2 m.",
            f"  {report['isolated_needlessly']:,} stayed home without being infected.",
        ]
        if report.get("contact_to_warning_days_median") is not None:
            lines.append(
                f"  Half were warned within {report['contact_to_warning_days_median']:.1f} days "
                "of the contact."
            )
    if report["true_close_contacts"]:
        lines.append(
            f"Of the {report['true_close_contacts']:,} people with the app who had been that "
            f"close to a reporter, {report['true_close_contacts_warned']:,} were warned."
        )
    epi = report.get("epidemic_without_app") or report.get("epidemic_with_app") or {}
    if epi.get("r_effective") is not None:
        lines += [
            "",
            f"Each infected person infected {epi['r_effective']:.2f} others on average "
            "(without the app)"
            + (
                f", {report['epidemic_with_app']['r_effective']:.2f} with it."
                if report.get("epidemic_with_app", {}).get("r_effective") is not None
                else "."
            ),
        ]
    import textwrap

    wrapped = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()))
        wrapped += textwrap.wrap(line, 64, subsequent_indent=indent) or [""]
    return "\n".join(wrapped)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


# --- sweeps ------------------------------------------------------------------------------------
def sweep_headline(rows: list[dict[str, Any]], adoption: float = 0.4) -> str:
    """The sentence that opens a sweep's page: the app at ``adoption`` (the nearest swept)."""
    if not rows:
        return "No run finished yet."
    nearest = min({r["adoption"] for r in rows}, key=lambda a: abs(a - adoption))
    candidates = [r for r in rows if r["adoption"] == nearest]
    row = min(candidates, key=lambda r: abs(r["risk_threshold"] - 0.1))
    a = row["averted"]
    values = a.get("values") or []
    spread = (
        f"from {min(values):,.0f} to {max(values):,.0f} over {len(values)} seeds"
        if len(values) > 1
        else "one seed"
    )
    without = row["infected_without_app"]["mean"]
    effect = (
        f"the app averted about {a['mean']:,.0f} infections ({spread})"
        if a["mean"] >= 0
        else f"the app averted no infection on average ({-a['mean']:,.0f} more with it: "
        f"noise; {spread})"
    )
    return (
        f"With {pct(nearest)} adoption, {effect} over {row['days']} days in a town "
        f"of {row['phones']:,} where {without:,.0f} people are infected without it (risk "
        f"threshold {row['risk_threshold']:g})."
    )


def adoption_law(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares fit of the share of infections traced through the app to c x adoption²
    (every seed's value), and how far the points are from it."""
    a, y = [], []
    for r in rows:
        for v in r["traced_share"].get("values") or []:
            a.append(r["adoption"])
            y.append(v)
    if not a:
        return {"c": 0.0, "rms": 0.0}
    x = np.array(a) ** 2
    values = np.array(y)
    c = float((x * values).sum() / (x * x).sum())
    return {"c": c, "rms": float(np.sqrt(((values - c * x) ** 2).mean()))}


def plot_sweep(rows: list[dict[str, Any]], path: Path, ceiling: float | None = None) -> None:
    """One page for a sweep; ``ceiling`` is the analytic share traced at full adoption
    (share tested x share reporting: every infection by a reporter warned)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (averted, law), (warnings, rnum) = axes
    thresholds = sorted({r["risk_threshold"] for r in rows})
    adoptions = sorted({r["adoption"] for r in rows})
    step = 0.012
    for i, threshold in enumerate(thresholds):
        colour, marker, line = THRESHOLD_STYLES[i % len(THRESHOLD_STYLES)]
        sub = sorted((r for r in rows if r["risk_threshold"] == threshold),
                     key=lambda r: r["adoption"])  # fmt: skip
        x = np.array([r["adoption"] for r in sub]) + (i - (len(thresholds) - 1) / 2) * step
        seeds = max(len(r["seeds"]) for r in sub)
        label = f"risk threshold {threshold:g} ({seeds} seed{'s' if seeds > 1 else ''})"
        _errorbars(averted, x, [r["averted"] for r in sub], colour, marker, line, label)
        _errorbars(rnum, x, [r["r_lowered"] for r in sub], colour, marker, line, label)
        for r in sub:
            vals = r["traced_share"].get("values") or []
            law.scatter([r["adoption"] + (i - 1) * step] * len(vals), vals, color=colour,
                        marker=marker, s=22, alpha=0.8,
                        label=label if r is sub[0] else None)  # fmt: skip
    averted.axhline(0, color="black", linewidth=0.8)
    averted.set(title="Infections averted by the app (mean, 95 % interval over seeds)",
                xlabel="share of people using the app", ylabel="people")  # fmt: skip
    averted.yaxis.set_major_locator(_integer_locator())
    averted.legend(loc="upper left")
    grid = np.linspace(0, 1, 101)
    fit = adoption_law(rows)
    law.plot(grid, fit["c"] * grid**2, color="black", linewidth=1.5,
             label=f"analytic law, fitted: {fit['c']:.3f} x adoption²")  # fmt: skip
    if ceiling is not None:
        law.plot(
            grid,
            ceiling * grid**2,
            color="gray",
            linestyle="--",
            label=f"ceiling: {ceiling:.2f} x adoption² (every contact of a reporter warned)",
        )
    law.set(title="Share of infections traced through the app, against adoption²",
            xlabel="share of people using the app",
            ylabel="infections traced / all infections")  # fmt: skip
    law.set_xlim(0, 1)
    law.set_ylim(bottom=0)
    law.legend(loc="upper left", fontsize=8)
    default = min(thresholds, key=lambda t: abs(t - 0.1))
    sub = sorted((r for r in rows if r["risk_threshold"] == default), key=lambda r: r["adoption"])
    slots = np.arange(len(sub))
    close = np.array([r["warned_true_close"]["mean"] for r in sub])
    warned = np.array([r["warned"]["mean"] for r in sub])
    needless = np.array([r["isolated_needlessly"]["mean"] for r in sub])
    warnings.bar(slots - 0.2, close, 0.4, color="tab:blue",
                 label="warned, and really a close contact")  # fmt: skip
    warnings.bar(slots - 0.2, warned - close, 0.4, bottom=close, color="lightsteelblue",
                 label="warned, not a close contact")  # fmt: skip
    warnings.bar(slots + 0.2, needless, 0.4, color="tab:red",
                 label="stayed home after a warning without being infected")  # fmt: skip
    warnings.set_xticks(slots, [pct(r["adoption"]) for r in sub])
    warnings.set(title=f"People warned, mean over seeds (risk threshold {default:g})",
                 xlabel="share of people using the app", ylabel="people")  # fmt: skip
    _whole_people(warnings)
    warnings.legend(loc="upper left", fontsize=8)
    base = [v for r in rows for v in r["r_effective_without_app"].get("values") or []]
    rnum.axhline(0.0, color="black", linewidth=0.8)
    if base:
        rnum.text(0.98, 0.04, f"R without the app, mean over seeds: {float(np.mean(base)):.2f}",
                  transform=rnum.transAxes, ha="right", fontsize=8.5, color="dimgray")  # fmt: skip
    rnum.set(title="How much the app lowered the reproduction number R",
             xlabel="share of people using the app",
             ylabel="R without the app minus R with it")  # fmt: skip
    rnum.legend(loc="upper left", fontsize=8)
    for axis in (averted, rnum):
        axis.set_xticks(adoptions, [pct(a) for a in adoptions])
    fig.suptitle(_wrap(sweep_headline(rows), 110), fontsize=13, fontweight="bold")
    fig.text(0.01, 0.01, _wrap(FOOTNOTE + " Reproduction number (R): how many people each "
             "infected person infected, counted on who infected whom, over the people infected "
             "early enough (10 days before the end) to have infected all they would; compared "
             "seed by seed with the same town without the app.", 190),
             fontsize=8, color="dimgray")  # fmt: skip
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    _save(fig, path)
    plt.close(fig)


def _errorbars(
    axis: Any, x: Any, stats: list[dict[str, Any]], colour: str, marker: str, line: str, label: str
) -> None:
    mean = np.array([s["mean"] if s["mean"] is not None else np.nan for s in stats], dtype=float)
    low = np.array(
        [s["low"] if s["low"] is not None else m for s, m in zip(stats, mean, strict=True)]
    )
    high = np.array(
        [s["high"] if s["high"] is not None else m for s, m in zip(stats, mean, strict=True)]
    )
    axis.errorbar(x, mean, yerr=[mean - low, high - mean], color=colour, marker=marker,
                  linestyle=line, capsize=4, label=label)  # fmt: skip
