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
config.json + model.safetensors) and trainer_state.pt (optimizer, scheduler, scaler, RNG, step), each written
atomically; trainer_state.pt is written last, so a folder without it is an interrupted save and is ignored. A
resumed run continues exactly where the saved one stopped. References: Karpathy's nanoGPT `train.py` and minGPT
`trainer.py`; Loshchilov & Hutter 2019 (AdamW); transformers' Trainer for the checkpoint layout.
"""
import argparse
import dataclasses
import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .checkpoint import load_state, read_state_dict
from .files import atomic_write
from .paths import default_bert_dir

STATE_NAME = "trainer_state.pt"
LOG_NAME = "log.jsonl"


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
    seed: int = 0
    # --- evaluation, logging, checkpoints
    eval_every: int = 0                     # generate on eval_rows validation pairs every N steps (0 = only at the end)
    eval_rows: int = 100
    save_every: int = 0                     # write a checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 1               # how many checkpoint-<step> folders to keep
    resume: bool = True                     # continue from the newest checkpoint in output_dir if there is one
    progress: bool = True                   # tqdm bar


def pick_device() -> torch.device:
    """CUDA (this process's GPU under torchrun) when present, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


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
    """Complete checkpoint folders in output_dir, oldest first (a folder counts once trainer_state.pt is in it)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if (p / STATE_NAME).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


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
        # DDP averages gradients over processes; the loss below is scaled so the average is the big-batch gradient.
        self.ddp = torch.nn.parallel.DistributedDataParallel(model) if self.world_size > 1 else None
        self.dtype = autocast_dtype(config.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)
        groups = groups if groups is not None else [{"params": [p for p in model.parameters() if p.requires_grad]}]
        # fused: one kernel for all of AdamW's arithmetic (CPU too: 20-30 ms a step for MiniLM bert2bert against
        # 150 for the per-tensor loop), the default of transformers' Trainer as well
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_linear_decay(config.warmup_steps, config.steps))
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
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
        model = self.ddp or self.model
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
        if cfg.resume and checkpoints(self.output_dir):
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
        """Append one JSON line to output_dir/log.jsonl (rank 0 only): the data for loss curves."""
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
                "config": dataclasses.asdict(self.config)}

    def save(self):
        """Write checkpoint-<step> (model, then trainer_state.pt) and the final model in output_dir itself;
        drop checkpoints beyond keep_checkpoints. Rank 0 only; the other processes wait for it."""
        if self.is_main:
            folder = self.output_dir / f"checkpoint-{self.step}"
            self.model.save_pretrained(folder)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(folder)
            atomic_write(folder / STATE_NAME, lambda tmp: torch.save(self.state(), tmp))
            for old in checkpoints(self.output_dir)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old)
        if self.world_size > 1:
            dist.barrier()

    def load(self, folder: Path):
        """Continue from checkpoint `folder`: weights into the existing model, then optimizer, scheduler, RNG."""
        load_state(self.model, read_state_dict(folder), str(folder))
        state = torch.load(folder / STATE_NAME, map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["cpu_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if self.is_main:
            tqdm.write(f"Resuming from {folder} at step {self.step}.")


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
    from .recipes import build_model, param_groups
    from .tokenizer_wordpiece import BertTokenizer

    rank, world_size = setup_distributed()
    bert_dir = Path(config.bert_dir) if config.bert_dir else None
    model = build_model(config.recipe, bert_dir, config.cross_init, config.dropout, config.seed,
                        verbose=config.progress and rank == 0)
    tokenizer = BertTokenizer.from_pretrained(bert_dir or default_bert_dir())
    pairs = load_wikisplit(config.train_split, config.data_dir, config.task)
    pairs = pairs[:config.train_rows] if config.train_rows else pairs
    if config.drop_long:
        pairs = keep_short_pairs(pairs, tokenizer, config.max_source_len, config.max_target_len)
    batches = Seq2SeqBatches(pairs, tokenizer, config.batch_size, config.max_source_len, config.max_target_len,
                             seed=config.seed, rank=rank, world_size=world_size)
    validation = load_wikisplit("validation", config.data_dir, config.task)[:config.eval_rows]

    def evaluate_fn(model):  # scores for the log; the rows behind them go to eval_predictions.jsonl
        scores, rows = evaluate(model, tokenizer, validation)
        atomic_write(Path(config.output_dir) / "eval_predictions.jsonl", lambda tmp: Path(tmp).write_text(
            "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"))
        return scores
    groups = param_groups(model, config.lr, config.new_lr, config.weight_decay)
    Trainer(model, batches, config, groups, evaluate_fn if config.eval_rows else None, tokenizer).train()
    if rank == 0:
        model.save_pretrained(config.output_dir)
        tokenizer.save_pretrained(config.output_dir)
        atomic_write(Path(config.output_dir) / "train_config.json", lambda tmp: Path(tmp).write_text(
            json.dumps(dataclasses.asdict(config), indent=2) + "\n", encoding="utf-8"))
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
    return TrainConfig(**{**preset, **args})


if __name__ == "__main__":
    if not torch.cuda.is_available():
        torch.set_num_threads(min(2, torch.get_num_threads()))  # this project's CPUs are shared: stay polite
    train(parse_args())
