"""BertTokenizer: BERT's basic pass plus greedy WordPiece, for the `vocab.txt` of a BERT checkpoint.

References:
- Devlin et al., "BERT", NAACL 2019, and google-research/bert `tokenization.py` (the algorithm).
- Wu et al., "Google's Neural Machine Translation System", 2016 (WordPiece).
- Hugging Face transformers' `BertTokenizer` (v5, backed by the Rust `tokenizers` library: `BertNormalizer`,
  `BertPreTokenizer`, `WordPiece` model and decoder): the ids and decoded text here match it exactly.

Encoding one stretch of text (special tokens such as `[SEP]` and added tokens such as WikiSplit's `<::::>`,
written in the text, are cut out first and stay whole):
1. clean: drop control and format characters, NUL and U+FFFD; every whitespace character separates words;
2. per word: put spaces around CJK ideographs, strip accents (NFD, then drop non-spacing marks), lower-case,
   split off every punctuation character; words in `never_split` skip this step;
3. WordPiece: the longest vocabulary entry that starts the word, then the longest `##`-entry continuing it, ...;
   a word that cannot be cut this way, or longer than `max_input_chars_per_word`, becomes `[UNK]`.
Step 2 and 3 depend on the word alone, so their result is kept in a dict: most words of a corpus are seen again.

One known difference: character classes come from Python's `unicodedata`, while the Rust library uses older
Unicode tables, so about 120 characters assigned after Unicode 9 (a few punctuation and format characters, e.g.
U+2E43..U+2E4F) are classified differently. Text in current use is unaffected.
"""
import re
import string
import unicodedata

from .files import read_text
from .tokenizer_base import CLEANUP_REPLACEMENTS, Tokenizer, clean_up_tokenization

_WORD_CACHE_SIZE = 500_000
_ASCII_CONTROLS = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}  # all but \t \n \r
_CJK = re.compile("([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                  "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f])")
# the Rust decoder's per-token cleanup: transformers' list plus one more rule
_DECODE_CLEANUP = CLEANUP_REPLACEMENTS + ((" do not", " don't"),)
_MAY_NEED_CLEANUP = re.compile("|".join(re.escape(old[:2]) for old, _ in _DECODE_CLEANUP))  # a cheap first test


def _is_control(char: str) -> bool:
    """Characters BERT deletes: control (Cc, but not tab/newline/CR), format (Cf), private use (Co), NUL, U+FFFD."""
    return char == "\ufffd" or (unicodedata.category(char) in ("Cc", "Cf", "Co") and char not in "\t\n\r")


def _is_punctuation(char: str) -> bool:
    """ASCII symbols such as $ + ^ count as punctuation for BERT, as does every Unicode P* category."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


class BertTokenizer(Tokenizer):
    """WordPiece tokenizer for BERT checkpoints; `[CLS] ... [SEP]` around each sequence. See the module docstring."""

    vocab_file_name = "vocab.txt"
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(self, vocab_file, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, never_split: list | None = None,
                 max_input_chars_per_word: int = 100, unk_token: str = "[UNK]", sep_token: str | None = "[SEP]",
                 pad_token: str | None = "[PAD]", cls_token: str | None = "[CLS]", mask_token: str | None = "[MASK]",
                 bos_token: str | None = None, eos_token: str | None = None, model_max_length: int | None = None,
                 clean_up_tokenization_spaces: bool = False):
        """vocab_file: a `vocab.txt` (one token a line, the line number is its id) or a directory holding one.
        strip_accents=None follows do_lower_case, as in BERT. never_split: words kept whole by the basic pass.
        bos_token / eos_token: none in BERT; a seq2seq model's vocabulary may name them (the paper's WMT models)."""
        self.vocab_file = self._model_file(vocab_file)
        self.ids_to_tokens = _read_vocab(self.vocab_file)
        self.vocab = {token: i for i, token in enumerate(self.ids_to_tokens)}
        if unk_token not in self.vocab:
            raise ValueError(f"{self.vocab_file} has no {unk_token!r} line, and WordPiece needs it for the words it "
                             "cannot cut. Add that line, or pass unk_token= naming the unknown token of this vocab.")
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.never_split = set(never_split or ())
        self.max_input_chars_per_word = max_input_chars_per_word
        self._word_cache = {}  # word -> its wordpieces; the basic pass and WordPiece only depend on the word
        self._unk_id = self.vocab[unk_token]
        super().__init__(model_max_length, clean_up_tokenization_spaces, unk_token=unk_token, sep_token=sep_token,
                         pad_token=pad_token, cls_token=cls_token, mask_token=mask_token, bos_token=bos_token,
                         eos_token=eos_token)

    @property
    def vocab_size(self) -> int:
        """Number of lines in vocab.txt."""
        return len(self.ids_to_tokens)

    def build_inputs_with_special_tokens(self, ids):
        """[CLS] ids [SEP]."""
        return [self.cls_token_id, *ids, self.sep_token_id]

    # ---- encoding --------------------------------------------------------------------------------------------

    def _tokenize_chunk(self, text):
        text = text.translate(_ASCII_CONTROLS) if text.isascii() else "".join(c for c in text if not _is_control(c))
        tokens = []
        for word in text.split():
            pieces = self._word_cache.get(word)
            if pieces is None:
                pieces = self._tokenize_word(word)
                if len(self._word_cache) < _WORD_CACHE_SIZE:  # bounded, so a long run cannot fill memory
                    self._word_cache[word] = pieces
            tokens += pieces
        return tokens

    def _tokenize_word(self, word):
        """Wordpieces of one whitespace-free word: the basic pass, then WordPiece on each resulting piece."""
        if word in self.never_split:
            return self._wordpiece(word)
        return [piece for part in self._basic_split(word) for piece in self._wordpiece(part)]

    def _basic_split(self, word):
        """Normalize a word and cut it at CJK ideographs and punctuation: "Café!" -> ["cafe", "!"]."""
        if self.tokenize_chinese_chars and not word.isascii():
            word = _CJK.sub(r" \1 ", word)
        if self.strip_accents and not word.isascii():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        if self.do_lower_case:
            word = word.replace("Σ", "σ").lower()  # per character: no Greek final-sigma rule, as in the Rust library
        parts = []
        for chunk in word.split():
            start = 0
            for i, char in enumerate(chunk):
                if _is_punctuation(char):
                    parts += [chunk[start:i], char] if i > start else [char]
                    start = i + 1
            if start < len(chunk):
                parts.append(chunk[start:])
        return parts

    def _wordpiece(self, word):
        """Greedy longest-match-first: "unaffable" -> ["un", "##aff", "##able"]; [unk] if some rest has no match."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def _token_to_id(self, token):
        return self.vocab.get(token, self._unk_id)

    def _id_to_token(self, i):
        return self.ids_to_tokens[i]

    # ---- decoding and saving ---------------------------------------------------------------------------------

    def _tokens_to_string(self, tokens):
        """Glue `##` pieces to the piece before, put a space before the others, then tidy punctuation per token."""
        words = [token if i == 0 else token[2:] if token.startswith("##") else " " + token
                 for i, token in enumerate(tokens)]
        return "".join(clean_up_tokenization(w, _DECODE_CLEANUP) if _MAY_NEED_CLEANUP.search(w) else w for w in words)

    def _write_model_file(self, path):
        path.write_text("".join(token + "\n" for token in self.ids_to_tokens), encoding="utf-8")

    def _settings(self):
        return {"do_lower_case": self.do_lower_case, "strip_accents": self.strip_accents,
                "tokenize_chinese_chars": self.tokenize_chinese_chars, "never_split": sorted(self.never_split),
                "max_input_chars_per_word": self.max_input_chars_per_word}


def _read_vocab(path) -> list:
    """The tokens of a vocab.txt in id order (a token's id is its line number - 1), with a clear error for a file
    that is not UTF-8 text, and for a blank or repeated line: it would shift the id of every token after it, and
    the vocabulary would load as another one."""
    try:
        text = read_text(path)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a UTF-8 vocab.txt ({err}); pass the vocab.txt of a BERT checkpoint") from None
    tokens = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    first_seen = {}
    for number, token in enumerate(tokens, start=1):
        if not token.strip():
            raise ValueError(f"{path}: line {number} is blank. Each line is one token and its id is the line number "
                             "- 1, so a blank line moves every id after it: delete it.")
        if token in first_seen:
            raise ValueError(f"{path}: line {number} repeats line {first_seen[token]} ({token!r}). Each line is "
                             "one token and its id is the line number - 1, so a repeat moves every id after it: "
                             "delete it.")
        first_seen[token] = number
    return tokens
