"""BertGenerationConfig: the sizes and switches of one BertGeneration encoder or decoder.

The defaults are those of transformers' `BertGenerationConfig` (the 24-layer BERT-large-like checkpoints of
Rothe, Narayan & Severyn, TACL 2020). `from_json_file` also reads a plain BERT `config.json`: keys BertGeneration
does not use (token types, pooler, ...) are ignored, and one that would change the maths (relative positions) is
refused, as is any other model type (GPT-2, RoBERTa, ...): its weights would load into the wrong places or not at
all. Every field is checked at construction, so a bad value fails here, named, not later inside the model.
"""
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .checks import check_field_types
from .files import atomic_write_text, checkpoint_dir

SUPPORTED_MODEL_TYPES = ("bert", "bert-generation")
# What users most often pass by mistake, by the name their config.json gives them
KNOWN_MODEL_TYPES = {"gpt2": "GPT-2", "roberta": "RoBERTa", "xlm-roberta": "XLM-RoBERTa", "distilbert": "DistilBERT",
                     "albert": "ALBERT", "electra": "ELECTRA", "t5": "T5", "bart": "BART"}


@dataclass
class BertGenerationConfig:
    vocab_size: int = 50358                 # rows of the word-embedding table (and the LM head)
    hidden_size: int = 1024                 # width d of every token vector
    num_hidden_layers: int = 24             # transformer blocks
    num_attention_heads: int = 16           # heads per attention; each is hidden_size / heads wide
    intermediate_size: int = 4096           # width of the feed-forward block inside each layer
    hidden_act: str = "gelu"                # feed-forward non-linearity: gelu (exact erf), gelu_new, relu, ...
    hidden_dropout_prob: float = 0.1        # dropout on embeddings and on each residual branch
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention probabilities
    max_position_embeddings: int = 512      # longest sequence the learned position table covers
    initializer_range: float = 0.02         # std of the normal init for new (non-pretrained) weights
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | None = 1
    use_cache: bool = True                  # decoders keep keys/values between generation steps
    is_decoder: bool = False                # causal (left-to-right) self-attention
    add_cross_attention: bool = False       # a cross-attention block on encoder states in every layer
    tie_word_embeddings: bool = True        # the LM head reuses the word-embedding matrix
    decoder_start_token_id: int | None = None  # first decoder input when generating (used by a lone decoder)

    model_type = "bert-generation"

    def __post_init__(self):
        check_field_types(self)
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: a model needs at least 1; check the config.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: a dropout probability lies in [0, 1) (0 = off).")
        if not self.layer_norm_eps > 0 or not self.initializer_range >= 0:
            raise ValueError(f"layer_norm_eps={self.layer_norm_eps} must be > 0 and initializer_range="
                             f"{self.initializer_range} >= 0.")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: token ids are >= 0 (or None for none).")
        if self.pad_token_id is not None and self.pad_token_id >= self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id} is outside the vocabulary (vocab_size="
                             f"{self.vocab_size}): set vocab_size to the tokenizer's len(tokenizer).")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads}): each head gets hidden_size / heads dimensions."
            )
        if self.add_cross_attention and not self.is_decoder:
            raise ValueError("add_cross_attention=True needs is_decoder=True: only a decoder attends to an encoder.")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ---------------------------------------------------------------- dict / JSON
    @classmethod
    def from_dict(cls, values: dict, **overrides) -> "BertGenerationConfig":
        """Build from a Hugging Face config dict (BertGeneration or BERT); `overrides` win over the file."""
        if not isinstance(values, dict):
            raise TypeError(f"A config is a JSON object of settings, got a {type(values).__name__}: "
                            "load the config.json of a BERT or BertGeneration checkpoint.")
        check_model_type(values)
        values = {**values, **overrides}
        position_type = values.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(
                f"position_embedding_type={position_type!r} is not supported: BertGeneration uses learned absolute "
                "positions. Pick a checkpoint trained with absolute positions."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        """The Hugging Face `config.json` content, readable by transformers' BertGenerationConfig."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if values["decoder_start_token_id"] is None:
            del values["decoder_start_token_id"]
        return {"model_type": self.model_type, **values}

    @staticmethod
    def read_json(path) -> dict:
        """A config.json as a dict, with errors that name the file."""
        path = Path(path)
        if path.parent.is_file():
            raise NotADirectoryError(f"{path.parent} is a file; pass the checkpoint folder that holds it "
                                     f"({path.parent.parent}).")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist: a checkpoint folder needs its config.json.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err}); the file is damaged, copy it again.") from None

    @classmethod
    def from_json_file(cls, path, **overrides) -> "BertGenerationConfig":
        try:
            return cls.from_dict(cls.read_json(path), **overrides)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{path}: {err}") from None

    def to_json_file(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory, **overrides) -> "BertGenerationConfig":
        return cls.from_json_file(checkpoint_dir(directory) / "config.json", **overrides)



def check_model_type(values: dict) -> None:
    """Refuse a config.json of another kind of model, saying what it is and what loads here."""
    model_type, architectures = values.get("model_type"), values.get("architectures") or []
    if model_type is None and architectures and not all(str(a).startswith("Bert") for a in architectures):
        model_type = architectures[0]
    if model_type is None or model_type in SUPPORTED_MODEL_TYPES:
        return
    if model_type == "encoder-decoder":
        raise ValueError("This is an encoder-decoder pair: load it with EncoderDecoderModel.from_pretrained.")
    what = KNOWN_MODEL_TYPES.get(model_type, repr(model_type))
    raise ValueError(f"This is a {what} checkpoint (model_type {model_type!r}, architectures {architectures}), "
                     "not BERT: its weights do not fit BertGeneration. Supported: BERT ('bert') and BertGeneration "
                     "('bert-generation') checkpoints, e.g. bertgen_mini.default_bert_dir().")
