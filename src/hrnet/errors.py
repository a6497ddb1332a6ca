"""The library's one exception hierarchy, and the exit code of each kind on the command line.

Every error a user can cause is an `HRNetError` whose message names the file (or the field, the
URL, the argument) and says what to do. The command line prints that one line (a traceback only
with `-v`) and exits with the kind's code, so scripts can tell a bad recipe from a bad image:

    HRNetError                 1  (any other failure of this library)
    ├── ConfigError            3  a recipe key or value, a command-line option
    ├── DataError              4  an image, mask, video, annotation file or folder
    ├── CheckpointError        5  a weights file, a download, a weights name
    ├── DependencyError        6  an optional package that is not installed (names the pip command)
    └── RuntimeFailure         7  an inference runtime (ONNX Runtime, OpenVINO) or an export

Operating-system errors (permission, read-only or full disk, a file where a folder should be) exit
with 8, an interrupted command (Ctrl-C) with 130, and a bug (any other exception) with 70. Each
class also derives from the built-in exception code catching it expected before (ValueError,
ImportError, RuntimeError), so `except ValueError` keeps working.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # also: some inputs of a batch failed (hrnet predict over a folder)
EXIT_USAGE = 2  # argparse's own code for a malformed command line
EXIT_OS = 8
EXIT_BUG = 70
EXIT_INTERRUPTED = 130


class HRNetError(Exception):
    """Base class: a failure the user can fix; the message says how."""

    exit_code = EXIT_FAILED


class ConfigError(HRNetError, ValueError):
    """A recipe, an option or an argument that cannot be used; the message names the key."""

    exit_code = 3


class DataError(HRNetError, ValueError):
    """Bad input data: the message names the file (and the field) and the fix."""

    exit_code = 4


class CheckpointError(HRNetError, ValueError):
    """A file, download or weights name that is not a usable checkpoint for the model at hand."""

    exit_code = 5


class DependencyError(HRNetError, ImportError):
    """An optional dependency is missing; the message is the pip command that installs it."""

    exit_code = 6


class RuntimeFailure(HRNetError, RuntimeError):
    """An inference runtime or an export failed (an unsupported input size, a stale cached export)."""

    exit_code = 7


def require(module: str, *, extra: str, purpose: str):
    """Import an optional dependency or raise DependencyError naming the pip command.

    `extra` is this package's extra that brings it (`pip install "hrnet[onnx]"`)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyError(f"{purpose} needs the package {module.split('.')[0]!r}, which is not installed: "
                              f"pip install \"hrnet[{extra}]\" (or pip install -e \".[{extra}]\" in a checkout)"
                              ) from None


def os_error_message(error: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and the likely fix."""
    import errno

    path = error.filename or ""
    where = f" {path}" if path else ""
    fixes = {
        errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
        errno.EPERM: "operation not permitted: choose another folder or fix its permissions",
        errno.EROFS: "the file system is read-only: choose another --out-dir",
        errno.ENOSPC: "the disk is full: free some space or choose another --out-dir",
        errno.EDQUOT: "the disk quota is exhausted: free some space or choose another --out-dir",
        errno.ENOTDIR: "a file stands where a folder should be: remove or rename it",
        errno.EEXIST: "a file stands where a folder should be (or the file exists): remove or rename it",
        errno.EISDIR: "a folder stands where a file should be: pass a file path",
        errno.ENOENT: "no such file or folder",
        errno.ENAMETOOLONG: "the path is too long",
    }
    text = fixes.get(error.errno, error.strerror or str(error))
    return f"{where.strip() or 'a file operation'}: {text}"
