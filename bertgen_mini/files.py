"""Crash-safe file writing: write next to the target, then rename, so a reader never sees half a file."""
import os
import tempfile
from pathlib import Path


def atomic_write(path, write_fn) -> None:
    """Call `write_fn(tmp_path)` to fill a temporary file beside `path`, then rename it onto `path`.

    A crash mid-write leaves the old file (or none) in place, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def checkpoint_dir(directory) -> Path:
    """`directory` as a Path, or a clear error when it is not a folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder. Pass the checkpoint folder that holds config.json "
                                "and model.safetensors (e.g. bertgen_mini.default_bert_dir()).")
    return directory
