"""What test_faults runs in a child process it kills: only torch and bertgen_mini imported, so the child starts fast."""
import os
import signal

import torch

from bertgen_mini import EncoderDecoderModel
from bertgen_mini.train import Trainer


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
