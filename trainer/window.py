"""`ferlite capture --window/--no-window`: whether to show the camera image with the prompt."""

from __future__ import annotations

from ferlite.edge.display import display_set, gui_problem, has_display
from ferlite.errors import UsageError


def use_window(choice: str | bool) -> bool:
    """Resolve --window/--no-window/auto; an explicit --window that cannot work is a UsageError."""
    if choice == "auto":
        return has_display()
    if choice and not display_set():
        raise UsageError("--window needs a display (DISPLAY or WAYLAND_DISPLAY is not set); use --no-window")
    problem = gui_problem()
    if choice and problem:
        raise UsageError(f"--window {problem}")
    return bool(choice)
