"""What test_faults runs in a child process it kills: only torch and bertgen_mini imported, so the child starts fast."""
import os
import signal

import multiprocessing

import torch

from bertgen_mini import EncoderDecoderModel
from bertgen_mini.train import Trainer, main


def train_and_die(model_dir, batches, config, kill_at: str):
    """Train the model saved in model_dir on `batches` with `config`, and SIGKILL this process just before the
    file whose path ends with `kill_at` is renamed into place: a crash in the middle of a save."""
    replace = os.replace

    def replace_or_die(src, dst):
        if str(dst).endswith(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        replace(src, dst)
    os.replace = replace_or_die
    torch.set_num_threads(1)
    Trainer(EncoderDecoderModel.from_pretrained(model_dir).train(), batches, config).train()


def forkserver():
    """A multiprocessing context whose processes fork from one server that has imported torch and torch._dynamo
    (which a process's first AdamW imports): each then starts in about a second, not five. Only modules any path
    finds can be preloaded: Python 3.11's forkserver imports them before it takes the tests' sys.path."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch._dynamo"])
    return context


def report(path, fn, *args):
    """Run fn(*args) in this child and write how it ended to `path`: "finished", or the exception's type and message.
    A test reads that file, so a crash inside fn (a segmentation fault, a hang the test ends) cannot take the test
    runner down with it."""
    try:
        fn(*args)
        outcome = "finished"
    except BaseException as err:  # noqa: B036 (SystemExit and KeyboardInterrupt are outcomes too)
        outcome = f"{type(err).__name__}: {err}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(outcome)


def train_saved(model_dir, batches, config, groups=None):
    """Train the model saved in model_dir on `batches` with `config` (resuming as config says)."""
    torch.set_num_threads(1)
    Trainer(EncoderDecoderModel.from_pretrained(model_dir).train(), batches, config, groups).train()


def train_command(stderr_path, argv):
    """`python -m bertgen_mini.train` with `argv`, its stderr (what a terminal shows) written to stderr_path; the
    process exits as the command does."""
    os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    torch.set_num_threads(1)  # main() keeps it (it only lowers): on a busy machine a 2nd thread made steps 100x slower
    main(argv)


def load_config(folder):
    from bertgen_mini import BertGenerationConfig
    BertGenerationConfig.from_pretrained(folder)


def with_file_size_limit(limit, fn, *args):
    """fn(*args) where no file can grow past `limit` bytes: writes beyond it fail with EFBIG, as on a full disk
    (SIGXFSZ, which would end the process, is ignored so that the write returns the error instead)."""
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        fn(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def save_tokenizer(vocab_dir):
    from bertgen_mini import BertTokenizer
    BertTokenizer.from_pretrained(vocab_dir).save_pretrained(vocab_dir)
