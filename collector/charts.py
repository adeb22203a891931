"""Charts of the monthly document, drawn by matplotlib as SVG text (no files, no display).

matplotlib (Agg, SVG backend) because it is maintained, packaged by Debian and PyPI,
renders without a browser or a display, embeds text as paths so the SVG looks the same
everywhere (Vietnamese diacritics included: DejaVu Sans ships with it), and its SVG
drops straight into a self-contained HTML file that WeasyPrint prints.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display: a server or a test

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

#: One colour per service, readable in colour and told apart by marker in grey print.
COLOURS = {
    "fibre": "#1f5fa8",
    "broadband": "#2e9e5b",
    "mobile_2g": "#c8741a",
    "mobile_3g": "#8a4fb3",
    "mobile_4g": "#c23b3b",
}
MARKERS = {"fibre": "o", "broadband": "s", "mobile_2g": "^", "mobile_3g": "v", "mobile_4g": "D"}

plt.rcParams.update({
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "svg.fonttype": "path",  # text as outlines: no font needed where the SVG is shown
    "svg.hashsalt": "xanet",  # stable ids: the same data gives the same SVG
    "axes.spines.top": False,
    "axes.spines.right": False,
})


def _svg(fig: Figure) -> str:
    """The figure as an ``<img>`` with the SVG in a data URI: self-contained, and each
    chart keeps its own element ids (two inline SVGs would share ``figure_1`` ...)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/svg+xml;base64,{data}">'


@dataclass(frozen=True)
class Bar:
    """One outage on the timeline: row label, start and end in units (days, hours or
    minutes) since the window start."""

    row: str
    start: float
    end: float
    service: str


def daily_trend(
    days: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    labels: Mapping[str, str],
    *,
    target_pct: float,
    title: str,
    ylabel: str,
    target_label: str,
) -> str:
    """Availability per day and service (lines), with the target as a dashed line."""
    fig, ax = plt.subplots(figsize=(7.2, 2.9))
    x = list(range(1, len(days) + 1))
    lowest = target_pct
    for service, values in series.items():
        ys = [float("nan") if v is None else v for v in values]
        known = [v for v in values if v is not None]
        if known:
            lowest = min(lowest, min(known))
        ax.plot(x, ys, label=labels.get(service, service), color=COLOURS.get(service),
                marker=MARKERS.get(service, "o"), markersize=3, linewidth=1.2)
    ax.axhline(target_pct, color="#555555", linestyle="--", linewidth=0.8, label=target_label)
    ax.set_ylim(max(0.0, lowest - (100 - lowest) * 0.15 - 0.05), 100.02 + (100 - lowest) * 0.05)
    ax.set_xlim(0.5, len(days) + 0.5)
    step = 1 if len(days) <= 16 else 2 if len(days) <= 31 else 7
    ax.set_xticks(x[::step], [days[i] for i in range(0, len(days), step)])
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=9, fontweight="bold")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.legend(ncol=6, fontsize=7, frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.13))  # below the axes: never over a line
    return _svg(fig)


def outage_timeline(
    bars: Sequence[Bar],
    rows: Sequence[str],
    labels: Mapping[str, str],
    *,
    span: float,
    title: str,
    xlabel: str,
    empty_text: str,
) -> str:
    """Outages as horizontal bars per row (commune), coloured by the service hit first."""
    height = 0.9 + 0.22 * max(len(rows), 3)
    fig, ax = plt.subplots(figsize=(7.2, height))
    index = {r: i for i, r in enumerate(rows)}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for bar in bars:
        if bar.row in index:  # a 5-minute cut stays visible
            width = max(bar.end - bar.start, span / 500)
            spans.setdefault((bar.row, bar.service), []).append((bar.start, width))
    for (row, service), ranges in spans.items():  # one call per row and service
        ax.broken_barh(ranges, (index[row] - 0.3, 0.6), color=COLOURS.get(service, "#444444"))
    seen = {service for _, service in spans}
    handles = [Patch(color=COLOURS.get(s, "#444444"), label=labels.get(s, s))
               for s in labels if s in seen]  # in the report's service order
    ax.set_yticks(range(len(rows)), list(rows))
    ax.invert_yaxis()
    ax.set_xlim(0, span)
    whole = max(1, round(span))
    ax.set_xticks(range(0, whole + 1, max(1, whole // 15)))
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=9, fontweight="bold")
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)  # grid lines behind the bars
    if not bars:
        ax.text(span / 2, 1, empty_text, ha="center", va="center", color="#666666")
    elif handles:
        ax.legend(handles=handles, ncol=5, fontsize=7, frameon=False, loc="upper center",
                  bbox_to_anchor=(0.5, -0.35 if len(rows) < 6 else -0.12))
    return _svg(fig)
