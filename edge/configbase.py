"""The config's machinery: frozen sections whose fields carry their help and check, and the errors that
name every bad value. The sections themselves, with every default, are in :mod:`ferlite.edge.config`.
Only the standard library is imported here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import field, fields
from typing import Any, NamedTuple

from ferlite.errors import UsageError


class ConfigError(UsageError):
    """One or more bad config values; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class Invalid(NamedTuple):
    section: str
    key: str
    value: Any
    reason: str
    also: tuple[str, ...] = ()  # other keys of the section that caused it (an error names the latest one set)


#: Keys whose values are never shown in a message.
SECRET_KEYS = frozenset({"token", "password"})


class InvalidValues(ValueError):
    """Raised by a section's ``__post_init__`` with every bad value of that section."""

    def __init__(self, problems: Sequence[Invalid]):
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.section}.{p.key} = {p.value!r}: {p.reason}" for p in self.problems))


# ------------------------------------------------------------------------------------------------ checks

Check = Callable[[Any], "str | None"]


def _range(low: float, high: float | None = None, *, open_low: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if not math.isfinite(value):
            return "must be a finite number"
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
        if ok:
            return None
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        return f"must be {bound}" + (f" and <= {high:g}" if high is not None else "")

    return check


def _not_blank(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _field(default: Any, help: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"help": help, "check": check})


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                       "tuple[str, ...]": (list, tuple)}
_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "tuple[str, ...]": "a list of strings"}


def _type_reason(kind: str, value: Any) -> str | None:
    ok = isinstance(value, _TYPES[kind]) and not (kind != "bool" and isinstance(value, bool))
    if ok and kind == "tuple[str, ...]":
        ok = all(isinstance(item, str) for item in value)
    if ok:
        return None
    hint = f' (quote it: "{value}")' if kind == "str" and isinstance(value, (int, float)) else ""
    return f"must be {_TYPE_NAMES[kind]}, not {type(value).__name__}{hint}"


class _Section:
    """Type and range checks of every field, run by the frozen dataclasses below."""

    NAME = ""

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            reason = _type_reason(f.type, value)
            if reason is None and f.metadata.get("check"):
                reason = f.metadata["check"](value)
            if reason:
                problems.append(Invalid(self.NAME, f.name, value, reason))
            elif f.type == "float":
                object.__setattr__(self, f.name, float(value))
            elif f.type == "tuple[str, ...]":
                object.__setattr__(self, f.name, tuple(value))
        if not problems:
            problems = list(self._cross_check())
        if problems:
            raise InvalidValues(problems)

    def _cross_check(self) -> Iterable[Invalid]:
        return ()
