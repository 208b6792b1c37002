"""Secrets out of anything shown: the password in a URL's user info and the value of a secret query parameter
(``rtsp://user:PASSWORD@cam/...`` -> ``rtsp://user:***@cam/...``, ``?token=abc`` -> ``?token=***``). Every
output that names a source (the API, events, logs, `ferlite check`, the log's rows) goes through
:func:`redact`. Standard library only."""

from __future__ import annotations

import re

MASK = "***"
#: scheme://userinfo@ -- the user info runs to the last "@" before the path.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s?#]*)@")
_SECRET_PARAMS = re.compile(r"([?&;](?:token|access_token|password|passwd|pwd|pass|secret|key|api_key|apikey|auth|"
                            r"signature|sig)=)[^&;#\s]*", re.IGNORECASE)


def _userinfo(m: re.Match) -> str:
    user, colon, _ = m.group(2).partition(":")
    return f"{m.group(1)}{user}:{MASK}@" if colon else m.group(0)


def redact(text: str) -> str:
    """``text`` with every URL password and secret query value replaced by ``***``."""
    return _SECRET_PARAMS.sub(rf"\g<1>{MASK}", _USERINFO.sub(_userinfo, text))


class RedactingFilter:
    """A logging filter (for handlers) that redacts each record's message before it is written."""

    def filter(self, record) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def redact_handlers(logger) -> None:
    """Add a :class:`RedactingFilter` to each of ``logger``'s handlers (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
