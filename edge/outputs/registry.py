"""The one registry of outputs: name -> "module:Class", imported only when an output is built."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from ferlite.edge.outputs.base import MultiSink, OutputContext, ResultSink
from ferlite.errors import UsageError
from ferlite.registry import lookup

if TYPE_CHECKING:
    from ferlite.edge.config import Config

#: Output name (as listed in the config's [outputs]) -> the class that writes it.
SINKS: dict[str, str] = {
    "sqlite": "ferlite.edge.outputs.sqlite:SqliteSink",
    "csv": "ferlite.edge.outputs.files:CsvSink",
    "json": "ferlite.edge.outputs.files:JsonSink",
    "list": "ferlite.edge.outputs.files:ListSink",
    "annotated": "ferlite.edge.outputs.media:AnnotatedSink",
    "crops": "ferlite.edge.outputs.media:CropsSink",
    "window": "ferlite.edge.outputs.media:WindowSink",
    "console": "ferlite.edge.outputs.console:ConsoleSink",
    "http": "ferlite.edge.outputs.http:HttpSink",
    "mqtt": "ferlite.edge.outputs.mqtt:MqttSink",
}


def sink_class(name: str) -> type:
    """The class of a registered output, or of ``"module:Class"`` (an output of your own)."""
    target = name if ":" in name else lookup(SINKS, name, "output")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"output {name!r}: cannot import {target}: {exc}") from None
    if not callable(getattr(cls, "write", None)):
        raise UsageError(f"output {name!r}: {target} has no write(result, frame) method")
    return cls


def create_output(name: str, config: Config, context: OutputContext) -> ResultSink:
    """One output built from its own config section: ``Class.from_config(section, context)``, the section
    being the one the class names as ``SECTION`` (None when it names none), else ``Class()``."""
    cls = sink_class(name)
    factory = getattr(cls, "from_config", None)
    if factory is None:
        return cls()
    section = getattr(cls, "SECTION", None)
    return factory(getattr(config, section) if section else None, context)


def run_context(names: tuple[str, ...], config: Config, context: OutputContext) -> OutputContext:
    """The context every output of a run is told: its outputs' names, the detector and model they report, and
    the log when the run writes one. The one place a sink learns anything outside its own section."""
    log = config.log.resolve_path() if "sqlite" in names else None
    return replace(context, outputs=names, detector=config.detector.type,
                   model=config.classifier.model or "default", log=log)


def open_outputs(names: Iterable[str], config: Config, context: OutputContext) -> MultiSink:
    """Every named output, built in order, as one fan-out; those built before a failure are closed again."""
    names = tuple(dict.fromkeys(names))  # each once, in order
    context = run_context(names, config, context)
    sinks: list[ResultSink] = []
    try:
        for name in names:
            sinks.append(create_output(name, config, context))
    except BaseException:
        MultiSink(sinks).close()
        raise
    for sink in sinks:
        if callable(getattr(sink, "bind", None)):
            sink.bind(sinks)  # e.g. the HTTP output shows the others' drops in /api/status
    return MultiSink(sinks)


def create_sink(name: str, **options) -> ResultSink:
    """A registered output built from keyword options; an unknown name or option is a UsageError."""
    cls = sink_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise UsageError(f"sink {name!r}: {exc}") from None
    return cls(**options)
