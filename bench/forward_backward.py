"""Training-step benchmark: bertgen_mini against transformers on the same MiniLM bert2bert.

One step = forward + backward + AdamW, fp32, random token ids, batch 16, source 64, target 32 (the settings of
../shared/reference/bench_train.py). Each implementation runs in its own child process, so peak memory (max RSS)
is its own; the children alternate (ours, theirs, ours, ...) so machine drift hits both alike.

    python bench/forward_backward.py            # ROUNDS=3 STEPS=4 WARMUP=1 THREADS=2 BATCH=16 SRC_LEN=64 TGT_LEN=32

Prints one line per child and a summary with medians and ratios (speed: theirs/ours step time; memory: ours/theirs).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ENV = {k: int(os.environ.get(k, v)) for k, v in
       dict(ROUNDS=3, STEPS=4, WARMUP=1, THREADS=2, BATCH=16, SRC_LEN=64, TGT_LEN=32).items()}


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


def child(impl):
    import warnings

    import torch

    from bertgen_mini.paths import default_bert_dir
    warnings.filterwarnings("ignore")
    torch.set_num_threads(ENV["THREADS"])
    torch.manual_seed(0)
    model = build(impl, str(default_bert_dir()))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(1000, 30000, (ENV["BATCH"], ENV["SRC_LEN"]), generator=g)
    labels = torch.randint(1000, 30000, (ENV["BATCH"], ENV["TGT_LEN"]), generator=g)
    mask = torch.ones_like(src)
    times = []
    for i in range(ENV["WARMUP"] + ENV["STEPS"]):
        t = time.perf_counter()
        model(input_ids=src, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= ENV["WARMUP"]:
            times.append(time.perf_counter() - t)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": impl, "step_s": statistics.median(times), "peak_rss_mib": round(peak_mib)}))


def main():
    results = {"ours": [], "transformers": []}
    for _ in range(ENV["ROUNDS"]):
        for impl in results:
            out = subprocess.run([sys.executable, __file__, impl], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(line))
            results[impl].append(line)
    step = {k: statistics.median(r["step_s"] for r in v) for k, v in results.items()}
    rss = {k: statistics.median(r["peak_rss_mib"] for r in v) for k, v in results.items()}
    tokens = ENV["BATCH"] * (ENV["SRC_LEN"] + ENV["TGT_LEN"])
    print(f"\nsettings: {ENV}")
    print(f"{'':<14}{'step (s)':>10}{'tokens/s':>10}{'peak RSS (MiB)':>16}")
    for k in results:
        print(f"{k:<14}{step[k]:>10.3f}{tokens / step[k]:>10.0f}{rss[k]:>16.0f}")
    print(f"speed-up (transformers step / ours): {step['transformers'] / step['ours']:.2f}x   "
          f"memory (ours / transformers): {rss['ours'] / rss['transformers']:.2f}x")


if __name__ == "__main__":
    child(sys.argv[1]) if len(sys.argv) > 1 else main()
