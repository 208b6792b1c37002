"""Name lookup in the small registries (detectors, sinks, sources) with a helpful error."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

from ferlite.errors import UsageError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """``registry[name]``; an unknown name is a UsageError that suggests a close match and lists the choices."""
    try:
        return registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, registry, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown {kind} {name!r}{hint}; choose from {', '.join(registry)}") from None
