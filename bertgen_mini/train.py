"""Fine-tuning an EncoderDecoderModel: a training loop to read in one sitting, and `python -m bertgen_mini.train`.

One optimizer step:

    loss = sum of token cross-entropies / number of label tokens in the whole step
    AdamW with  lr(t) = lr * (t+1) / warmup              for t < warmup   (warmup)
                lr(t) = lr * max(0, (T - t) / (T - warmup))  after            (linear decay to 0 at step T)
    gradients clipped to a global norm of max_grad_norm

The loss is normalised by the tokens of the *whole* step (all accumulated micro-batches, all processes), so
gradient accumulation and several GPUs give exactly the gradient of one big batch. On CUDA the forward pass runs
in bf16 (or fp16 with a gradient scaler where bf16 is missing); on CPU in fp32. Under
`torchrun --nproc_per_node=K` each process takes every K-th batch and DistributedDataParallel averages gradients;
only rank 0 logs and writes checkpoints.

Checkpoints follow transformers' Trainer: `output_dir/checkpoint-<step>/` holds the model (save_pretrained:
config.json + model.safetensors) and the trainer state: its tensors (optimizer moments, RNG states) in
trainer_state.safetensors, the rest (step, schedule, the run's settings) in trainer_state.json. Neither format can
carry code, so resuming from a folder someone else wrote runs nothing from it (a pickle, which older versions
wrote as trainer_state.pt, can). Each file is written atomically and trainer_state.json last, so a folder
without it is an interrupted save and is ignored. A resumed run continues exactly where the saved one stopped; it
refuses settings that cannot change mid-run (the model, the batches) and applies, and logs, those that can (the
learning rate, the number of steps). It also refuses a checkpoint made from other inputs: each records hashes of the
training pairs, the vocabularies and the starting weights, and of its own weights file; and optimizer moments that
do not fit this run's parameters are refused before anything is loaded (the fused AdamW would write past them).

The tokenizers are saved beside the model, in the final folder and in every checkpoint: the source's (the one the
encoder reads) in the folder itself, and, where the decoder writes another vocabulary (bert2gpt: WordPiece in,
GPT-2's byte-level BPE out), the target's in its subfolder `target_tokenizer/` (recipes.save_tokenizers and
load_tokenizers).

A run holds its output folder (files.folder_lock) so that a second run cannot write into it, and SIGINT (Ctrl-C) or
SIGTERM (a scheduler's stop) ends it after the current step with a checkpoint: the command exits with 130 or 143 and
says how to resume. References: Karpathy's nanoGPT `train.py` and minGPT `trainer.py`;
Loshchilov & Hutter 2019 (AdamW); transformers' Trainer for the checkpoint layout.
"""
import argparse
import dataclasses
import inspect
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import speed
from .checkpoint import load_state, read_json, read_state_dict, weights_file
from .checks import check_field_types, check_lengths_fit, check_tokenizer_fits, fits
from .devices import pick_device
from .files import append_text, atomic_write, atomic_write_text, check_writable, file_sha256, folder_lock, regular_file
from .recipes import ALL_RECIPES, CROSS_INITS, halves, save_tokenizers
from .tokenizer_bpe import ByteLevelBPETokenizer

STATE_NAME = "trainer_state.json"            # written last: a checkpoint folder is complete once it is there
TENSORS_NAME = "trainer_state.safetensors"   # the optimizer's moments and the RNG states
LEGACY_STATE_NAME = "trainer_state.pt"       # older versions' trainer state: a pickle, not read (convert_legacy_state)
LOG_NAME = "log.jsonl"
CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
# What a resumed run must share with its checkpoint: the model, and which pairs make up which step.
FIXED_ON_RESUME = ("recipe", "bert_dir", "roberta", "gpt2", "cross_init", "dropout", "task", "train_split",
                   "train_rows", "max_source_len", "max_target_len", "drop_long", "batch_size", "grad_accum", "seed",
                   "weight_decay", "precision")
# What it may change: applied from the next step on (the schedule recomputed), and logged.
CHANGEABLE_ON_RESUME = ("lr", "new_lr", "steps", "warmup_steps", "max_grad_norm")
# What train() records of a run's inputs (SHA-256 hex digests, see run_inputs), and how a refusal names each.
INPUTS = {"data": "the training pairs (--data-dir, --train-split, --train-rows, --task, --drop-long)",
          "vocabulary": "the vocabulary (the tokenizer's tokens in id order, and its settings)",
          "target_vocabulary": "the target's vocabulary (the decoder's tokenizer, where it is another)",
          "initial_weights": "the weights the run started from (--bert-dir's weights file)",
          "roberta_weights": "the RoBERTa weights the run started from (--roberta's weights file)",
          "gpt2_weights": "the GPT-2 weights the run started from (--gpt2's weights file)"}
# Each kind of half (recipes.halves): the run_inputs entry of its checkpoint's weights, and the flag naming it
WARM_START = {"bert": ("initial_weights", "--bert-dir"), "rnd": ("initial_weights", "--bert-dir"),
              "roberta": ("roberta_weights", "--roberta"), "gpt": ("gpt2_weights", "--gpt2")}
# trainer_state.json's fields and their types: a damaged one is an error naming the file, not a KeyError later.
STATE_FIELDS = {"step": int, "epoch": int, "batch_in_epoch": int, "world_size": int, "config": dict,
                "scheduler": dict, "scaler": dict, "param_groups": list}
# ... and those older versions did not write (checked when there): see Trainer.state and Trainer.save.
LATER_STATE_FIELDS = {"inputs": dict, "param_names": list, "weights_sha256": str}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class TrainConfig:
    output_dir: str = "runs/bert2bert"      # checkpoints, log.jsonl and the final model go here
    # --- the model (see bertgen_mini.recipes)
    recipe: str = "bert2bert"               # one of recipes.ALL_RECIPES: bert2bert, bertshare, ..., bert2gpt, ...
    bert_dir: str | None = None             # BERT checkpoint folder; None = the bundled all-MiniLM-L6-v2
    roberta: str | None = None              # RoBERTa checkpoint, a folder or Hub id (roberta2roberta, robertashare,
                                            # roberta2gpt)
    gpt2: str | None = None                 # GPT-2 checkpoint, a folder or Hub id (bert2gpt, rnd2gpt, roberta2gpt)
    cross_init: str = "random"              # "self": start cross-attention from the layer's self-attention
    dropout: float | None = None            # replaces all dropout probabilities (0.0 = off); None keeps BERT's
    # --- the data
    task: str = "split"                     # WikiSplit direction: split (1 -> 2 sentences) or fuse (2 -> 1)
    data_dir: str | None = None             # folder with tune.tsv/validation.tsv; None = the usual search
    train_split: str = "tune"               # which WikiSplit file to train on
    train_rows: int = 0                     # train on the first N pairs only (0 = all): for smoke tests
    max_source_len: int = 64                # encoder tokens, [CLS] and [SEP] included
    max_target_len: int = 64                # label tokens, the end [SEP] included
    drop_long: bool = False                 # drop pairs longer than the limits instead of truncating them
    # --- the loop
    steps: int = 300                        # optimizer steps
    batch_size: int = 16                    # pairs per micro-batch per process
    grad_accum: int = 1                     # micro-batches per optimizer step
    lr: float = 1e-4                        # peak learning rate of pretrained weights
    new_lr: float | None = None             # peak learning rate of new weights (cross-attention, ...); None = lr
    weight_decay: float = 0.01              # AdamW's decoupled weight decay of weight matrices (not biases, LayerNorm)
    warmup_steps: int = 30                  # steps of linear learning-rate warmup, then linear decay to 0 at `steps`
    max_grad_norm: float = 1.0              # clip the global gradient norm to this (inf: no clipping)
    precision: str = "auto"                 # auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16 or fp16
    speed: bool = True                      # on CPU, swap in bertgen_mini.speed's engineered modules (same numbers)
    compile: bool = False                   # torch.compile the textbook model instead (eager if no compiler works)
    seed: int = 0                           # fixes the random weights, the batch order and dropout
    # --- evaluation, logging, checkpoints
    eval_every: int = 0                     # generate on eval_rows validation pairs every N steps (0 = only at the end)
    eval_rows: int = 100                    # validation pairs generated and scored at each evaluation (0: none)
    save_every: int = 0                     # write a checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 1               # how many checkpoint-<step> folders to keep (at least 1)
    resume: bool = True                     # continue from the newest checkpoint in output_dir if there is one
    progress: bool = True                   # a tqdm progress bar and the load report

    def __post_init__(self):
        """Every field checked here, so a setting that cannot train fails before anything is built."""
        check_field_types(self)
        positive = lambda x: x is not None and math.isfinite(x) and x > 0
        rules = [("output_dir", self.output_dir != "", "a folder name"),
                 ("recipe", self.recipe in ALL_RECIPES, f"one of {', '.join(ALL_RECIPES)}"),
                 ("cross_init", self.cross_init in CROSS_INITS, f"one of {', '.join(CROSS_INITS)}"),
                 ("dropout", self.dropout is None or 0 <= self.dropout < 1, "in [0, 1), or none to keep BERT's"),
                 ("task", self.task in ("split", "fuse"), "split or fuse"),
                 ("train_split", self.train_split != "", "a WikiSplit file name such as tune"),
                 ("train_rows", self.train_rows >= 0, "0 (all pairs) or more"),
                 ("max_source_len", self.max_source_len >= 3, "at least 3 ([CLS], a token, [SEP])"),
                 ("max_target_len", self.max_target_len >= 2, "at least 2 (a token and the end token)"),
                 ("steps", self.steps >= 1, "at least 1"),
                 ("batch_size", self.batch_size >= 1, "at least 1"),
                 ("grad_accum", self.grad_accum >= 1, "at least 1"),
                 ("lr", positive(self.lr), "a positive number"),
                 ("new_lr", self.new_lr is None or positive(self.new_lr), "a positive number, or none for lr"),
                 ("weight_decay", self.weight_decay >= 0, "0 or more"),
                 ("warmup_steps", self.warmup_steps >= 0, "0 or more"),
                 ("max_grad_norm", self.max_grad_norm > 0, "a positive norm (inf turns clipping off)"),
                 ("precision", self.precision in ("auto", "fp32", "bf16", "fp16"), "auto, fp32, bf16 or fp16"),
                 ("eval_every", self.eval_every >= 0, "0 (only at the end) or more"),
                 ("eval_rows", self.eval_rows >= 0, "0 (no evaluation) or more"),
                 ("save_every", self.save_every >= 0, "0 (only at the end) or more"),
                 ("keep_checkpoints", self.keep_checkpoints >= 1, "at least 1 (a run resumes from the newest)")]
        uses = set(halves(self.recipe)) if self.recipe in ALL_RECIPES else set()
        for name, kinds, model in (("bert_dir", {"bert", "rnd"}, "BERT"), ("roberta", {"roberta"}, "RoBERTa"),
                                   ("gpt2", {"gpt"}, "GPT-2")):
            needed, given = bool(uses & kinds), getattr(self, name) is not None
            if uses and given and not needed:  # a mistyped recipe must not train another model without a word
                rules.append((name, False, f"left out: the recipe {self.recipe} reads no {model} checkpoint"))
            elif needed and not given and name != "bert_dir":  # bert_dir has a default
                rules.append((name, False, f"a {model} checkpoint folder or Hub id: the recipe {self.recipe} "
                                           f"warm-starts from {model}"))
        wrong = [f"{name}={getattr(self, name)!r} (--{name.replace('_', '-')}) must be {need}"
                 for name, ok, need in rules if not ok]
        if wrong:
            raise ValueError("These settings cannot train: " + "; ".join(wrong) + ".")


def autocast_dtype(precision: str, device: torch.device):
    """The dtype the forward pass runs in: None for plain fp32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision={precision!r}: choose auto, fp32, bf16 or fp16.")
    if dtypes[precision] is torch.float16 and device.type != "cuda":
        raise ValueError("fp16 training needs CUDA; on CPU use fp32 (or bf16).")
    return dtypes[precision]


def warmup_linear_decay(warmup_steps: int, total_steps: int):
    """The learning-rate multiplier for step t: rises linearly to 1 over warmup_steps, then falls linearly to 0."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def checkpoints(output_dir) -> list[Path]:
    """Complete checkpoint-<step> folders in output_dir, oldest first (complete once trainer_state.json is in it).
    Other checkpoint-* folders (checkpoint-best, ...) are not resumed from nor deleted; a warning says so. A
    checkpoint-<step> that is a link is refused: a run writes and deletes its checkpoints, and through a link it
    would resume from, overwrite or prune another run's. (A link to the output folder itself is fine.)"""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match is not None and path.is_symlink():
            raise ValueError(f"{path} is a link (to {os.readlink(path)}): a run's checkpoints are its own folders, "
                             "which it overwrites and deletes. Copy the folder there instead (cp -r), or remove the "
                             "link.")
        if match is None:
            warnings.warn(f"{path} is not named checkpoint-<step>: ignored (never resumed from, never deleted).")
        elif (path / STATE_NAME).is_file():
            found.append((int(match[1]), path))
    return [path for _, path in sorted(found)]


def read_log(output_dir) -> list[dict]:
    """log.jsonl of a run, one record per (step, kind): a resumed run logs again the steps after its checkpoint,
    and the later record wins."""
    records = {}
    for line in open(Path(output_dir) / LOG_NAME, encoding="utf-8"):
        record = json.loads(line)
        records[(record["step"], "loss" in record)] = record
    return [records[key] for key in sorted(records)]


def refuse_legacy_state(output_dir) -> None:
    """A checkpoint of an older version holds trainer_state.pt, a pickle: say how to continue instead of reading it."""
    for folder in Path(output_dir).glob("checkpoint-*"):
        if (folder / LEGACY_STATE_NAME).is_file() and not (folder / STATE_NAME).is_file():
            raise ValueError(
                f"{folder} holds {LEGACY_STATE_NAME}, the trainer state of an older bertgen_mini. It is a pickle, "
                "and reading a pickle can run code, so it is not read. If you trust where it came from, convert it "
                f"once: python -c \"from bertgen_mini.train import convert_legacy_state; convert_legacy_state("
                f"'{folder}')\" and resume; or start afresh with --no-resume (or another --output-dir).")


def write_state(folder: Path, state: dict) -> None:
    """Trainer state as trainer_state.safetensors (every tensor) then trainer_state.json (everything else)."""
    optimizer = state["optimizer"]
    tensors = {f"optimizer.{param}.{key}": value for param, values in optimizer["state"].items()
               for key, value in values.items()}
    tensors["rng.cpu"] = state["cpu_rng"]
    tensors.update({f"rng.cuda.{i}": rng for i, rng in enumerate(state["cuda_rng"] or [])})
    plain = {k: v for k, v in state.items() if k not in ("optimizer", "cpu_rng", "cuda_rng")}
    plain["param_groups"] = optimizer["param_groups"]
    atomic_write(folder / TENSORS_NAME, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    atomic_write_text(folder / STATE_NAME, json.dumps(plain, indent=1) + "\n")


def damaged(folder: Path, name: str, why: str) -> ValueError:
    return ValueError(f"{folder / name} is damaged ({why}). Delete {folder} to resume from the checkpoint before it, "
                      "or start afresh with --no-resume.")


def read_plain_state(folder: Path) -> dict:
    """trainer_state.json, each field of STATE_FIELDS there and of its type (counts >= 0, world_size >= 1)."""
    try:
        plain = read_json(folder / STATE_NAME, what="a checkpoint folder needs it")
    except (ValueError, OSError) as err:  # not JSON, not a regular file, unreadable
        raise damaged(folder, STATE_NAME, str(err)[:200]) from None
    if not isinstance(plain, dict):
        raise damaged(folder, STATE_NAME, f"it holds a {type(plain).__name__}, not an object")
    for name, kind in {**STATE_FIELDS, **LATER_STATE_FIELDS}.items():
        value = plain.get(name)
        if name not in plain:
            if name in LATER_STATE_FIELDS:
                continue
            raise damaged(folder, STATE_NAME, f"{name} is missing")
        minimum = 1 if name == "world_size" else 0
        if not fits(value, kind) or (kind is int and value < minimum):
            wanted = f"a whole number >= {minimum}" if kind is int else f"a {kind.__name__}"
            raise damaged(folder, STATE_NAME, f"{name}={value!r} is not {wanted}")
    for group in plain["param_groups"]:
        if not (isinstance(group, dict) and isinstance(group.get("params"), list) and len(group.get("betas", ())) == 2):
            raise damaged(folder, STATE_NAME, f"param_groups holds {str(group)[:60]}, not an optimizer's group")
    if not all(isinstance(group, list) and all(isinstance(name, str) for name in group)
               for group in plain.get("param_names", [])):
        raise damaged(folder, STATE_NAME, "param_names is not a list of name lists, one per parameter group")
    return plain


def read_state(folder: Path) -> dict:
    """The trainer state write_state wrote, as Trainer.state() gives it. Errors name the damaged file."""
    plain = read_plain_state(folder)
    moments = {}
    try:
        tensors = load_file(regular_file(folder / TENSORS_NAME))
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, param, key = name.split(".", 2)
                moments.setdefault(int(param), {})[key] = value
        cpu_rng = tensors["rng.cpu"]
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise ValueError(f"{folder / TENSORS_NAME} is damaged or missing ({str(err)[:100]}). Delete {folder} to "
                         "resume from the checkpoint before it, or start afresh with --no-resume.") from None
    groups = [{**group, "betas": tuple(group["betas"])} for group in plain.pop("param_groups")]  # JSON made a list
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    return {**plain, "optimizer": {"state": moments, "param_groups": groups}, "cpu_rng": cpu_rng,
            "cuda_rng": cuda or None}


def check_optimizer_state(folder: Path, state: dict, optimizer, names: dict) -> None:
    """Refuse a saved optimizer state that does not fit `optimizer` before any of it is loaded: the same parameter
    groups (count, sizes and, where the checkpoint records them, parameter names in order), and every moment of the
    shape and dtype of its parameter (the step count a float scalar). torch checks only the group sizes, and the
    fused AdamW writes a moment as long as its parameter: a shorter one corrupts the process's memory. `names` maps
    id(parameter) to its name, for the message."""
    saved_groups, groups = state["optimizer"]["param_groups"], optimizer.param_groups
    problems = []
    if len(saved_groups) != len(groups):
        problems.append(f"parameter groups: {len(saved_groups)} in the checkpoint, {len(groups)} now")
    problems += [f"parameter group {i}: {len(old['params'])} parameters in the checkpoint, {len(new['params'])} now"
                 for i, (old, new) in enumerate(zip(saved_groups, groups)) if len(old["params"]) != len(new["params"])]
    now_names = [[names[id(p)] for p in group["params"]] for group in groups]
    if not problems and state.get("param_names", now_names) != now_names:
        old, new = next(((a, b) for a, b in zip(sum(state["param_names"], []), sum(now_names, [])) if a != b),
                        (f"{len(sum(state['param_names'], []))} names", f"{len(sum(now_names, []))}"))
        problems.append(f"the parameters are in another order: {old} in the checkpoint where {new} is now")
    params = [(p, group) for group in groups for p in group["params"]]  # numbered in this order in the saved state
    for index, moments in sorted(state["optimizer"]["state"].items()):
        if not 0 <= index < len(params):
            problems.append(f"moments for parameter {index}, but the optimizer has {len(params)}")
            continue
        param, group = params[index]
        expected = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group.get("amsgrad") else set())
        if set(moments) != expected:
            problems.append(f"{names[id(param)]}: moments {sorted(moments)}, AdamW keeps {sorted(expected)}")
        for key, value in moments.items():
            if key == "step":
                fit, needed = value.dim() == 0 and value.is_floating_point(), "a float scalar"
            else:
                fit = value.shape == param.shape and value.dtype == param.dtype
                needed = f"shape {tuple(param.shape)}, dtype {param.dtype}"
            if not fit:
                problems.append(f"{names[id(param)]}: {key} of shape {tuple(value.shape)}, dtype {value.dtype} in the "
                                f"checkpoint, but it needs {needed}")
    if problems:
        raise ValueError(f"{folder / TENSORS_NAME} does not fit this run's optimizer ({len(problems)} problem"
                         f"{'s' if len(problems) > 1 else ''}; the first: {problems[0]}). It was saved for another "
                         "model or other parameter groups, and loading it would corrupt training. Resume with the "
                         "model and groups it was saved with, or start afresh with --no-resume (or another "
                         "--output-dir).")


def convert_legacy_state(folder) -> None:
    """Rewrite an older version's checkpoint-<step>/trainer_state.pt as trainer_state.safetensors + .json, so the
    run can resume. Read with torch.load(weights_only=True), which accepts tensors and plain values only and
    refuses anything that could run code; still, convert only files from a source you trust."""
    folder = Path(folder)
    try:
        state = torch.load(folder / LEGACY_STATE_NAME, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{folder / LEGACY_STATE_NAME} is not a plain trainer state ({str(err)[:200]}); it was "
                         "not converted. Start afresh with --no-resume.") from None
    write_state(folder, state)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT (Ctrl-C) or SIGTERM after saving a checkpoint. A KeyboardInterrupt, so that code
    which stops on Ctrl-C stops on it too; `exit_code` is 128 + the signal's number (130, 143), what a shell reports
    for a process that a signal ended, and what `python -m bertgen_mini.train` exits with."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


@contextmanager
def stop_signals_deferred():
    """While the block runs, SIGINT and SIGTERM only append their number to the list it yields: the training loop
    finishes its step, saves a checkpoint and stops. The handlers that were there before come back at the first
    signal, so a second one stops at once, without saving. Only the main thread can set handlers; in another thread
    nothing changes."""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def restore():
        for signum, handler in before.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python

    def defer(signum, frame):
        received.append(signum)
        restore()
        os.write(2, f"\n{signal.Signals(signum).name} received: saving a checkpoint after this step (send it again "
                    "to stop at once, without saving).\n".encode())  # os.write: safe even mid-print
    for signum in STOP_SIGNALS:
        signal.signal(signum, defer)
    try:
        yield received
    finally:
        restore()


class Trainer:
    """Trains `model` on `batches` (an iterable of dicts with input_ids, attention_mask, labels; re-iterated once
    per epoch, with set_epoch(epoch) called first when it has one). `groups`: AdamW parameter groups (see
    recipes.param_groups); default one group at config.lr. `evaluate_fn(model) -> dict` scores the model every
    config.eval_every steps and at the end (rank 0 only); its dict goes into the log. `tokenizer`, saved with each
    checkpoint, must have one token per row of the model's vocabulary; `target_tokenizer`, the decoder's where it
    reads another vocabulary (bert2gpt), one per row of the decoder's (see recipes.save_tokenizers). `inputs`: what
    identifies the run's inputs ({name: hash}, see run_inputs), recorded in each checkpoint; a resume with other
    inputs is refused."""

    def __init__(self, model, batches, config: TrainConfig, groups=None, evaluate_fn=None, tokenizer=None,
                 inputs=None, target_tokenizer=None):
        if len(batches) == 0:
            raise ValueError("No training batches: the data is empty (or drop_long dropped every pair).")
        if tokenizer is not None:
            check_tokenizer_fits(tokenizer, model, target_tokenizer)
        self.config, self.batches, self.evaluate_fn, self.tokenizer = config, batches, evaluate_fn, tokenizer
        self.target_tokenizer = target_tokenizer
        self.inputs = dict(inputs or {})
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = pick_device()
        self.model = model.to(self.device)
        if config.speed and not config.compile:
            speed.apply(model, self.device)  # the one place training switches speed on; nothing to swap on CUDA
        # DDP averages gradients over processes; the loss below is scaled so the average is the big-batch gradient.
        self.ddp = torch.nn.parallel.DistributedDataParallel(model) if self.world_size > 1 else None
        self.step_model = speed.compile(self.ddp or model) if config.compile else self.ddp or model
        self.dtype = autocast_dtype(config.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)
        groups = groups if groups is not None else [{"params": [p for p in model.parameters() if p.requires_grad]}]
        # fused: one kernel for all of AdamW's arithmetic (CPU too: 20-30 ms a step for MiniLM bert2bert against
        # 150 for the per-tensor loop), the default of transformers' Trainer as well
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_linear_decay(config.warmup_steps, config.steps))
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.changes_on_resume = {}  # settings changed when resuming; logged with the first step after it
        self.output_dir = Path(config.output_dir)
        torch.manual_seed(config.seed + self.rank)  # dropout differs between processes, as it should

    # ---------------------------------------------------------------------------------------------- data
    def micro_batches(self):
        """Batches forever, epoch after epoch, keeping (epoch, batch_in_epoch) so a resumed run skips what was seen."""
        while True:
            if hasattr(self.batches, "set_epoch"):
                self.batches.set_epoch(self.epoch)
            for i, batch in enumerate(self.batches):
                if i < self.batch_in_epoch:
                    continue  # already used before the checkpoint this run resumed from
                self.batch_in_epoch = i + 1
                yield batch
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def label_tokens(self, micro):
        """Label tokens in this step's micro-batches on all processes: the loss's denominator."""
        count = torch.tensor(float(sum(int((b["labels"] != -100).sum()) for b in micro)), device=self.device)
        if self.world_size > 1:
            dist.all_reduce(count)
        return count.clamp(min=1.0)

    # ---------------------------------------------------------------------------------------------- the loop
    def train_step(self, micro) -> tuple[float, float]:
        """One optimizer step on a list of micro-batches. Returns (mean token loss, gradient norm)."""
        model = self.step_model
        total_tokens, loss_sum = self.label_tokens(micro), 0.0
        for i, batch in enumerate(micro):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            tokens = (batch["labels"] != -100).sum()
            last = i == len(micro) - 1
            sync = nullcontext() if self.ddp is None or last else self.ddp.no_sync()  # all-reduce once, at the end
            with sync, torch.autocast(self.device.type, self.dtype, enabled=self.dtype is not None):
                token_loss_sum = model(**batch).loss * tokens  # the model's loss is a mean over this batch's tokens
                # DDP divides by world_size when it averages; multiplying here cancels that.
                loss = token_loss_sum * self.world_size / total_tokens
            self.scaler.scale(loss).backward()
            loss_sum += token_loss_sum.item()
        summed = torch.tensor(loss_sum, device=self.device)
        if self.world_size > 1:  # report the loss over all processes' tokens
            dist.all_reduce(summed)
        mean_loss = summed.item() / total_tokens.item()
        if not math.isfinite(mean_loss):
            raise FloatingPointError(
                f"The loss became {mean_loss} at step {self.step + 1}. Lower the learning rate (--lr / --new-lr), "
                "raise the warmup, or use fp32 (--precision fp32) to find where it overflows.")
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return mean_loss, float(grad_norm)

    def train(self, until: int | None = None):
        """Run until config.steps optimizer steps are done (resuming first when a checkpoint exists). `until`
        stops earlier, at that step, with a checkpoint, as an interrupted run would; the schedule still
        spans config.steps. The output folder is locked meanwhile; SIGINT or SIGTERM saves a checkpoint after the
        current step and raises TrainingInterrupted."""
        cfg = self.config
        until = cfg.steps if until is None else min(until, cfg.steps)
        with folder_lock(self.output_dir) if self.is_main else nullcontext(), stop_signals_deferred() as received:
            if cfg.resume:
                refuse_legacy_state(self.output_dir)
                if checkpoints(self.output_dir):
                    self.load(checkpoints(self.output_dir)[-1])
            self.model.train()
            batches = self.micro_batches()
            bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.is_main), unit="step")
            start, tokens_seen = time.time(), 0
            try:
                while self.step < until:
                    micro = [next(batches) for _ in range(cfg.grad_accum)]
                    tokens_seen += sum(int(b["attention_mask"].sum() + (b["labels"] != -100).sum()) for b in micro)
                    loss, grad_norm = self.train_step(micro)
                    speed = tokens_seen * self.world_size / (time.time() - start)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:.0f}")
                    self.log({"step": self.step, "loss": round(loss, 4), "grad_norm": round(grad_norm, 4),
                              "lr": self.scheduler.get_last_lr()[0], "tokens_per_s": round(speed, 1),
                              "elapsed_s": round(time.time() - start, 2)})
                    if signum := self.stop_signal(received):
                        self.stop(signum)
                    if cfg.save_every and self.step % cfg.save_every == 0 and self.step < until:
                        self.save()
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < until:
                        self.run_evaluation()
            finally:
                bar.close()
            self.save()
            if self.step == cfg.steps:
                self.run_evaluation()
        return self.model

    def stop_signal(self, received) -> int:
        """The stop signal any process received (0 for none), so that all processes stop at the same step."""
        signum = received[0] if received else 0
        if self.world_size > 1:
            flag = torch.tensor(signum, device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag)
        return signum

    def stop(self, signum: int):
        """Save a checkpoint at this step and raise TrainingInterrupted, saying how to resume."""
        self.save()
        message = (f"Stopped by {signal.Signals(signum).name} at step {self.step} of {self.config.steps}: checkpoint "
                   f"saved in {self.output_dir / f'checkpoint-{self.step}'}; run the same command again to resume "
                   "from it.")
        if self.is_main:
            print(message, file=sys.stderr, flush=True)
        raise TrainingInterrupted(signum, message)

    def run_evaluation(self):
        if self.evaluate_fn is None or not self.is_main:
            return
        self.model.eval()
        scores = self.evaluate_fn(self.model)
        self.model.train()
        self.log({"step": self.step, **{f"eval_{k}": v for k, v in scores.items()}})
        tqdm.write(f"step {self.step}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))

    def log(self, record: dict):
        """Append one JSON line to output_dir/log.jsonl (rank 0 only): the data for loss curves. The first record
        after a resume that changed settings carries them: {"changed_on_resume": {"lr": [old, new]}}."""
        if self.changes_on_resume:
            record, self.changes_on_resume = {**record, "changed_on_resume": self.changes_on_resume}, {}
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            append_text(self.output_dir / LOG_NAME, json.dumps(record) + "\n")  # never through a link

    # ---------------------------------------------------------------------------------------------- checkpoints
    def parameter_names(self) -> dict:
        """id(parameter) -> its name in the model."""
        return {id(p): name for name, p in self.model.named_parameters()}

    def state(self) -> dict:
        names = self.parameter_names()
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "cpu_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "world_size": self.world_size, "config": dataclasses.asdict(self.config), "inputs": self.inputs,
                "param_names": [[names[id(p)] for p in group["params"]] for group in self.optimizer.param_groups]}

    def save(self):
        """Write checkpoint-<step> (the model, then the trainer state with its weights file's hash); drop
        checkpoints beyond keep_checkpoints. A save that fails (a full disk) removes the folder it created. Rank 0
        only; the other processes wait for it."""
        if self.is_main:
            folder = self.output_dir / f"checkpoint-{self.step}"
            created = not folder.exists()
            try:
                self.model.save_pretrained(folder)
                if self.tokenizer is not None:
                    save_tokenizers(folder, self.tokenizer, self.target_tokenizer)
                write_state(folder, {**self.state(), "weights_sha256": file_sha256(weights_file(folder))})
            except BaseException:
                if created:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
            for old in checkpoints(self.output_dir)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old)
        if self.world_size > 1:
            dist.barrier()

    def load(self, folder: Path):
        """Continue from checkpoint `folder`: settings compared, weights into the existing model, then optimizer,
        scheduler (on this run's learning rates and length), RNG."""
        state = read_state(folder)
        self.check_resume(folder, state)
        check_optimizer_state(folder, state, self.optimizer, self.parameter_names())
        load_state(self.model, read_state_dict(folder), str(folder))
        peak_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]  # this run's, before the load
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        # The saved groups bring the old peak rates: put this run's back, and the rate of this step on its schedule
        # (the same number as before when nothing changed: the scheduler computes it the same way).
        self.scheduler.base_lrs = peak_lrs
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        for group, peak in zip(self.optimizer.param_groups, peak_lrs):
            group["initial_lr"], group["lr"] = peak, peak * factor
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        torch.set_rng_state(state["cpu_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if self.is_main:
            tqdm.write(f"Resuming from {folder} at step {self.step}." + "".join(
                f" {name} changed from {old} to {new}." for name, (old, new) in self.changes_on_resume.items()))

    def check_resume(self, folder: Path, state: dict):
        """Refuse a resume whose settings would make another run than the saved one; note the changes it may make."""
        saved, now = state["config"], dataclasses.asdict(self.config)
        fixed = [f"{name}: {saved.get(name)!r} in the checkpoint, {now[name]!r} now"
                 for name in FIXED_ON_RESUME if saved.get(name) != now[name]]
        if state.get("world_size", 1) != self.world_size:
            fixed.append(f"processes: {state.get('world_size', 1)} in the checkpoint, {self.world_size} now")
        if fixed:
            raise ValueError(f"{folder} comes from a run with other settings, which cannot change mid-run:\n  "
                             + "\n  ".join(fixed) + "\nResume with the checkpoint's settings, or start a new run "
                             "with --no-resume (or another --output-dir).")
        if state["step"] > self.config.steps:
            raise ValueError(f"{folder} is at step {state['step']}, past --steps {self.config.steps}: raise --steps "
                             "to train on, or start a new run with --no-resume (or another --output-dir).")
        self.check_inputs(folder, state)
        self.changes_on_resume = {name: [saved.get(name), now[name]]
                                  for name in CHANGEABLE_ON_RESUME if saved.get(name) != now[name]}

    def check_inputs(self, folder: Path, state: dict):
        """Refuse a checkpoint trained on other inputs than this run's (data, vocabulary, starting weights), or
        whose weights file is not the one its trainer state was saved with (another run's weights copied in)."""
        if "weights_sha256" in state and file_sha256(weights_file(folder)) != state["weights_sha256"]:
            raise ValueError(f"{weights_file(folder)} is not the file this checkpoint's trainer state was saved with "
                             "(its SHA-256 differs): the weights of another run? Put back this checkpoint's own "
                             "weights, or start afresh with --no-resume (or another --output-dir).")
        saved = state.get("inputs")
        if saved is None and self.inputs:
            warnings.warn(f"{folder} was saved by an older bertgen_mini, which did not record its inputs: that this "
                          "resume reads the same data, vocabulary and starting weights cannot be checked.")
        other = [INPUTS.get(name, name) for name, digest in self.inputs.items()
                 if isinstance(saved, dict) and name in saved and saved[name] != digest]
        if other:
            raise ValueError(f"{folder} was trained on other inputs than this run reads: " + "; ".join(other)
                             + " differ. Resume with the inputs it was trained on, or start afresh with --no-resume "
                             "(or another --output-dir).")


# -------------------------------------------------------------------------------------------------- the whole run
def keep_short_pairs(pairs, tokenizer, max_source_len: int, max_target_len: int, target_tokenizer=None):
    """The pairs whose source (with [CLS]/[SEP]) and target (with the end token) fit the limits uncut: the sources
    as `tokenizer` reads them, the targets as `target_tokenizer` (default `tokenizer`) writes them."""
    target_tokenizer = tokenizer if target_tokenizer is None else target_tokenizer
    src = tokenizer([p.source for p in pairs], add_special_tokens=True)["input_ids"]
    tgt = target_tokenizer([p.target for p in pairs], add_special_tokens=False)["input_ids"]
    kept = [p for p, s, t in zip(pairs, src, tgt) if len(s) <= max_source_len and len(t) + 1 <= max_target_len]
    if not kept:
        raise ValueError(f"No pair fits max_source_len={max_source_len} and max_target_len={max_target_len}: "
                         "raise the limits or train without drop_long.")
    return kept


def setup_distributed() -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1). Returns (rank, world_size)."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return (dist.get_rank(), world_size) if world_size > 1 else (0, 1)


def check_output_dir(output_dir, checkpoint_dir, flag: str = "--bert-dir") -> None:
    """Refuse an output folder that is the warm-start checkpoint's folder (given by `flag`) or holds it (links
    followed): the final save would replace the checkpoint's model.safetensors with the fine-tuned pair, and a
    checkpoint-<step> of the run could be pruned. A new folder inside the checkpoint's folder is fine: it overwrites
    nothing there."""
    out, checkpoint = Path(output_dir).resolve(), Path(checkpoint_dir).resolve()
    if out == checkpoint or out in checkpoint.parents:
        raise ValueError(f"--output-dir {output_dir} {'is' if out == checkpoint else 'holds'} the warm-start "
                         f"checkpoint {flag} {checkpoint_dir}: training would overwrite (or delete) it. Pick another "
                         "--output-dir, e.g. runs/bert2bert.")


def run_inputs(pairs, tokenizer, weights: dict, target_tokenizer=None) -> dict:
    """What identifies a run's inputs, as SHA-256 hex digests: the training pairs (their text, in order), the
    tokenizer's vocabulary (tokens in id order, its settings and a BPE's merges), the target tokenizer's where it is
    another one, and the weights file of each checkpoint the run starts from (`weights`: {INPUTS name: checkpoint
    folder}, e.g. {"initial_weights": the BERT folder}). Cheap next to training: the digests take well under a
    second for MiniLM and WikiSplit's tune."""
    digest = lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest()

    def vocabulary(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        described = [type(tokenizer).__name__, tokens, tokenizer._settings()]
        if isinstance(tokenizer, ByteLevelBPETokenizer):  # two BPEs with one vocabulary but other merges cut apart
            described.append(sorted(tokenizer.merge_ranks, key=tokenizer.merge_ranks.get))
        return digest(json.dumps(described))
    inputs = {"data": digest("\n".join(f"{pair.source}\t{pair.target}" for pair in pairs)),
              "vocabulary": vocabulary(tokenizer)}
    if target_tokenizer is not None and target_tokenizer is not tokenizer:
        inputs["target_vocabulary"] = vocabulary(target_tokenizer)
    return {**inputs, **{name: file_sha256(weights_file(folder)) for name, folder in weights.items()}}


def train(config: TrainConfig):
    """Build the recipe's model and tokenizers, train it on WikiSplit and save it (HF layout, with the tokenizers:
    see recipes.save_tokenizers) in config.output_dir, which stays locked to this run meanwhile. Returns (model,
    tokenizer, target_tokenizer): the source's and the target's tokenizer, the same object where both halves read
    one vocabulary."""
    from .checkpoint import fetch_checkpoint
    from .data import Seq2SeqBatches, load_wikisplit
    from .evaluate import evaluate
    from .recipes import build_model, build_tokenizers, checkpoint_folders, param_groups

    rank, world_size = setup_distributed()
    # the warm-start checkpoints, a Hub id fetched into the Hugging Face cache (only once), as local folders
    folders = checkpoint_folders(config.recipe, config.bert_dir, config.roberta, config.gpt2)
    local = {kind: fetch_checkpoint(folder) for kind, folder in folders.items()}
    if rank == 0:  # now, not after the model is built and the first steps have run
        for kind, folder in local.items():
            check_output_dir(config.output_dir, folder, WARM_START[kind][1])
        check_writable(config.output_dir)
    with folder_lock(config.output_dir) if rank == 0 else nullcontext():
        # each half's vocabulary, WikiSplit's <::::> added as one token
        tokenizer, target_tokenizer = build_tokenizers(config.recipe, config.bert_dir, config.roberta, config.gpt2)
        # the weights from the folders fetched above, the ones run_inputs hashes (tokenizers: their own files)
        model = build_model(config.recipe, local.get("bert", local.get("rnd")), config.cross_init, config.dropout,
                            config.seed, verbose=config.progress and rank == 0, tokenizer=tokenizer,
                            roberta_dir=local.get("roberta"), gpt2_dir=local.get("gpt"),
                            target_tokenizer=target_tokenizer)
        check_lengths_fit(model, config.max_source_len, config.max_target_len, recipe=config.recipe)
        pairs = load_wikisplit(config.train_split, config.data_dir, config.task)
        pairs = pairs[:config.train_rows] if config.train_rows else pairs
        if config.drop_long:
            pairs = keep_short_pairs(pairs, tokenizer, config.max_source_len, config.max_target_len, target_tokenizer)
        batches = Seq2SeqBatches(pairs, tokenizer, config.batch_size, config.max_source_len, config.max_target_len,
                                 seed=config.seed, rank=rank, world_size=world_size, target_tokenizer=target_tokenizer)
        validation = load_wikisplit("validation", config.data_dir, config.task)[:config.eval_rows]

        def evaluate_fn(model):  # scores for the log; the rows behind them go to eval_predictions.jsonl
            scores, rows = evaluate(model, tokenizer, validation, target_tokenizer=target_tokenizer)
            atomic_write_text(Path(config.output_dir) / "eval_predictions.jsonl",
                              "".join(json.dumps(row) + "\n" for row in rows))
            return scores
        groups = param_groups(model, config.lr, config.new_lr, config.weight_decay)
        weights = {WARM_START[kind][0]: folder for kind, folder in local.items()}
        Trainer(model, batches, config, groups, evaluate_fn if config.eval_rows else None, tokenizer,
                run_inputs(pairs, tokenizer, weights, target_tokenizer), target_tokenizer).train()
        if rank == 0:
            model.save_pretrained(config.output_dir)
            save_tokenizers(config.output_dir, tokenizer, target_tokenizer)
            atomic_write_text(Path(config.output_dir) / "train_config.json",
                              json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    if dist.is_initialized():
        dist.destroy_process_group()
    return model, tokenizer, target_tokenizer


def field_comments(cls) -> dict:
    """{field name: the comment beside it in `cls`'s source, continuation lines joined}: each flag's --help text,
    written once, where a reader of the dataclass reads it."""
    comments, field = {}, None
    for line in inspect.getsource(cls).splitlines():
        if match := re.match(r"    (\w+): [^#]*#\s*(.*)", line):
            field, comments[match[1]] = match[1], match[2]
        elif field and (more := re.match(r"\s{8,}#\s*(.*)", line)):  # a comment continued on the next line
            comments[field] += " " + more[1]
        else:
            field = None
    return comments


def parse_args(argv=None) -> TrainConfig:
    """TrainConfig from the command line: `--preset NAME` (see recipes.PRESETS) sets defaults, and every field
    is a flag (`max_source_len` -> `--max-source-len`; booleans also as `--no-...`)."""
    from .recipes import PRESETS

    # argument_default=SUPPRESS: flags not given are absent, so they neither override a preset nor the defaults.
    parser = argparse.ArgumentParser(description="Fine-tune an encoder-decoder warm-started from BERT, RoBERTa or "
                                                 "GPT-2 checkpoints (--recipe, --bert-dir, --roberta, --gpt2) on "
                                                 "WikiSplit.",
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="measured settings; other flags override them")
    helps = field_comments(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = next((k for k in (bool, int, float) if field.type is k or k in getattr(field.type, "__args__", ())), str)
        text = f"{helps[field.name]} (default: {field.default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        else:  # "none" gives None, for the optional fields
            parser.add_argument(flag, type=lambda s, kind=kind: None if s.lower() == "none" else kind(s), help=text)
    args = vars(parser.parse_args(argv))
    preset = PRESETS[args.pop("preset")] if "preset" in args else {}
    try:
        return TrainConfig(**{**preset, **args})
    except (TypeError, ValueError) as err:
        parser.error(str(err))  # exits with the usage line and the message


def main(argv=None):
    """The command line: train, and on SIGINT / SIGTERM exit with 130 / 143 once the checkpoint is saved."""
    if not torch.cuda.is_available():
        torch.set_num_threads(min(2, torch.get_num_threads()))  # this project's CPUs are shared: stay polite
    try:
        train(parse_args(argv))
    except TrainingInterrupted as stop:  # the message, with how to resume, is already printed
        sys.exit(stop.exit_code)


if __name__ == "__main__":
    main()
