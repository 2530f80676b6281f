"""Generation speed: bertgen_mini against transformers on the same MiniLM bert2bert weights, eager and compiled.

Every run generates exactly NEW_TOKENS tokens (min_new_tokens = max_new_tokens) from random SRC_LEN-token sources,
greedy and with beams, with and without the key/value cache. The two libraries alternate run by run, so drift on a
shared machine hits both alike; we report medians. Tokens/s counts returned tokens: batch * NEW_TOKENS (not beams).

ISOLATE=1 runs each library alone in its own process instead (ours, then transformers), so neither can slow
the other through shared state (both use the same OpenMP threads; ours also calls oneDNN): a cross-check of the
interleaved ratios, without the token comparison.

bertgen_mini runs with `speed.apply(model, device)` (the engineered CPU modules; nothing is swapped on CUDA), the
path its own inference takes (devices.ready_for_inference); SPEED=0 times its textbook modules instead.
--device cuda runs both on the GPU (fp32). --compile adds both libraries with their encoder and decoder under
`torch.compile(dynamic=True)` (bertgen_mini's textbook modules), the first run's extra time reported as compile time.

Env: THREADS (2), SRC_LEN (64), NEW_TOKENS (32), BATCHES ("1,16"), BEAMS ("1,4"), CACHE ("1,0"), REPEATS (3),
SPEED (1), SKIP_NOCACHE_ABOVE (batch * beams above which use_cache=False is skipped; 16), OMP_WAIT_POLICY (unset:
OpenMP's default, the fastest for both libraries on an idle machine, where PASSIVE made every small parallel operation
wait for a sleeping thread and halved our batch-1 speed; on a machine shared with other jobs set PASSIVE, since there
spin-waiting made both libraries 5-8x slower).
Run from the repo root: python -m bench.generate [--device cuda] [--compile]   (2-4 minutes on 2 idle cores).
Prints a table, JSON, and a last line starting with SUMMARY that states the ratios against the targets.
Reference: /work/shared/reference/bench_generate.py measured transformers alone the same way.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import torch
import transformers

import bertgen_mini as bg
from bertgen_mini import speed

THREADS = int(os.environ.get("THREADS", "2"))
SRC_LEN = int(os.environ.get("SRC_LEN", "64"))
NEW_TOKENS = int(os.environ.get("NEW_TOKENS", "32"))
BATCHES = [int(x) for x in os.environ.get("BATCHES", "1,16").split(",")]
BEAMS = [int(x) for x in os.environ.get("BEAMS", "1,4").split(",")]
CACHE = [x == "1" for x in os.environ.get("CACHE", "1,0").split(",")]
REPEATS = int(os.environ.get("REPEATS", "3"))
SKIP_NOCACHE_ABOVE = int(os.environ.get("SKIP_NOCACHE_ABOVE", "16"))
WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY") or "default"
ISOLATE = os.environ.get("ISOLATE") == "1"
SPEED = os.environ.get("SPEED", "1") == "1"  # 0: bertgen_mini without speed.apply (its plain, textbook modules)
IDS = dict(decoder_start_token_id=101, pad_token_id=0, eos_token_id=102)
TARGETS = {"cpu": {1: 2.0, 16: 1.5}, "cuda": {1: 1.5, 64: 1.5}}  # batch -> speed-up wanted (cached, per beams)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--compile", action="store_true", help="also run both libraries under torch.compile")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_models(device, compiled):
    """Our bert2bert warm-started from MiniLM (with the speed layer, or compiled), and transformers' with our weights
    (cross-attention is new and random, so both must hold the same copy to emit the same tokens)."""
    d = bg.default_bert_dir()
    ours = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(d, d, verbose=False).eval()
    ours.config.decoder_start_token_id, ours.config.pad_token_id, ours.config.eos_token_id = 101, 0, 102
    enc = transformers.BertGenerationEncoder.from_pretrained(d)
    dec = transformers.BertGenerationDecoder.from_pretrained(d, is_decoder=True, add_cross_attention=True)
    theirs = transformers.EncoderDecoderModel(encoder=enc, decoder=dec).eval()
    missing, _ = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not [k for k in missing if "lm_head" not in k], missing  # the tied LM head follows the embeddings
    ours, theirs = ours.to(device), theirs.to(device)
    if not compiled:
        return speed.apply(ours, device) if SPEED else ours, theirs
    for model, body in ((ours, ours.decoder), (theirs, theirs.decoder)):
        model.encoder.forward = torch.compile(model.encoder.forward, dynamic=True)
        body.forward = torch.compile(body.forward, dynamic=True)
    ours.decoder.bert.forward = torch.compile(ours.decoder.bert.forward, dynamic=True)  # our generate calls the body
    return ours, theirs


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def time_runs(device, compiled, only=None):
    """Median timings for every (batch, beams, cache) setting: both libraries alternating run by run, or `only` one
    of them alone. Returns the result rows."""
    torch.set_num_threads(THREADS)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    ours, theirs = build_models(device, compiled)
    g = torch.Generator().manual_seed(0)
    rows = []
    for batch in BATCHES:
        src = torch.randint(1000, 30000, (batch, SRC_LEN), generator=g).to(device)
        mask = torch.ones_like(src)
        for beams in BEAMS:
            for use_cache in CACHE:
                if not use_cache and batch * beams > SKIP_NOCACHE_ABOVE:
                    continue
                kw = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, num_beams=beams, use_cache=use_cache,
                          **IDS)
                runs = {"ours": lambda: ours.generate(src, mask, **kw),
                        "transformers": lambda: theirs.generate(input_ids=src, attention_mask=mask, do_sample=False,
                                                                **kw)}
                impls = ("ours", "transformers") if only is None else (only,)
                with torch.inference_mode():
                    first = {impl: timed(runs[impl], device) for impl in impls}  # the warm-up (and compilation)
                    outputs = {impl: out for impl, (_, out) in first.items()}
                    same = torch.equal(*outputs.values()) if only is None else None
                    times = {impl: [] for impl in impls}
                    for _ in range(REPEATS):
                        for impl in impls:
                            times[impl].append(timed(runs[impl], device)[0])
                row = dict(batch=batch, beams=beams, use_cache=use_cache, same_tokens=same)
                for impl, key in zip(("ours", "transformers"), ("ours", "hf")):
                    if impl in times:
                        row[f"{key}_tok_s"] = round(batch * NEW_TOKENS / statistics.median(times[impl]), 1)
                        row[f"{key}_s"] = [round(t, 3) for t in times[impl]]
                        if compiled:
                            row[f"{key}_first_s"] = round(first[impl][0], 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def isolated_runs(args):
    """time_runs for each library in a child process of its own, merged row by row."""
    merged = None
    for impl in ("ours", "transformers"):
        cmd = [sys.executable, __file__, "--device", args.device, "--child", impl]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        merged = rows if merged is None else [{**a, **b} for a, b in zip(merged, rows)]
    return merged


def table(rows, title):
    print(f"\n{title}\n")
    print("| batch | beams | cache | bertgen_mini tok/s | transformers tok/s | speed-up | same tokens | first run (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        same = "-" if r["same_tokens"] is None else r["same_tokens"]
        first = f"{r['ours_first_s']} / {r['hf_first_s']}" if "ours_first_s" in r else ""
        print(f"| {r['batch']} | {r['beams']} | {'yes' if r['use_cache'] else 'no'} | {r['ours_tok_s']} | "
              f"{r['hf_tok_s']} | {r['speedup']}x | {same} | {first} |")


def summary(rows, device, label):
    """One line: the cached speed-ups at the target batch sizes, and whether they meet the targets."""
    parts = []
    for r in rows:
        if r["use_cache"] and r["batch"] in TARGETS[device]:
            want = TARGETS[device][r["batch"]]
            parts.append(f"batch {r['batch']} beams {r['beams']} {r['speedup']}x "
                         f"(target >= {want}: {'met' if r['speedup'] >= want else 'NOT met'})")
    same = all(r["same_tokens"] is not False for r in rows)
    return f"SUMMARY generation {device} {label}: " + "; ".join(parts) + f"; tokens identical: {same}"


def main():
    args = parse_args()
    if args.child:  # a child of isolated_runs: one library, its rows as the last line
        print(json.dumps(time_runs(args.device, False, only=args.child)))
        return
    variants = [("eager", False)] + ([("compiled", True)] if args.compile else [])
    results, lines = [], []
    for label, compiled in variants:
        rows = isolated_runs(args) if ISOLATE and not compiled else time_runs(args.device, compiled)
        for r in rows:
            r["speedup"] = round(r["ours_tok_s"] / r["hf_tok_s"], 2)
        how = "each library alone in its own process" if ISOLATE and not compiled else \
            "the libraries alternating run by run"
        how += "" if SPEED or compiled else ", bertgen_mini without the speed layer (SPEED=0)"
        table(rows, f"{label}, {args.device}, {THREADS} threads (OMP_WAIT_POLICY={WAIT_POLICY}), source {SRC_LEN} "
                    f"tokens, {NEW_TOKENS} new tokens, median of {REPEATS}, {how}")
        results.append({"variant": label, "runs": rows})
        lines.append(summary(rows, args.device, label))
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "threads": THREADS,
                      "speed_layer": SPEED,
                      "device": args.device, "omp_wait_policy": WAIT_POLICY, "isolate": ISOLATE,
                      "src_len": SRC_LEN, "new_tokens": NEW_TOKENS, "repeats": REPEATS, "results": results}))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
