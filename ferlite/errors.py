"""Exceptions raised by ferlite. Only ``main()`` turns them into exit codes."""


class FerliteError(Exception):
    """Base class: an error with a message meant for the user (no traceback)."""

    exit_code = 1


class UsageError(FerliteError):
    """A bad option value or a bad combination of options."""

    exit_code = 2


class MissingExtraError(FerliteError):
    """A subcommand needs a package from an extra that is not installed."""

    exit_code = 3

    def __init__(self, module: str, extra: str, command: str):
        super().__init__(
            f"`ferlite {command}` needs the Python package '{module}', which is not installed.\n"
            f"Install the '{extra}' extra:  pip install 'ferlite[{extra}]'"
        )


class ImageReadError(FerliteError):
    """An image file cannot be used; the message is a one-line reason."""


class DatasetError(FerliteError):
    """A data set, manifest or source file is malformed."""


class SourceError(FerliteError):
    """A camera, video or image source cannot be opened or read."""


class ModelLoadError(FerliteError):
    """A model file is missing or cannot be loaded."""


def require(module: str, extra: str, command: str):
    """Import ``module`` or raise MissingExtraError naming the extra to install."""
    import importlib

    from ferlite.quiet import native_logging_silenced

    try:
        with native_logging_silenced():  # TensorFlow's C++ start-up notices, unless -v
            return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtraError(module, extra, command) from exc
