"""WikiSplit sentence pairs, and padded, length-bucketed batches of them for training an encoder-decoder.

References:
- Botha, Faruqui, Alex, Baldridge & Das, "Learning To Split and Rephrase From Wikipedia Edit History", EMNLP 2018:
  the WikiSplit data, github.com/google-research-datasets/wiki-split (CC BY-SA 4.0). One pair a line, tab-separated:
  column 1 the unsplit sentence, column 2 the split sentences joined by `<::::>`. train.tsv ships zipped.
- Rothe, Narayan & Severyn, "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks", TACL 2020: split
  (1 -> 2) and its reverse, fusion (2 -> 1), trained as sequence-to-sequence with teacher forcing.
- transformers' EncoderDecoderModel convention for batches: `labels` padded with -100, which the loss ignores; the
  model shifts labels right behind `decoder_start_token_id` to make the decoder's input.
"""
import gzip
import hashlib
import io
import logging
import os
import random
import shutil
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import torch

from .paths import cache_dir

log = logging.getLogger(__name__)

WIKISPLIT_URL = "https://github.com/google-research-datasets/wiki-split/raw/master/"
WIKISPLIT_FILES = {"tune": "tune.tsv", "validation": "validation.tsv", "test": "test.tsv", "train": "train.tsv.zip"}
SENTENCE_SEPARATOR = "<::::>"  # joins the sentences of a WikiSplit split
TASKS = ("split", "fuse")


class Pair(NamedTuple):
    """One training example: the text the encoder reads and the text the decoder must write."""
    source: str
    target: str


# ---------------------------------------------------------------------------------------------------- files

BUNDLED = Path(__file__).parent / "bundled" / "wikisplit"  # tune and validation ship with the package
BUNDLED_SHA256 = {  # of the uncompressed upstream files (bundled/wikisplit/README.md)
    "tune": "67118f483438fc9f0ba12e63dc37f0eeff8bbad1873157509ced7e3e46582312",
    "validation": "63931ff45b7d95d60480bdcd466d69894fc02a0ec975cab8d0955e9b8cceb922",
}
_announced = set()  # the (split, file) pairs already logged, so each choice is said once


def _local_file(folder: Path, split: str) -> Optional[Path]:
    """The file of `split` in `folder`, plain or zipped, or None."""
    for name in (f"{split}.tsv", f"{split}.tsv.zip"):
        if (folder / name).is_file():
            return folder / name
    return None


def _announce(split: str, path: Path, level=logging.INFO, why: str = "") -> None:
    if (split, path) not in _announced:
        _announced.add((split, path))
        log.log(level, "%sWikiSplit %s: reading %s", why, split, path)


def download(url: str, dest: Path) -> None:
    """Fetch `url` into `dest`, writing a temporary file first so a broken download never looks finished."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        os.replace(partial, dest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def find_wikisplit(split: str, data_dir=None) -> Path:
    """Path of WikiSplit's `split` file (tune, validation, test or train).

    With `data_dir` the file must be there (a mistyped folder is an error, never a silent fallback). Without it the
    search goes: $BERTGEN_DATA/wikisplit, the user cache, then the copy bundled with the package (tune and
    validation only); test and train are downloaded into the cache when online, with an error naming the folders
    to put the file in when that fails. A $BERTGEN_DATA without the file is logged as a warning, once.
    """
    if split not in WIKISPLIT_FILES:
        raise ValueError(f"Unknown WikiSplit split {split!r}: choose one of {', '.join(WIKISPLIT_FILES)}.")
    if data_dir is not None:
        found = _local_file(Path(data_dir), split)
        if found is None:
            raise FileNotFoundError(
                f"No WikiSplit {split!r} file in the data folder you gave, {data_dir} (looked for {split}.tsv and "
                f"{split}.tsv.zip). Check the folder's name, or leave the folder out (no data_dir / --data-dir) "
                f"to use $BERTGEN_DATA, the cache, or the copy bundled with bertgen_mini.")
        return found
    dirs = [cache_dir() / "wikisplit"]
    if os.environ.get("BERTGEN_DATA"):
        dirs.insert(0, Path(os.environ["BERTGEN_DATA"]) / "wikisplit")
    for folder in dirs:
        found = _local_file(folder, split)
        if found is not None:
            _announce(split, found)
            return found
    if split in BUNDLED_SHA256:
        path = BUNDLED / f"{split}.tsv.gz"
        if os.environ.get("BERTGEN_DATA"):  # set, but without the file: a typo must not go unnoticed
            _announce(split, path, logging.WARNING, f"$BERTGEN_DATA/wikisplit ({dirs[0]}) has no {split}.tsv; ")
        else:
            _announce(split, path)
        return path
    name = WIKISPLIT_FILES[split]
    dest, url = dirs[-1] / name, WIKISPLIT_URL + name
    log.info("WikiSplit %s not found locally; downloading %s to %s", split, url, dest)
    try:
        download(url, dest)
    except OSError as err:  # urllib's URLError is an OSError, as are disk and permission errors
        folders = "\n".join(f"  {folder}" for folder in dirs)
        raise FileNotFoundError(
            f"WikiSplit {split!r} is not on this machine and downloading {url} failed ({err}).\n"
            f"Download {name} where you are online and put it in one of these folders:\n{folders}\n"
            f"(or set $BERTGEN_DATA to a folder holding wikisplit/{name}, or pass its folder as data_dir)."
        ) from err
    return dest


def _read_bundled(path: Path) -> bytes:
    """The uncompressed bytes of a bundled file, checked against the upstream hash: a damaged install must fail
    loudly, never yield a shorter dataset."""
    split = path.name.split(".")[0]
    try:
        raw = gzip.decompress(path.read_bytes())
        damage = None if hashlib.sha256(raw).hexdigest() == BUNDLED_SHA256[split] else "its sha256 does not match"
    except (OSError, EOFError, zlib.error) as err:  # a missing file, a truncated or corrupt gzip stream
        damage = f"it cannot be read ({err})"
    if damage:
        raise ValueError(
            f"The WikiSplit file bundled with bertgen_mini, {path}, is damaged: {damage}. Restore it by "
            f"reinstalling bertgen_mini (`pip install --force-reinstall --no-deps .` in the repository, or "
            f"`git checkout -- bertgen_mini/bundled` in a clone).")
    return raw


def _byte_lines(path: Path):
    """The file's lines as bytes, from a .tsv, the single .tsv inside a .zip, or a bundled .tsv.gz. Lines end at
    b'\\n' only: Wikipedia text may hold other Unicode line breaks that must stay inside their sentence."""
    if path.suffix == ".gz":
        return io.BytesIO(_read_bundled(path))
    if path.suffix != ".zip":
        return open(path, "rb")
    archive = zipfile.ZipFile(path)
    members = [name for name in archive.namelist() if name.endswith(".tsv")]
    if len(members) != 1:
        raise ValueError(f"{path} should hold exactly one .tsv file, found {members}: download it again.")
    return archive.open(members[0])


def _decoded(byte_lines, origin: str):
    """Text lines from byte lines; a line that is not UTF-8 is an error naming the file and the line. A byte order
    mark opening the file (some editors write one) is dropped: kept, it would start the first source."""
    for number, line in enumerate(byte_lines, start=1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{origin}, line {number}, is not UTF-8 text ({err.reason} at byte {err.start}): "
                             f"WikiSplit files are UTF-8; re-save the file as UTF-8 or download it again.") from None


def parse_wikisplit(lines, task: str = "split", origin: str = "WikiSplit") -> list[Pair]:
    """Pairs from WikiSplit lines. task="split": unsplit -> split; task="fuse": split -> unsplit.

    Rows without exactly two tab-separated, non-empty columns are skipped and reported (warning and log line)
    with their 1-based line numbers in `origin`.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}: choose 'split' (column 1 -> 2) or 'fuse' (column 2 -> 1).")
    pairs, bad_lines = [], []
    for number, line in enumerate(lines, start=1):
        columns = [column.strip() for column in line.rstrip("\r\n").split("\t")]
        if len(columns) != 2 or not all(columns):
            bad_lines.append(number)
            continue
        unsplit, split = columns
        pairs.append(Pair(unsplit, split) if task == "split" else Pair(split, unsplit))
    if bad_lines:
        shown = ", ".join(map(str, bad_lines[:20])) + (" ..." if len(bad_lines) > 20 else "")
        message = (f"{origin}: skipped {len(bad_lines)} malformed rows (each needs two non-empty, tab-separated "
                   f"columns) at lines {shown}")
        log.warning(message)
        warnings.warn(message, stacklevel=2)
    return pairs


def load_wikisplit(split: str, data_dir=None, task: str = "split") -> list[Pair]:
    """All pairs of one WikiSplit part as Pair(source, target), in file order. See find_wikisplit for where the
    file is looked for and parse_wikisplit for task and malformed rows. Works offline for tune and validation."""
    path = find_wikisplit(split, data_dir)
    with _byte_lines(path) as lines:
        return parse_wikisplit(_decoded(lines, str(path)), task, origin=str(path))


# ---------------------------------------------------------------------------------------------------- batches

def _token_ids(encoded) -> list[list[int]]:
    """Token id lists from a tokenizer's output: a list of lists, or a mapping holding "input_ids"."""
    return [list(ids) for ids in (encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)]


def end_of_sequence_id(vocabulary) -> int | None:
    """The id that ends every target, and the model config's eos_token_id (recipes.special_ids): the id the
    tokenizer itself closes a text with, BERT's [SEP] (102 in bert-base, as transformers' bert2bert sets it) and
    RoBERTa's </s>, also where a WordPiece tokenizer is given eos_token="</s>" as the paper's WMT model cards do;
    else eos_token_id (sentencepiece's </s>, not its sep <::::>; GPT-2's <|endoftext|>; a checkpoint's config),
    else sep_token_id; None with none of them. `vocabulary`: a tokenizer, or a checkpoint's config."""
    closes = getattr(vocabulary, "build_inputs_with_special_tokens", None)
    written = closes([]) if callable(closes) else []  # BERT: [CLS, SEP]; RoBERTa: [<s>, </s>]; others: []
    if written and written[-1] is not None:
        return written[-1]
    for name in ("eos_token_id", "sep_token_id"):
        if getattr(vocabulary, name, None) is not None:
            return getattr(vocabulary, name)
    return None


@dataclass
class TruncationReport:
    examples: int           # pairs encoded
    truncated_sources: int  # sources longer than max_source_len tokens (with special tokens), cut to it
    truncated_targets: int  # targets longer than max_target_len - 1 tokens, cut to leave room for the end id


def encode_pairs(pairs: Sequence[Pair], tokenizer, max_source_len: int, max_target_len: int, target_tokenizer=None):
    """Token ids for encoder inputs and decoder labels, and a TruncationReport.

    Sources are read by `tokenizer` (the encoder's vocabulary), with its special tokens (for BERT: [CLS] ... [SEP])
    and its own truncation. Labels are written in `target_tokenizer`'s vocabulary (the decoder's; default
    `tokenizer`, for bert2gpt GPT-2's byte-level BPE): the target's tokens plus that vocabulary's end-of-sequence
    id, with no start token (the model prepends decoder_start_token_id).
    Returns (sources, labels, report); sources[i] and labels[i] are lists of ints.
    """
    if not pairs:
        raise ValueError("No pairs to encode.")
    source_texts, target_texts = [p[0] for p in pairs], [p[1] for p in pairs]
    sources = _token_ids(tokenizer(source_texts, add_special_tokens=True, truncation=False))
    too_long = [i for i, ids in enumerate(sources) if len(ids) > max_source_len]
    if too_long:  # tokenize only the long ones again, so the tokenizer decides how to cut around its specials
        cut = _token_ids(tokenizer([source_texts[i] for i in too_long], add_special_tokens=True,
                                   truncation=True, max_length=max_source_len))
        for i, ids in zip(too_long, cut):
            sources[i] = ids
    if any(len(ids) > max_source_len for ids in sources):
        raise ValueError(f"The tokenizer returned sources longer than max_length={max_source_len} when asked to "
                         "truncate: check that it honours truncation=True.")
    empty = [i for i, ids in enumerate(sources) if not ids]
    if empty:
        raise ValueError(f"Sources at positions {empty[:10]} encode to no tokens: remove them before batching.")

    target_tokenizer = tokenizer if target_tokenizer is None else target_tokenizer
    end_id = end_of_sequence_id(target_tokenizer)
    if end_id is None:
        raise ValueError("The tokenizer has neither eos_token_id nor sep_token_id: targets need an end-of-sequence id.")
    targets = _token_ids(target_tokenizer(target_texts, add_special_tokens=False, truncation=False))
    labels = [ids[:max_target_len - 1] + [end_id] for ids in targets]
    report = TruncationReport(len(pairs), len(too_long), sum(len(ids) > max_target_len - 1 for ids in targets))
    log.info("encoded %d pairs; truncated %d sources (> %d tokens) and %d targets (> %d tokens)",
             report.examples, report.truncated_sources, max_source_len, report.truncated_targets, max_target_len)
    return sources, labels, report


def collate(sources: Sequence[list[int]], labels: Sequence[list[int]], pad_token_id: int) -> dict:
    """Right-pad one batch into LongTensors: input_ids (B, S) padded with pad_token_id, attention_mask (B, S)
    1 on real tokens, labels (B, T) padded with -100 so the loss skips padding."""
    B, S, T = len(sources), max(map(len, sources)), max(map(len, labels))
    input_ids = torch.full((B, S), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((B, S), dtype=torch.long)
    padded_labels = torch.full((B, T), -100, dtype=torch.long)
    for row, (src, tgt) in enumerate(zip(sources, labels)):
        input_ids[row, :len(src)] = torch.tensor(src)
        attention_mask[row, :len(src)] = 1
        padded_labels[row, :len(tgt)] = torch.tensor(tgt)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": padded_labels}


class Seq2SeqBatches:
    """Batches of encoded pairs, re-iterable once per epoch.

    With shuffle=True each epoch shuffles the examples, cuts them into buckets of `bucket_batches` batches, sorts
    each bucket by length (so a batch holds similar lengths and little padding), and shuffles the batches. The
    order depends only on (seed, epoch); the epoch advances after each full pass, or is set with set_epoch.
    With shuffle=False batches keep the order of `pairs`, so predictions line up with them.

    Multi-GPU: process `rank` of `world_size` takes every world_size-th batch, a disjoint shard. When shuffling,
    up to world_size - 1 batches are dropped each epoch so that every process takes the same number of steps.

    `tokenizer` reads the sources (and pads them); `target_tokenizer`, default the same, writes the labels: see
    encode_pairs.
    """

    def __init__(self, pairs: Sequence[Pair], tokenizer, batch_size: int, max_source_len: int = 128,
                 max_target_len: int = 128, shuffle: bool = True, seed: int = 0, bucket_batches: int = 100,
                 rank: int = 0, world_size: int = 1, target_tokenizer=None):
        if batch_size < 1 or bucket_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and bucket_batches ({bucket_batches}) must be >= 1.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..world_size-1, got rank={rank}, world_size={world_size}.")
        self.sources, self.labels, self.report = encode_pairs(pairs, tokenizer, max_source_len, max_target_len,
                                                              target_tokenizer)
        self.pad_token_id = tokenizer.pad_token_id
        self.batch_size, self.bucket_batches, self.shuffle, self.seed = batch_size, bucket_batches, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next pass uses (the same on every process)."""
        self.epoch = epoch

    def batch_indices(self, epoch: Optional[int] = None) -> list[list[int]]:
        """The example positions of this process's batches for `epoch` (default: the current one)."""
        n, size = len(self.sources), self.batch_size
        order = list(range(n))
        if not self.shuffle:
            batches = [order[i:i + size] for i in range(0, n, size)]
            return batches[self.rank::self.world_size]
        rng = random.Random(f"{self.seed}:{self.epoch if epoch is None else epoch}")  # str seeds are reproducible
        rng.shuffle(order)
        batches = []
        for start in range(0, n, size * self.bucket_batches):
            bucket = sorted(order[start:start + size * self.bucket_batches],
                            key=lambda i: (len(self.sources[i]), len(self.labels[i])))
            batches += [bucket[i:i + size] for i in range(0, len(bucket), size)]
        rng.shuffle(batches)
        kept = len(batches) // self.world_size * self.world_size
        return batches[self.rank:kept:self.world_size]

    def __len__(self) -> int:
        total = -(-len(self.sources) // self.batch_size)  # ceil: every bucket but the last splits evenly
        if self.shuffle:
            return total // self.world_size
        return len(range(self.rank, total, self.world_size))

    def __iter__(self):
        """Yield dicts of LongTensors: input_ids (B, S), attention_mask (B, S), labels (B, T)."""
        batches = self.batch_indices()
        self.epoch += 1
        for indices in batches:
            yield collate([self.sources[i] for i in indices], [self.labels[i] for i in indices], self.pad_token_id)
