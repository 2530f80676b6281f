"""The call interface shared by both tokenizers: text in, padded id tensors out, and ids back to text.

A concrete tokenizer only knows how to cut a stretch of plain text into tokens and how to map tokens to ids;
everything a user calls (`__call__`, `encode`, `decode`, `batch_decode`, special-token ids, padding, truncation,
`save_pretrained` / `from_pretrained`) lives here once, so `BertTokenizer` (WordPiece) and
`BertGenerationTokenizer` (sentencepiece) behave the same way.

Behaviour follows Hugging Face transformers' `PreTrainedTokenizerBase` (v5), the reference the tests compare with:
special tokens written in the text are kept whole, special tokens missing from the vocabulary get the ids after it,
truncation keeps room for the special tokens. Two deliberate differences: text longer than `max_length` with
truncation off is an error (transformers only warns), and only PyTorch tensors are returned.

Added tokens (`add_tokens`, transformers' name) extend a fixed vocabulary, as WikiSplit's separator `<::::>` extends
BERT's: each gets the next id after the vocabulary (`len(tokenizer)` before the call), is cut out of any text whole
before the tokenizer's own splitting and normalizing, and decodes to itself. A model reading these ids needs as many
embedding rows: see bertgen_mini.vocab.resize_token_embeddings. They are matched in the text as written, as
transformers matches special tokens and `AddedToken(..., normalized=False)`; transformers matches a plain string
given to its `add_tokens` after normalization instead (lower-casing, accent and control-character removal), which
differs only where normalizing a text creates the token, e.g. a zero-width space inside it. `save_pretrained` writes
them in tokenizer_config.json's `added_tokens_decoder` (id -> token and flags), the entry transformers reads.

A special or added token may also swallow the whitespace beside it, as transformers' `AddedToken(lstrip=True)` and
`rstrip=True` do: RoBERTa's `<mask>` (lstrip) takes the spaces before it, so "a <mask>" encodes like "a<mask>". The
flags come from the files (tokenizer_config.json's `added_tokens_decoder`, tokenizer.json's `added_tokens`, or a
special token saved as `{"content": ..., "lstrip": ...}`) and are saved again.
"""
import inspect
import json
import operator
import os
import re
from pathlib import Path

import torch

from .checkpoint import read_json
from .checks import check_type
from .files import atomic_write, atomic_write_text
from .hub import is_hub_id, resolve

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
CONFIG_NAME = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_NAME = "special_tokens_map.json"  # older checkpoints name their special tokens here
TOKENIZER_FILE = "tokenizer.json"  # the Rust library's one-file form, which transformers 5 saves (for every family)
# how an added token is matched, as transformers' AddedToken records it: in the text as written, anywhere in a word
ADDED_TOKEN_FLAGS = {"lstrip": False, "rstrip": False, "single_word": False, "normalized": False}
# what a token with lstrip / rstrip swallows: Unicode's White_Space characters (Rust's char::is_whitespace, which the
# reference uses; str.isspace would also take the separators U+001C..U+001F)
WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
              + "\u2028\u2029\u202f\u205f\u3000")
# transformers' clean_up_tokenization: glue punctuation and English clitics back onto the word before them
CLEANUP_REPLACEMENTS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str, replacements=CLEANUP_REPLACEMENTS) -> str:
    """Remove the spaces a detokenizer leaves before punctuation: 'it ' s ok .' -> "it's ok." (str in, str out)."""
    for old, new in replacements:
        text = text.replace(old, new)
    return text


class BatchEncoding(dict):
    """What a tokenizer call returns: `input_ids`, `attention_mask` (and `token_type_ids` for BERT), as lists
    or as (B, T) tensors. Keys also read as attributes (`enc.input_ids`); `.to(device)` moves the tensors."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device) -> "BatchEncoding":
        """The same encoding with every tensor on `device`."""
        return BatchEncoding({key: value.to(device) for key, value in self.items()})


def _special_id(name):
    """A read-only property giving the id of the special token stored in attribute `name` (None if unset)."""
    def token_id(self):
        token = getattr(self, name)
        return None if token is None else self.convert_tokens_to_ids(token)
    return property(token_id, doc=f"id of `{name}`, or None when the tokenizer has no {name}")


class Tokenizer:
    """Base class. Subclasses set `vocab_file_name` and `model_input_names`, and implement `vocab_size`,
    `_tokenize_chunk`, `_token_to_id`, `_id_to_token`, `_tokens_to_string`, `_write_model_file` and `_settings`
    (and `build_inputs_with_special_tokens` when they add special tokens around a sequence)."""

    vocab_file_name = None  # the file a saved tokenizer keeps its vocabulary in, e.g. "vocab.txt"
    other_files = ()  # further files it reads when a folder has them (fetched with the vocabulary from the Hub)
    model_input_names = ("input_ids", "attention_mask")
    takes_pairs = False  # True where build_inputs_with_special_tokens(ids, pair_ids) lays out a pair of texts

    bos_token_id, eos_token_id = _special_id("bos_token"), _special_id("eos_token")
    unk_token_id, pad_token_id = _special_id("unk_token"), _special_id("pad_token")
    sep_token_id, cls_token_id = _special_id("sep_token"), _special_id("cls_token")
    mask_token_id = _special_id("mask_token")

    def __init__(self, model_max_length=None, clean_up_tokenization_spaces=False, **special_tokens):
        """Register the special tokens (keyword names from SPECIAL_TOKEN_NAMES, values str or None); call it after the
        subclass has loaded its vocabulary. Special tokens absent from the vocabulary get ids from vocab_size on."""
        self.model_max_length = model_max_length  # the length truncation=True / padding="max_length" default to
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self._added_tokens = {}  # token -> id, for tokens after the vocabulary: special tokens it lacks, add_tokens
        self.added_tokens = []  # what add_tokens was given, in order (kept whole in text; saved with the tokenizer)
        self.extra_special_tokens = []  # those of them added with special_tokens=True
        self._lstrip, self._rstrip = set(), set()  # special or added tokens that swallow the whitespace before / after
        for name in SPECIAL_TOKEN_NAMES:
            token = special_tokens.pop(name, None)
            setattr(self, name, token)
            if token is not None and token not in self._added_tokens and not self._in_vocab(token):
                self._added_tokens[token] = self.vocab_size + len(self._added_tokens)
        if special_tokens:
            raise TypeError(f"unknown special token names {sorted(special_tokens)}; known: {SPECIAL_TOKEN_NAMES}")
        self._index_special_and_added_tokens()

    def _index_special_and_added_tokens(self):
        """Recompute what depends on the special and added tokens: id lookups and the pattern that cuts them out."""
        self._added_ids = {i: token for token, i in self._added_tokens.items()}
        tokens = [getattr(self, name) for name in SPECIAL_TOKEN_NAMES] + self.extra_special_tokens
        self.all_special_tokens = list(dict.fromkeys(token for token in tokens if token is not None))
        self.all_special_ids = [self.convert_tokens_to_ids(token) for token in self.all_special_tokens]
        # longest first, so that of two tokens starting at the same place the longer wins (as transformers)
        whole = sorted(set(self.all_special_tokens) | set(self.added_tokens), key=len, reverse=True)
        alternatives = "|".join(map(re.escape, whole))
        self._kept_whole = re.compile(f"({alternatives})") if alternatives else None

    def _in_vocab(self, token):
        return self._id_to_token(self._token_to_id(token)) == token

    # ---- vocabulary ------------------------------------------------------------------------------------------

    def __len__(self):
        """Size of the vocabulary plus the tokens appended after it: the rows a model's embedding needs."""
        return self.vocab_size + len(self._added_tokens)

    def add_tokens(self, tokens, special_tokens=False) -> int:
        """Add tokens (a str or a list of str) that text may contain and that must stay one token each, e.g.
        WikiSplit's `<::::>`. A token the vocabulary lacks gets the next id, len(self); one it has keeps its id. From
        then on each is cut out of any text whole, before the tokenizer's own splitting, and decodes to itself.
        special_tokens=True also makes them special: listed in all_special_tokens and dropped by
        decode(skip_special_tokens=True), as transformers' add_special_tokens({"additional_special_tokens": tokens}).
        Returns how many new ids were made: grow the model to len(tokenizer) rows (vocab.resize_token_embeddings)."""
        tokens = [tokens] if isinstance(tokens, str) else list(tokens)
        for token in tokens:
            if not isinstance(token, str) or not token.strip():
                raise ValueError(f"add_tokens takes non-blank strings, got {token!r}")
        before = len(self)
        for token in tokens:
            if token not in self._added_tokens and not self._in_vocab(token):
                self._added_tokens[token] = len(self)
            if token not in self.added_tokens:
                self.added_tokens.append(token)
            if special_tokens and token not in self.extra_special_tokens:
                self.extra_special_tokens.append(token)
        self._index_special_and_added_tokens()
        return len(self) - before

    def get_vocab(self) -> dict:
        """Every token and its id, appended special tokens included."""
        return {**{self._id_to_token(i): i for i in range(self.vocab_size)}, **self._added_tokens}

    def convert_tokens_to_ids(self, tokens):
        """A token (str -> int) or a list of tokens (-> list of int); tokens outside the vocabulary map to unk."""
        if isinstance(tokens, str):
            return self._added_tokens[tokens] if tokens in self._added_tokens else self._token_to_id(tokens)
        return [self.convert_tokens_to_ids(token) for token in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        """An id (int -> str) or a sequence of ids (list, 1-D tensor -> list of str)."""
        if isinstance(ids, int):
            return self.convert_ids_to_tokens([ids])[0]
        ids = _as_id_list(ids)
        if ids and (min(ids) < 0 or max(ids) >= len(self)):
            bad = next(i for i in ids if not 0 <= i < len(self))
            raise ValueError(f"token id {bad} is outside the vocabulary (ids 0..{len(self) - 1}). Were these ids "
                             "made by another tokenizer, or by a model with a larger vocabulary?")
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._added_ids[i] if i in self._added_ids else self._id_to_token(i) for i in ids if i not in skip]

    # ---- text -> ids -----------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list:
        """Cut `text` into tokens (strings); special and added tokens written in the text stay whole. Adds no special
        tokens."""
        chunks = self._kept_whole.split(text) if self._kept_whole else [text]
        tokens = []
        for i, chunk in enumerate(chunks):  # re.split with a group alternates plain text and tokens kept whole
            if i % 2:
                tokens.append(chunk)
                continue
            if i > 0 and chunks[i - 1] in self._rstrip:
                chunk = chunk.lstrip(WHITESPACE)
            if i + 1 < len(chunks) and chunks[i + 1] in self._lstrip:
                chunk = chunk.rstrip(WHITESPACE)
            if chunk:
                tokens += self._tokenize_chunk(chunk)
        return tokens

    def build_inputs_with_special_tokens(self, ids: list, pair_ids: list = None) -> list:
        """The ids of one sequence, or of a pair, with the tokenizer's special tokens around them (none by default:
        a pair is the two one after the other)."""
        return list(ids) + list(pair_ids or [])

    def encode(self, text: str, text_pair: str = None, add_special_tokens=True, truncation=False,
               max_length=None) -> list:
        """The ids of one text, or of a pair of texts, as one list of int, optionally truncated to `max_length`
        including special tokens."""
        encoded = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                       max_length=max_length)
        return encoded["input_ids"]

    def __call__(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=False,
                 max_length=None, return_tensors=None, return_token_type_ids=None) -> BatchEncoding:
        """Encode one text (str) or a batch (list of str); with `text_pair` (a str, or a list as long as `text`), each
        text and its pair as one sequence, laid out as the tokenizer lays out pairs (tokenizers with `takes_pairs`).

        padding: False, True / "longest" (to the longest in the batch) or "max_length".
        truncation: True cuts each sequence to `max_length` (default: `model_max_length`) including special tokens;
            a pair as transformers' "longest_first" cuts it (see _truncate).
        return_tensors: None for lists (one list per text), "pt" for (B, T) long tensors (B = 1 for a single text).
        Returns a BatchEncoding with `input_ids`, `attention_mask` (1 = real token, 0 = padding) and, where the
        tokenizer's `model_input_names` lists them and `return_token_type_ids` is not False, `token_type_ids` (zeros).
        """
        is_batch = isinstance(text, (list, tuple))
        texts = list(text) if is_batch else [text]
        if not texts:
            raise ValueError("got an empty batch: pass at least one text")
        pairs = [None] * len(texts)
        if text_pair is not None:
            if not self.takes_pairs:
                raise ValueError(f"{type(self).__name__} does not encode pairs of texts: encode each text alone, or "
                                 "join them into one text first")
            if isinstance(text_pair, (list, tuple)) != is_batch or is_batch and len(text_pair) != len(texts):
                raise ValueError(f"text_pair must match text: a str for a str, a list of {len(texts)} for a list of "
                                 f"{len(texts)}; got {type(text_pair).__name__} {str(text_pair):.80}")
            pairs = list(text_pair) if is_batch else [text_pair]
        for t in texts + [p for p in pairs if p is not None]:
            if not isinstance(t, str):
                raise TypeError(f"a tokenizer takes a str or a list of str, got {type(t).__name__}: {t!r:.80}")
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: only None (lists) and 'pt' (PyTorch) are supported")
        if truncation not in (True, False):
            raise ValueError(f"truncation={truncation!r}: pass True or False")
        if truncation and max_length is None:
            max_length = self._model_max_length_for("truncation=True")
        ids = [self._encode_one(t, p, add_special_tokens, truncation, max_length) for t, p in zip(texts, pairs)]
        ids = self._pad(ids, padding, max_length)
        columns = {"input_ids": ids}
        if "token_type_ids" in self.model_input_names and return_token_type_ids is not False:
            columns["token_type_ids"] = [[0] * len(row) for row in ids]
        columns["attention_mask"] = [[int(i is not None) for i in row] for row in ids]
        columns["input_ids"] = [[self.pad_token_id if i is None else i for i in row] for row in ids]
        if return_tensors == "pt":
            if len({len(row) for row in ids}) > 1:
                raise ValueError("return_tensors='pt' needs sequences of one length, got lengths "
                                 f"{sorted({len(row) for row in ids})}: pass padding=True")
            return BatchEncoding({k: torch.tensor(v, dtype=torch.long).view(len(v), -1) for k, v in columns.items()})
        return BatchEncoding({k: v if is_batch else v[0] for k, v in columns.items()})

    def _encode_one(self, text, pair, add_special_tokens, truncation, max_length):
        parts = [self.convert_tokens_to_ids(self.tokenize(t)) for t in (text, pair) if t is not None]
        n_special = len(self.build_inputs_with_special_tokens(*[[] for _ in parts])) if add_special_tokens else 0
        length = sum(map(len, parts)) + n_special
        if max_length is not None and length > max_length:
            if not truncation:
                raise ValueError(f"this text is {length} tokens long but max_length={max_length} "
                                 f"(text starts {text[:60]!r}). Pass truncation=True to cut it to {max_length} "
                                 "tokens, or raise max_length.")
            if max_length < n_special:
                raise ValueError(f"max_length={max_length} leaves no room for the {n_special} special tokens")
            parts = _truncate(parts, max_length - n_special)
        return self.build_inputs_with_special_tokens(*parts) if add_special_tokens else sum(parts, [])

    def _pad(self, ids, padding, max_length):
        """Right-pad each row with None (turned into pad ids and 0s in the attention mask by the caller)."""
        if padding in (False, None, "do_not_pad"):
            return ids
        if padding in (True, "longest"):
            length = max(map(len, ids), default=0)
        elif padding == "max_length":
            length = max_length if max_length is not None else self._model_max_length_for("padding='max_length'")
        else:
            raise ValueError(f"padding={padding!r}: pass False, True / 'longest', or 'max_length'")
        if self.pad_token_id is None:
            raise ValueError("padding needs a pad token, and this tokenizer has none: pass pad_token=... when loading")
        return [row + [None] * (length - len(row)) for row in ids]

    def _model_max_length_for(self, what):
        if self.model_max_length is None:
            raise ValueError(f"{what} needs a length: pass max_length=... (this tokenizer has no model_max_length)")
        return self.model_max_length

    # ---- ids -> text -----------------------------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None) -> str:
        """Text of one sequence of ids (list of int, or a 1-D tensor); `skip_special_tokens` drops pad, cls, ..."""
        text = self._tokens_to_string(self.convert_ids_to_tokens(_as_id_list(ids), skip_special_tokens))
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None) -> list:
        """`decode` for each row of a (B, T) tensor or a list of id lists -> list of B strings."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.tolist()
        return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces) for ids in sequences]

    # ---- saving and loading ----------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory, filename_prefix=None) -> tuple:
        """Write the vocabulary file (`vocab_file_name`, with an optional `prefix-`) into an existing directory."""
        save_directory = Path(save_directory)
        if not save_directory.is_dir():
            raise NotADirectoryError(f"save_vocabulary needs an existing directory, got {save_directory}")
        path = save_directory / ((filename_prefix + "-" if filename_prefix else "") + self.vocab_file_name)
        atomic_write(path, lambda tmp: self._write_model_file(Path(tmp)))  # a link in its place is replaced
        return (str(path),)

    def save_pretrained(self, save_directory) -> tuple:
        """Write the vocabulary file and tokenizer_config.json (the settings and added tokens; transformers reads
        it too, and gives the added tokens the same ids). Each file is written atomically, as a model's are: a full
        disk leaves the old file whole, and a link in a file's place is replaced, never written through."""
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        config = {"tokenizer_class": type(self).__name__, **{name: getattr(self, name) for name in SPECIAL_TOKEN_NAMES
                                                             if getattr(self, name) is not None}}
        config.update(self._settings(), clean_up_tokenization_spaces=self.clean_up_tokenization_spaces)
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        listed = list(dict.fromkeys(self.added_tokens + sorted(self._lstrip | self._rstrip)))
        if listed:
            config["added_tokens_decoder"] = {
                str(self.convert_tokens_to_ids(token)): {"content": token, "special": token in self.all_special_tokens,
                                                         **ADDED_TOKEN_FLAGS, "lstrip": token in self._lstrip,
                                                         "rstrip": token in self._rstrip} for token in listed}
        if self.extra_special_tokens:
            config["extra_special_tokens"] = list(self.extra_special_tokens)
        vocabulary = self.save_vocabulary(save_directory)  # first: a full disk then leaves both old files
        config_path = save_directory / CONFIG_NAME
        atomic_write_text(config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        return vocabulary + (str(config_path),)

    @classmethod
    def from_pretrained(cls, path, revision=None, local_files_only=False, **overrides):
        """Load from a directory holding the vocabulary file and, optionally, tokenizer_config.json (whose settings
        are used unless overridden by keyword, e.g. pad_token="<pad>") and the older special_tokens_map.json; a path
        to the vocabulary file itself also works, and so does a Hugging Face Hub id, fetched into the Hugging Face
        cache (revision, local_files_only: see bertgen_mini.hub)."""
        if is_hub_id(path):
            path = resolve(path, need=[(cls.vocab_file_name, *cls.other_files)],
                           may=list(dict.fromkeys([*cls.other_files, CONFIG_NAME, SPECIAL_TOKENS_MAP_NAME,
                                                   TOKENIZER_FILE])), revision=revision,
                           local_files_only=local_files_only)
        path = Path(path)
        saved = read_saved_settings(path / CONFIG_NAME)
        if "added_tokens_decoder" not in saved:  # as transformers: the other files, read when this one lacks tokens
            older = read_saved_settings(path / SPECIAL_TOKENS_MAP_NAME)
            saved.update({name: token for name, token in older.items() if name in SPECIAL_TOKEN_NAMES})
            added = read_saved_settings(path / TOKENIZER_FILE).get("added_tokens", [])  # transformers 5 keeps them
            saved["added_tokens_decoder"] = {str(entry["id"]): entry for entry in added}
        known = inspect.signature(cls.__init__).parameters
        settings = {k: v for k, v in saved.items() if k in known and k != "self"}
        settings = checked_settings(settings, known, path / CONFIG_NAME)
        tokenizer = cls(path, **{**settings, **overrides})
        for name in SPECIAL_TOKEN_NAMES:  # a special token saved as {"content": ..., "lstrip": true}: its flags
            if isinstance(saved.get(name), dict) and name not in overrides:
                tokenizer._take_flags(saved[name], path / SPECIAL_TOKENS_MAP_NAME)
        tokenizer._restore_added_tokens(saved["added_tokens_decoder"], path / CONFIG_NAME)
        return tokenizer

    def _restore_added_tokens(self, decoder: dict, source):
        """Add the tokens of a saved `added_tokens_decoder` ({id: {"content", "special", "lstrip", ...}}, as
        transformers writes it too) in id order, checking each gets its saved id. Entries for the named special tokens
        (transformers lists [CLS] and the like there) are already known: only their lstrip / rstrip flags are read."""
        named = {getattr(self, name) for name in SPECIAL_TOKEN_NAMES}
        if not isinstance(decoder, dict) or not all(str(i).isdigit() and isinstance(entry, dict)
                                                    and isinstance(entry.get("content"), str)
                                                    for i, entry in decoder.items()):
            raise ValueError(f"{source}: added_tokens_decoder must map ids to {{\"content\": token, ...}}; save the "
                             "tokenizer again.")
        for saved_id, entry in sorted(decoder.items(), key=lambda item: int(item[0])):
            token = self._take_flags(entry, source)
            if token in named:
                continue
            self.add_tokens([token], special_tokens=bool(entry.get("special")))
            if self.convert_tokens_to_ids(token) != int(saved_id):
                raise ValueError(f"{source}: added token {token!r} was saved with id {saved_id} but gets id "
                                 f"{self.convert_tokens_to_ids(token)} after this vocabulary: the vocabulary file "
                                 "does not belong to this tokenizer_config.json.")

    def _take_flags(self, entry: dict, source) -> str:
        """The token of a saved entry {"content": token, "lstrip": bool, "rstrip": bool, ...}, recording whether it
        swallows the whitespace before (lstrip) or after (rstrip) it; refuses single_word, which is not implemented."""
        token = entry["content"]
        if entry.get("single_word"):
            raise ValueError(f"{source}: token {token!r} sets single_word, which this tokenizer does not implement; "
                             "save it again with that flag off.")
        for flag, tokens in (("lstrip", self._lstrip), ("rstrip", self._rstrip)):
            if entry.get(flag):
                tokens.add(token)
        return token

    @classmethod
    def _model_file(cls, path) -> Path:
        """The vocabulary file: `path` itself, or `vocab_file_name` inside a directory; a clear error if missing."""
        path = Path(path)
        if path.is_dir():
            path = path / cls.vocab_file_name
        if not path.is_file():
            raise FileNotFoundError(f"{cls.__name__} needs a {cls.vocab_file_name} file, and {path} does not exist. "
                                    f"Pass the file or the directory holding it.")
        return path


def _truncate(parts: list, budget: int) -> list:
    """Cut one id list, or a pair of them, to `budget` ids in all. A pair is cut as transformers' "longest_first" cuts
    it: the shorter stays whole if the longer can keep at least as many ids; otherwise each keeps half the budget,
    the longer one (the second, when they are as long) the odd id."""
    if len(parts) == 1:
        return [parts[0][:budget]]
    first, second = parts
    if 2 * min(len(first), len(second)) <= budget:
        keep = (len(first), budget - len(first)) if len(first) <= len(second) else (budget - len(second), len(second))
    else:
        half, odd = divmod(budget, 2)
        keep = (half + odd, half) if len(first) > len(second) else (half, half + odd)
    return [first[:keep[0]], second[:keep[1]]]


def read_saved_settings(path) -> dict:
    """The settings in a tokenizer's JSON file (tokenizer_config.json, special_tokens_map.json, tokenizer.json), {}
    when there is none. One that is there but cannot be read (a dangling link, a folder, a FIFO, damaged JSON) is an
    error, not skipped: loading the vocabulary with default settings would give another tokenizer without a word."""
    if not os.path.lexists(path):
        return {}
    saved = read_json(path, what="it was listed in the folder")
    if not isinstance(saved, dict):
        raise TypeError(f"{path} holds a {type(saved).__name__}, not an object of settings: copy it again, or delete "
                        "it to load the vocabulary with default settings.")
    return saved


def checked_settings(settings: dict, parameters, source) -> dict:
    """Saved settings checked against the types their __init__ `parameters` are annotated with (a string "false"
    for do_lower_case would read as true). A special token saved by older transformers as an AddedToken object
    ({"content": "[UNK]", ...}) is read as its content."""
    checked = {}
    for name, value in settings.items():
        if name in SPECIAL_TOKEN_NAMES and isinstance(value, dict) and isinstance(value.get("content"), str):
            value = value["content"]
        if parameters[name].annotation is not inspect.Parameter.empty:
            try:
                check_type(name, value, parameters[name].annotation)
            except TypeError as err:
                raise TypeError(f"{source}: {err} Fix the file, or delete it to load the vocabulary with default "
                                "settings.") from None
        checked[name] = value
    return checked


def _as_id_list(ids) -> list:
    """A 1-D sequence of token ids as a list of int; rejects batches with a pointer to batch_decode."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() > 1:
            raise ValueError(f"decode takes one sequence, got a tensor of shape {tuple(ids.shape)}: use batch_decode")
        ids = ids.tolist()
    try:
        ids = [ids] if isinstance(ids, int) else list(ids)
        if any(isinstance(i, bool) for i in ids):  # index(True) would read it as 1
            raise TypeError("True and False are not token ids")
        return list(map(operator.index, ids))  # index, not int: 3.7 is refused, not read as 3
    except TypeError:
        raise ValueError(f"expected one sequence of integer token ids, got {str(ids):.80}: pass ints (a float "
                         "tensor: ids.long() if the values are whole), or use batch_decode for a batch") from None
