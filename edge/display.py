"""Whether a window can be shown: a display is set and OpenCV was built with a GUI backend."""

from __future__ import annotations

import os
import re

from ferlite.errors import UsageError


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and _has_highgui()


def _has_highgui() -> bool:
    import cv2

    info = cv2.getBuildInformation()
    m = re.search(r"^\s*GUI:\s*(\S+)", info, re.M)
    if m:
        return m.group(1).upper() != "NONE"
    return bool(re.search(r"^\s*(GTK\+|QT|Win32 UI|Cocoa):\s*YES", info, re.M))


def use_window(choice: str | bool) -> bool:
    """Resolve --window/--no-window/auto; an explicit --window that cannot work is a UsageError."""
    display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if choice == "auto":
        return has_display()
    if choice and not display:
        raise UsageError("--window needs a display (DISPLAY or WAYLAND_DISPLAY is not set); use --no-window")
    if choice and not _has_highgui():
        raise UsageError("--window needs OpenCV with GUI support (opencv-python, not opencv-python-headless)")
    return bool(choice)
