"""Where a model runs, and how the package makes a model ready to answer: the device choice and the speed switch.

This sits below train.py and evaluate.py, which both need the device; neither imports the other for it.
`ready_for_inference` is the one place the package's own inference (zoo's fine-tuned model, evaluate,
experiments) turns bertgen_mini.speed on. The speed layer computes the textbook model's numbers with faster CPU
routines (tests/test_speed.py proves it); `fast=False` keeps the textbook modules, to read or to compare.
"""
import os

import torch

from . import speed


def pick_device() -> torch.device:
    """CUDA (this process's GPU under torchrun) when present, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def ready_for_inference(model, fast: bool = True, device=None):
    """`model` in evaluation mode on `device` (default: where it is), with the speed layer swapped in when `fast`
    and the device is a CPU (on a GPU the standard modules are the fast ones). Returns the model, changed in place."""
    device = torch.device(device) if device is not None else model.device
    model = model.to(device).eval()
    return speed.apply(model, device) if fast else model
