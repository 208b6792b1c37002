"""What the native image decoders print, caught instead of reaching the terminal.

libjpeg and libpng print their warnings ("Premature end of JPEG file", "libpng warning: iCCP: ...") and
OpenCV logs why a decode failed ("[ WARN:0@1.2] global loadsave.cpp:... imdecode_(): ...") straight to file
descriptor 2, where Python cannot catch them. ``native_output()`` points fd 2 at a file of its own around a
decode and hands back those lines, trimmed of OpenCV's log prefix, for the caller to fold into its one-line
reasons or drop; with ``ferlite -v`` they are also logged at debug level. A line that is not a decoder's
(another thread's message written during the few milliseconds of a decode) is written back to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from ferlite.quiet import FD2_LOCK

log = logging.getLogger(__name__)

#: Most bytes of decoder output read back per decode (a corrupt file can make libjpeg warn per block).
MAX_CAPTURE = 1 << 16
#: Lines the decoders write: OpenCV's log and error text, libpng's prefix, libjpeg's and libtiff's messages.
NATIVE_LINE = re.compile(
    r"^(\[ ?(WARN|ERROR|INFO|DEBUG)[:\]]|OpenCV\(|libpng |Corrupt JPEG|Premature end|Invalid |Unsupported |"
    r"Bogus |Not a JPEG|Warning:|Inconsistent |Unknown |Ignoring |Improper |Huffman |Quantization |Empty |"
    r"Wrong JPEG|Sampling |Scan script|Application transferred|Suspension|Backing store|JPEG|TIFF|"
    r"[A-Za-z]+: (Warning|Error)|imgcodecs|global )"
)
_OPENCV_PREFIX = re.compile(r"^\[ ?[A-Z]+:[^\]]*\]\s+(global\s+)?(\S+:\d+\s+)?(\S+\s+)?")


def _capture_file():
    """Somewhere for fd 2 to point: a file in memory where Linux offers one (no /tmp needed, as under a
    read-only service unit), else a temporary file; None when neither can be had."""
    try:
        if hasattr(os, "memfd_create"):
            return os.fdopen(os.memfd_create("ferlite-decoder-output"), "w+b")
        return tempfile.TemporaryFile()
    except OSError:
        return None


@contextlib.contextmanager
def native_output() -> Iterator[list[str]]:
    """Within the block, fd 2 goes to a file of its own; the list it yields holds the decoder lines after.
    Without fd 2 (a daemon started without one) or anywhere to point it, nothing is caught."""
    lines: list[str] = []
    with FD2_LOCK, contextlib.ExitStack() as stack:  # shared with ferlite.quiet: one fd 2 swap at a time
        tmp = _capture_file()
        try:
            sys.stderr.flush()
            saved = os.dup(2) if tmp is not None else None
        except (OSError, ValueError):
            saved = None
        if tmp is not None:
            stack.enter_context(tmp)
        if saved is None:
            yield lines
            return
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(_sorted_out(tmp.read(MAX_CAPTURE).decode("utf-8", "replace")))


def _sorted_out(text: str) -> list[str]:
    """The decoder lines of ``text``, cleaned; other lines go back to stderr."""
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">") and found:  # an OpenCV error's next line: "> Too long LZW length in GIF.:"
            found[-1] = f"{found[-1]} {line[1:].strip()}"
        elif NATIVE_LINE.match(line):
            found.append(line)
        else:
            print(raw, file=sys.stderr)
    for line in found:
        log.debug("decoder: %s", line)
    return [clean(line) for line in found]


def clean(line: str) -> str:
    """A decoder line without OpenCV's log prefix, source locations and function names: ``[ WARN:0@0.1] global
    loadsave.cpp:1 imdecode_ imdecode_(''): can't read data: OpenCV(4.14.0) /io/grfmt_gif.cpp:9: error:
    (-215:Assertion failed) Too long LZW length in function 'f'`` -> ``Too long LZW length``."""
    line = _OPENCV_PREFIX.sub("", line.strip())
    line = re.sub(r"imdecode_\('[^']*'\): ", "", line)
    line = re.sub(r"OpenCV\([\d.]+\) \S+?:\d+: error: \(-?\d+:[^)]*\) ", "", line)
    line = re.sub(r" in function '[^']*'", "", line)
    line = re.sub(r"^(libpng (warning|error): *|can't read (data|header): (?=\S))", "", line)
    return line[:200]
