"""Training-step benchmark: bertgen_mini against transformers on the same MiniLM bert2bert, eager and compiled.

One step = forward + backward + fused AdamW on random token ids (batch 16, source 64, target 32 by default; the
settings of ../shared/reference/bench_train.py). fp32 on CPU, bf16 autocast (fp32 master weights) on CUDA.
bertgen_mini runs as its Trainer runs it: `speed.apply(model, device)` (the engineered CPU modules; nothing is
swapped on CUDA). With --compile both libraries also run under `torch.compile` (bertgen_mini's textbook model,
which compiles as one graph); the first compiled step's extra time is reported apart, as compile time.

* Speed: one process holds every variant and alternates single steps (ours, theirs, ours compiled, ...), so load
  from other jobs on a shared machine hits all alike; medians over --steps steps each.
* Memory (eager only): each library trains in a child process of its own, alternating; CPU: peak RSS, CUDA: peak
  allocated by torch. Median over --rounds children.

    python bench/forward_backward.py                         # CPU, 2 threads: the README's table
    python bench/forward_backward.py --device cuda --compile # GPU, bf16: both libraries eager and compiled

The last line starts with SUMMARY and states the ratios against the targets. OMP_WAIT_POLICY is left to the
caller: OpenMP's default on an idle machine, PASSIVE on one shared with other jobs.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings

import torch

TARGETS = {"cpu": dict(speed=1.25, memory=0.9), "cuda": dict(speed=1.25, compiled_speed=1.0)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--compile", action="store_true", help="also time both libraries under torch.compile")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="default: fp32 on CPU, bf16 autocast on CUDA")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--src-len", type=int, default=64)
    p.add_argument("--tgt-len", type=int, default=32)
    p.add_argument("--steps", type=int, default=16, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="memory children per library (0: skip memory)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    return args


def build(impl, bert_dir, device):
    """MiniLM bert2bert in train mode: ours with the speed layer applied, or transformers' (sdpa attention)."""
    if impl == "ours":
        import bertgen_mini as bg
        model = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(
            bert_dir, bert_dir, verbose=False, encoder_bos_token_id=101, encoder_eos_token_id=102,
            decoder_bos_token_id=101, decoder_eos_token_id=102)
    else:
        import transformers
        transformers.logging.set_verbosity_error()
        kw = dict(bos_token_id=101, eos_token_id=102)
        enc = transformers.BertGenerationEncoder.from_pretrained(bert_dir, **kw)
        dec = transformers.BertGenerationDecoder.from_pretrained(bert_dir, add_cross_attention=True, is_decoder=True, **kw)
        model = transformers.EncoderDecoderModel(encoder=enc, decoder=dec)
    model.config.decoder_start_token_id, model.config.pad_token_id = 101, 0
    return model.to(device).train()


def training_step(variant, args):
    """A closure running one step of `variant` ("ours", "transformers", "ours compiled", ...) on fixed data."""
    from bertgen_mini import speed
    from bertgen_mini.paths import default_bert_dir
    impl, compiled = variant.split()[0], variant.endswith("compiled")
    torch.manual_seed(0)
    model = build(impl, str(default_bert_dir()), args.device)
    if impl == "ours" and not compiled:
        speed.apply(model, args.device)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(1000, 30000, (args.batch, args.src_len), generator=g).to(args.device)
    labels = torch.randint(1000, 30000, (args.batch, args.tgt_len), generator=g).to(args.device)
    mask = torch.ones_like(src)
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def step():
        with torch.autocast(args.device, dtype, enabled=dtype is not None):
            loss = forward(input_ids=src, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def timed(step, device):
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def speed_run(args, variants):
    """All variants in this process, single steps alternating. Returns median seconds a step and, for compiled
    variants, the first step's extra seconds (compilation)."""
    steps = {v: training_step(v, args) for v in variants}
    first = {v: timed(steps[v], args.device) for v in variants}
    times = {v: [] for v in variants}
    for i in range(args.warmup - 1 + args.steps):
        for v in variants:
            t = timed(steps[v], args.device)
            if i >= args.warmup - 1:
                times[v].append(t)
    median = {v: statistics.median(t) for v, t in times.items()}
    return median, {v: first[v] - median[v] for v in variants if v.endswith("compiled")}


def child(args):
    """Peak memory (MiB) of training args.child alone for warmup + 3 steps, printed as JSON for the parent."""
    step = training_step(args.child, args)
    for _ in range(args.warmup + 3):
        step()
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": args.child, "peak_mib": round(peak)}))


def memory_run(args, argv):
    peaks = {impl: [] for impl in ("ours", "transformers")}
    for _ in range(args.rounds):
        for impl in peaks:
            out = subprocess.run([sys.executable, __file__, *argv, "--child", impl], capture_output=True, text=True,
                                 check=True)
            peaks[impl].append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
    return {impl: statistics.median(p) for impl, p in peaks.items() if p}


def verdict(value, target, at_least=True):
    ok = value >= target if at_least else value <= target
    return f"{value:.2f}x (target {'>=' if at_least else '<='} {target}: {'met' if ok else 'NOT met'})"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.child:
        return child(args)
    variants = ["ours", "transformers"] + (["ours compiled", "transformers compiled"] if args.compile else [])
    memory = memory_run(args, argv) if args.rounds else {}
    step, compile_s = speed_run(args, variants)
    tokens = args.batch * (args.src_len + args.tgt_len)
    unit = "peak allocated" if args.device == "cuda" else "peak RSS"
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} CPU threads"
    print(f"\n{vars(args)}, torch {torch.__version__}, {device}")
    print(f"{'':<24}{'step (s)':>10}{'tokens/s':>10}{'compile (s)':>13}{unit + ' (MiB)':>22}")
    for v in variants:
        comp = f"{compile_s[v]:.1f}" if v in compile_s else ""
        mem = f"{memory[v]:.0f}" if v in memory else ""
        print(f"{v:<24}{step[v]:>10.4f}{tokens / step[v]:>10.0f}{comp:>13}{mem:>22}")
    target = TARGETS[args.device]
    summary = f"SUMMARY training step {args.device} {args.precision}: speed {verdict(step['transformers'] / step['ours'], target['speed'])}"
    if memory:
        ratio = memory["ours"] / memory["transformers"]
        summary += f", memory {verdict(ratio, target['memory'], at_least=False)}" if "memory" in target else \
            f", memory {ratio:.2f}x"
    if args.compile:
        best_ours = min(step["ours"], step["ours compiled"])
        summary += (f"; compiled: ours compiled {step['transformers'] / step['ours compiled']:.2f}x transformers "
                    f"eager, best of ours against transformers compiled "
                    f"{verdict(step['transformers compiled'] / best_ours, target.get('compiled_speed', 1.0))}")
    print(summary)


if __name__ == "__main__":
    main()
