"""WikiSplit loading (never from the network; tune and validation bundled) and length-bucketed, padded, sharded
batches."""
import gzip
import hashlib
import io
import logging
import urllib.error
import zipfile

import pytest
import torch

from bertgen_mini import data
from bertgen_mini.data import (Pair, Seq2SeqBatches, collate, download, encode_pairs, load_wikisplit,
                               parse_wikisplit)

PAD, CLS, SEP = 0, 1, 2


class WhitespaceTokenizer:
    """A stand-in for the real tokenizers: one id per distinct word, BERT-style [CLS] ... [SEP] specials."""
    pad_token_id, sep_token_id, eos_token_id = PAD, SEP, None

    def __init__(self):
        self.vocab = {}

    def __call__(self, texts, add_special_tokens=True, truncation=False, max_length=None):
        out = []
        for text in texts:
            ids = [self.vocab.setdefault(word, len(self.vocab) + 3) for word in text.split()]
            if truncation:
                ids = ids[:max_length - 2 if add_special_tokens else max_length]
            out.append([CLS] + ids + [SEP] if add_special_tokens else ids)
        return {"input_ids": out}


class EosTokenizer(WhitespaceTokenizer):
    """A sentencepiece-style tokenizer: its own end id, no specials, returns plain lists."""
    eos_token_id = 99

    def __call__(self, texts, add_special_tokens=True, truncation=False, max_length=None):
        return super().__call__(texts, False, truncation, max_length)["input_ids"]


def numbered_pairs(n):
    """Pairs whose source repeats the word w{i} 1..17 times, so lengths vary and each source names its example."""
    return [Pair(" ".join(f"w{i}" for _ in range(i % 17 + 1)), f"t{i} end") for i in range(n)]


def source_word(tokenizer, input_ids_row):
    """Recover the example number from an encoded source row."""
    words = {v: k for k, v in tokenizer.vocab.items()}
    return int(words[int(input_ids_row[1])][1:])


# ---------------------------------------------------------------------------------------------------- loading

UPSTREAM_SHA256 = {  # of the upstream tune.tsv and validation.tsv (google-research-datasets/wiki-split)
    "tune": "67118f483438fc9f0ba12e63dc37f0eeff8bbad1873157509ced7e3e46582312",
    "validation": "63931ff45b7d95d60480bdcd466d69894fc02a0ec975cab8d0955e9b8cceb922",
}


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    """A machine with no WikiSplit anywhere but the package: no $BERTGEN_DATA, an empty cache."""
    monkeypatch.delenv("BERTGEN_DATA", raising=False)
    monkeypatch.setenv("BERTGEN_CACHE", str(tmp_path / "empty-cache"))


def test_bundled_files_are_byte_identical_to_upstream():
    for split, sha in UPSTREAM_SHA256.items():
        raw = gzip.decompress((data.BUNDLED / f"{split}.tsv.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sha == data.BUNDLED_SHA256[split]
        assert raw.count(b"\n") == 5000
    notice = (data.BUNDLED / "README.md").read_text()
    assert "CC BY-SA 4.0" in notice and "Botha" in notice and all(sha in notice for sha in UPSTREAM_SHA256.values())


def test_load_wikisplit_both_directions_offline(no_local_data):
    split = load_wikisplit("tune")
    fuse = load_wikisplit("tune", task="fuse")
    assert len(split) == len(fuse) == 5000 and len(load_wikisplit("validation")) == 5000
    assert data.SENTENCE_SEPARATOR in split[0].target and data.SENTENCE_SEPARATOR not in split[0].source
    assert fuse[0] == Pair(split[0].target, split[0].source)
    assert data.find_wikisplit("validation") == data.BUNDLED / "validation.tsv.gz"


def test_search_order_data_dir_then_bertgen_data_then_cache_then_bundled(tmp_path, monkeypatch):
    for folder in ("mine", "env/wikisplit", "cache/wikisplit"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "tune.tsv").write_text(f"{folder} .\tx .\n")
    monkeypatch.setenv("BERTGEN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("BERTGEN_CACHE", str(tmp_path / "cache"))
    assert load_wikisplit("tune", tmp_path / "mine")[0].source == "mine ."
    assert load_wikisplit("tune")[0].source == "env/wikisplit ."
    (tmp_path / "env/wikisplit/tune.tsv").unlink()
    assert load_wikisplit("tune")[0].source == "cache/wikisplit ."
    (tmp_path / "cache/wikisplit/tune.tsv").unlink()
    assert len(load_wikisplit("tune")) == 5000  # the bundled copy


def test_bertgen_data_without_wikisplit_says_which_file_it_used(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BERTGEN_DATA", str(tmp_path / "typo"))
    monkeypatch.setenv("BERTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "_announced", set())
    with caplog.at_level(logging.WARNING, logger="bertgen_mini.data"):
        assert len(load_wikisplit("validation")) == 5000
        load_wikisplit("validation")
    said = [r.getMessage() for r in caplog.records if "validation" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path / "typo") in said[0] and "validation.tsv.gz" in said[0]


def test_a_mistyped_data_dir_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    (tmp_path / "env" / "wikisplit").mkdir(parents=True)
    (tmp_path / "env" / "wikisplit" / "tune.tsv").write_text("a .\tb .\n")
    monkeypatch.setenv("BERTGEN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match=r"No WikiSplit 'tune' file in the data folder you gave.*dta.*"
                                                r"leave the folder out"):
        load_wikisplit("tune", tmp_path / "dta")


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_a_damaged_bundled_file_fails_loudly_and_says_how_to_restore_it(tmp_path, monkeypatch, no_local_data,
                                                                          damage):
    packed = (data.BUNDLED / "tune.tsv.gz").read_bytes()
    if damage == "truncated":
        packed = packed[:len(packed) // 2]
    else:
        raw = gzip.decompress(packed)
        packed = gzip.compress(raw[:-40] + raw[-40:].upper())
    (tmp_path / "tune.tsv.gz").write_bytes(packed)
    monkeypatch.setattr(data, "BUNDLED", tmp_path)
    with pytest.raises(ValueError, match=r"tune.tsv.gz, is damaged: .*reinstalling bertgen_mini"):
        load_wikisplit("tune")


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    (tmp_path / "tune.tsv").write_bytes("a .\tb .\n".encode() + "caf\u00e9 .\tx .\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"tune.tsv, line 2, is not UTF-8 text"):
        load_wikisplit("tune", tmp_path)


def test_malformed_rows_are_reported_by_line_and_skipped(tmp_path, caplog):
    (tmp_path / "tune.tsv").write_text("a b .\ta . <::::> b .\n"
                                       "only one column\n"
                                       "c d .\tc . <::::> d .\n"
                                       "\tempty source\n"
                                       "x\ty\tthree columns\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 3 malformed rows .* at lines 2, 4, 5"):
        pairs = load_wikisplit("tune", tmp_path)
    assert pairs == [Pair("a b .", "a . <::::> b ."), Pair("c d .", "c . <::::> d .")]
    assert "lines 2, 4, 5" in caplog.text


def test_lines_break_only_at_newline(tmp_path):
    (tmp_path / "test.tsv").write_text("a\u2028b\tc\rd\n", encoding="utf-8")  # Wikipedia text holds odd breaks
    assert load_wikisplit("test", tmp_path) == [Pair("a\u2028b", "c\rd")]


def test_train_is_read_from_its_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "train.tsv.zip", "w") as archive:
        archive.writestr("train.tsv", "a b .\ta . <::::> b .\nc d .\tc . <::::> d .\n")
    assert load_wikisplit("train", tmp_path, task="fuse")[1] == Pair("c . <::::> d .", "c d .")


def test_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BERTGEN_CACHE", str(tmp_path / "cache"))

    def offline(url, dest):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "download", offline)
    with pytest.raises(FileNotFoundError) as error:
        load_wikisplit("test")
    message = str(error.value)
    for folder in ("data/wikisplit", "cache/wikisplit"):
        assert str(tmp_path / folder) in message
    assert "test.tsv" in message and "name resolution" in message


def test_download_writes_atomically(tmp_path, monkeypatch):
    source = tmp_path / "remote.tsv"
    source.write_text("a\tb\n")
    download(source.as_uri(), tmp_path / "cache" / "tune.tsv")  # a file:// URL: no network
    assert (tmp_path / "cache" / "tune.tsv").read_text() == "a\tb\n"

    class BrokenStream(io.BytesIO):
        def read(self, *args):
            raise ConnectionResetError("connection dropped")

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: BrokenStream())
    with pytest.raises(ConnectionResetError):
        download("https://example.invalid/test.tsv", tmp_path / "cache" / "test.tsv")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tune.tsv"]  # no half file left


def test_bad_split_or_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tune, validation, test, train"):
        load_wikisplit("dev", tmp_path)
    with pytest.raises(ValueError, match="'split'"):
        parse_wikisplit(["a\tb"], task="merge")


# ---------------------------------------------------------------------------------------------------- batches

def test_labels_end_with_the_end_id_and_have_no_start_token():
    tok = WhitespaceTokenizer()
    sources, labels, report = encode_pairs([Pair("a b c d e", "x y z"), Pair("a", "x")], tok,
                                           max_source_len=4, max_target_len=3)
    a, b, c, x, y = (tok.vocab[w] for w in "abcxy")
    assert sources == [[CLS, a, b, SEP], [CLS, a, SEP]]  # the tokenizer cuts around its own specials
    assert labels == [[x, y, SEP], [x, SEP]]  # 3 target tokens cut to 2 to leave room for the end id
    assert (report.examples, report.truncated_sources, report.truncated_targets) == (2, 1, 1)


def test_end_id_prefers_eos_token_id_and_plain_list_output_works():
    sources, labels, _ = encode_pairs([Pair("a", "b")], EosTokenizer(), 8, 8)
    assert labels[0][-1] == 99 and sources[0] == [3]


def test_collate_pads_masks_and_hides_padding_from_the_loss():
    batch = collate([[1, 5, 2], [1, 2]], [[7, 2], [2]], pad_token_id=PAD)
    assert torch.equal(batch["input_ids"], torch.tensor([[1, 5, 2], [1, 2, PAD]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1], [1, 1, 0]]))
    assert torch.equal(batch["labels"], torch.tensor([[7, 2], [2, -100]]))
    assert all(t.dtype == torch.long for t in batch.values())


def test_each_epoch_covers_every_example_once_in_similar_length_batches():
    tok = WhitespaceTokenizer()
    batches = Seq2SeqBatches(numbered_pairs(203), tok, batch_size=8, bucket_batches=5, seed=1)
    seen, padding = [], 0
    for batch in batches:
        seen += [source_word(tok, row) for row in batch["input_ids"]]
        padding += int((batch["attention_mask"] == 0).sum())
    assert sorted(seen) == list(range(203)) and len(batches) == 26
    unsorted = sum(int((b["attention_mask"] == 0).sum())
                   for b in Seq2SeqBatches(numbered_pairs(203), tok, batch_size=8, bucket_batches=1, seed=1))
    assert padding < unsorted / 3  # sorting within buckets of 40 removes most padding


def test_order_depends_only_on_seed_and_epoch():
    tok = WhitespaceTokenizer()
    a = Seq2SeqBatches(numbered_pairs(100), tok, batch_size=4, seed=3)
    b = Seq2SeqBatches(numbered_pairs(100), tok, batch_size=4, seed=3)
    assert a.batch_indices() == b.batch_indices()
    first = [batch["input_ids"] for batch in a]  # a pass moves a on to epoch 1
    assert a.epoch == 1 and a.batch_indices() != b.batch_indices()
    b.set_epoch(1)
    assert a.batch_indices() == b.batch_indices()
    a.set_epoch(0)
    assert all(torch.equal(x, y["input_ids"]) for x, y in zip(first, a))


def test_ranks_take_disjoint_equal_shards():
    tok, pairs = WhitespaceTokenizer(), numbered_pairs(90)  # 23 batches of 4: 3 ranks take 7 each, 2 dropped
    shards = [Seq2SeqBatches(pairs, tok, batch_size=4, seed=5, rank=r, world_size=3) for r in range(3)]
    indices = [sum(shard.batch_indices(), []) for shard in shards]
    assert [len(shard) for shard in shards] == [len(shard.batch_indices()) for shard in shards] == [7, 7, 7]
    assert len(set().union(*indices)) == sum(map(len, indices))  # no example on two ranks
    with pytest.raises(ValueError, match="rank"):
        Seq2SeqBatches(pairs, tok, batch_size=4, rank=3, world_size=3)


def test_unshuffled_batches_keep_the_order_of_the_pairs():
    tok = WhitespaceTokenizer()
    batches = Seq2SeqBatches(numbered_pairs(10), tok, batch_size=4, shuffle=False, rank=1, world_size=2)
    assert batches.batch_indices() == [[4, 5, 6, 7]] and len(batches) == 1


def test_batches_of_real_wikisplit_pairs(wikisplit_rows):
    pairs = [Pair(*row) for row in wikisplit_rows[:64]]
    batches = Seq2SeqBatches(pairs, WhitespaceTokenizer(), batch_size=16, max_source_len=32, max_target_len=24)
    batch = next(iter(batches))
    assert batch["input_ids"].shape[1] <= 32 and batch["labels"].shape[1] <= 24
    assert batches.report.truncated_sources > 0 and batches.report.truncated_targets > 0
