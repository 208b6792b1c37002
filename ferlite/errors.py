"""Exceptions raised by ferlite. Only ``main()`` turns them into exit codes, the same for every command."""


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


class MissingFileError(FerliteError):
    """A file or folder a command was asked to read is not there (a source, log, data set or model)."""


class ImageReadError(FerliteError):
    """An image file cannot be used; the message is a one-line reason."""


class DatasetError(FerliteError):
    """A data set, manifest or source file is malformed."""


class SourceError(FerliteError):
    """A camera, video or image source cannot be opened or read."""


class ModelLoadError(FerliteError):
    """A model file is missing or cannot be loaded."""


#: The exit codes of every ferlite command (shown by `ferlite --help` and docs/troubleshooting.md).
EXIT_CODES = (
    (0, "done"),
    (1, "an input cannot be used: a file or folder that is not there (video, image, log, data set, model), one "
        "that is unreadable or malformed, a camera or stream that cannot be opened, the service giving up"),
    (2, "bad usage: an unknown option, a bad option or config value, options that do not go together, a config "
        "file that is not there or not valid"),
    (3, "a package of an extra is not installed (the message says what to pip install)"),
    (130, "interrupted (Ctrl-C)"),
)


def exit_code_table(width: int = 100) -> str:
    """EXIT_CODES as aligned, wrapped lines: ``  0    done``."""
    import textwrap

    return "\n".join(textwrap.fill(text, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
                     for code, text in EXIT_CODES)


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
