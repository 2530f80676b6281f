"""Ready-trained models for the notebooks: trained once on this machine with a measured recipe, then cached.

`finetuned_bert2bert()` fine-tunes the MiniLM bert2bert on WikiSplit's tune split with the preset of
bertgen_mini.recipes (the quick one in CI), saves it under `<cache>/finetuned/bert2bert-<preset>-<settings hash>/`
in the Hugging Face layout and, on every later call, just loads it. The hash makes a changed preset train a new
model instead of loading one trained with old settings. Delete the folder to train again. Nothing is downloaded.
"""
import hashlib
import json
import shutil
from pathlib import Path

from . import paths
from .encoder_decoder import EncoderDecoderModel
from .recipes import PRESETS
from .tokenizer_wordpiece import BertTokenizer
from .train import TrainConfig, checkpoints, train

DONE_MARKER = "train_config.json"  # written last by train(): its presence means the folder is complete


def model_folder(preset: str, cache_dir=None) -> Path:
    """Where finetuned_bert2bert keeps the model of `preset`: <cache>/finetuned/bert2bert-<preset>-<hash>, the hash
    taken over the preset's settings (so editing a preset in recipes.py means a new folder, a new training)."""
    settings_hash = hashlib.sha1(json.dumps(PRESETS[preset], sort_keys=True).encode()).hexdigest()[:8]
    root = Path(cache_dir if cache_dir is not None else paths.cache_dir())
    return root / "finetuned" / f"bert2bert-{preset}-{settings_hash}"


def finetuned_bert2bert(quick: bool | None = None, cache_dir=None, verbose: bool = True):
    """The MiniLM bert2bert fine-tuned for sentence splitting, and its tokenizer: (EncoderDecoderModel, BertTokenizer).

    quick: use the "cpu-quick" preset (about 4 minutes on 2 CPU cores; outputs have the split's form and start to
    copy spans of the source) instead of "cpu-hour" (about 40 minutes; real splits). Default: quick when $CI is
    "true". cache_dir: default bertgen_mini.paths.cache_dir(). The first call trains (printing progress when
    verbose) and an interrupted training resumes from its last checkpoint; later calls load from the cache in seconds.
    """
    if quick is None:
        quick = paths.quick_mode()
    preset = "cpu-quick" if quick else "cpu-hour"
    folder = model_folder(preset, cache_dir)
    if not (folder / DONE_MARKER).is_file():
        if verbose:
            print(f"Training bert2bert with the {preset!r} preset into {folder} (only this once).")
        train(TrainConfig(**{**PRESETS[preset], "output_dir": str(folder), "progress": verbose,
                             "save_every": 100, "eval_rows": 0}))
        for folder_to_drop in checkpoints(folder):  # the final model is in `folder` itself
            shutil.rmtree(folder_to_drop)
    model = EncoderDecoderModel.from_pretrained(folder)
    return model.eval(), BertTokenizer.from_pretrained(folder)
