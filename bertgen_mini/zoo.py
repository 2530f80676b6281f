"""Ready-trained models: the notebooks' own, trained once on this machine, and the paper's, on the Hugging Face Hub.

`finetuned_bert2bert()` fine-tunes the MiniLM bert2bert on WikiSplit's tune split with a preset of
bertgen_mini.recipes (see default_preset), saves it under `<cache>/finetuned/bert2bert-<preset>-<settings hash>/`
in the Hugging Face layout and, on every later call, just loads it. The hash makes a changed preset train a new
model instead of loading one trained with old settings. Delete the folder to train again. Nothing is downloaded.

The run ends by scoring the model on the preset's `eval_rows` WikiSplit validation pairs (greedy, whole sentences,
beside the copy-the-source baseline) and keeps the scores in the folder's metrics.json (`recorded_scores`), so
what a learner is given says how good it is.

PAPER_CHECKPOINTS lists the fine-tuned models Rothe, Narayan & Severyn released (TACL 2020), which
`EncoderDecoderModel.from_pretrained(hub_id)` and `AutoTokenizer.from_pretrained(hub_id)` load (downloaded once
into the Hugging Face cache: see bertgen_mini.hub).
"""
import hashlib
import json
import shutil
from pathlib import Path
from typing import NamedTuple

import torch

from . import paths
from .checkpoint import read_json
from .checks import check_tokenizer_fits
from .devices import ready_for_inference
from .encoder_decoder import EncoderDecoderModel
from .files import atomic_write_text
from .recipes import ADDED_TOKENS, PRESETS
from .tokenizer_wordpiece import BertTokenizer
from .train import LOG_NAME, TrainConfig, checkpoints, read_log, train


class PaperCheckpoint(NamedTuple):
    """One of the paper's fine-tuned models on the Hugging Face Hub."""

    hub_id: str
    task: str       # what it was fine-tuned for, on which data
    size: str       # parameters, and the download (fp32 weights)
    tokenizer: str  # what AutoTokenizer.from_pretrained(hub_id) gives


# Sizes: parameters computed from the 24-layer, 1024-wide BertGeneration configs (shared weights counted once),
# downloads as the Hub lists the weights files (pytorch_model.bin).
SHARED = "455 M (encoder and decoder share weights), 1.8 GB"
SENTENCEPIECE = "BertGenerationTokenizer (spiece.model, 50,358 pieces)"
WORDPIECE = ('BertTokenizer (vocab.txt); pass pad_token="<pad>", eos_token="</s>", bos_token="<s>" as the model '
             "card does")
PAPER_CHECKPOINTS = (
    PaperCheckpoint("google/roberta2roberta_L-24_discofuse", "sentence fusion (DiscoFuse)", SHARED, SENTENCEPIECE),
    PaperCheckpoint("google/roberta2roberta_L-24_wikisplit", "sentence splitting (WikiSplit)", SHARED, SENTENCEPIECE),
    PaperCheckpoint("google/roberta2roberta_L-24_bbc", "extreme summarization (BBC XSum)", SHARED, SENTENCEPIECE),
    PaperCheckpoint("google/roberta2roberta_L-24_cnn_daily_mail", "summarization (CNN/Daily Mail)", SHARED,
                    SENTENCEPIECE),
    PaperCheckpoint("google/roberta2roberta_L-24_gigaword", "headline generation (Gigaword)", SHARED, SENTENCEPIECE),
    PaperCheckpoint("google/bert2bert_L-24_wmt_de_en", "translation German to English (WMT14)",
                    "about 770 M (two halves), 3.1 GB", WORDPIECE),
    PaperCheckpoint("google/bert2bert_L-24_wmt_en_de", "translation English to German (WMT14)",
                    "about 770 M (two halves), 3.1 GB", WORDPIECE),
    PaperCheckpoint("google/bert_for_seq_generation_L-24_bbc_encoder", "the encoder of a BBC summarizer; its "
                    "tokenizer is the roberta2roberta models'", "354 M (an encoder alone), 1.4 GB", SENTENCEPIECE),
)


def paper_checkpoints_table() -> str:
    """PAPER_CHECKPOINTS as a Markdown table (for a notebook's display(Markdown(...)), or a README)."""
    rows = ["| Hub id | task | parameters, download | tokenizer |", "|---|---|---|---|"]
    rows += [f"| `{c.hub_id}` | {c.task} | {c.size} | {c.tokenizer} |" for c in PAPER_CHECKPOINTS]
    return "\n".join(rows)


DONE_MARKER = "train_config.json"  # written last by train(): its presence means the folder is complete
METRICS_NAME = "metrics.json"      # the final validation scores of the run that trained the folder
TRAINING_TIME = {"cpu-quick": "6-7 minutes on 2 CPU cores",  # measured on this project's machines
                 "cpu-hour": "about 40 minutes on 2 CPU cores, 1.6 minutes on one H200 GPU"}


def default_preset() -> str:
    """The preset a notebook gets: "cpu-hour" (better splits) on a GPU, where it trains in minutes, or when
    $BERTGEN_FULL=1; otherwise "cpu-quick", which a 2-core laptop trains in 6-7 minutes (real splits that beat
    copying the source, with a changed word or a repeated phrase here and there)."""
    return "cpu-hour" if torch.cuda.is_available() or not paths.quick_mode() else "cpu-quick"


def model_folder(preset: str, cache_dir=None) -> Path:
    """Where finetuned_bert2bert keeps the model of `preset`: <cache>/finetuned/bert2bert-<preset>-<hash>, the hash
    taken over the preset's settings and the tokens added to the vocabulary (so editing either in recipes.py means
    a new folder, a new training)."""
    settings = {**PRESETS[preset], "added_tokens": ADDED_TOKENS}  # a model trained without <::::> is not reused
    settings_hash = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    root = Path(cache_dir if cache_dir is not None else paths.cache_dir())
    return root / "finetuned" / f"bert2bert-{preset}-{settings_hash}"


def record_scores(folder) -> dict | None:
    """Write `folder`/metrics.json from the final evaluation its training logged (log.jsonl): the validation scores
    (evaluate.evaluate's keys, with the copy baseline's), the rows and decoding they were scored with, and the
    steps and seconds of training. Returns them, or None when the run logged no evaluation."""
    folder = Path(folder)
    records = read_log(folder) if (folder / LOG_NAME).is_file() else []
    evaluations = [r for r in records if "eval_sari" in r]
    steps = [r for r in records if "loss" in r]
    if not evaluations or not steps:
        return None
    settings = read_json(folder / DONE_MARKER)
    final = evaluations[-1]
    scores = {key.removeprefix("eval_"): value for key, value in final.items() if key.startswith("eval_")}
    scores.update(split="validation", rows=settings.get("eval_rows"), num_beams=1, step=final["step"],
                  train_seconds=steps[-1]["elapsed_s"])
    atomic_write_text(folder / METRICS_NAME, json.dumps(scores, indent=2) + "\n")
    return scores


def recorded_scores(preset: str | None = None, cache_dir=None) -> dict | None:
    """The validation scores the cached model of `preset` (default: default_preset()) got at the end of its
    training (see record_scores); None when there are none (not trained yet, or trained without a final
    evaluation)."""
    path = model_folder(preset or default_preset(), cache_dir) / METRICS_NAME
    return read_json(path) if path.is_file() else None


def finetuned_bert2bert(quick: bool | None = None, cache_dir=None, verbose: bool = True, fast: bool = True):
    """The MiniLM bert2bert fine-tuned for sentence splitting, and its tokenizer: (EncoderDecoderModel, BertTokenizer).

    quick: True for the "cpu-quick" preset, False for "cpu-hour"; None (default) lets default_preset() choose.
    cache_dir: default bertgen_mini.paths.cache_dir(). The first call trains (a progress bar when verbose) and an
    interrupted training resumes from its last checkpoint; later calls load from the cache in seconds.
    fast: on a CPU, run through the speed layer (devices.ready_for_inference: the same tokens, faster; the
    measurements are in bench/README.md); False keeps the textbook modules. The model is in evaluation mode, on
    the CPU.
    """
    preset = default_preset() if quick is None else "cpu-quick" if quick else "cpu-hour"
    folder = model_folder(preset, cache_dir)
    if not (folder / DONE_MARKER).is_file():
        if verbose:
            better = ("" if preset != "cpu-quick" else " For the better model set BERTGEN_FULL=1 before starting "
                      f"Jupyter (the 'cpu-hour' preset: {TRAINING_TIME['cpu-hour']}) or use a GPU.")
            print(f"Training the fine-tuned bert2bert once with the {preset!r} preset ({TRAINING_TIME[preset]}); "
                  f"later runs load it from {folder}.{better}")
        train(TrainConfig(**{**PRESETS[preset], "output_dir": str(folder), "progress": verbose, "save_every": 100}))
        record_scores(folder)
        for folder_to_drop in checkpoints(folder):  # the final model is in `folder` itself
            shutil.rmtree(folder_to_drop)
    model, tokenizer = EncoderDecoderModel.from_pretrained(folder), BertTokenizer.from_pretrained(folder)
    check_tokenizer_fits(tokenizer, model)  # a cache folder edited by hand or half-copied: refused, not mispaired
    return ready_for_inference(model, fast), tokenizer
