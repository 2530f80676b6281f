"""Training-step benchmark: bertgen_mini against transformers on the same MiniLM bert2bert.

One step = forward + backward + AdamW, fp32, random token ids, batch 16, source 64, target 32 (the settings of
../shared/reference/bench_train.py). AdamW is torch's fused one for both libraries (FUSED=1), as both trainers
run it (transformers' Trainer defaults to it from torch 2.8 on); FUSED=0 gives both the per-tensor loop of the
reference script instead.

* Speed: one process holds both models and alternates single steps (ours, theirs, ours, ...), so load from other
  jobs on a shared machine hits both alike; medians over STEPS steps each.
* Memory: each implementation trains in its own child process, so its peak RSS is its own; the children alternate.

    python bench/forward_backward.py   # ROUNDS=3 STEPS=16 WARMUP=1 THREADS=2 BATCH=16 SRC_LEN=64 TGT_LEN=32 FUSED=1

Prints the step times, peak RSS per child, and the ratios (speed: theirs/ours step time; memory: ours/theirs).
OMP_WAIT_POLICY is left to the caller, as in bench/generate.py: OpenMP's default on an idle machine, PASSIVE on one
shared with other jobs (where spin-waiting threads starve each other). The children inherit it.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

IMPLS = ("ours", "transformers")
ENV = {k: int(os.environ.get(k, v)) for k, v in
       dict(ROUNDS=3, STEPS=16, WARMUP=1, THREADS=2, BATCH=16, SRC_LEN=64, TGT_LEN=32, FUSED=1).items()}


def build(impl, bert_dir):
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
    return model.train()


def training_step(impl):
    """A closure running one step of `impl`'s model on fixed random data."""
    import warnings

    import torch
    warnings.filterwarnings("ignore")
    torch.set_num_threads(ENV["THREADS"])

    from bertgen_mini.paths import default_bert_dir
    torch.manual_seed(0)
    model = build(impl, str(default_bert_dir()))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=bool(ENV["FUSED"]))
    g = torch.Generator().manual_seed(0)
    src = torch.randint(1000, 30000, (ENV["BATCH"], ENV["SRC_LEN"]), generator=g)
    labels = torch.randint(1000, 30000, (ENV["BATCH"], ENV["TGT_LEN"]), generator=g)
    mask = torch.ones_like(src)

    def step():
        model(input_ids=src, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def speed():
    """Both implementations in this process, single steps alternating: median seconds per step for each."""
    steps = {impl: training_step(impl) for impl in IMPLS}
    times = {impl: [] for impl in IMPLS}
    for i in range(ENV["WARMUP"] + ENV["STEPS"]):
        for impl in IMPLS:
            t = timed(steps[impl])
            if i >= ENV["WARMUP"]:
                times[impl].append(t)
    return {impl: statistics.median(t) for impl, t in times.items()}


def child(impl):
    """Peak RSS of training `impl` alone (WARMUP + 3 steps), printed as JSON for the parent."""
    step = training_step(impl)
    for _ in range(ENV["WARMUP"] + 3):
        step()
    print(json.dumps({"impl": impl, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main():
    import torch
    rss = {impl: [] for impl in IMPLS}
    for _ in range(ENV["ROUNDS"]):
        for impl in IMPLS:
            out = subprocess.run([sys.executable, __file__, impl], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(line))
            rss[impl].append(line["peak_rss_mib"])
    step = speed()
    rss = {k: statistics.median(v) for k, v in rss.items()}
    tokens = ENV["BATCH"] * (ENV["SRC_LEN"] + ENV["TGT_LEN"])
    print(f"\nsettings: {ENV}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(f"{'':<14}{'step (s)':>10}{'tokens/s':>10}{'peak RSS (MiB)':>16}")
    for k in IMPLS:
        print(f"{k:<14}{step[k]:>10.3f}{tokens / step[k]:>10.0f}{rss[k]:>16.0f}")
    print(f"speed-up (transformers step / ours): {step['transformers'] / step['ours']:.2f}x   "
          f"memory (ours / transformers): {rss['ours'] / rss['transformers']:.2f}x")


if __name__ == "__main__":
    child(sys.argv[1]) if len(sys.argv) > 1 else main()
