"""Silence the C++ logging of TensorFlow (oneDNN notices, absl warnings, MLIR converter chatter) unless -v.

That logging is written by native code straight to file descriptor 2 (some of it before TensorFlow reads
``TF_CPP_MIN_LOG_LEVEL``), so it is silenced by pointing fd 2 at /dev/null around the calls that produce it:
importing TensorFlow and running the TFLite converter. Python exceptions are unaffected (they are printed
after the block ends). With ``ferlite -v`` (the root logger at DEBUG) nothing is silenced.

Whoever points fd 2 elsewhere holds :data:`FD2_LOCK` meanwhile (here, and ``edge/imagefiles/decodelog.py``
around image decodes), so that two threads never swap it at once and leave stderr pointing nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

#: Held while fd 2 points elsewhere; reentrant, since silenced blocks may nest.
FD2_LOCK = threading.RLock()


def verbose() -> bool:
    """Whether ``-v`` was given: the root logger logs debug messages."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def native_logging_silenced() -> Iterator[None]:
    """Within the block, native writes to stderr (fd 2) go to /dev/null, unless -v."""
    if verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with FD2_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
