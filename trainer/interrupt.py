"""Ctrl-C during training, taken where it is safe: between batches, in Python, never inside a TensorFlow op.

A KeyboardInterrupt raised while TensorFlow runs a step (or while its input threads run) can crash the process
(SIGSEGV) before the run says how to resume it. :class:`DeferredInterrupt` holds the first Ctrl-C until the
training loop asks, at the end of a batch, and raises it there; a second Ctrl-C interrupts at once. The epoch in
progress is not saved, so ``--resume`` starts it again from the last finished epoch.
"""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    """Context manager: SIGINT sets a flag that :meth:`check` turns into KeyboardInterrupt. An ignored SIGINT (a
    job started in the background by a shell) stays ignored; outside the main thread nothing changes."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed since the last check."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt
