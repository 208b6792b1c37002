"""The times a user may type for a range of the expression log, read one way everywhere: ``ferlite report``'s
--since/--until and the device's ``/api/history?since=&until=``. Standard library only."""

from __future__ import annotations

import re
import time
from datetime import date, datetime

from ferlite.errors import UsageError

#: Ages accepted: 30m, 24h, 7d, 2w.
AGE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_HELP = ("a date (2025-01-31), a time today (14:00), both (2025-01-31 14:00), an age (30m, 24h, 7d, 2w) "
             "or epoch seconds")


def parse_time(text: str | float | datetime | None, now: float | None = None, tz: str | None = None) -> float | None:
    """Epoch seconds of a time in one of the forms of TIME_HELP (None for None or ""); naive times are local
    (``tz``, or this machine's zone)."""
    if text is None or text == "":
        return None
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
        raise UsageError(f"{text!r}: expected {TIME_HELP}") from None
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
