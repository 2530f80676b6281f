"""BertGenerationTokenizer: a sentencepiece model (`spiece.model`) behind the shared tokenizer interface.

References:
- Kudo & Richardson, "SentencePiece: A simple and language independent subword tokenizer", EMNLP 2018; Kudo,
  "Subword Regularization" (the unigram model), ACL 2018. The `sentencepiece` library does the cutting.
- Rothe, Narayan & Severyn, "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks", TACL 2020.
- Hugging Face transformers' `BertGenerationTokenizer` (v5): the ids and pieces here match it exactly.

Special tokens: `<s>` (bos), `</s>` (eos), `<unk>`, `<pad>` and the separator `<::::>`, the string WikiSplit puts
between the sentences of a split. Written in the input text, each stays one token; the text between them goes to
sentencepiece piece by piece, as transformers does. No special tokens are added around a sequence (transformers
does not either): a seq2seq model adds bos/eos itself.

The separator when the model lacks it: a model trained by `BertGenerationTokenizer.train` holds `<::::>` as a
user-defined piece (and pad 0, eos 1, bos 2, unk 3, the ids `BertGenerationConfig` expects), so every special token
has an id inside the vocabulary. An older model may lack `<::::>` (or `<pad>`); then, like transformers, the missing
token gets the next id after the last piece (`len(tokenizer) == vocab_size + 1`). We keep that rule rather than
refusing such models so that ids stay interchangeable with transformers and published checkpoints; size the model's
embedding with `len(tokenizer)`, not `vocab_size`, in that case.
"""
import io

import sentencepiece as spm

from .files import read_bytes
from .tokenizer_base import Tokenizer

SPIECE_UNDERLINE = "▁"  # sentencepiece marks "a space came before this piece" with U+2581


class BertGenerationTokenizer(Tokenizer):
    """Sentencepiece tokenizer with BertGeneration's special tokens. See the module docstring."""

    vocab_file_name = "spiece.model"
    model_input_names = ("input_ids", "attention_mask")

    def __init__(self, vocab_file, bos_token: str | None = "<s>", eos_token: str | None = "</s>",
                 unk_token: str | None = "<unk>", pad_token: str | None = "<pad>", sep_token: str | None = "<::::>",
                 model_max_length: int | None = None, clean_up_tokenization_spaces: bool = False):
        """vocab_file: path to a sentencepiece model, a directory holding `spiece.model`, or the model's bytes."""
        self.sp = _load_processor(vocab_file if isinstance(vocab_file, bytes) else self._model_file(vocab_file))
        super().__init__(model_max_length, clean_up_tokenization_spaces, bos_token=bos_token, eos_token=eos_token,
                         unk_token=unk_token, pad_token=pad_token, sep_token=sep_token)

    @classmethod
    def train(cls, texts, vocab_size=8000, model_type="unigram", sep_token="<::::>", **options):
        """Train a new sentencepiece model on an iterable of str and return its tokenizer (save it with
        `save_pretrained`). Reserves pad 0, eos 1, bos 2, unk 3 (BertGenerationConfig's ids) and makes `sep_token`
        one piece. `options` go to `sentencepiece.SentencePieceTrainer.train` (e.g. character_coverage=0.9995)."""
        model = io.BytesIO()
        settings = dict(vocab_size=vocab_size, model_type=model_type, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                        pad_piece="<pad>", eos_piece="</s>", bos_piece="<s>", unk_piece="<unk>",
                        user_defined_symbols=[sep_token], minloglevel=2,
                        num_threads=1)  # deterministic, and threads slow it down badly on a busy machine
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model, **{**settings, **options})
        except RuntimeError as err:
            raise ValueError(f"sentencepiece could not train on these texts: {err}") from None
        return cls(model.getvalue(), sep_token=sep_token)

    @property
    def vocab_size(self) -> int:
        """Number of pieces in the sentencepiece model (special tokens appended after it not counted)."""
        return self.sp.get_piece_size()

    def _tokenize_chunk(self, text):
        try:
            return self.sp.encode(text, out_type=str)
        except RuntimeError:  # sentencepiece takes UTF-8; a lone surrogate has no UTF-8 form
            bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
            if bad is None:
                raise
            raise ValueError(f"The text holds a lone surrogate {text[bad]!r} at position {bad} ({text[:40]!r}...): it "
                             "is not a character and has no UTF-8 form. Decode bytes with errors='replace', or "
                             "drop it with text.encode('utf-8', 'ignore').decode().") from None

    def _token_to_id(self, token):
        return self.sp.piece_to_id(token)

    def _id_to_token(self, i):
        return self.sp.id_to_piece(i)

    def _tokens_to_string(self, tokens):
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    def _write_model_file(self, path):
        path.write_bytes(self.sp.serialized_model_proto())

    def _settings(self):
        return {}


def _load_processor(model) -> spm.SentencePieceProcessor:
    """A SentencePieceProcessor from a model file path or its serialized bytes, with a clear error if unreadable. A
    file is read through files.read_bytes, which refuses a FIFO or a device (sentencepiece would wait on it)."""
    try:
        return spm.SentencePieceProcessor(model_proto=model if isinstance(model, bytes) else read_bytes(model))
    except (RuntimeError, OSError) as err:
        where = "the given bytes" if isinstance(model, bytes) else str(model)
        raise ValueError(f"{where} is not a readable sentencepiece model ({err}). Pass a spiece.model written by "
                         "sentencepiece, or make one with BertGenerationTokenizer.train(texts).") from None
