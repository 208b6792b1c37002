"""One pipeline from one config: run, check, recognize and bench build the same thing; outputs come from the
registry, chosen by the config, and an output written as a new module needs no other change."""

from __future__ import annotations

import csv
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from ferlite.cli import build_parser, main
from ferlite.edge import bench, recognize
from ferlite.edge.assets import classifier_model
from ferlite.edge.build import PipelineParts
from ferlite.edge.config import Config
from ferlite.edge.configfile import load
from ferlite.edge.service import check
from ferlite.edge.service.daemon import Signals, Systemd
from ferlite.edge.service.run import Service

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CLIP = ROOT / "edge" / "data" / "sample.mp4"
CONFIG = """\
[source]
spec = "{clip}"
[detector]
score = 0.7
min_face = 30
every = 3
coarse = false
max_faces = 4
[classifier]
model = "fer2013"
threads = 2
margin = 0.1
[tracking]
window = 4
threshold = 0.5
max_age = 2.0
[log]
path = "{db}"
"""


@pytest.fixture()
def config_file(tmp_path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(clip=SAMPLE_CLIP, db=tmp_path / "log.db"))
    return path


def parse(*argv) -> object:
    return build_parser().parse_args([str(a) for a in argv])


def test_every_front_end_builds_the_same_pipeline_from_the_same_config(config_file, tmp_path):
    settings = {}
    _, parts, _ = recognize.setup(parse("recognize", SAMPLE_CLIP, "--config", config_file))
    settings["recognize"] = parts.settings()
    _, rows = bench.configurations(parse("bench", "--config", config_file, "--detectors", "yunet"))
    settings["bench"] = PipelineParts(rows[0], "video").settings()
    config = load(config_file)
    report = check.Report()
    settings["check"] = check._pipeline(report, config).settings()
    service = Service(lambda: load(config_file), Systemd({}), Signals())
    try:
        settings["run"] = service.parts.settings()
    finally:
        service.sink.close()
    expected = {"detector": "yunet", "score": 0.7, "every": 3, "coarse": False, "min_face": 30, "max_faces": 4,
                "margin": 0.1, "threads": 2, "flip": False, "window": 4, "threshold": 0.5, "max_age": 2.0}
    for front_end, got in settings.items():
        assert Path(got.pop("model")).name == "ferlite_cnn48_w_fer2013_int8.tflite", front_end
        assert got == expected, front_end


def test_command_line_options_are_overrides_of_config_keys(config_file):
    config, parts, _ = recognize.setup(parse("recognize", SAMPLE_CLIP, "--config", config_file, "--window", "2",
                                             "--set", "detector.every=6", "--margin", "0.2"))
    assert (config.tracking.window, config.detector.every, config.classifier.margin) == (2, 6, 0.2)
    assert (parts.tracker.window, parts.detector.every, parts.options.margin) == (2, 6, 0.2)
    assert config.tracking.threshold == 0.5  # from the file: untouched


def test_options_default_to_the_config_so_no_default_is_written_twice():
    for command, options in (("recognize", recognize.OPTIONS), ("bench", {"threads": 1, "models": 1})):
        args = parse(command)
        assert all(getattr(args, dest) is None for dest in options if dest != "source"), command
    defaults = Config()
    assert (defaults.tracking.window, defaults.detector.every) == (5, 5)


def test_photos_get_no_smoothing_and_models_with_a_mirror_view_skip_flip(tmp_path):
    """A model converted with --mirror holds its mirror view (its sidecar says views 2): flip is skipped for it."""
    bundled = classifier_model()
    mirrored = tmp_path / bundled.name
    mirrored.write_bytes(bundled.read_bytes())
    info = json.loads(bundled.with_suffix(".json").read_text())
    mirrored.with_suffix(".json").write_text(json.dumps({**info, "views": 2}))
    config = load(system_path="/nonexistent").replace(classifier={"flip": True, "model": str(mirrored)})
    parts = PipelineParts(config, "images")
    assert (parts.tracker.window, parts.tracker.max_age, parts.detector.name) == (1, 0.0, "yunet")
    assert parts.classifier.info.views == 2 and parts.classifier.flip is False
    assert parts.classifier.flip_skipped
    one_view = PipelineParts(config.replace(classifier={"flip": True, "model": "default"}), "images").classifier
    assert one_view.info.views == 1 and one_view.flip is True and not one_view.flip_skipped


RECORDER = '''
"""An output written by a user, in a module of their own."""
import json


class Recorder:
    """Keeps a line per frame; writes them as json when closed."""

    def __init__(self, path):
        self.path, self.lines = path, []

    @classmethod
    def from_config(cls, section, context):  # no SECTION named: section is None
        return cls(context.file("recorded.json"))

    def write(self, result, frame=None):
        self.lines.append({"index": result.index, "faces": len(result.faces), "shape": list(frame.image.shape),
                           "timings": sorted(result.timings_ms)})

    def flush(self):
        pass

    def close(self):
        self.path.write_text(json.dumps(self.lines))
'''


def test_an_output_in_a_new_module_receives_every_frame_without_other_changes(tmp_path, monkeypatch):
    (tmp_path / "my_outputs.py").write_text(textwrap.dedent(RECORDER))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert main(["recognize", str(SAMPLE_CLIP), "--max-frames", "12", "--out", str(out),
                 "--set", 'outputs.recognize=["csv", "my_outputs:Recorder"]']) == 0
    lines = json.loads((out / "recorded.json").read_text())
    assert [line["index"] for line in lines] == list(range(12))
    assert all(line["shape"] == [480, 640, 3] for line in lines)
    assert lines[0]["timings"] == ["classify", "decode", "detect", "smooth", "total"]
    assert sorted(p.name for p in out.iterdir()) == ["recorded.json", "results.csv"]  # no annotated video
    sys.modules.pop("my_outputs", None)


def test_recognize_writes_through_registered_outputs(tmp_path):
    out = tmp_path / "out"
    assert main(["recognize", str(SAMPLE_CLIP), "--max-frames", "5", "--out", str(out), "--json",
                 str(out / "r.json"), "--save-crops"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["crops", "r.json", "results.csv", "sample.webm"]
    with (out / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(json.loads((out / "r.json").read_text())) > 0


def test_unknown_output_names_are_config_errors(capsys):
    assert main(["recognize", "--set", 'outputs.recognize=["csvv"]']) == 2
    err = capsys.readouterr().err
    assert "outputs.recognize" in err and "unknown output 'csvv' (did you mean 'csv'?)" in err


def test_the_service_chooses_its_outputs_from_the_config(config_file, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert main(["run", "--config", str(config_file), "--max-frames", "6",
                 "--set", 'outputs.run=["sqlite", "csv"]', "--set", "outputs.dir=files"]) == 0
    with (tmp_path / "state" / "files" / "results.csv").open() as f:
        assert {int(r["frame"]) for r in csv.DictReader(f)} <= set(range(6))
    assert (tmp_path / "log.db").exists()


def test_docs_python_example_runs_as_written(monkeypatch, capsys):
    page = (ROOT / "docs" / "recognize.md").read_text()
    block = re.search(r"From Python.*?```python\n(.*?)```", page, re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(block, "docs/recognize.md", "exec"), {})
    assert re.search(r"^\d+ faces in \d+ frames: \{'happy': \d+", capsys.readouterr().out, re.M)
