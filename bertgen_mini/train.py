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
learning rate, the number of steps). References: Karpathy's nanoGPT `train.py` and minGPT `trainer.py`;
Loshchilov & Hutter 2019 (AdamW); transformers' Trainer for the checkpoint layout.
"""
import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import speed
from .checkpoint import load_state, read_state_dict
from .checks import check_field_types
from .devices import pick_device
from .files import atomic_write, atomic_write_text, check_writable
from .recipes import CROSS_INITS, RECIPES

STATE_NAME = "trainer_state.json"            # written last: a checkpoint folder is complete once it is there
TENSORS_NAME = "trainer_state.safetensors"   # the optimizer's moments and the RNG states
LEGACY_STATE_NAME = "trainer_state.pt"       # older versions' trainer state: a pickle, not read (convert_legacy_state)
LOG_NAME = "log.jsonl"
CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
# What a resumed run must share with its checkpoint: the model, and which pairs make up which step.
FIXED_ON_RESUME = ("recipe", "bert_dir", "cross_init", "dropout", "task", "train_split", "train_rows", "max_source_len",
                   "max_target_len", "drop_long", "batch_size", "grad_accum", "seed", "weight_decay", "precision")
# What it may change: applied from the next step on (the schedule recomputed), and logged.
CHANGEABLE_ON_RESUME = ("lr", "new_lr", "steps", "warmup_steps", "max_grad_norm")


@dataclass
class TrainConfig:
    output_dir: str = "runs/bert2bert"      # checkpoints, log.jsonl and the final model go here
    # --- the model (see bertgen_mini.recipes)
    recipe: str = "bert2bert"               # bert2bert, bertshare, bert2rnd, rnd2bert or rnd2rnd
    bert_dir: str | None = None             # BERT checkpoint folder; None = the bundled all-MiniLM-L6-v2
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
    weight_decay: float = 0.01
    warmup_steps: int = 30
    max_grad_norm: float = 1.0
    precision: str = "auto"                 # auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16 or fp16
    speed: bool = True                      # on CPU, swap in bertgen_mini.speed's engineered modules (same numbers)
    compile: bool = False                   # torch.compile the textbook model instead (eager if no compiler works)
    seed: int = 0
    # --- evaluation, logging, checkpoints
    eval_every: int = 0                     # generate on eval_rows validation pairs every N steps (0 = only at the end)
    eval_rows: int = 100
    save_every: int = 0                     # write a checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 1               # how many checkpoint-<step> folders to keep (at least 1)
    resume: bool = True                     # continue from the newest checkpoint in output_dir if there is one
    progress: bool = True                   # tqdm bar

    def __post_init__(self):
        """Every field checked here, so a setting that cannot train fails before anything is built."""
        check_field_types(self)
        positive = lambda x: x is not None and math.isfinite(x) and x > 0
        rules = [("output_dir", self.output_dir != "", "a folder name"),
                 ("recipe", self.recipe in RECIPES, f"one of {', '.join(RECIPES)}"),
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
    Other checkpoint-* folders (checkpoint-best, ...) are not resumed from nor deleted; a warning says so."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match is None:
            warnings.warn(f"{path} is not named checkpoint-<step>: ignored (never resumed from, never deleted).")
        elif (path / STATE_NAME).is_file():
            found.append((int(match[1]), path))
    return [path for _, path in sorted(found)]


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


def read_state(folder: Path) -> dict:
    """The trainer state write_state wrote, as Trainer.state() gives it. Errors name the damaged file."""
    try:
        plain = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
        step = plain["step"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{folder / STATE_NAME} is damaged ({str(err)[:100]}). Delete {folder} to resume from "
                         "the checkpoint before it, or start afresh with --no-resume.") from None
    try:
        tensors = load_file(folder / TENSORS_NAME)
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{folder / TENSORS_NAME} is damaged or missing ({str(err)[:100]}). Delete {folder} to "
                         "resume from the checkpoint before it, or start afresh with --no-resume.") from None
    moments = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, param, key = name.split(".", 2)
            moments.setdefault(int(param), {})[key] = value
    groups = [{**group, "betas": tuple(group["betas"])} for group in plain.pop("param_groups")]  # JSON made a list
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    return {**plain, "step": step, "optimizer": {"state": moments, "param_groups": groups},
            "cpu_rng": tensors["rng.cpu"], "cuda_rng": cuda or None}


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


class Trainer:
    """Trains `model` on `batches` (an iterable of dicts with input_ids, attention_mask, labels; re-iterated once
    per epoch, with set_epoch(epoch) called first when it has one). `groups`: AdamW parameter groups (see
    recipes.param_groups); default one group at config.lr. `evaluate_fn(model) -> dict` scores the model every
    config.eval_every steps and at the end (rank 0 only); its dict goes into the log."""

    def __init__(self, model, batches, config: TrainConfig, groups=None, evaluate_fn=None, tokenizer=None):
        if len(batches) == 0:
            raise ValueError("No training batches: the data is empty (or drop_long dropped every pair).")
        self.config, self.batches, self.evaluate_fn, self.tokenizer = config, batches, evaluate_fn, tokenizer
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = pick_device()
        self.model = model.to(self.device)
        if config.speed and not config.compile:
            speed.apply(model, self.device)  # the one place speed is switched on; nothing to swap on CUDA
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
        spans config.steps."""
        cfg = self.config
        until = cfg.steps if until is None else min(until, cfg.steps)
        if cfg.resume:
            refuse_legacy_state(self.output_dir)
            if checkpoints(self.output_dir):
                self.load(checkpoints(self.output_dir)[-1])
        self.model.train()
        batches = self.micro_batches()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.is_main), unit="step")
        start, tokens_seen = time.time(), 0
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
            if cfg.save_every and self.step % cfg.save_every == 0 and self.step < until:
                self.save()
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < until:
                self.run_evaluation()
        bar.close()
        self.save()
        if self.step == cfg.steps:
            self.run_evaluation()
        return self.model

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
            with open(self.output_dir / LOG_NAME, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    # ---------------------------------------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "cpu_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "world_size": self.world_size, "config": dataclasses.asdict(self.config)}

    def save(self):
        """Write checkpoint-<step> (the model, then the trainer state); drop checkpoints beyond keep_checkpoints.
        Rank 0 only; the other processes wait for it."""
        if self.is_main:
            folder = self.output_dir / f"checkpoint-{self.step}"
            self.model.save_pretrained(folder)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(folder)
            write_state(folder, self.state())
            for old in checkpoints(self.output_dir)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old)
        if self.world_size > 1:
            dist.barrier()

    def load(self, folder: Path):
        """Continue from checkpoint `folder`: settings compared, weights into the existing model, then optimizer,
        scheduler (on this run's learning rates and length), RNG."""
        state = read_state(folder)
        self.check_resume(folder, state)
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
        self.changes_on_resume = {name: [saved.get(name), now[name]]
                                  for name in CHANGEABLE_ON_RESUME if saved.get(name) != now[name]}


# -------------------------------------------------------------------------------------------------- the whole run
def keep_short_pairs(pairs, tokenizer, max_source_len: int, max_target_len: int):
    """The pairs whose source (with [CLS]/[SEP]) and target (with the end token) fit the limits uncut."""
    src = tokenizer([p.source for p in pairs], add_special_tokens=True)["input_ids"]
    tgt = tokenizer([p.target for p in pairs], add_special_tokens=False)["input_ids"]
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


def train(config: TrainConfig):
    """Build the recipe's model, train it on WikiSplit and save it (HF layout, with the tokenizer) in
    config.output_dir. Returns (model, tokenizer)."""
    from .data import Seq2SeqBatches, load_wikisplit
    from .evaluate import evaluate
    from .recipes import build_model, build_tokenizer, param_groups

    rank, world_size = setup_distributed()
    if rank == 0:
        check_writable(config.output_dir)  # now, not after the model is built and the first steps have run
    bert_dir = Path(config.bert_dir) if config.bert_dir else None
    tokenizer = build_tokenizer(bert_dir)  # BERT's WordPiece plus WikiSplit's <::::> as one token
    model = build_model(config.recipe, bert_dir, config.cross_init, config.dropout, config.seed,
                        verbose=config.progress and rank == 0, tokenizer=tokenizer)
    pairs = load_wikisplit(config.train_split, config.data_dir, config.task)
    pairs = pairs[:config.train_rows] if config.train_rows else pairs
    if config.drop_long:
        pairs = keep_short_pairs(pairs, tokenizer, config.max_source_len, config.max_target_len)
    batches = Seq2SeqBatches(pairs, tokenizer, config.batch_size, config.max_source_len, config.max_target_len,
                             seed=config.seed, rank=rank, world_size=world_size)
    validation = load_wikisplit("validation", config.data_dir, config.task)[:config.eval_rows]

    def evaluate_fn(model):  # scores for the log; the rows behind them go to eval_predictions.jsonl
        scores, rows = evaluate(model, tokenizer, validation)
        atomic_write_text(Path(config.output_dir) / "eval_predictions.jsonl",
                          "".join(json.dumps(row) + "\n" for row in rows))
        return scores
    groups = param_groups(model, config.lr, config.new_lr, config.weight_decay)
    Trainer(model, batches, config, groups, evaluate_fn if config.eval_rows else None, tokenizer).train()
    if rank == 0:
        model.save_pretrained(config.output_dir)
        tokenizer.save_pretrained(config.output_dir)
        atomic_write_text(Path(config.output_dir) / "train_config.json",
                          json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    if dist.is_initialized():
        dist.destroy_process_group()
    return model, tokenizer


def parse_args(argv=None) -> TrainConfig:
    """TrainConfig from the command line: `--preset NAME` (see recipes.PRESETS) sets defaults, and every field
    is a flag (`max_source_len` -> `--max-source-len`; booleans also as `--no-...`)."""
    from .recipes import PRESETS

    # argument_default=SUPPRESS: flags not given are absent, so they neither override a preset nor the defaults.
    parser = argparse.ArgumentParser(description="Fine-tune a BERT encoder-decoder on WikiSplit.",
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="measured settings; other flags override them")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = next((k for k in (bool, int, float) if field.type is k or k in getattr(field.type, "__args__", ())), str)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction)
        else:  # "none" gives None, for the optional fields
            parser.add_argument(flag, type=lambda s, kind=kind: None if s.lower() == "none" else kind(s))
    args = vars(parser.parse_args(argv))
    preset = PRESETS[args.pop("preset")] if "preset" in args else {}
    try:
        return TrainConfig(**{**preset, **args})
    except (TypeError, ValueError) as err:
        parser.error(str(err))  # exits with the usage line and the message


if __name__ == "__main__":
    if not torch.cuda.is_available():
        torch.set_num_threads(min(2, torch.get_num_threads()))  # this project's CPUs are shared: stay polite
    train(parse_args())
