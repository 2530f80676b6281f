"""Files read and written safely: writes go next to the target and are renamed onto it, so a reader never sees half a
file and a link in the target's place is replaced, never written through; reads take regular files of a sane size
only, so a FIFO or a link to an endless device cannot hang the process or fill its memory; a run folder is locked
while a training run writes into it."""
import errno
import hashlib
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

try:
    import fcntl  # POSIX: advisory locks that the kernel drops when their process ends, however it ends
except ImportError:  # Windows
    fcntl = None

MAX_SETTINGS_BYTES = 64 * 2**20  # a JSON settings file or a vocabulary: far above any real one (BERT's vocab: 0.2 MiB)
KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
LOCK_NAME = ".lock"  # in a run folder: holds the pid of the training run writing there


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
    except (OSError, RuntimeError, SafetensorError) as err:  # torch and safetensors report a full disk in their own way
        Path(tmp).unlink(missing_ok=True)
        code = getattr(err, "errno", None)
        message = (f"Could not write {path} ({err}). Is the disk full or the folder read-only? Free some space "
                   "or pick another folder; any earlier version of the file is untouched.")
        raise (OSError(code, message) if code else OSError(message)) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def append_text(path, text: str) -> None:
    """Append `text` to the regular file `path` (created if missing). A link in its place is refused, not followed:
    appending through it would write into whatever file it points to."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if not os.path.islink(path):
            raise
        raise OSError(err.errno, f"{path} is a link (to {os.readlink(path)}): it is appended to, and through a link "
                                 "that would write into another file. Replace the link by a copy of the file, or "
                                 "remove it.") from None
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        check_regular(path, os.fstat(f.fileno()).st_mode)
        f.write(text)


def check_regular(path, mode: int) -> None:
    """A ValueError unless `mode` (from stat) is a regular file's: reading a FIFO waits for a writer that may never
    come, and a device such as /dev/zero never ends."""
    if not stat.S_ISREG(mode):
        kind = KINDS.get(stat.S_IFMT(mode), "not a plain file")
        raise ValueError(f"{path} is {kind}, not a regular file: put the file itself there (a link to a file is fine).")


def regular_file(path) -> Path:
    """`path` when it names a regular file (links followed). FileNotFoundError when nothing is there (for a dangling
    link, saying where it points); ValueError for a folder, a FIFO, a device or a socket."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise FileNotFoundError(errno.ENOENT, f"{path} is a link to {os.readlink(path)}, which does not "
                                                  "exist: copy the file there, or remove the link.") from None
        raise
    check_regular(path, mode)
    return path


def read_bytes(path, limit: int = MAX_SETTINGS_BYTES) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them. A FIFO, a device or a folder is refused before
    anything is read (ValueError), and so is a file over `limit` bytes: such a read would wait forever or until
    memory runs out. The file is opened without blocking, so a FIFO is refused, not waited on."""
    path = regular_file(path)  # the clear errors for a missing path and a dangling link
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())  # of what was opened: the path may have changed since regular_file looked
        check_regular(path, info.st_mode)
        data = f.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:  # the second: a file that grows, or claims 0 bytes as /proc's do
        size = f"{info.st_size / 2**20:.1f} MiB" if info.st_size > limit else "still growing"
        raise ValueError(f"{path} is {size}: larger than any settings file ({limit / 2**20:.0f} MiB at most). "
                         "Is it the right file?")
    return data


def read_text(path, limit: int = MAX_SETTINGS_BYTES) -> str:
    """read_bytes decoded as UTF-8 (a UnicodeDecodeError for other bytes: callers say what the file should be)."""
    return read_bytes(path, limit).decode("utf-8")


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (a checkpoint's weights can be gigabytes)."""
    digest = hashlib.sha256()
    with open(regular_file(path), "rb") as f:
        for chunk in iter(lambda: f.read(2**24), b""):
            digest.update(chunk)
    return digest.hexdigest()


_held_locks = {}  # lock file -> [open descriptor, depth]: a process may take its own lock again (train() and Trainer)


def take_lock(path: str, folder) -> int:
    """An open descriptor of `path` holding its exclusive flock, with this pid written in it; a RuntimeError naming
    the holder's pid when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RuntimeError(f"{folder} is in use by process {holder}: another training run writes there. Wait for it "
                           "to finish, stop it, or pick another --output-dir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextmanager
def folder_lock(folder):
    """Hold `folder` for this process while the block runs, so that two training runs never write into one folder.
    A second process asking for it gets a RuntimeError naming the holder's pid. The lock is the kernel's (flock on
    folder/.lock), dropped when its process ends however it ends, so a killed run's lock is simply taken over.
    Where the platform has no flock (Windows), nothing is locked."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = str((folder / LOCK_NAME).resolve())
    if path not in _held_locks and fcntl is not None:
        _held_locks[path] = [take_lock(path, folder), 0]
    held = _held_locks.get(path)
    if held:
        held[1] += 1
    try:
        yield
    finally:
        if held:
            held[1] -= 1
            if held[1] == 0:
                del _held_locks[path]
                os.close(held[0])  # closing drops the lock


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
