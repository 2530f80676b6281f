"""AutoTokenizer: the right tokenizer class for a checkpoint folder or Hub id, chosen the way transformers chooses.

1. the class tokenizer_config.json names (`tokenizer_class`; transformers' "...Fast" variants are the same class);
2. else the class config.json names (`tokenizer_class`);
3. else the tokenizer of config.json's `model_type` (an encoder-decoder's: its encoder's);
4. else the vocabulary file present (`spiece.model`: sentencepiece, `vocab.txt`: WordPiece, `vocab.json`: GPT-2's
   byte-level BPE);
5. else an error that lists what is supported.

TOKENIZERS is the one table to extend when a tokenizer class joins the package.
"""
from pathlib import Path

from .checkpoint import CONFIG_NAME
from .hub import resolve
from .tokenizer_base import CONFIG_NAME as TOKENIZER_CONFIG_NAME, SPECIAL_TOKENS_MAP_NAME, read_saved_settings
from .tokenizer_bpe import GPT2Tokenizer, RobertaTokenizer
from .tokenizer_sentencepiece import BertGenerationTokenizer
from .tokenizer_wordpiece import BertTokenizer

# class name (as tokenizer_config.json writes it) -> (class, config.json model types it serves); each class names its
# own files (`vocab_file_name`, `other_files`)
TOKENIZERS = {
    "BertTokenizer": (BertTokenizer, ("bert",)),
    "BertGenerationTokenizer": (BertGenerationTokenizer, ("bert-generation",)),
    "GPT2Tokenizer": (GPT2Tokenizer, ("gpt2",)),
    "RobertaTokenizer": (RobertaTokenizer, ("roberta",)),
}
# Names that say "a tokenizer.json" but not which algorithm: the model type and the files decide instead
GENERIC_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend", "PythonBackend")


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(name_or_folder, **overrides)`: see the module docstring."""

    @staticmethod
    def from_pretrained(name_or_folder, revision=None, local_files_only=False, **overrides):
        """The tokenizer of a checkpoint folder or Hugging Face Hub id (revision, local_files_only: see
        bertgen_mini.hub), its class picked as the module docstring says. `overrides` go to that class's
        from_pretrained (pad_token="<pad>", eos_token="</s>", ...)."""
        settings = [CONFIG_NAME, TOKENIZER_CONFIG_NAME, SPECIAL_TOKENS_MAP_NAME]
        vocab_files = list(dict.fromkeys(name for cls, _ in TOKENIZERS.values()
                                         for name in (cls.vocab_file_name, *cls.other_files)))
        folder = resolve(name_or_folder, may=[*settings, *vocab_files], revision=revision,
                         local_files_only=local_files_only)
        return tokenizer_class(folder).from_pretrained(folder, **overrides)


def tokenizer_class(folder: Path):
    """The tokenizer class for a local checkpoint folder, or a ValueError that says what is supported."""
    named = read_saved_settings(folder / TOKENIZER_CONFIG_NAME).get("tokenizer_class")
    config = read_saved_settings(folder / CONFIG_NAME)
    named = named or config.get("tokenizer_class")
    if named and named not in GENERIC_CLASSES:
        name = named.removesuffix("Fast")
        if name not in TOKENIZERS:
            raise ValueError(f"{folder} names the tokenizer class {named!r}, which bertgen_mini does not have. "
                             f"Supported: {', '.join(TOKENIZERS)}.")
        return TOKENIZERS[name][0]
    if isinstance(config.get("encoder"), dict):  # an encoder-decoder reads its source with the encoder's tokenizer
        config = config["encoder"]
    for cls, model_types in TOKENIZERS.values():
        if config.get("model_type") in model_types:
            return cls
    for cls, _ in TOKENIZERS.values():
        if (folder / cls.vocab_file_name).is_file():
            return cls
    supported = "; ".join(f"{name} ({cls.vocab_file_name}, model_type {' or '.join(types)})"
                          for name, (cls, types) in TOKENIZERS.items())
    raise ValueError(f"Cannot tell which tokenizer {folder} holds: no tokenizer_class in tokenizer_config.json, no "
                     f"model_type this package knows in config.json ({config.get('model_type')!r}), and no "
                     f"vocabulary file it reads (it holds {sorted(p.name for p in folder.iterdir())[:10]}). "
                     f"Supported: {supported}.")
