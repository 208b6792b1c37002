"""The HTTP output's /report: the `ferlite report` page of the last day, never at the frame loop's expense.

One render at a time, in a process of its own (``python -m ferlite.edge.logbook.page``) on one thread (at the
lowest priority where allowed), so it takes at most one core and pandas and matplotlib never stay in the
service's memory. Each answer is kept a minute: any number of clients asking meanwhile get the same page
(clients that ask while it renders wait for it). A render that runs past ``timeout`` seconds is stopped (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

#: Seconds an answer is served again before the page is rendered anew.
TTL_S = 60.0
#: Seconds a render may take before it is stopped.
TIMEOUT_S = 120.0
#: One thread for the libraries' math in the render's process.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMEXPR_NUM_THREADS")}


class ReportPage:
    """The /report answer: (status, content type, body), rendered at most once a minute (see the docstring)."""

    def __init__(self, log_path: Path, ttl_s: float = TTL_S, timeout_s: float = TIMEOUT_S):
        self.log_path, self.ttl_s, self.timeout_s = Path(log_path), ttl_s, timeout_s
        self.renders = 0  # processes started, for tests and /api/status
        self._lock: asyncio.Lock | None = None  # made on the server's loop, at the first request
        self._answer: tuple[float, tuple[int, str, bytes]] | None = None

    async def get(self) -> tuple[int, str, bytes]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._answer is not None and time.monotonic() - self._answer[0] < self.ttl_s:
                return self._answer[1]
            answer = await self._render()
            self._answer = (time.monotonic(), answer)
            return answer

    async def _render(self) -> tuple[int, str, bytes]:
        self.renders += 1
        env = {**os.environ, **ONE_THREAD, "MPLBACKEND": "Agg"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ferlite.edge.logbook.page", str(self.log_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):  # the server is closing
                raise
            return 503, "text/plain", f"the report took longer than {self.timeout_s:.0f} s and was stopped".encode()
        message = err.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else f"the report's process exited with {proc.returncode}"
        if proc.returncode == 0:
            return 200, "text/html", out
        if proc.returncode == 3:  # the report extra is not installed
            return 501, "text/plain", reason.encode()
        if proc.returncode in (1, 2):  # no log yet, not a ferlite log
            return 404, "text/plain", reason.encode()
        return 500, "text/plain", f"the report failed: {reason}".encode()
