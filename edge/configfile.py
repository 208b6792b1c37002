"""Loading the config of :mod:`ferlite.edge.config`: layers from TOML files, --set options and command-line
shortcuts, merged into one validated Config.

``parse_file`` reads one TOML file, ``parse_overrides`` the ``--set section.key=value`` options (each value read
by its key's type) and ``option_layer`` a front end's own options (``--window 3`` is ``tracking.window``), each
into a :class:`_Layer`: the values with where each came from (file and line, or the option), plus one problem
line per syntax error, unknown section or unknown key. ``build`` merges the layers into the frozen sections,
where types and ranges are checked; ``load`` and ``load_from_args`` are what the front ends call.
Only the standard library is imported.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ferlite.edge.config import _TYPE_NAMES, SECTIONS, SYSTEM_CONFIG, Config, ConfigError, InvalidValues
from ferlite.edge.configbase import SECRET_KEYS
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
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
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


def _toml_value(text: str) -> Any:
    """``text`` read as one TOML value; ValueError (TOMLDecodeError is one) when it is not one."""
    try:
        return _toml().loads(f"v = {text}")["v"]
    except RecursionError:  # "[[[[..." thousands deep
        raise ValueError("nested too deeply") from None


def _convert(kind: str, text: str) -> Any:
    """A --set value, read by the key's type: strings as typed (or a TOML "quoted" string)."""
    t = text.strip()
    if kind == "str":
        if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
            return _toml_value(t)
        return text
    if kind == "tuple[str, ...]":
        if t.startswith("["):
            return _toml_value(t)
        return [item.strip() for item in t.split(",") if item.strip()]
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
        name, sep, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        where = f"{SET_ORIGIN} {name}=(hidden)" if key in SECRET_KEYS else f"{SET_ORIGIN} {item}"
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


def option_layer(args: argparse.Namespace, options: Mapping[str, str]) -> _Layer:
    """A front end's own options as one layer: ``options`` maps an argparse dest to its "section.key"; options
    left at None are not set. Errors name the option as typed (``--threshold 2: tracking.threshold ...``)."""
    layer = _Layer("command line")
    for dest, name in options.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        section, key = name.split(".")
        layer.values[(section, key)] = value
        shown = f"{value:g}" if isinstance(value, float) else value
        layer.where[(section, key)] = f"--{dest.replace('_', '-')} {shown}"
    return layer


def default_layer() -> _Layer:
    resource = resources.files("ferlite.edge") / "data" / "default.toml"
    return parse_file(f"{resource} (packaged defaults)", resource.read_text(encoding="utf-8"))


def build(layers: Sequence[_Layer]) -> Config:
    """Merge the layers (later wins) into a validated Config, or raise ConfigError with every problem."""
    problems = [p for layer in layers for p in layer.problems]
    values: dict[tuple[str, str], Any] = {}
    where: dict[tuple[str, str], str] = {}
    rank: dict[tuple[str, str], int] = {}  # the layer that set each key last
    for i, layer in enumerate(layers):
        values.update(layer.values)
        where.update(layer.where)
        rank.update(dict.fromkeys(layer.values, i))
    sections = {}
    for name, cls in SECTIONS.items():
        kwargs = {key: v for (section, key), v in values.items() if section == name}
        try:
            sections[name] = cls(**kwargs)
        except InvalidValues as exc:
            for p in exc.problems:
                cause = max(((p.section, k) for k in (p.key, *p.also)), key=lambda k: rank.get(k, -1))
                origin = where.get(cause, "default")
                shown = "(hidden)" if p.key in SECRET_KEYS and p.value else format_value(p.value)
                problems.append(f"{origin}: {p.section}.{p.key} = {shown}: {p.reason}")
    if problems:
        raise ConfigError(problems)
    return Config(**sections, origin=tuple(layer.name for layer in layers))


def load(path: str | Path | None = None, overrides: Iterable[str] = (), *, options: _Layer | None = None,
         system_path: str | Path = SYSTEM_CONFIG) -> Config:
    """Packaged defaults, then ``path`` (which must exist) or else ``system_path`` (if it exists), then
    ``overrides`` (``section.key=value`` strings), then a front end's ``options`` layer."""
    layers = [default_layer()]
    if path is not None:
        layers.append(parse_file(path))
    elif Path(system_path).is_file():
        layers.append(parse_file(system_path))
    overrides = list(overrides)
    if overrides:
        layers.append(parse_overrides(overrides))
    if options is not None and options.values:
        layers.append(options)
    return build(layers)


# ------------------------------------------------------------------------------------------------ command line


def key_help(name: str, note: str = "") -> str:
    """The --help text of an option that sets the config key ``name`` ("section.key"): the schema's own help and
    default (edge/config.py, where both are written once), with a ``note`` on what the option adds."""
    section, _, key = name.partition(".")
    f = next(f for f in fields(SECTIONS[section]) if f.name == key)
    text = f.metadata["help"] + (f"; {note}" if note else "")
    if isinstance(f.default, bool):
        return f"{text} (default: {'on' if f.default else 'off'})"
    return text if f.default == "" else f"{text} (default: {f.default})"



def add_config_arguments(p: argparse.ArgumentParser, source: bool = True) -> None:
    """--config and --set (and --source, for `ferlite run` and `ferlite check`), shared by every front end."""
    p.add_argument("--config", type=Path, default=None, metavar="PATH",
                   help=f"config file (default: {SYSTEM_CONFIG} when it exists, else the packaged defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=None, metavar="SECTION.KEY=VALUE",
                   help="override one config key, e.g. --set detector.type=haar (repeatable)")
    if source:
        p.add_argument("--source", default=None, metavar="SPEC",
                       help="shortcut for --set source.spec=SPEC: picamera, 0, /dev/video0, rtsp://..., clip.mp4")


def load_from_args(args: argparse.Namespace, options: Mapping[str, str] | None = None) -> Config:
    """The config a front end runs with: files and --set, then its own ``options`` (dest -> "section.key")."""
    options = {"source": "source.spec", **(options or {})} if hasattr(args, "source") else dict(options or {})
    return load(args.config, args.overrides or [], options=option_layer(args, options))
