"""Reading config layers for :mod:`edge.config`: TOML files and the --set options.

``parse_file`` reads one TOML file and ``parse_overrides`` the ``--set section.key=value`` options (each value
read by its key's type), each into a :class:`_Layer`: the values with where each came from (file and line, or
the option), plus one problem line per syntax error, unknown section or unknown key. Types and ranges are
checked when ``edge.config.build`` merges the layers into the frozen sections. Only the standard library is
imported.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferlite.edge.config import _TYPE_NAMES, SECTIONS, ConfigError

from ferlite.errors import UsageError

SET_ORIGIN = "--set"


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise UsageError("reading the config needs Python 3.11+ or the 'tomli' package on Python 3.10: "
                         "pip install tomli") from None
    return tomli


def format_value(value: Any) -> str:
    """A value as it would be written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


@dataclass
class _Layer:
    """The values one file (or the --set options) gives, with where each came from for messages."""

    name: str
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    where: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def key_problem(self, section: str, key: str, where: str) -> None:
        known = [f.name for f in fields(SECTIONS[section])]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.problems.append(f"{where}: unknown key {section}.{key}{hint}; [{section}] has {', '.join(known)}")

    def section_problem(self, section: str, where: str) -> None:
        close = difflib.get_close_matches(section, SECTIONS, n=1)
        hint = f" (did you mean [{close[0]}]?)" if close else ""
        self.problems.append(f"{where}: unknown section [{section}]{hint}; sections are {', '.join(SECTIONS)}")


def _line_numbers(text: str) -> dict[tuple[str, str], int]:
    """(section, key) -> line, for simple ``key = value`` lines under ``[section]`` headers."""
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("[") and "]" in s:
            section = s[1:s.index("]")].strip().strip('"')
            lines.setdefault((section, ""), number)
        elif "=" in s and not s.startswith("#"):
            lines.setdefault((section, s.split("=", 1)[0].strip().strip('"')), number)
    return lines


def parse_file(path: str | Path, text: str | None = None) -> _Layer:
    """Read one TOML layer; syntax errors, unknown sections and unknown keys become problems."""
    layer = _Layer(str(path))
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such config file"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read the config file: {getattr(exc, 'strerror', None) or exc}"]) \
                from None
    toml = _toml()
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    lines = _line_numbers(text)
    for section, table in data.items():
        if not isinstance(table, dict):
            line = lines.get(("", section))
            layer.problems.append(f"{path}:{line or '?'}: {section} = {format_value(table)} is outside any "
                                  f"[section]; sections are {', '.join(SECTIONS)}")
            continue
        if section not in SECTIONS:
            line = lines.get((section, ""))
            layer.section_problem(section, f"{path}:{line}" if line else str(path))
            continue
        known = {f.name for f in fields(SECTIONS[section])}
        for key, value in table.items():
            line = lines.get((section, key))
            where = f"{path}:{line}" if line else str(path)
            if key not in known:
                layer.key_problem(section, key, where)
            else:
                layer.values[(section, key)] = value
                layer.where[(section, key)] = where
    return layer


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(kind: str, text: str) -> Any:
    """A --set value, read by the key's type: strings as typed (or a TOML "quoted" string)."""
    t = text.strip()
    if kind == "str":
        if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
            return _toml().loads(f"v = {t}")["v"]
        return text
    if kind == "bool":
        if t.lower() in _TRUE | _FALSE:
            return t.lower() in _TRUE
        raise ValueError("must be true or false")
    try:
        return int(t) if kind == "int" else float(t)
    except ValueError:
        raise ValueError(f"must be {_TYPE_NAMES[kind]}") from None


def parse_overrides(items: Iterable[str]) -> _Layer:
    """The --set section.key=value options as one layer."""
    layer = _Layer(SET_ORIGIN)
    for item in items:
        where = f"{SET_ORIGIN} {item}"
        name, sep, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            layer.problems.append(f"{where}: expected section.key=value, e.g. detector.type=haar")
            continue
        if section not in SECTIONS:
            layer.section_problem(section, where)
            continue
        types = {f.name: f.type for f in fields(SECTIONS[section])}
        if key not in types:
            layer.key_problem(section, key, where)
            continue
        try:
            layer.values[(section, key)] = _convert(types[key], text)
        except ValueError as exc:
            layer.problems.append(f"{where}: {section}.{key} = {text!r}: {exc}")
            continue
        layer.where[(section, key)] = where
    return layer
