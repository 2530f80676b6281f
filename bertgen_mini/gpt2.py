"""GPT-2 as the decoder of an encoder-decoder: bert2gpt, rnd2gpt and roberta2gpt (Rothe, Narayan & Severyn, TACL
2020, Table 1).

GPT-2 (Radford et al. 2019) is a stack of decoder blocks like BERT's layers, with the LayerNorm moved to the start
of each branch ("pre-LN") and one more LayerNorm after the last block:

    BERT (post-LN):   x = LN(x + Attn(x)),            x = LN(x + FFN(x))
    GPT-2 (pre-LN):   x = x + Attn(LN_1(x)),          x = x + FFN(LN_2(x)),          ...,  h = LN_f(x)

so the residual stream x is never normalised on its way up. Attention is causal, positions are learned (`wpe`),
the feed-forward uses GELU's tanh approximation (`gelu_new`), and the LM head is the token-embedding matrix
(`wte`) without a bias. To read an encoder, each block gets a cross-attention branch between the two, built the
way transformers builds it for `GPT2LMHeadModel(add_cross_attention=True)`: `x = x + CrossAttn(LN_cross(x), enc)`
with queries from `q_attn` and keys and values from `c_attn` (new weights when warm-starting from GPT-2).

The names are GPT-2's (`transformer.wte`, `transformer.h.{i}.attn.c_attn`, `mlp.c_fc`, `transformer.ln_f`,
`lm_head`), and so is the layout of its maps: `Conv1D` stores the weight as (in, out), the transpose of
nn.Linear's. So GPT-2 checkpoints, and encoder-decoder folders transformers saves with a GPT-2 decoder, load
without renaming. References: Radford et al. 2019 "Language Models are Unsupervised Multitask Learners";
transformers' `modeling_gpt2.py`; minGPT / nanoGPT (Karpathy).
"""
import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .attention import Heads
from .checkpoint import PretrainedMixin
from .checks import check_inputs
from .config import ConfigBase
from .model import CausalLM, LMHead, activation, additive_mask, causal_mask, run_layers, start_cache
from .outputs import BaseModelOutput


@dataclass
class GPT2Config(ConfigBase):
    """GPT-2's config.json, field for field (transformers' GPT2Config defaults: the 124M `gpt2` checkpoint).
    Properties give the sizes BERT's names, which the shared code (checks, generation, the KV cache) reads."""

    vocab_size: int = 50257                 # rows of the token-embedding table (and the LM head)
    n_positions: int = 1024                 # longest sequence the learned position table covers
    n_embd: int = 768                       # width d of every token vector
    n_layer: int = 12                       # blocks
    n_head: int = 12                        # heads per attention; each is n_embd / n_head wide
    n_inner: int | None = None              # feed-forward width; None: 4 * n_embd
    activation_function: str = "gelu_new"   # GELU's tanh approximation, which GPT-2 was trained with
    resid_pdrop: float = 0.1                # dropout on each branch before it joins the residual stream
    embd_pdrop: float = 0.1                 # dropout on token + position embeddings
    attn_pdrop: float = 0.1                 # dropout on the attention probabilities
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02         # std of the normal init for new (non-pretrained) weights
    bos_token_id: int | None = 50256        # <|endoftext|> begins a text ...
    eos_token_id: int | None = 50256        # ... and ends it
    pad_token_id: int | None = None         # GPT-2 has no padding token: the recipes pad with <|endoftext|>
    use_cache: bool = True                  # keep keys/values between generation steps
    add_cross_attention: bool = False       # a cross-attention branch on encoder states in every block
    tie_word_embeddings: bool = True        # the LM head is the token-embedding matrix
    decoder_start_token_id: int | None = None  # first decoder input when generating alone

    model_type = "gpt2"
    # transformers' options that would change the attention maths, and the only values implemented here
    FIXED = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False}

    hidden_size = property(lambda self: self.n_embd)
    num_hidden_layers = property(lambda self: self.n_layer)
    num_attention_heads = property(lambda self: self.n_head)
    max_position_embeddings = property(lambda self: self.n_positions)
    intermediate_size = property(lambda self: self.n_inner or 4 * self.n_embd)
    layer_norm_eps = property(lambda self: self.layer_norm_epsilon)
    is_decoder = property(lambda self: True)  # always causal
    head_size = property(lambda self: self.n_embd // self.n_head)

    @classmethod
    def from_dict(cls, values: dict, **overrides) -> "GPT2Config":
        """Build from a GPT-2 config.json's dict; `overrides` win over the file. Keys GPT2LMHeadModel does not use
        (the summary head's, n_ctx, ...) are ignored; another model type is refused."""
        if not isinstance(values, dict):
            raise TypeError(f"A config is a JSON object of settings, got a {type(values).__name__}: load the "
                            "config.json of a GPT-2 checkpoint.")
        if values.get("model_type", cls.model_type) != cls.model_type:
            raise ValueError(f"This is a {values['model_type']!r} checkpoint, not GPT-2 ('gpt2'): GPT2LMHeadModel "
                             "loads GPT-2 folders only (BERT and RoBERTa load as BertGeneration halves).")
        names = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(overrides) - names - {"is_decoder"}):  # GPT-2 is always a decoder
            raise TypeError(f"GPT2Config has no field {', '.join(unknown)} (GPT-2 names its own: n_embd, resid_pdrop, "
                            "embd_pdrop, attn_pdrop, ...): see GPT2Config.")
        values = {**values, **overrides}
        for name, value in cls.FIXED.items():
            if values.get(name, value) != value:
                raise ValueError(f"{name}={values[name]!r} is not supported: this GPT-2 implements {name}={value} "
                                 "(every public GPT-2 checkpoint's setting).")
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        """config.json for transformers' GPT2Config (is_decoder written out, as transformers writes a decoder's)."""
        return {**super().to_dict(), "is_decoder": True}


class Conv1D(nn.Module):
    """A linear map in GPT-2's layout: y = x W + b with W stored (in, out), the transpose of nn.Linear's weight
    (the name is OpenAI's: a convolution of width 1 is a linear map at every position)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)  # (B*T, out): b + x W in one product
        return y.view(*x.shape[:-1], -1)


class GPT2Attention(Heads):
    """GPT-2's attention: one map `c_attn` makes queries, keys and values side by side (d -> 3d), `c_proj` mixes
    the heads. As cross-attention (transformers' layout): `q_attn` makes the queries from the decoder, `c_attn`
    (d -> 2d) the keys and values from the encoder output."""

    def __init__(self, config, is_cross_attention=False):
        super().__init__(config.n_embd, config.n_head, config.attn_pdrop, is_cross_attention)
        d = config.n_embd
        if is_cross_attention:
            self.c_attn = Conv1D(d, 2 * d)
            self.q_attn = Conv1D(d, d)
        else:
            self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def context_keys_values(self, context):
        return self.c_attn(context).split(context.shape[-1], dim=2)  # (B, S, d) each

    def forward(self, hidden, mask=None, context=None, cache=None, layer_idx=0, output_attentions=False):
        """hidden (B, T, d); context (B, S, d) for cross-attention; mask additive, broadcastable to (B, nh, T, S).
        Returns the (B, T, d) branch output and, if asked, the (B, nh, T, S) probabilities."""
        B, T, d = hidden.shape
        if self.is_cross_attention:
            q = self.q_attn(hidden)                                           # (B, T, d)
            k, v = self.cross_keys_values(context, cache, layer_idx)          # (B, nh, S, hs) each
        else:
            q, k, v = self.c_attn(hidden).split(d, dim=2)                     # (B, T, d) each
            k, v = self.self_keys_values(k, v, cache, layer_idx)              # (B, nh, past+T, hs) each
        y, probs = self.attend(self.split_heads(q), k, v, mask, output_attentions)   # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, d)                               # heads side by side: (B, T, d)
        return self.resid_dropout(self.c_proj(y)), probs


class GPT2MLP(nn.Module):
    """The feed-forward branch: Dropout(act(x W_fc + b_fc) W_proj + b_proj), d -> n_inner -> d."""

    def __init__(self, config):
        super().__init__()
        self.c_fc = Conv1D(config.n_embd, config.intermediate_size)
        self.act = activation(config.activation_function)
        self.c_proj = Conv1D(config.intermediate_size, config.n_embd)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    """x + Attn(LN_1(x)), then [x + CrossAttn(LN_cross(x), encoder)], then x + MLP(LN_2(x)): pre-LN residual
    branches. Same call and return as BERT's model.Layer, so model.run_layers drives both."""

    def __init__(self, config, layer_idx):
        super().__init__()
        d, eps = config.n_embd, config.layer_norm_epsilon
        self.layer_idx = layer_idx
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        if config.add_cross_attention:
            self.crossattention = GPT2Attention(config, is_cross_attention=True)
            self.ln_cross_attn = nn.LayerNorm(d, eps=eps)
        self.mlp = GPT2MLP(config)

    def forward(self, x, mask, encoder_states=None, encoder_mask=None, cache=None, output_attentions=False):
        branch, self_probs = self.attn(self.ln_1(x), mask, cache=cache, layer_idx=self.layer_idx,
                                       output_attentions=output_attentions)
        x = x + branch
        cross_probs = None
        if encoder_states is not None:
            branch, cross_probs = self.crossattention(self.ln_cross_attn(x), encoder_mask, context=encoder_states,
                                                      cache=cache, layer_idx=self.layer_idx,
                                                      output_attentions=output_attentions)
            x = x + branch
        return x + self.mlp(self.ln_2(x)), self_probs, cross_probs

    @torch.no_grad()
    def cross_attention_from_self(self):
        """Start the cross-attention branch as a copy of this block's self-attention (the recipes' cross_init=
        "self"): q_attn from c_attn's query columns, c_attn from its key and value columns, c_proj and the
        LayerNorm as they are."""
        d = self.ln_1.normalized_shape[0]
        cross, own = self.crossattention, self.attn
        cross.q_attn.weight.copy_(own.c_attn.weight[:, :d])
        cross.q_attn.bias.copy_(own.c_attn.bias[:d])
        cross.c_attn.weight.copy_(own.c_attn.weight[:, d:])
        cross.c_attn.bias.copy_(own.c_attn.bias[d:])
        cross.c_proj.load_state_dict(own.c_proj.state_dict())
        self.ln_cross_attn.load_state_dict(self.ln_1.state_dict())


class GPT2Model(nn.Module):
    """Token and position embeddings, the blocks, the final LayerNorm: GPT-2's `transformer`."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)   # no padding row: GPT-2 has no padding token
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                output_attentions=False, output_hidden_states=False) -> BaseModelOutput:
        """As BertGenerationEncoder.forward for a decoder: input_ids (B, T) or inputs_embeds (B, T, d);
        attention_mask (B, past+T); encoder_hidden_states (B, S, d) with encoder_attention_mask (B, S).
        Returns last_hidden_state (B, T, d) after ln_f and, when asked, attentions and the KV cache."""
        cfg = self.config
        check_inputs(cfg, input_ids, inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask,
                     past_key_values)
        cache = start_cache(cfg, past_key_values, use_cache)
        past_len = cache.get_seq_length() if cache is not None else 0

        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)                               # (B, T, d)
        B, T, _ = inputs_embeds.shape
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + T, device=inputs_embeds.device)
        x = self.drop(inputs_embeds + self.wpe(position_ids))                 # no LayerNorm here: pre-LN blocks
        mask = causal_mask(attention_mask, T, past_len, x.dtype, x.device)
        encoder_mask = additive_mask(encoder_attention_mask, x.dtype)
        x, hidden_states, attentions, cross_attentions = run_layers(
            self.h, x, mask, encoder_hidden_states, encoder_mask, cache, output_attentions, output_hidden_states)
        x = self.ln_f(x)
        if output_hidden_states:  # as transformers: the last entry is after ln_f
            hidden_states = hidden_states[:-1] + (x,)
        return BaseModelOutput(x, cache, hidden_states, attentions, cross_attentions)


class GPT2LMHead(nn.Linear):
    """hidden -> vocabulary logits through the token-embedding matrix (`lm_head.weight`, tied to `wte`), no bias."""

    def __init__(self, config):
        super().__init__(config.n_embd, config.vocab_size, bias=False)

    logits_and_loss = LMHead.logits_and_loss  # the same next-token cross-entropy as BertGeneration's head


class GPT2LMHeadModel(CausalLM, PretrainedMixin, nn.Module):
    """GPT-2 with its LM head (`transformer` + `lm_head`): alone a language model, with add_cross_attention=True
    the decoder half of an EncoderDecoderModel. Loads GPT-2 checkpoints (`from_pretrained`) and, through
    CausalLM, runs `forward(..., labels=...)` and `generate` as BertGenerationDecoder does."""

    config_class = GPT2Config

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = GPT2LMHead(config)
        self.init_weights()
        self.tie_weights()

    def init_weights(self):
        """Transformers' scheme for new weights: normal(0, initializer_range) for maps and embeddings, zero biases,
        LayerNorms at 1 and 0; each branch's output map (c_proj) scaled down by sqrt(2 * n_layer), since 2 branches
        a block add to the residual stream (Radford et al. 2019)."""
        std = self.config.initializer_range
        for name, module in self.named_modules():
            if isinstance(module, (Conv1D, nn.Linear, nn.Embedding)):
                scale = math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj") else 1.0
                nn.init.normal_(module.weight, mean=0.0, std=std / scale)
            if isinstance(module, (Conv1D, nn.Linear)) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.transformer.wte

    def get_output_embeddings(self):
        return self.lm_head

    @property
    def base_model(self):
        return self.transformer
