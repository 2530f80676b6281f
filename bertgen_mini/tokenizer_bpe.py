"""GPT2Tokenizer and RobertaTokenizer: byte-level BPE from the `vocab.json` and `merges.txt` of a GPT-2 or RoBERTa
checkpoint.

References:
- Sennrich, Haddow & Birch, "Neural Machine Translation of Rare Words with Subword Units", ACL 2016 (BPE).
- Radford et al., "Language Models are Unsupervised Multitask Learners", 2019, and openai/gpt-2 `encoder.py` (BPE over
  bytes, the pre-tokenizing pattern).
- Liu et al., "RoBERTa: A Robustly Optimized BERT Pretraining Approach", 2019 (GPT-2's BPE with `<s> ... </s>`).
- Hugging Face transformers' `GPT2Tokenizer` and `RobertaTokenizer` (v5, backed by the Rust `tokenizers` library:
  `ByteLevel` pre-tokenizer and decoder, `BPE` model, `RobertaProcessing`): the ids and decoded text here match them.

Encoding one stretch of text (special and added tokens written in the text are cut out first and stay whole):
1. with `add_prefix_space`, a space goes in front unless one is there, so the first word is spelled like the words
   after it;
2. pre-tokenizing: GPT-2's pattern cuts the text into words: English contractions ('s 't 're 've 'm 'll 'd), runs of
   letters, of digits, of other symbols (each may take one space before it), and runs of whitespace (a run before a
   word leaves its last space to the word). No merge crosses a word's edge;
3. bytes as characters: each byte of the word's UTF-8 becomes one printable stand-in character (`bytes_to_unicode`:
   a space is `Ġ`, a newline `Ċ`), so a vocabulary of strings spells every byte and no text is unknown;
4. BPE: from single characters, merge the adjacent pair that merges.txt lists first (its line is its rank), the
   leftmost where the pair repeats, until no adjacent pair is listed. Steps 3 and 4 depend on the word alone, so
   their result is kept in a dict: most words of a corpus are seen again.
Decoding reverses step 3: each token's stand-ins back to bytes, the bytes read as UTF-8 (`errors="replace"` puts
U+FFFD where the ids end inside a character).

Files: a directory holding vocab.json + merges.txt (GPT-2's and RoBERTa's checkpoints), or the tokenizer.json that
transformers 5 saves instead, and optionally tokenizer_config.json and special_tokens_map.json. All are JSON or
text: loading never runs code.

One known difference: the pattern's letter and digit classes come from the `regex` package, whose Unicode tables
(17.0) are newer than the Rust library's regex engine's, so the about 4,700 letters and digits that Unicode 17.0
added (4,298 of them CJK ideographs of Extension J, U+323B0..U+33479) are cut into words differently. Text in
current use is unaffected.
"""
import codecs
import json
import math
import warnings
from pathlib import Path

import regex

from .checkpoint import read_json
from .files import atomic_write_text, read_text
from .tokenizer_base import TOKENIZER_FILE, Tokenizer

MERGES_FILE = "merges.txt"
_WORD_CACHE_SIZE = 500_000
# tokenizer.json's fields ("model.type": the "type" of its "model" entry) that make GPT-2's byte-level BPE, and the
# values GPT-2's may have there, its own first (None: left out); a file with another value is refused
GPT2_BPE = {"model.type": ("BPE",), "model.dropout": (None,), "model.byte_fallback": (False, None),
            "model.ignore_merges": (False, None), "model.continuing_subword_prefix": ("", None),
            "model.end_of_word_suffix": ("", None), "normalizer.type": (None,), "pre_tokenizer.type": ("ByteLevel",),
            "pre_tokenizer.use_regex": (True, None)}
# GPT-2's pre-tokenizing pattern (step 2 of the module docstring); \p{L} letters, \p{N} digits
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def bytes_to_unicode() -> dict:
    """{byte (0..255): its stand-in character}. The 188 bytes that print as a visible Latin-1 character (`!`..`~`,
    `¡`..`¬`, `®`..`ÿ`) stand for themselves; the other 68 (controls, space, no-break space, soft hyphen) take
    chr(256), chr(257), ... in byte order, so a space is `Ġ` (chr(288)). Why: BPE merges strings, and with a visible
    character for every byte, a vocabulary of strings (vocab.json) can spell any byte sequence."""
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in visible]
    return {**{byte: chr(byte) for byte in visible}, **{byte: chr(256 + i) for i, byte in enumerate(others)}}


BYTE_TO_CHAR = bytes_to_unicode()
# str.translate table from stand-ins back to latin-1 text (one character per byte; BYTE_TO_CHAR is the table the other
# way). Characters below 256 that stand for no byte (a space, a control) go to U+FFFF, which latin-1 cannot encode.
_FROM_STAND_INS = {**dict.fromkeys(range(256), 0xFFFF), **{ord(char): byte for byte, char in BYTE_TO_CHAR.items()}}


def _token_bytes(token: str) -> bytes:
    """The bytes a token stands for. A token holding a character that stands for no byte (an added token such as
    "😀" or " x") is taken as written, in UTF-8, as transformers' decoder takes it."""
    try:
        return token.translate(_FROM_STAND_INS).encode("latin-1")
    except UnicodeEncodeError:
        return token.encode("utf-8")


class ByteLevelBPETokenizer(Tokenizer):
    """What GPT2Tokenizer and RobertaTokenizer share: the files, byte-level BPE and decoding. See the module docstring;
    the two subclasses only name their special tokens and where they go."""

    vocab_file_name = "vocab.json"
    other_files = (MERGES_FILE, TOKENIZER_FILE)
    model_input_names = ("input_ids", "attention_mask")
    takes_pairs = True

    def __init__(self, vocab_file, merges_file=None, errors="replace", add_prefix_space=False, model_max_length=None,
                 clean_up_tokenization_spaces=False, **special_tokens):
        """vocab_file: a directory holding vocab.json and merges.txt (or tokenizer.json), a vocab.json (merges.txt
        beside it unless `merges_file` names it), or a tokenizer.json. errors: how bytes that are not UTF-8 decode
        (`bytes.decode`'s argument). clean_up_tokenization_spaces is accepted from older configs and not used: see
        `decode`."""
        self.vocab_file, self.merges_file = _find_files(type(self).__name__, Path(vocab_file), merges_file)
        if self.merges_file is None:
            self.ids_to_tokens, merges = _read_tokenizer_json(self.vocab_file)
            first_line = None  # tokenizer.json's merges are not lines: errors name their rank
        else:
            self.ids_to_tokens = _tokens_in_id_order(read_json(self.vocab_file), self.vocab_file)
            merges, first_line = _read_merges_txt(self.merges_file)
        self.vocab = {token: i for i, token in enumerate(self.ids_to_tokens)}
        # (left, right) -> rank, 0 = merged first
        self.merge_ranks = _rank_merges(merges, self.vocab, self.merges_file or self.vocab_file, first_line)
        codecs.lookup_error(errors)  # an unknown name fails here, not at the first decode
        self.errors, self.add_prefix_space = errors, add_prefix_space
        self._word_cache = {}  # pre-tokenized word -> its BPE tokens
        missing = [byte for byte, char in BYTE_TO_CHAR.items() if char not in self.vocab]
        if missing:
            warnings.warn(f"{self.vocab_file} has no token for the bytes {missing[:8]}{'...' if missing[8:] else ''}: "
                          "text holding them loses those bytes when encoded (as in transformers).", stacklevel=2)
        super().__init__(model_max_length, False, **special_tokens)

    @property
    def vocab_size(self) -> int:
        """Number of tokens in vocab.json."""
        return len(self.ids_to_tokens)

    # ---- encoding --------------------------------------------------------------------------------------------

    def _tokenize_chunk(self, text):
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        tokens = []
        for word in GPT2_PATTERN.findall(text):
            pieces = self._word_cache.get(word)
            if pieces is None:
                pieces = self._bpe(_stand_ins(word, text))
                if len(self._word_cache) < _WORD_CACHE_SIZE:  # bounded, so a long run cannot fill memory
                    self._word_cache[word] = pieces
            tokens += pieces
        return tokens

    def _bpe(self, word: str) -> list:
        """Byte-pair merges on one word written in stand-ins, e.g. "Ġlower" -> ["Ġlow", "er"] (step 4 of the module
        docstring). A character the vocabulary lacks is dropped first, as transformers drops it."""
        parts = [char for char in word if char in self.vocab]
        while len(parts) > 1:
            ranks = [self.merge_ranks.get(pair, math.inf) for pair in zip(parts, parts[1:])]
            best = min(ranks)
            if best == math.inf:  # no adjacent pair is listed in merges.txt
                break
            i = ranks.index(best)  # the leftmost of the best-ranked pairs
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    def _in_vocab(self, token):
        return token in self.vocab

    def _token_to_id(self, token):
        i = self.vocab.get(token)
        return self.unk_token_id if i is None else i

    def _id_to_token(self, i):
        return self.ids_to_tokens[i]

    # ---- decoding and saving ---------------------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None) -> str:
        """Text of one sequence of ids (list of int, or a 1-D tensor); `skip_special_tokens` drops `<s>`, pad, ...
        Spaces are given back exactly: the clean-up that removes spaces before punctuation was made for WordPiece and
        would delete spaces the text had, so clean_up_tokenization_spaces=True is ignored (with a warning), as
        transformers 5 ignores it for BPE."""
        if clean_up_tokenization_spaces:
            warnings.warn(f"{type(self).__name__} ignores clean_up_tokenization_spaces=True: byte-level BPE gives the "
                          "text back exactly, spaces included.", stacklevel=2)
        return super().decode(ids, skip_special_tokens, clean_up_tokenization_spaces=False)

    def _tokens_to_string(self, tokens):
        return b"".join(map(_token_bytes, tokens)).decode("utf-8", errors=self.errors)

    def save_vocabulary(self, save_directory, filename_prefix=None) -> tuple:
        """Write vocab.json and merges.txt (names with an optional `prefix-`) into an existing directory."""
        (vocab_path,) = super().save_vocabulary(save_directory, filename_prefix)
        merges_path = Path(save_directory) / ((filename_prefix + "-" if filename_prefix else "") + MERGES_FILE)
        lines = ["#version: 0.2", *(f"{left} {right}" for left, right in sorted(self.merge_ranks,
                                                                              key=self.merge_ranks.get))]
        atomic_write_text(merges_path, "\n".join(lines) + "\n")
        return vocab_path, str(merges_path)

    def _write_model_file(self, path):
        path.write_text(json.dumps(self.vocab, ensure_ascii=False) + "\n", encoding="utf-8")

    def _settings(self):
        return {"add_prefix_space": self.add_prefix_space, "errors": self.errors}


class GPT2Tokenizer(ByteLevelBPETokenizer):
    """GPT-2's tokenizer: `<|endoftext|>` is its bos, eos and unk token, there is no pad token, and no special token is
    added around a text unless add_bos_token / add_eos_token ask for one (transformers 5's defaults). A pair of texts
    is the two one after the other."""

    def __init__(self, vocab_file, merges_file=None, errors="replace", unk_token="<|endoftext|>",
                 bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token=None, add_prefix_space=False,
                 add_bos_token=False, add_eos_token=False, model_max_length=None, clean_up_tokenization_spaces=False):
        """See ByteLevelBPETokenizer.__init__. pad_token: None, as GPT-2 has none; pass one (often
        "<|endoftext|>") to pad batches."""
        if add_bos_token and bos_token is None or add_eos_token and eos_token is None:
            raise ValueError("add_bos_token=True needs a bos_token, and add_eos_token=True an eos_token: name the "
                             "token or leave the flag off")
        self.add_bos_token, self.add_eos_token = add_bos_token, add_eos_token
        super().__init__(vocab_file, merges_file, errors, add_prefix_space, model_max_length,
                         clean_up_tokenization_spaces, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                         pad_token=pad_token)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        """ids (then pair_ids), each with bos before it if add_bos_token and eos after it if add_eos_token."""
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        return bos + list(ids) + eos + ([] if pair_ids is None else bos + list(pair_ids) + eos)

    def _settings(self):
        return {**super()._settings(), "add_bos_token": self.add_bos_token, "add_eos_token": self.add_eos_token}


class RobertaTokenizer(ByteLevelBPETokenizer):
    """RoBERTa's tokenizer: GPT-2's byte-level BPE with BERT's roles for special tokens under other names: `<s> A </s>`
    for one text, `<s> A </s></s> B </s>` for a pair; `<pad>`, `<unk>` and `<mask>`."""

    def __init__(self, vocab_file, merges_file=None, errors="replace", bos_token="<s>", eos_token="</s>",
                 sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                 add_prefix_space=False, model_max_length=None, clean_up_tokenization_spaces=False):
        """See ByteLevelBPETokenizer.__init__."""
        super().__init__(vocab_file, merges_file, errors, add_prefix_space, model_max_length,
                         clean_up_tokenization_spaces, bos_token=bos_token, eos_token=eos_token, sep_token=sep_token,
                         cls_token=cls_token, unk_token=unk_token, pad_token=pad_token, mask_token=mask_token)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        """<s> ids </s>, or <s> ids </s></s> pair_ids </s>."""
        single = [self.cls_token_id, *ids, self.sep_token_id]
        return single if pair_ids is None else single + [self.sep_token_id, *pair_ids, self.sep_token_id]


# ---- reading the files ---------------------------------------------------------------------------------------------

def _stand_ins(word: str, text: str) -> str:
    """A word's UTF-8 bytes written as their stand-in characters: "Ġhi" for " hi"."""
    try:
        return word.encode("utf-8").decode("latin-1").translate(BYTE_TO_CHAR)
    except UnicodeEncodeError as err:  # only a lone surrogate has no UTF-8 form
        raise ValueError(f"The text holds a lone surrogate {word[err.start]!r} ({text[:40]!r}...): it is not a "
                         "character and has no UTF-8 bytes. Decode bytes with errors='replace', or drop it with "
                         "text.encode('utf-8', 'ignore').decode().") from None


def _find_files(owner, path: Path, merges_file):
    """(vocab.json, merges.txt) paths, or (tokenizer.json, None), for what a tokenizer was given."""
    if path.is_dir():
        if not (path / ByteLevelBPETokenizer.vocab_file_name).is_file() and (path / TOKENIZER_FILE).is_file():
            return path / TOKENIZER_FILE, None
        path = path / ByteLevelBPETokenizer.vocab_file_name
    if path.name == TOKENIZER_FILE and path.is_file():
        return path, None
    merges = Path(merges_file) if merges_file is not None else path.with_name(MERGES_FILE)
    for needed in (path, merges):
        if not needed.is_file():
            raise FileNotFoundError(f"{owner} needs vocab.json and merges.txt (or a tokenizer.json), and {needed} does "
                                    "not exist. Pass the directory holding them, or vocab.json and merges_file=.")
    return path, merges


def _tokens_in_id_order(vocab, source) -> list:
    """The tokens of a vocabulary ({token: id}, as vocab.json holds it) in id order; the ids must be 0..n-1, each
    once. source: the file, for errors."""
    if not isinstance(vocab, dict) or not all(type(i) is int for i in vocab.values()):
        raise ValueError(f"{source} must map each token (a string) to its id (an integer), as GPT-2's vocab.json does")
    tokens = [None] * len(vocab)
    for token, i in vocab.items():
        if not 0 <= i < len(vocab):
            raise ValueError(f"{source}: {token!r} has id {i}, but {len(vocab)} tokens must have the ids "
                             f"0..{len(vocab) - 1}, each once. Is the file cut short or edited?")
        if tokens[i] is not None:
            raise ValueError(f"{source}: {tokens[i]!r} and {token!r} both have id {i}; each id must be used once.")
        tokens[i] = token
    return tokens


def _read_merges_txt(path: Path):
    """The merge pairs of a merges.txt in rank order, one `left right` pair a line after an optional `#version` line,
    and the line number of the first pair (2 after a `#version` line; merge r is on line first_line + r)."""
    try:
        lines = read_text(path).split("\n")  # not splitlines(): only \n ends a line, as in Rust
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err}); pass the merges.txt of a GPT-2 or RoBERTa checkpoint") \
            from None
    if lines[-1] == "":
        lines.pop()
    first_line = 2 if lines and lines[0].startswith("#version") else 1
    merges = []
    for number, line in enumerate(lines[first_line - 1:], first_line):
        line = line.removesuffix("\r")
        pair = line.split(" ")
        if len(pair) != 2:
            raise ValueError(f"{path}, line {number}: {line[:60]!r} is not a merge: each line holds two tokens and "
                             "one space between them.")
        merges.append(tuple(pair))
    return merges, first_line


def _read_tokenizer_json(path: Path):
    """Tokens in id order and merge pairs in rank order, out of a tokenizer.json holding GPT-2's byte-level
    BPE (anything else is refused, naming the setting that differs)."""
    spec = read_json(path)
    model = spec.get("model") if isinstance(spec, dict) else None
    if not isinstance(model, dict):
        raise ValueError(f"{path} has no 'model' entry: it is not a tokenizer.json written by transformers/tokenizers")
    found = {name: (spec.get(name.split(".")[0]) or {}).get(name.split(".")[1]) for name in GPT2_BPE}
    odd = [f"{name}={found[name]!r}" for name, values in GPT2_BPE.items() if found[name] not in values]
    if odd:
        gpt2 = ", ".join(f"{name}={values[0]!r}" for name, values in GPT2_BPE.items())
        raise ValueError(f"{path} is not GPT-2's byte-level BPE ({', '.join(odd)}; GPT-2 has {gpt2}), so GPT2Tokenizer "
                         "and RobertaTokenizer cannot reproduce it.")
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model.get("merges", [])]
    bad = next((rank for rank, merge in enumerate(merges) if len(merge) != 2), None)
    if bad is not None:
        raise ValueError(f"{path}: merge {bad} ({merges[bad]!r}) is not a pair of tokens")
    return _tokens_in_id_order(model.get("vocab"), path), merges


def _rank_merges(merges: list, vocab: dict, source, first_line=None) -> dict:
    """{(left, right): rank} for the merges in rank order, after checking that both tokens of each pair and their
    join are in the vocabulary (vocab.json and merges.txt of different tokenizers fail here). A pair listed twice
    keeps its last rank, as in transformers. source: the file, for errors, which name the line of merges.txt
    (`first_line`: merge 0's) or the rank of tokenizer.json's merge (first_line None)."""
    for rank, (left, right) in enumerate(merges):
        missing = next((token for token in (left, right, left + right) if token not in vocab), None)
        if missing is not None:
            at = f"merge {rank}" if first_line is None else f"line {first_line + rank}"
            raise ValueError(f"{source}, {at}: the merge {left!r} + {right!r} needs {missing!r}, which is not in the "
                             "vocabulary. Are vocab.json and merges.txt from the same checkpoint?")
    return {merge: rank for rank, merge in enumerate(merges)}

