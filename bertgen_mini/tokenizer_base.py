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
"""
import inspect
import json
import operator
import re
from pathlib import Path

import torch

from .hub import is_hub_id, resolve

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
CONFIG_NAME = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_NAME = "special_tokens_map.json"  # older checkpoints name their special tokens here
# how an added token is matched, as transformers' AddedToken records it: in the text as written, anywhere in a word
ADDED_TOKEN_FLAGS = {"lstrip": False, "rstrip": False, "single_word": False, "normalized": False}
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
    model_input_names = ("input_ids", "attention_mask")

    bos_token_id, eos_token_id = _special_id("bos_token"), _special_id("eos_token")
    unk_token_id, pad_token_id = _special_id("unk_token"), _special_id("pad_token")
    sep_token_id, cls_token_id = _special_id("sep_token"), _special_id("cls_token")
    mask_token_id = _special_id("mask_token")

    def __init__(self, model_max_length=None, clean_up_tokenization_spaces=False, **special_tokens):
        """Register the special tokens (keyword names from SPECIAL_TOKEN_NAMES, values str or None); call it after
        the subclass has loaded its vocabulary. Special tokens absent from the vocabulary get ids from vocab_size on."""
        self.model_max_length = model_max_length  # the length truncation=True / padding="max_length" default to
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self._added_tokens = {}  # token -> id, for tokens after the vocabulary: special tokens it lacks, add_tokens
        self.added_tokens = []  # what add_tokens was given, in order (kept whole in text; saved with the tokenizer)
        self.extra_special_tokens = []  # those of them added with special_tokens=True
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
            elif chunk:
                tokens += self._tokenize_chunk(chunk)
        return tokens

    def build_inputs_with_special_tokens(self, ids: list) -> list:
        """The ids of one sequence with the tokenizer's special tokens around it (none by default)."""
        return list(ids)

    def encode(self, text: str, add_special_tokens=True, truncation=False, max_length=None) -> list:
        """The ids of one text (list of int), optionally truncated to `max_length` including special tokens."""
        encoded = self(text, add_special_tokens=add_special_tokens, truncation=truncation, max_length=max_length)
        return encoded["input_ids"]

    def __call__(self, text, add_special_tokens=True, padding=False, truncation=False, max_length=None,
                 return_tensors=None, return_token_type_ids=None) -> BatchEncoding:
        """Encode one text (str) or a batch (list of str).

        padding: False, True / "longest" (to the longest in the batch) or "max_length".
        truncation: True cuts each sequence to `max_length` (default: `model_max_length`) including special tokens.
        return_tensors: None for lists (one list per text), "pt" for (B, T) long tensors (B = 1 for a single text).
        Returns a BatchEncoding with `input_ids`, `attention_mask` (1 = real token, 0 = padding) and, where the
        tokenizer's `model_input_names` lists them and `return_token_type_ids` is not False, `token_type_ids` (zeros).
        """
        is_batch = isinstance(text, (list, tuple))
        texts = list(text) if is_batch else [text]
        if not texts:
            raise ValueError("got an empty batch: pass at least one text")
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"a tokenizer takes a str or a list of str, got {type(t).__name__}: {t!r:.80}")
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: only None (lists) and 'pt' (PyTorch) are supported")
        if truncation not in (True, False):
            raise ValueError(f"truncation={truncation!r}: pass True or False")
        if truncation and max_length is None:
            max_length = self._model_max_length_for("truncation=True")
        ids = [self._encode_one(t, add_special_tokens, truncation, max_length) for t in texts]
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

    def _encode_one(self, text, add_special_tokens, truncation, max_length):
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        n_special = len(self.build_inputs_with_special_tokens([])) if add_special_tokens else 0
        if max_length is not None and len(ids) + n_special > max_length:
            if not truncation:
                raise ValueError(f"this text is {len(ids) + n_special} tokens long but max_length={max_length} "
                                 f"(text starts {text[:60]!r}). Pass truncation=True to cut it to {max_length} "
                                 "tokens, or raise max_length.")
            if max_length < n_special:
                raise ValueError(f"max_length={max_length} leaves no room for the {n_special} special tokens")
            ids = ids[:max_length - n_special]
        return self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids

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
        self._write_model_file(path)
        return (str(path),)

    def save_pretrained(self, save_directory) -> tuple:
        """Write the vocabulary file and tokenizer_config.json (the settings and added tokens; transformers reads
        it too, and gives the added tokens the same ids)."""
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        config = {"tokenizer_class": type(self).__name__, **{name: getattr(self, name) for name in SPECIAL_TOKEN_NAMES
                                                             if getattr(self, name) is not None}}
        config.update(self._settings(), clean_up_tokenization_spaces=self.clean_up_tokenization_spaces)
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        if self.added_tokens:
            config["added_tokens_decoder"] = {
                str(self.convert_tokens_to_ids(token)): {"content": token, "special": token in self.extra_special_tokens,
                                                         **ADDED_TOKEN_FLAGS} for token in self.added_tokens}
        if self.extra_special_tokens:
            config["extra_special_tokens"] = list(self.extra_special_tokens)
        config_path = save_directory / CONFIG_NAME
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return self.save_vocabulary(save_directory) + (str(config_path),)

    @classmethod
    def from_pretrained(cls, path, revision=None, local_files_only=False, **overrides):
        """Load from a directory holding the vocabulary file and, optionally, tokenizer_config.json (whose settings
        are used unless overridden by keyword, e.g. pad_token="<pad>") and the older special_tokens_map.json; a path
        to the vocabulary file itself also works, and so does a Hugging Face Hub id, fetched into the Hugging Face
        cache (revision, local_files_only: see bertgen_mini.hub)."""
        if is_hub_id(path):
            path = resolve(path, need=[cls.vocab_file_name], may=[CONFIG_NAME, SPECIAL_TOKENS_MAP_NAME],
                           revision=revision, local_files_only=local_files_only)
        path = Path(path)
        saved = read_json_if_there(path / CONFIG_NAME)
        if "added_tokens_decoder" not in saved:  # as transformers: the older file, read when the newer lacks tokens
            tokens = read_json_if_there(path / SPECIAL_TOKENS_MAP_NAME).items()
            saved.update({name: token["content"] if isinstance(token, dict) else token for name, token in tokens
                          if name in SPECIAL_TOKEN_NAMES})
        known = inspect.signature(cls.__init__).parameters
        settings = {k: v for k, v in saved.items() if k in known and k != "self"}
        tokenizer = cls(path, **{**settings, **overrides})
        tokenizer._restore_added_tokens(saved.get("added_tokens_decoder", {}), path / CONFIG_NAME)
        return tokenizer

    def _restore_added_tokens(self, decoder: dict, source):
        """Add the tokens of a saved `added_tokens_decoder` ({id: {"content", "special", ...}}, as transformers
        writes it too) in id order, checking each gets its saved id. Entries for the named special tokens
        (transformers lists [CLS] and the like there) are already known."""
        named = {getattr(self, name) for name in SPECIAL_TOKEN_NAMES}
        if not isinstance(decoder, dict) or not all(str(i).isdigit() and isinstance(entry, dict)
                                                    and isinstance(entry.get("content"), str)
                                                    for i, entry in decoder.items()):
            raise ValueError(f"{source}: added_tokens_decoder must map ids to {{\"content\": token, ...}}; save the "
                             "tokenizer again.")
        for saved_id, entry in sorted(decoder.items(), key=lambda item: int(item[0])):
            token = entry["content"]
            if token in named:
                continue
            flags = [flag for flag in ("lstrip", "rstrip", "single_word") if entry.get(flag)]
            if flags:
                raise ValueError(f"{source}: added token {token!r} sets {', '.join(flags)}, which this tokenizer does "
                                 "not implement; save it again with those flags off.")
            self.add_tokens([token], special_tokens=bool(entry.get("special")))
            if self.convert_tokens_to_ids(token) != int(saved_id):
                raise ValueError(f"{source}: added token {token!r} was saved with id {saved_id} but gets id "
                                 f"{self.convert_tokens_to_ids(token)} after this vocabulary: the vocabulary file "
                                 "does not belong to this tokenizer_config.json.")

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


def read_json_if_there(path: Path) -> dict:
    """A tokenizer's JSON settings file as a dict ({} when there is none), with an error that names a damaged one."""
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON file ({str(err)[:80]}): copy it again, or delete it to load the "
                         "vocabulary with default settings.") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} holds a {type(values).__name__}, not an object of settings: copy it again, or "
                         "delete it to load the vocabulary with default settings.")
    return values


def _as_id_list(ids) -> list:
    """A 1-D sequence of token ids as a list of int; rejects batches with a pointer to batch_decode."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() > 1:
            raise ValueError(f"decode takes one sequence, got a tensor of shape {tuple(ids.shape)}: use batch_decode")
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    try:
        return list(map(operator.index, ids))  # index, not int: 3.7 is refused, not read as 3
    except TypeError:
        raise ValueError(f"expected one sequence of integer token ids, got {str(ids):.80}: pass ints (a float "
                         "tensor: ids.long() if the values are whole), or use batch_decode for a batch") from None
