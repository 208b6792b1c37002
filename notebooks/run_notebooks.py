"""Execute the notebooks top to bottom as CI does (tests/test_notebooks.py), each in a fresh scratch folder.

    python notebooks/run_notebooks.py [NOTEBOOK ...] [--figures docs] [--timeout 600]

With no names, all of notebooks/*.ipynb. A failing cell stops its notebook with the cell's traceback and the
command exits non-zero. Outputs are not written back (the notebooks are committed without them). --figures
DIR copies the PNG files a notebook saves under figures/ into DIR: docs/notebooks.md's plot is regenerated with

    python notebooks/run_notebooks.py 02_device_log.ipynb --figures docs

Needs nbclient, nbformat and ipykernel (the dev and notebook extras); the kernel is this Python's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(path: Path, cwd: Path, timeout: int = 600):
    """Run every cell of the notebook at ``path`` with ``cwd`` as its working folder; returns the executed
    notebook. A cell that raises raises nbclient's CellExecutionError (with the cell's traceback)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="notebook files or names in notebooks/ (default: all)")
    ap.add_argument("--figures", type=Path, help="copy the PNG files each notebook writes under figures/ here")
    ap.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = ap.parse_args()
    paths = [p if p.exists() else HERE / p.name for p in map(Path, args.notebooks)] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="ferlite-notebook-") as tmp:
            start = time.perf_counter()
            execute(path, Path(tmp), args.timeout)
            print(f"{path.name}: ran in {time.perf_counter() - start:.0f} s")
            for png in sorted((Path(tmp) / "figures").glob("*.png")) if args.figures else []:
                args.figures.mkdir(parents=True, exist_ok=True)
                shutil.copy(png, args.figures / png.name)
                print(f"  {args.figures / png.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
