"""Summary numbers (fraction of copy bandwidth, speedup over the best baseline, geomean), the
Markdown tables and the plots of a comparison run."""

from __future__ import annotations

import math
from pathlib import Path

OURS = ("intelligen_tuned", "intelligen")  # every other contestant is a baseline


def summarize(row: dict, ours: tuple[str, ...] = OURS) -> dict:
    """Fill in effective bandwidth fractions, the best baseline and our speedups over it
    (``ours``: the contestants that are not baselines)."""
    copy_gbps = row["copy"]["copy_gbps"]
    for c in row["contestants"].values():
        c["fraction_of_copy"] = c["gbps"] / copy_gbps if c.get("gbps") else None
    baselines = {k: c["time_us"] for k, c in row["contestants"].items() if k not in ours and c.get("time_us")}
    best = min(baselines, key=baselines.get) if baselines else None
    row["best_baseline"] = best
    row["speedup_vs_best_baseline"] = {
        k: baselines[best] / row["contestants"][k]["time_us"]
        for k in ours if best and (row["contestants"].get(k) or {}).get("time_us")}
    return row


def geomean_speedups(rows: list[dict], ours: tuple[str, ...] = OURS) -> dict[str, float]:
    """Geometric mean over cases of each of our contestants' speedup (cases without one skipped)."""
    out = {}
    for k in ours:
        vals = [r["speedup_vs_best_baseline"][k] for r in rows if k in r["speedup_vs_best_baseline"]]
        if vals:
            out[k] = math.exp(sum(math.log(v) for v in vals) / len(vals))
    return out


def contestant_names(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        seen += [k for k in r["contestants"] if k not in seen]
    return seen


def _cell(c: dict | None) -> str:
    if not c:
        return "n/a"
    if c.get("time_us") is None:
        return c.get("status", "no time").split(":")[0]
    frac = c.get("fraction_of_copy")
    return f"{c['time_us']:.1f} ({frac:.0%})" if frac else f"{c['time_us']:.1f}"


def markdown(rows: list[dict], meta: dict) -> str:
    names = contestant_names(rows)
    s = meta["settings"]
    lines = [f"# IntelliGen comparison on `{meta['target']['kind']}`: {meta['device']}", "",
             f"TVM {meta['versions']['tvm']}, torch {meta['versions']['torch'] or 'absent'}, numpy "
             f"{meta['versions']['numpy']}, commit `{meta['git_commit']}`; small={s['small']}, "
             f"repeat={s['repeat']}, trials per region={s['trials']}.", ""]
    lines += [f"- {note}" for note in meta["notes"]]
    lines += ["", "Median time in microseconds (fraction of the copy bandwidth measured in the same run); "
              "only contestants whose outputs matched `onnx.reference` have a time.", "",
              "| case | ideal bytes | copy GB/s | " + " | ".join(names) + " | best baseline | "
              + " | ".join(f"{k} speedup" for k in OURS) + " |",
              "|---|---:|---:|" + "---:|" * len(names) + "---|" + "---:|" * len(OURS)]
    for r in rows:
        speed = [f"{r['speedup_vs_best_baseline'][k]:.2f}x" if k in r["speedup_vs_best_baseline"] else "-"
                 for k in OURS]
        lines.append(f"| {r['case']} | {r['ideal_bytes']} | {r['copy']['copy_gbps']:.1f} | "
                     + " | ".join(_cell(r["contestants"].get(k)) for k in names)
                     + f" | {r['best_baseline'] or '-'} | " + " | ".join(speed) + " |")
    geo = geomean_speedups(rows)
    lines += ["", "Geomean speedup over the best baseline: "
              + (", ".join(f"{k} {v:.2f}x" for k, v in geo.items()) or "none"), "",
              "Wall time to tune (tuned contestants) and to build, seconds:", "",
              "| case | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for r in rows:
        cells = []
        for k in names:
            c = r["contestants"].get(k) or {}
            tune = f"tune {c['tune_s']:.1f} + " if c.get("tune_s") is not None else ""
            cells.append(f"{tune}build {c['build_s']:.1f}" if c.get("build_s") is not None else "-")
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _grouped_bars(rows: list[dict], series: dict[str, list[float]], ylabel: str, title: str,
                  path: Path, unity_line: bool = False) -> None:
    """One group of bars per case, one bar per series."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, ax = plt.subplots(figsize=(max(7.0, len(rows) * 0.75), 5.0))
    width = 0.8 / max(1, len(series))
    for i, (label, vals) in enumerate(series.items()):
        ax.bar([j + (i - (len(series) - 1) / 2) * width for j in range(len(rows))], vals, width, label=label)
    if unity_line:
        ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(rows)), [r["case"] for r in rows], rotation=40, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows: list[dict], out: Path, title: str, ours: tuple[str, ...] = OURS) -> list[str]:
    """fraction_of_copy.png (per case per contestant) and speedup.png (ours vs best baseline)."""
    fractions = {k: [(r["contestants"].get(k) or {}).get("fraction_of_copy") or 0 for r in rows]
                 for k in contestant_names(rows)}
    _grouped_bars(rows, fractions, "effective bandwidth / copy bandwidth", title, out / "fraction_of_copy.png")
    speedups = {k: [r["speedup_vs_best_baseline"].get(k, 0) for r in rows] for k in ours}
    _grouped_bars(rows, speedups, "speedup over the best baseline", title, out / "speedup.png", unity_line=True)
    return ["fraction_of_copy.png", "speedup.png"]
