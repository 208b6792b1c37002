"""The plots of ``ferlite report`` (:mod:`ferlite.edge.logbook.report`), as matplotlib figures or PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global state), so a web server or a
notebook can call these functions from any thread. matplotlib is imported only inside the functions.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ferlite.edge.logbook.report import LogReport

#: One colour per expression, the same in every plot.
COLOURS = {"angry": "#d62728", "disgust": "#8c9a2b", "fear": "#9467bd", "happy": "#f2b701", "sad": "#1f77b4",
           "surprise": "#17becf", "neutral": "#8c8c8c", "contempt": "#8c564b", "uncertain": "#d9d9d9"}
#: A stacked-area plot with more buckets than this is drawn from coarser buckets (the tables keep them all).
MAX_PLOTTED_BUCKETS = 2000
COARSER = {"minute": ("h", "hour"), "hour": ("D", "day"), "day": ("W-MON", "week")}
PLOTS = ("shares", "faces", "heatmap", "dwell")


def _figure(width: float = 9.0, height: float = 3.6) -> tuple[Figure, object]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def _plotted(report: LogReport):
    """The counts to draw and the bucket name: coarser buckets when there are too many to see."""
    counts, name = report.counts, report.bucket
    while len(counts) > MAX_PLOTTED_BUCKETS and name in COARSER:
        freq, name = COARSER[name]
        counts = counts.resample(freq, label="left", closed="left").sum()
    return counts, name


def shares_figure(report: LogReport) -> Figure:
    """Stacked areas: each expression's share of the rows per bucket, drawn over the bucket's whole width."""
    import numpy as np

    counts, name = _plotted(report)
    shares = counts.div(counts.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
    x = [*shares.index.to_pydatetime(), shares.index[-1].to_pydatetime() + _width(name)]
    values = shares.to_numpy()
    top = np.vstack([values, values[-1:]]).cumsum(axis=1)  # the last bucket's row again, for its end
    fig, ax = _figure()
    for i, label in enumerate(shares.columns):
        ax.fill_between(x, top[:, i] - np.vstack([values, values[-1:]])[:, i], top[:, i], step="post",
                        color=_colour(label), label=label, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel("share of rows")
    note = "" if name == report.bucket else f" (the tables are per {report.bucket})"
    ax.set_title(f"expressions per {name}{note}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.autofmt_xdate()
    return fig


def faces_figure(report: LogReport) -> Figure:
    """Faces (tracks) seen per bucket."""
    fig, ax = _figure(height=3.0)
    faces = report.faces
    if len(faces) <= 100:
        ax.bar(faces.index.to_pydatetime(), faces.to_numpy(), width=_width(report.bucket), align="edge",
               color="#4c72b0")
    else:
        ax.step(faces.index.to_pydatetime(), faces.to_numpy(), where="post", color="#4c72b0", linewidth=0.8)
    ax.set_ylabel("faces seen")
    ax.set_title(f"faces seen per {report.bucket}")
    fig.autofmt_xdate()
    return fig


def heatmap_figure(report: LogReport) -> Figure:
    """Mean faces seen per hour, weekday by hour of the day."""
    fig, ax = _figure(height=3.2)
    data = report.heatmap.to_numpy(dtype=float)
    image = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(24), [str(h) for h in range(24)], fontsize=8)
    ax.set_yticks(range(7), list(report.heatmap.index))
    ax.set_xlabel("hour of the day")
    ax.set_title("mean faces seen per hour (blank: hours outside the range)")
    fig.colorbar(image, ax=ax, label="faces per hour")
    return fig


def dwell_figure(report: LogReport) -> Figure:
    """How long faces stay: histogram of dwell time per face, log scale."""
    import numpy as np

    dwell = np.maximum(report.tracks["dwell_s"].to_numpy(dtype=float), 1.0)  # under 1 s counts as 1 s
    fig, ax = _figure(height=3.0)
    bins = np.geomspace(1.0, max(float(dwell.max()), 2.0) * 1.01, 30)
    ax.hist(dwell, bins=bins, color="#4c72b0")
    ax.set_xscale("log")
    ax.set_xlabel("dwell per face, first to last row (s; under 1 s shown as 1 s)")
    ax.set_ylabel("faces")
    ax.set_title(f"dwell time of {len(dwell)} faces (median {np.median(dwell):.1f} s)")
    return fig


def _colour(label: str) -> str:
    return COLOURS.get(label, "#444444")


def _width(bucket: str):
    from datetime import timedelta

    return {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
            "week": timedelta(days=7)}[bucket]


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_pngs(report: LogReport) -> dict[str, bytes]:
    """Every plot of the report as PNG bytes, by name (shares, faces, heatmap, dwell)."""
    makers = {"shares": shares_figure, "faces": faces_figure, "heatmap": heatmap_figure, "dwell": dwell_figure}
    return {name: png_bytes(makers[name](report)) for name in PLOTS}
