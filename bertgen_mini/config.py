"""BertGenerationConfig: the sizes and switches of one BertGeneration encoder or decoder.

The defaults are those of transformers' `BertGenerationConfig` (the 24-layer BERT-large-like checkpoints of
Rothe, Narayan & Severyn, TACL 2020). `from_json_file` also reads a plain BERT `config.json`: keys BertGeneration
does not use (token types, pooler, ...) are ignored, and one that would change the maths (relative positions) is
refused. It reads a RoBERTa `config.json` too, with a position table shorter by RoBERTa's offset (see roberta.py);
any other model type is refused (GPT-2 has its own config, gpt2.GPT2Config): its weights would load into the wrong
places or not at all. Every field is checked at construction (`checks.check_config`), so a bad value fails here,
named, not later inside the model. `ConfigBase` holds the JSON round trip both configs share.
"""
import dataclasses
import json
from dataclasses import dataclass

from .checkpoint import CONFIG_NAME, check_model_type, read_json
from .checks import check_config
from .files import atomic_write_text
from .hub import resolve
from .roberta import roberta_config_values


class ConfigBase:
    """config.json in and out, for a dataclass config with a `model_type` and a `from_dict`."""

    model_type = None

    def __post_init__(self):
        check_config(self)

    @classmethod
    def dropout_fields(cls) -> tuple:
        """The names of the dropout probabilities (BERT's *_dropout_prob, GPT-2's *_pdrop)."""
        return tuple(f.name for f in dataclasses.fields(cls) if "drop" in f.name)

    def to_dict(self) -> dict:
        """The Hugging Face `config.json` content, readable by transformers' config class of the same model_type."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if values["decoder_start_token_id"] is None:
            del values["decoder_start_token_id"]
        return {"model_type": self.model_type, **values}

    @classmethod
    def from_json_file(cls, path, **overrides):
        try:
            return cls.from_dict(read_json(path), **overrides)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{path}: {err}") from None

    def to_json_file(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, name_or_folder, revision=None, local_files_only=False, **overrides):
        """The config.json of a checkpoint folder or of a Hugging Face Hub id (see bertgen_mini.hub: revision,
        local_files_only); `overrides` win over the file."""
        folder = resolve(name_or_folder, need=[CONFIG_NAME], revision=revision, local_files_only=local_files_only)
        return cls.from_json_file(folder / CONFIG_NAME, **overrides)


@dataclass
class BertGenerationConfig(ConfigBase):
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

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ---------------------------------------------------------------- dict / JSON
    @classmethod
    def from_dict(cls, values: dict, **overrides) -> "BertGenerationConfig":
        """Build from a Hugging Face config dict (BertGeneration, BERT or RoBERTa); `overrides` win over the file."""
        if not isinstance(values, dict):
            raise TypeError(f"A config is a JSON object of settings, got a {type(values).__name__}: "
                            "load the config.json of a BERT or BertGeneration checkpoint.")
        check_model_type(values)
        if values.get("model_type") == "roberta":
            values = roberta_config_values(values)
        values = {**values, **overrides}
        position_type = values.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(
                f"position_embedding_type={position_type!r} is not supported: BertGeneration uses learned absolute "
                "positions. Pick a checkpoint trained with absolute positions."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
