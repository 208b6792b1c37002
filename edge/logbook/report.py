"""Look back at a device's expression log: shares of expressions over time, faces seen, dwell, busy hours.

Reads the SQLite log that `ferlite run` writes (a copy pulled off a device, or the live one: it is opened
read-only and read in short transactions, so the service is not disturbed), only the columns and the range
asked for (a year of one device, 5 GB, in about 20 s). Prints a summary table and writes, under --out:

  labels.csv    rows per label and their share; faces (tracks) whose dominant expression it is
  buckets.csv   per --bucket: rows per label, all rows, faces seen;  shares.csv: the same as shares
  tracks.csv    per face (track): start, end, dwell (first to last row), rows, dominant expression
  heatmap.csv   mean faces seen per hour, by weekday and hour of the day
  shares.png, faces.png, heatmap.png, dwell.png, and report.html: all of it in one self-contained page

A row is a track's label every 2 s (the service's log_interval) or on a change of label, so rows are
proportional to face-time. A face is a track: the same (source, track id) with no gap over a minute (ids
restart with the service). Times are local (--tz, or this machine's zone). --since/--until take a date
(2025-01-31), a time today (14:00), both (2025-01-31 14:00), an age (30m, 24h, 7d, 2w) or epoch seconds:

    ferlite report /var/lib/ferlite/expressions.db --since 7d --bucket day
"""

from __future__ import annotations

import argparse
import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ferlite.edge.logbook.plots import PLOTS, render_pngs
from ferlite.edge.logbook.read import PIECE_COLUMNS, EmptyRange, load_log, local_times, timedelta_text
from ferlite.errors import UsageError, require
from ferlite.times import TIME_HELP

if TYPE_CHECKING:
    import pandas as pd

#: --bucket -> pandas frequency.
BUCKETS = {"minute": "min", "hour": "h", "day": "D"}
#: The same (source, track id) seen again after this many seconds is another face (ids restart with the service).
TRACK_GAP_S = 60.0
#: The printed summary lists the buckets when there are at most this many.
MAX_PRINTED_BUCKETS = 24
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Tables in the HTML page list at most this many buckets.
HTML_ROWS = 48


@dataclass
class LogReport:
    """What ``ferlite report`` shows, as DataFrames (times are naive local datetimes)."""

    path: str
    bucket: str
    labels: list[str]
    counts: pd.DataFrame  # per bucket (index) and label (columns): rows
    faces: pd.Series  # per bucket: distinct faces (tracks) seen
    tracks: pd.DataFrame  # per face: source, track_id, start, end, dwell_s, rows, dominant, dominant_share
    heatmap: pd.DataFrame  # weekday (Mon..Sun) x hour (0..23): mean faces seen per hour
    first: pd.Timestamp  # first and last row in the range
    last: pd.Timestamp

    @property
    def totals(self) -> pd.Series:
        """Rows per label over the whole range (the log's own labels first, then uncertain)."""
        return self.counts.sum()

    @property
    def rows(self) -> int:
        return int(self.counts.to_numpy().sum())

    @property
    def shares(self) -> pd.DataFrame:
        """Each label's share of the rows per bucket (NaN where a bucket has no rows)."""
        return self.counts.div(self.counts.sum(axis=1).where(lambda s: s > 0), axis=0)

    @property
    def uncertain_share(self) -> float:
        return float(self.totals.get("uncertain", 0)) / max(self.rows, 1)


def summarize(df: pd.DataFrame, bucket: str = "hour", tz: str | None = None) -> LogReport:
    """A :class:`LogReport` from :func:`ferlite.edge.logbook.read.load_log`'s frame, per ``bucket``
    (minute, hour or day) in local time (``tz``, or this machine's zone)."""
    import pandas as pd

    if bucket not in BUCKETS:
        raise UsageError(f"--bucket {bucket!r}: expected one of {', '.join(BUCKETS)}")
    labels = list(df.attrs.get("labels") or [c for c in df.columns if c not in PIECE_COLUMNS])
    freq = BUCKETS[bucket]
    local = local_times(df["minute"].to_numpy() * 60.0, tz)
    local.index = df.index
    keys = local.dt.floor(freq)
    counts = df[labels].groupby(keys).sum()
    counts = counts.reindex(pd.date_range(counts.index.min(), counts.index.max(), freq=freq), fill_value=0)
    counts.index.name = "bucket"
    track_no, tracks = split_tracks(df, labels, tz)
    faces = track_no.groupby(keys).nunique().reindex(counts.index, fill_value=0).rename("faces")
    first_last = local_times([df["first"].min(), df["last"].max()], tz)
    return LogReport(str(df.attrs.get("path", "")), bucket, labels, counts, faces, tracks,
                     heatmap(track_no, local), first_last.iloc[0], first_last.iloc[1])


def split_tracks(df: pd.DataFrame, labels: list[str], tz: str | None) -> tuple[pd.Series, pd.DataFrame]:
    """Number each face: rows of one (source, track id) with no gap over TRACK_GAP_S. Returns the face number
    of each row of ``df`` and a frame with one row per face."""
    p = df.sort_values(["source", "track_id", "first"], kind="stable")
    new = ((p["source"] != p["source"].shift()) | (p["track_id"] != p["track_id"].shift())
           | (p["first"] - p["last"].shift() > TRACK_GAP_S))
    number = new.cumsum().rename("face")
    g = p.groupby(number)
    tracks = g.agg(source=("source", "first"), track_id=("track_id", "first"), start=("first", "min"),
                   end=("last", "max"), rows=("rows", "sum"))
    per_label = p[labels].groupby(number).sum()
    tracks["dwell_s"] = (tracks["end"] - tracks["start"]).round(2)
    tracks["dominant"] = top_labels(per_label)
    tracks["dominant_share"] = (per_label.max(axis=1) / tracks["rows"]).round(3)
    tracks["start"] = local_times(tracks["start"], tz).to_numpy()
    tracks["end"] = local_times(tracks["end"], tz).to_numpy()
    cols = ["source", "track_id", "start", "end", "dwell_s", "rows", "dominant", "dominant_share"]
    return number.reindex(df.index), tracks[cols]


def top_labels(counts: pd.DataFrame) -> pd.Series:
    """Per row, the label with the most rows; labels that tie for the most are all named, joined by "=" (a face
    seen 5 times happy and 5 times sad is "happy=sad", not the first of them)."""
    best = counts.max(axis=1)
    tied = counts.eq(best, axis=0) & (counts > 0)
    return tied.apply(lambda row: "=".join(row.index[row.to_numpy()]), axis=1)


def heatmap(track_no: pd.Series, local: pd.Series) -> pd.DataFrame:
    """Mean faces seen per hour, by weekday and hour of the day, over the hours the range covers."""
    import pandas as pd

    hours = local.dt.floor("h")
    per_hour = track_no.groupby(hours).nunique()
    per_hour = per_hour.reindex(pd.date_range(hours.min(), hours.max(), freq="h"), fill_value=0)
    index = per_hour.index
    mean = per_hour.groupby([index.day_of_week, index.hour]).mean().unstack(fill_value=float("nan"))
    mean = mean.reindex(index=range(7), columns=range(24))
    mean.index = list(WEEKDAYS)
    mean.index.name, mean.columns.name = "weekday", "hour"
    return mean


# ------------------------------------------------------------------------------------------- text and files


def label_table(report: LogReport) -> pd.DataFrame:
    """Per label: rows, share of rows, faces whose dominant expression it is; and a total row."""
    import pandas as pd

    totals = report.totals
    dominant = report.tracks["dominant"].value_counts()
    table = pd.DataFrame({"rows": totals, "share": totals / max(report.rows, 1),
                          "faces": dominant.reindex(report.labels, fill_value=0)})
    tied = int(dominant[[k for k in dominant.index if "=" in k]].sum())
    if tied:  # faces whose rows tie between labels: counted apart, never given to one of them
        table.loc["tie"] = [0, 0.0, tied]
    table.loc["total"] = [report.rows, 1.0 if report.rows else 0.0, len(report.tracks)]
    table.index.name = "label"
    return table.astype({"rows": "int64", "faces": "int64"})


def summary_text(report: LogReport) -> str:
    """The printed summary: the label table, the buckets when few, and the figures in a few lines."""
    from ferlite.tables import format_table

    table = label_table(report)
    out = [format_table(["label", "rows", "share", "faces"], label_rows(table))]
    if len(report.counts) <= MAX_PRINTED_BUCKETS:
        out += ["", format_table([report.bucket, "rows", "faces", "top", "uncertain"], bucket_rows(report))]
    dwell = report.tracks["dwell_s"]
    span = f"{report.first:%Y-%m-%d %H:%M:%S} to {report.last:%Y-%m-%d %H:%M:%S}"
    out += ["", f"{report.path}: {report.rows:,} rows, {len(report.tracks):,} faces, {span} "
                f"({len(report.counts):,} bucket{'' if len(report.counts) == 1 else 's'} of one {report.bucket})",
            f"uncertain: {100 * report.uncertain_share:.1f}% of rows; dwell per face: median "
            f"{timedelta_text(float(dwell.median()))}, longest {timedelta_text(float(dwell.max()))}"]
    return "\n".join(out)


def label_rows(table: pd.DataFrame) -> list[list]:
    """label_table's rows for printing: counts as integers, the share as a percentage."""
    return [[r.Index, int(r.rows), f"{100 * r.share:.1f}%", int(r.faces)] for r in table.itertuples()]


def bucket_rows(report: LogReport, last: int | None = None) -> list[list]:
    """[bucket, rows, faces, top label, uncertain share] per bucket (the ``last`` ones only), for tables."""
    fmt = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}[report.bucket]
    rows = []
    start = 0 if last is None else max(len(report.counts) - last, 0)
    for (stamp, counts), faces in zip(report.counts.iloc[start:].iterrows(), report.faces.iloc[start:]):
        n = int(counts.sum())
        top = top_labels(counts.to_frame().T).iloc[0] if n else ""
        rows.append([stamp.strftime(fmt), n, int(faces), top,
                     f"{100 * counts.get('uncertain', 0) / n:.1f}%" if n else ""])
    return rows


def write_report(report: LogReport, out: Path) -> list[Path]:
    """Write the csv files, the png plots and report.html into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save_csv(name: str, frame, **kw) -> None:
        frame.to_csv(out / name, float_format="%.6g", **kw)
        written.append(out / name)

    save_csv("labels.csv", label_table(report))
    save_csv("buckets.csv", report.counts.assign(rows=report.counts.sum(axis=1), faces=report.faces),
             date_format="%Y-%m-%d %H:%M:%S")
    save_csv("shares.csv", report.shares, date_format="%Y-%m-%d %H:%M:%S")
    save_csv("tracks.csv", report.tracks, index=False, date_format="%Y-%m-%d %H:%M:%S")
    save_csv("heatmap.csv", report.heatmap)
    pngs = render_pngs(report)
    for name, data in pngs.items():
        (out / f"{name}.png").write_bytes(data)
        written.append(out / f"{name}.png")
    (out / "report.html").write_text(render_html(report, pngs), encoding="utf-8")
    return [*written, out / "report.html"]


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1000px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.15em .7em;border-bottom:1px solid #ddd}
td:not(:first-child),th:not(:first-child){text-align:right}img{max-width:100%}.note{color:#666;font-size:.9em}"""


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: LogReport, pngs: dict[str, bytes] | None = None) -> str:
    """The whole report as one HTML page with its plots embedded; ``pngs`` from :func:`render_pngs`
    (rendered here when None). Pure: reads nothing, writes nothing."""
    pngs = render_pngs(report) if pngs is None else pngs
    rows_of_labels = label_rows(label_table(report))
    longest = report.tracks.nlargest(min(HTML_ROWS, 20), "dwell_s")
    track_rows = [[f"{t.start:%Y-%m-%d %H:%M:%S}", t.source, t.track_id, f"{t.dwell_s:.1f}", t.rows, t.dominant,
                   f"{100 * t.dominant_share:.0f}%"] for t in longest.itertuples()]
    buckets = bucket_rows(report, last=HTML_ROWS)
    images = "".join(f'<p><img alt="{name}" src="data:image/png;base64,{base64.b64encode(pngs[name]).decode()}">'
                     "</p>" for name in PLOTS if name in pngs)
    summary = summary_text(report).splitlines()[-2:]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ferlite report: {html.escape(report.path)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Expression log report</h1><p>{'<br>'.join(html.escape(line) for line in summary)}</p>",
        "<p class=note>A row is a face's label every [log] log_interval seconds (2 by default) or on a change of "
        "label (rows are proportional to face-time); "
        "a face is one track. Times are local.</p>",
        "<h2>Expressions</h2>", _table(["label", "rows", "share", "faces (dominant)"], rows_of_labels), images,
        f"<h2>Per {report.bucket}</h2>",
        f"<p class=note>The last {len(buckets)} of {len(report.counts)}; all of them in buckets.csv.</p>",
        _table([report.bucket, "rows", "faces", "top", "uncertain"], buckets),
        "<h2>Longest faces</h2>",
        _table(["start", "source", "track", "dwell s", "rows", "dominant", "of rows"], track_rows),
        "</body></html>", ""])


def report_html(path: str | Path, since="24h", until=None, bucket: str = "hour", source: str | None = None,
                tz: str | None = None) -> str:
    """The report page of a log's range in one call: what the service's web page serves at /report (the last
    day). An empty range gives a short page saying so; anything else wrong raises as ``ferlite report`` does."""

    try:
        df = load_log(path, since, until, source, tz=tz, progress=False)
    except EmptyRange as exc:
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ferlite report</title>'
                f"<style>{STYLE}</style></head><body><h1>Expression log report</h1><p>{html.escape(str(exc))}</p>"
                "</body></html>\n")
    return render_html(summarize(df, bucket, tz))


# ------------------------------------------------------------------------------------------------ command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", type=Path, help="the expression log (SQLite) that `ferlite run` writes")
    p.add_argument("--since", help=f"first time to include: {TIME_HELP}")
    p.add_argument("--until", help="time to stop before (same forms as --since)")
    p.add_argument("--bucket", choices=list(BUCKETS), default="hour", help="time step of the tables and plots")
    p.add_argument("--source", help="only rows of this source (as logged, e.g. picamera or /dev/video0)")
    p.add_argument("--tz", help="time zone of the times shown and parsed, e.g. Europe/Berlin "
                                "(default: this machine's)")
    p.add_argument("--out", "-o", type=Path, help="folder for the csv, png and html files "
                                                  "(default: a new runs/report/exp, exp2, ...)")


def run(args: argparse.Namespace) -> int:
    require("pandas", "report", "report")
    require("matplotlib", "report", "report")
    from ferlite.runs import next_run_dir

    start = time.perf_counter()
    df = load_log(args.log, args.since, args.until, args.source, tz=args.tz)
    report = summarize(df, args.bucket, args.tz)
    out = args.out or next_run_dir(Path("runs/report"))
    write_report(report, out)
    print(summary_text(report))
    print(f"report: {out / 'report.html'} (csv and png files beside it) in {time.perf_counter() - start:.1f} s")
    return 0
