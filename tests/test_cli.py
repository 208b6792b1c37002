"""The `ferlite` command: help for every step, lazy heavy imports, and clear errors instead of tracebacks."""

import subprocess
import sys
from pathlib import Path

import pytest

from ferlite.cli import COMMANDS, main


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_top_level_help_lists_every_command_without_heavy_imports():
    r = run_py(
        "import sys\nfrom ferlite.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('tensorflow', 'keras', 'cv2', 'pandas', 'sklearn', 'numpy') "
        "if m in sys.modules))"
    )
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert name in r.stdout
    assert "HEAVY []" in r.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: ferlite {command}" in out
    assert "--" in out and ("default" in out or command == "capture")


def test_training_command_on_a_device_install_names_the_extra(tmp_path):
    r = run_py(
        "import sys\nsys.modules['tensorflow'] = None\nfrom ferlite.cli import main\n"
        f"sys.exit(main(['train', {str(tmp_path)!r}]))"
    )
    assert r.returncode == 3, r.stderr
    assert "pip install 'ferlite[train]'" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: ferlite" in capsys.readouterr().out


def test_one_exit_code_table_in_help_and_docs():
    from ferlite.cli import build_parser
    from ferlite.errors import EXIT_CODES

    docs = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    help_text = " ".join(build_parser().format_help().split())
    for code, text in EXIT_CODES:
        assert f"| {code} | {text} |" in docs
        assert f"{code} {text}" in help_text


def test_a_missing_file_gives_the_same_exit_code_from_every_command(tmp_path, capsys):
    missing = tmp_path / "missing"
    codes = {
        "recognize": main(["recognize", f"{missing}.mp4", "--out", str(tmp_path / "r")]),
        "report": main(["report", f"{missing}.db", "--out", str(tmp_path / "p")]),
        "capture": main(["capture", "--source", f"{missing}.mp4", "--subject", "a", "--out", str(tmp_path / "c"),
                         "--no-window"]),
        "faces": main(["faces", str(missing), "--out", str(tmp_path / "f")]),
        "import": main(["import", f"{missing}.csv", "--out", str(tmp_path / "i")]),
    }
    err = capsys.readouterr().err
    assert set(codes.values()) == {1}, codes
    assert err.count("no such file") == len(codes) and "Traceback" not in err, err
