"""Crash-safe file writing: write next to the target, then rename, so a reader never sees half a file."""
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write_fn) -> None:
    """Call `write_fn(tmp_path)` to fill a temporary file beside `path`, then rename it onto `path`.

    A crash mid-write leaves the old file (or none) in place, never a truncated one. The file gets the permissions
    a plain open() would give it (0666 less the umask), not mkstemp's owner-only 0600. A write that fails (disk
    full, read-only folder) raises an OSError that names `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # after writing: some writers (safetensors) replace the file
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch and safetensors report a full disk as a RuntimeError
        Path(tmp).unlink(missing_ok=True)
        errno = getattr(err, "errno", None)
        message = (f"Could not write {path} ({err}). Is the disk full or the folder read-only? Free some space "
                   "or pick another folder; any earlier version of the file is untouched.")
        raise (OSError(errno, message) if errno else OSError(message)) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def check_writable(folder) -> None:
    """Create `folder` if needed and make sure files can be written into it: before the work, not after it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise type(err)(err.errno, f"Cannot write into {folder} ({err.strerror}): pick another output folder or "
                                   "make this one writable.") from None


def checkpoint_dir(directory) -> Path:
    """`directory` as a Path, or a clear error when it is not a folder."""
    directory = Path(directory)
    if directory.is_file():
        raise NotADirectoryError(f"{directory} is a file; pass the folder that holds it ({directory.parent}).")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder. Pass the checkpoint folder that holds config.json "
                                "and model.safetensors (e.g. bertgen_mini.default_bert_dir()).")
    return directory
