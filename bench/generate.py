"""Generation speed: bertgen_mini against transformers on the same MiniLM bert2bert weights, on CPU.

Every run generates exactly NEW_TOKENS tokens (min_new_tokens = max_new_tokens) from random SRC_LEN-token sources,
greedy and with beams, with and without the key/value cache. The two libraries alternate run by run, so drift on a
shared machine hits both alike; we report medians. Tokens/s counts returned tokens: batch * NEW_TOKENS (not beams).

ISOLATE=1 runs each library alone in its own process instead (ours, then transformers), so neither can slow
the other through shared state (both use the same OpenMP threads; ours also calls oneDNN): a cross-check of the
interleaved ratios, without the token comparison.

Env: THREADS (2), SRC_LEN (64), NEW_TOKENS (32), BATCHES ("1,16"), BEAMS ("1,4"), CACHE ("1,0"), REPEATS (3),
SKIP_NOCACHE_ABOVE (batch * beams above which use_cache=False is skipped; 16), OMP_WAIT_POLICY (unset: OpenMP's
default, the fastest for both libraries on an idle machine, where PASSIVE made every small parallel operation wait
for a sleeping thread and halved our batch-1 speed; on a machine shared with other jobs set PASSIVE, since there
spin-waiting made both libraries 5-8x slower).
Run from the repo root: python -m bench.generate   (2-4 minutes on 2 idle cores). Prints a table and JSON.
Reference: /work/shared/reference/bench_generate.py measured transformers alone the same way.
"""
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
IMPLS = ("ours", "transformers")
IDS = dict(decoder_start_token_id=101, pad_token_id=0, eos_token_id=102)


def build_models():
    """Our bert2bert warm-started from MiniLM, and transformers' with our weights (cross-attention is new and random,
    so both must hold the same copy to emit the same tokens)."""
    d = bg.default_bert_dir()
    ours = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(d, d, verbose=False).eval()
    ours.config.decoder_start_token_id, ours.config.pad_token_id, ours.config.eos_token_id = 101, 0, 102
    enc = transformers.BertGenerationEncoder.from_pretrained(d)
    dec = transformers.BertGenerationDecoder.from_pretrained(d, is_decoder=True, add_cross_attention=True)
    theirs = transformers.EncoderDecoderModel(encoder=enc, decoder=dec).eval()
    missing, _ = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not [k for k in missing if "lm_head" not in k], missing  # the tied LM head follows the embeddings
    return ours, theirs


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def time_runs(only=None):
    """Median timings for every (batch, beams, cache) setting: both libraries alternating run by run, or `only` one
    of IMPLS alone. Returns the result rows."""
    torch.set_num_threads(THREADS)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    ours, theirs = build_models()
    g = torch.Generator().manual_seed(0)
    rows = []
    for batch in BATCHES:
        src = torch.randint(1000, 30000, (batch, SRC_LEN), generator=g)
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
                impls = IMPLS if only is None else (only,)
                with torch.inference_mode():
                    outputs = {impl: runs[impl]() for impl in impls}  # also the warm-up
                    same = torch.equal(*outputs.values()) if only is None else None
                    times = {impl: [] for impl in impls}
                    for _ in range(REPEATS):
                        for impl in impls:
                            times[impl].append(timed(runs[impl])[0])
                row = dict(batch=batch, beams=beams, use_cache=use_cache, same_tokens=same)
                for impl, key in zip(IMPLS, ("ours", "hf")):
                    if impl in times:
                        row[f"{key}_tok_s"] = round(batch * NEW_TOKENS / statistics.median(times[impl]), 1)
                        row[f"{key}_s"] = [round(t, 3) for t in times[impl]]
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def isolated_runs():
    """time_runs for each library in a child process of its own, merged row by row."""
    merged = None
    for impl in IMPLS:
        out = subprocess.run([sys.executable, __file__, impl], capture_output=True, text=True, check=True)
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        merged = rows if merged is None else [{**a, **b} for a, b in zip(merged, rows)]
    return merged


def main():
    rows = isolated_runs() if ISOLATE else time_runs()
    for r in rows:
        r["speedup"] = round(r["ours_tok_s"] / r["hf_tok_s"], 2)
    how = "each library alone in its own process" if ISOLATE else "the libraries alternating run by run"
    print(f"\n{THREADS} threads (OMP_WAIT_POLICY={WAIT_POLICY}), source {SRC_LEN} tokens, "
          f"{NEW_TOKENS} new tokens, median of {REPEATS}, {how}\n")
    print("| batch | beams | cache | bertgen_mini tok/s | transformers tok/s | speed-up | same tokens |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        same = "-" if r["same_tokens"] is None else r["same_tokens"]
        print(f"| {r['batch']} | {r['beams']} | {'yes' if r['use_cache'] else 'no'} | {r['ours_tok_s']} | "
              f"{r['hf_tok_s']} | {r['speedup']}x | {same} |")
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "threads": THREADS,
                      "omp_wait_policy": WAIT_POLICY, "isolate": ISOLATE,
                      "src_len": SRC_LEN, "new_tokens": NEW_TOKENS, "repeats": REPEATS, "runs": rows}))


if __name__ == "__main__":
    if len(sys.argv) > 1:  # a child of isolated_runs: one library, its rows as the last line
        print(json.dumps(time_runs(only=sys.argv[1])))
    else:
        main()
