"""ferlite.edge.config: packaged defaults, layering (defaults < file < --set), errors that name file, key and value."""

from __future__ import annotations

import argparse
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pytest

from ferlite.edge import configfile
from ferlite.edge.config import SECTIONS, Config, ConfigError
from ferlite.edge.configfile import load
from ferlite.errors import UsageError

NO_SYSTEM = "/nonexistent/ferlite/config.toml"  # keeps a real /etc/ferlite/config.toml out of the tests


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_packaged_defaults_load_and_match_the_dataclass_defaults():
    config = load(system_path=NO_SYSTEM)
    assert config == Config()
    assert config.source.spec == "picamera" and config.detector.type == "yunet"
    assert config.classifier.model == "" and config.log.path == ""
    assert len(config.origin) == 1 and "packaged defaults" in config.origin[0]


def test_default_toml_lists_every_key_with_a_comment_above_it():
    text = (resources.files("ferlite.edge") / "data" / "default.toml").read_text()
    lines = text.splitlines()
    layer = configfile.default_layer()
    expected = {(name, f.name) for name, cls in SECTIONS.items() for f in fields(cls)}
    assert set(layer.values) == expected
    for name, cls in SECTIONS.items():
        assert f"[{name}]" in lines
        for f in fields(cls):
            assert f.metadata["help"], f"{name}.{f.name} has no help"
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("#") or "=" in lines[i - 1], f"line {i + 1} {line!r} has no comment"


def stated_range(check) -> str | None:
    """How default.toml states the range a schema check enforces ('1..1000', '> 0 and <= 60'), as its errors do."""
    cells = dict(zip(check.__code__.co_freevars, (c.cell_contents for c in check.__closure__ or ())))
    if cells.get("high") is None:
        return None
    low, high = (str(int(v)) if float(v).is_integer() else f"{v:g}" for v in (cells["low"], cells["high"]))
    return f"> {low} and <= {high}" if cells["open_low"] else f"{low}..{high}"


def test_default_toml_states_the_range_the_schema_enforces():
    """Each key's comment in default.toml (the block above it, or above the group of keys it is in) states the
    range that the schema checks, so the two cannot drift apart."""
    comment, blocks, section = [], {}, ""
    for line in (resources.files("ferlite.edge") / "data" / "default.toml").read_text().splitlines():
        if line.startswith("["):
            section, comment = line.strip("[]"), []
        elif line.startswith("#"):
            comment = [] if blocks.get("after_key") else comment
            blocks["after_key"] = False
            comment.append(line)
        elif "=" in line:
            blocks[(section, line.split("=")[0].strip())], blocks["after_key"] = " ".join(comment), True
    for name, cls in SECTIONS.items():
        for f in fields(cls):
            check = f.metadata["check"]
            if check is not None and check.__name__ == "check" and (want := stated_range(check)):
                assert want in blocks[(name, f.name)], f"default.toml: {name}.{f.name} should say {want}"


def test_recognize_help_is_the_schemas_help_and_default():
    """Options that set a config key say what the schema says of it, and its default, written once there."""
    from ferlite.edge import recognize

    parser = argparse.ArgumentParser()
    recognize.add_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions}
    own = {"source", "out", "csv", "json"}  # what recognize does with these differs from the service's keys
    for dest, name in recognize.OPTIONS.items():
        if dest in own:
            continue
        section, key = name.split(".")
        f = next(f for f in fields(SECTIONS[section]) if f.name == key)
        assert helps[dest].startswith(f.metadata["help"]), dest
        default = ("on" if f.default else "off") if isinstance(f.default, bool) else f.default
        assert helps[dest].endswith(f"(default: {default})") or f.default == "", dest


def test_system_config_is_used_when_present_and_config_option_replaces_it(tmp_path):
    system = write(tmp_path, '[detector]\ntype = "haar"\n', "system.toml")
    other = write(tmp_path, "[tracking]\nwindow = 3\n", "other.toml")
    assert load(system_path=system).detector.type == "haar"
    c = load(other, system_path=system)
    assert c.detector.type == "yunet" and c.tracking.window == 3  # --config replaces /etc, not adds to it
    assert load(system_path=tmp_path / "missing.toml") == Config()  # no /etc file: defaults


def test_layering_file_overrides_defaults_and_set_overrides_file(tmp_path):
    path = write(tmp_path, '[detector]\ntype = "haar"\nscore = 0.6\n[source]\nspec = "clip.mp4"\nfps = 15\n')
    c = load(path, ["detector.score=0.7", "source.spec=/dev/video2", "classifier.flip=true"], system_path=NO_SYSTEM)
    assert c.detector.type == "haar"  # from the file
    assert c.detector.score == 0.7  # --set beats the file
    assert c.source.spec == "/dev/video2"
    assert c.source.fps == 15.0 and isinstance(c.source.fps, float)  # an int is accepted for a float key
    assert c.classifier.flip is True
    assert c.tracking.window == 5  # untouched: the packaged default
    assert c.origin[1:] == (str(path), "--set")


def test_set_values_are_read_by_the_key_type():
    c = load(overrides=["source.spec=0", "source.loop=yes", "tracking.window=7", 'log.path="/data/x.db"',
                        "source.spec=rtsp://cam.local:554/stream?a=b"], system_path=NO_SYSTEM)
    assert c.source.spec == "rtsp://cam.local:554/stream?a=b"  # the last --set of a key wins
    assert c.source.loop is True and c.tracking.window == 7 and c.log.path == "/data/x.db"


def test_unknown_key_names_file_line_key_and_suggestion(tmp_path):
    path = write(tmp_path, '[detector]\ntype = "yunet"\nscroe = 0.5\n')
    with pytest.raises(ConfigError) as exc:
        load(path, system_path=NO_SYSTEM)
    (line,) = exc.value.problems
    assert line.startswith(f"{path}:3: ")
    assert "detector.scroe" in line and "did you mean 'score'" in line


def test_unknown_section_and_top_level_key(tmp_path):
    path = write(tmp_path, 'spec = "x"\n[detecter]\ntype = "haar"\n')
    with pytest.raises(ConfigError) as exc:
        load(path, system_path=NO_SYSTEM)
    text = str(exc.value)
    assert f"{path}:1: spec" in text and "outside any [section]" in text
    assert f"{path}:2: unknown section [detecter]" in text and "did you mean [detector]" in text


def test_bad_values_name_file_key_value_and_reason_and_all_are_reported(tmp_path):
    path = write(tmp_path, '[source]\nwidth = "wide"\nspec = 0\n[tracking]\nthreshold = 1.5\n[log]\n'
                 'retention_days = -1\n')
    with pytest.raises(ConfigError) as exc:
        load(path, system_path=NO_SYSTEM)
    problems = exc.value.problems
    assert len(problems) == 4, problems
    assert f'{path}:2: source.width = "wide": must be an integer' in problems[1] + problems[0]
    joined = "\n".join(problems)
    assert f'{path}:3: source.spec = 0: must be a string, not int (quote it: "0")' in joined
    assert f"{path}:5: tracking.threshold = 1.5: must be >= 0 and <= 1" in joined
    assert f"{path}:7: log.retention_days = -1: must be >= 0" in joined


def test_bad_set_values_name_the_option():
    with pytest.raises(ConfigError) as exc:
        load(overrides=["detector.score=high", "tracking.window=0", "nodot=1", "source.fps"], system_path=NO_SYSTEM)
    joined = str(exc.value)
    assert "--set detector.score=high: detector.score = 'high': must be a number" in joined
    assert "--set tracking.window=0: tracking.window = 0: must be >= 1" in joined
    assert "--set nodot=1: expected section.key=value" in joined
    assert "--set source.fps: expected section.key=value" in joined


def test_cross_field_check_and_bool_is_not_a_number():
    with pytest.raises(ConfigError, match=r"service.reconnect_max_delay = 0.5: must be >= reconnect_delay \(1\)"):
        load(overrides=["service.reconnect_max_delay=0.5"], system_path=NO_SYSTEM)
    with pytest.raises(ConfigError, match="must be an integer, not bool"):
        configfile.build([configfile.default_layer(), _layer({("tracking", "window"): True})])


def _layer(values):
    layer = configfile._Layer("test")
    layer.values.update(values)
    layer.where.update({k: "test" for k in values})
    return layer


def test_detector_type_is_checked_against_the_registry(monkeypatch):
    with pytest.raises(ConfigError) as exc:
        load(overrides=["detector.type=yunett"], system_path=NO_SYSTEM)
    assert "detector.type = \"yunett\": unknown detector (did you mean 'yunet'?); choose from yunet, haar" \
        in str(exc.value)
    from ferlite.edge.detection import registry as detectors

    monkeypatch.setitem(detectors.DETECTORS, "fake", "builtins:dict")
    assert load(overrides=["detector.type=fake"], system_path=NO_SYSTEM).detector.type == "fake"


def test_config_errors_are_usage_errors_and_bad_files_are_named(tmp_path):
    assert issubclass(ConfigError, UsageError)
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "missing.toml", system_path=NO_SYSTEM)
    bad = write(tmp_path, "[source\nspec = 1\n")
    with pytest.raises(ConfigError, match=rf"{bad}: not valid TOML: .*line 1"):
        load(bad, system_path=NO_SYSTEM)


def test_log_path_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = Config().log
    assert log.resolve_path({}) == tmp_path / "expressions.db"
    assert log.resolve_path({"STATE_DIRECTORY": "/var/lib/ferlite:/var/lib/other"}) == \
        Path("/var/lib/ferlite/expressions.db")
    custom = load(overrides=["log.path=logs/x.db"], system_path=NO_SYSTEM).log
    assert custom.resolve_path({"STATE_DIRECTORY": "/var/lib/ferlite"}) == Path("/var/lib/ferlite/logs/x.db")
    assert load(overrides=["log.path=/data/x.db"], system_path=NO_SYSTEM).log.resolve_path({}) == Path("/data/x.db")


def test_backoff_doubles_up_to_the_maximum():
    service = Config().service
    assert [service.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_changed_sections_and_command_line_options(tmp_path):
    a = Config()
    b = load(overrides=["tracking.window=2", "log.commit_interval=0"], system_path=NO_SYSTEM)
    assert b.changed(a) == ["tracking", "log"]
    parser = argparse.ArgumentParser()
    configfile.add_config_arguments(parser)
    path = write(tmp_path, "[source]\nspec = \"1\"\n[tracking]\nwindow = 3\n")
    args = parser.parse_args(["--config", str(path), "--set", "tracking.window=4", "--source", "0",
                              "--set", "source.spec=2"])
    config = configfile.load_from_args(args)
    assert (config.source.spec, config.tracking.window) == ("0", 4)  # --source comes last, after --set


def test_config_import_is_light():
    import subprocess
    import sys

    code = "import sys, ferlite.edge.config; print(sorted(m for m in ('cv2', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("token", ["x", " " * 20, "short-but-ok", "sixteen chars ok"])
def test_a_weak_token_off_loopback_is_refused_without_showing_it(tmp_path, token):
    config = tmp_path / "c.toml"
    config.write_text(f'[http]\ntoken = "{token}"\n')
    with pytest.raises(ConfigError) as err:
        load(config, ["http.listen=0.0.0.0:8080"], system_path=tmp_path / "none")
    text = str(err.value)
    assert "http.token = (hidden): must be at least 16 characters, without spaces" in text, text
    assert f"{config}:2:" in text and f'"{token}"' not in text
    assert load(config, ["http.listen=127.0.0.1:8080"], system_path=tmp_path / "none").http.token == token
    assert load(None, ["http.listen=0.0.0.0:8080", "http.token=0123456789abcdef"]).http.listen == "0.0.0.0:8080"


def test_a_missing_token_blames_the_listen_option_that_needs_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(None, ["http.listen=0.0.0.0:8080"], system_path=tmp_path / "none")
    assert str(err.value).startswith("--set http.listen=0.0.0.0:8080: http.token = \"\": must be set"), str(err.value)
