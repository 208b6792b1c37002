"""The service's /report page, rendered in a process of its own: ``python -m ferlite.edge.logbook.page LOG``.

The HTTP output (edge/outputs/reportpage.py) starts this process, one at a time, so that pandas and matplotlib
never load into the service: their memory goes when the page is written, and the process runs on one thread,
at the lowest priority where the system allows it (the shipped unit's system-call filter does not: there it
runs at the unit's Nice=5, on one of its cores). Writes the page of the last day to stdout and exits 0;
exit 3 (with the line to show on stderr) when the report extra is not installed, 1 or 2 (the same) for a log
it cannot read.
"""

from __future__ import annotations

import os
import sys

from ferlite.errors import FerliteError

#: What the page says when pandas or matplotlib is missing.
INSTALL = "pip install 'ferlite[report]'"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ferlite.edge.logbook.page LOG", file=sys.stderr)
        return 2
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)  # the frame loop first
    except OSError:  # the unit's SystemCallFilter=~@resources: the unit's Nice= and CPUQuota= hold it instead
        pass
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        print(f"the report page needs {exc.name or 'pandas and matplotlib'}, which is not installed on this "
              f"device: {INSTALL}", file=sys.stderr)
        return 3
    from ferlite.edge.logbook.report import report_html

    try:
        page = report_html(args[0], "24h")
    except FerliteError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code if exc.exit_code in (1, 2) else 1
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
