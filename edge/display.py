"""Whether a window can be shown: a display is set and OpenCV was built with a GUI backend."""

from __future__ import annotations

import os
import re


def display_set() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def has_display() -> bool:
    return gui_problem() is None


def has_highgui() -> bool:
    import cv2

    info = cv2.getBuildInformation()
    m = re.search(r"^\s*GUI:\s*(\S+)", info, re.M)
    if m:
        return m.group(1).upper() != "NONE"
    return bool(re.search(r"^\s*(GTK\+|QT|Win32 UI|Cocoa):\s*YES", info, re.M))


def gui_problem() -> str | None:
    """Why a window cannot be shown here (one line), or None when it can."""
    if not display_set():
        return "needs a display: DISPLAY or WAYLAND_DISPLAY is not set"
    if not has_highgui():
        return ("needs OpenCV with GUI support, and this one is headless: pip uninstall opencv-python-headless && "
                "pip install 'opencv-python<5'")
    return None
