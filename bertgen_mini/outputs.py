"""Model outputs with transformers' field names, so `out.loss`, `out.logits`, `out["logits"]` and `out[0]` all
work as a learner who has read the transformers docs expects. Fields left as None are skipped by integer indexing."""
from dataclasses import dataclass, fields

import torch


class ModelOutput:
    def to_tuple(self) -> tuple:
        return tuple(v for v in (getattr(self, f.name) for f in fields(self)) if v is not None)

    def __getitem__(self, key):
        return getattr(self, key) if isinstance(key, str) else self.to_tuple()[key]

    def keys(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor = None                  # (B, T, d)
    past_key_values: object = None                          # a KVCache when use_cache
    hidden_states: tuple | None = None                      # embeddings + every layer, each (B, T, d)
    attentions: tuple | None = None                         # per layer (B, nh, T, T)
    cross_attentions: tuple | None = None                   # per layer (B, nh, T, S)


@dataclass
class CausalLMOutput(ModelOutput):
    loss: torch.Tensor | None = None                        # next-token cross-entropy, -100 labels ignored
    logits: torch.Tensor = None                             # (B, T, V)
    past_key_values: object = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    cross_attentions: tuple | None = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor = None                             # (B, T, V)
    past_key_values: object = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: torch.Tensor | None = None   # (B, S, d)
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
