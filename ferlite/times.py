"""The times a user may type for a range of the expression log, read one way everywhere: ``ferlite report``'s
--since/--until and the device's ``/api/history?since=&until=``. Standard library only."""

from __future__ import annotations

import re
import time
from datetime import date, datetime

from ferlite.errors import UsageError

#: Ages accepted: 30m, 24h, 7d, 2w.
AGE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Times outside 1970-01-01 .. 9999-12-31 UTC are refused: no log holds them, and epoch seconds past them
#: overflow dates (or JSON, as Infinity).
LATEST = 253402300800.0
TIME_HELP = ("a date (2025-01-31), a time today (14:00), both (2025-01-31 14:00), an age (30m, 24h, 7d, 2w) "
             "or epoch seconds")


def parse_time(text: str | float | datetime | None, now: float | None = None, tz: str | None = None) -> float | None:
    """Epoch seconds of a time in one of the forms of TIME_HELP (None for None or ""); naive times are local
    (``tz``, or this machine's zone). UsageError for a time outside 1970 .. 9999."""
    if text is None or text == "":
        return None
    try:
        seconds = _parse(text, now, tz)
    except (ValueError, OverflowError, OSError):  # year 0, a date past what the platform converts
        seconds = float("nan")
    if not -86400 <= seconds < LATEST:  # NaN, Infinity, before 1970 (in any zone), after 9999
        shown = repr(text) if len(str(text)) <= 40 else repr(str(text)[:40]) + "..."
        raise UsageError(f"{shown}: out of range (1970-01-01 to 9999-12-31)")
    return seconds


def _parse(text: str | float | datetime, now: float | None, tz: str | None) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    if isinstance(text, datetime):
        return localize(text, tz).timestamp()
    now = time.time() if now is None else now
    s = text.strip()
    age = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhdw])", s)
    if age:
        return now - float(age.group(1)) * AGE_UNITS[age.group(2)]
    if s == "now":
        return now
    if re.fullmatch(r"\d{9,}(\.\d*)?", s):  # epoch seconds (from 1973 on: no date or time reads like that)
        return float(s)
    try:
        if re.fullmatch(r"\d\d?:\d\d(:\d\d)?", s):
            today = datetime.fromtimestamp(now, zone(tz)).date() if tz else date.fromtimestamp(now)
            dt = datetime.combine(today, datetime.strptime(s, "%H:%M:%S" if s.count(":") == 2 else "%H:%M").time())
        else:
            dt = datetime.fromisoformat(s)
    except ValueError:
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."
        raise UsageError(f"{shown}: expected {TIME_HELP}") from None
    return localize(dt, tz).timestamp()


def zone(tz: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz {tz!r}: not a time zone name (such as Europe/Berlin or UTC)") from None


def localize(dt: datetime, tz: str | None) -> datetime:
    if dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=zone(tz)) if tz else dt.astimezone()
