"""BertGenerationEncoder and BertGenerationDecoder: BERT's transformer stack, as an encoder or as a decoder.

An encoder is BERT without token types and without the pooler. A decoder is the same stack with causal
self-attention, a cross-attention block on the encoder's output in every layer, and an LM head whose weight is the
word-embedding matrix. Rothe, Narayan & Severyn (TACL 2020) warm-start both halves from BERT checkpoints; the state
dict names follow transformers' BertGeneration classes so such checkpoints load unchanged.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import Attention, ResidualOutput
from .checkpoint import PretrainedMixin
from .checks import check_inputs, check_labels, check_loss
from .config import BertGenerationConfig
from .generation import generate_decoder
from .kv_cache import KVCache
from .outputs import BaseModelOutput, CausalLMOutput

ACTIVATIONS = {"gelu": nn.GELU(), "gelu_new": nn.GELU(approximate="tanh"),  # gelu: exact, with erf (BERT's)
               "gelu_pytorch_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU(), "silu": nn.SiLU()}


def activation(name: str) -> nn.Module:
    """The feed-forward non-linearity a config names (hidden_act, GPT-2's activation_function)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"The activation {name!r} is not supported; use one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def additive_mask(attention_mask, dtype):
    """(B, S) 1/0 keep-mask -> (B, 1, 1, S) with 0 to keep and the dtype's minimum to block; None if nothing is
    blocked (so attention can take its fastest path). Under torch.compile the mask is always built: a branch on
    the mask's values would split the compiled graph."""
    if attention_mask is None or (not torch.compiler.is_compiling() and bool(attention_mask.all())):
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def causal_mask(attention_mask, query_len, past_len, dtype, device):
    """Block the future and any padding: (B or 1, 1, T, past+T). Query i sits at position past+i and may see
    keys 0..past+i. A single new query (a generation step) may see everything cached, so only padding is blocked."""
    padding = additive_mask(attention_mask, dtype)
    if query_len == 1:
        return padding
    keys = torch.arange(past_len + query_len, device=device)
    queries = torch.arange(past_len, past_len + query_len, device=device)
    future = (keys[None, :] > queries[:, None]).to(dtype) * torch.finfo(dtype).min  # (T, past+T)
    mask = future[None, None]
    # Adding two minima would overflow to -inf; clamp keeps blocked entries finite, as transformers does.
    return mask if padding is None else (mask + padding).clamp(min=torch.finfo(dtype).min)


class Embeddings(nn.Module):
    """word + learned absolute position, then LayerNorm and dropout (no token types: BertGeneration drops them)."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, position_ids=None, inputs_embeds=None, past_len=0):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + inputs_embeds.shape[1], device=inputs_embeds.device)
        return self.dropout(self.LayerNorm(inputs_embeds + self.position_embeddings(position_ids)))


class FeedForwardUp(nn.Module):
    """BERT's 'intermediate': act(x W_1 + b_1), d -> intermediate_size, the first half of

        FFN(x) = act(x W_1 + b_1) W_2 + b_2                 (act: GELU in BERT)"""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))  # (B, T, intermediate_size)


class Layer(nn.Module):
    """self-attention -> [cross-attention on the encoder] -> feed-forward, each closed by residual + LayerNorm."""

    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.attention = Attention(config)
        if config.add_cross_attention:
            self.crossattention = Attention(config, is_cross_attention=True)
        self.intermediate = FeedForwardUp(config)
        self.output = ResidualOutput(config.intermediate_size, config)  # W_2, then LayerNorm(x + Dropout(.))

    def forward(self, x, mask, encoder_states=None, encoder_mask=None, cache=None, output_attentions=False):
        x, self_probs = self.attention(x, mask, cache=cache, layer_idx=self.layer_idx,
                                       output_attentions=output_attentions)
        cross_probs = None
        if encoder_states is not None:  # checks.check_inputs made sure this layer has a cross-attention block
            x, cross_probs = self.crossattention(x, encoder_mask, context=encoder_states, cache=cache,
                                                 layer_idx=self.layer_idx, output_attentions=output_attentions)
        return self.output(self.intermediate(x), x), self_probs, cross_probs


def start_cache(config, past_key_values, use_cache):
    """The KVCache a decoder's forward fills: the one given, a new one, or None (an encoder, or use_cache=False)."""
    use_cache = config.is_decoder and (config.use_cache if use_cache is None else use_cache)
    if not use_cache:
        return None
    return past_key_values if past_key_values is not None else KVCache(config.num_hidden_layers)


def run_layers(layers, x, mask, encoder_states, encoder_mask, cache, output_attentions, output_hidden_states):
    """x (B, T, d) through every layer (each maps (x, mask, encoder states, encoder mask, cache, output_attentions)
    to (x, self-attention probabilities, cross-attention probabilities)). Returns x and, when asked, the hidden
    states (input and every layer's output) and the per-layer attention probabilities of both kinds."""
    hidden_states = (x,) if output_hidden_states else None
    attentions = () if output_attentions else None
    cross_attentions = () if output_attentions and encoder_states is not None else None
    for layer in layers:
        x, self_probs, cross_probs = layer(x, mask, encoder_states, encoder_mask, cache, output_attentions)
        if output_hidden_states:
            hidden_states += (x,)
        if output_attentions:
            attentions += (self_probs,)
            if cross_attentions is not None:
                cross_attentions += (cross_probs,)
    return x, hidden_states, attentions, cross_attentions


class LayerStack(nn.Module):
    """The `encoder.layer.{i}` list of BERT checkpoints."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config, i) for i in range(config.num_hidden_layers))


class BertGenerationPreTrainedModel(PretrainedMixin, nn.Module):
    """Weight initialisation shared by the encoder and the decoder (transformers' scheme, for new weights)."""

    config_class = BertGenerationConfig

    def init_weights(self):
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class BertGenerationEncoder(BertGenerationPreTrainedModel):
    """Embeddings + layer stack. With `config.is_decoder` the self-attention is causal (and, with
    `add_cross_attention`, each layer also reads `encoder_hidden_states`): the body of BertGenerationDecoder."""

    def __init__(self, config: BertGenerationConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = LayerStack(config)
        self.init_weights()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                output_attentions=False, output_hidden_states=False) -> BaseModelOutput:
        """input_ids (B, T) or inputs_embeds (B, T, d); attention_mask (B, past+T) with 1 = real token;
        encoder_hidden_states (B, S, d) and encoder_attention_mask (B, S) for cross-attention.
        Returns last_hidden_state (B, T, d) and, when asked, per-layer attentions and the KV cache."""
        cfg = self.config
        check_inputs(cfg, input_ids, inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask,
                     past_key_values)
        cache = start_cache(cfg, past_key_values, use_cache)
        past_len = cache.get_seq_length() if cache is not None else 0

        x = self.embeddings(input_ids, position_ids, inputs_embeds, past_len)  # (B, T, d)
        B, T, _ = x.shape
        if cfg.is_decoder:
            mask = causal_mask(attention_mask, T, past_len, x.dtype, x.device)
        else:
            mask = additive_mask(attention_mask, x.dtype)
        encoder_mask = additive_mask(encoder_attention_mask, x.dtype)
        x, hidden_states, attentions, cross_attentions = run_layers(
            self.encoder.layer, x, mask, encoder_hidden_states, encoder_mask, cache, output_attentions,
            output_hidden_states)
        return BaseModelOutput(x, cache, hidden_states, attentions, cross_attentions)


class LMHead(nn.Module):
    """hidden -> vocabulary logits. `decoder.weight` is the word-embedding matrix when embeddings are tied;
    `bias` and `decoder.bias` are one parameter (checkpoints store it under either name)."""

    def __init__(self, config):
        super().__init__()
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = self.decoder.bias

    def forward(self, hidden):
        return self.decoder(hidden)  # (B, T, V)

    def logits_and_loss(self, hidden, labels=None):
        """hidden (B, T, d) and labels (B, T) aligned with the positions (-100: no loss) -> logits (B, T, V) and the
        mean cross-entropy over the n labelled positions (None without labels):

            L = -1/n sum_t log softmax(z_t)[y_t]

        GPT-2's head (gpt2.GPT2LMHead) scores the same way."""
        logits = self(hidden)
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def next_token_labels(labels):
    """(B, T) -> (B, T): position t is scored against token t+1; the last position has nothing to predict."""
    return torch.cat([labels[:, 1:], labels.new_full((labels.shape[0], 1), -100)], dim=1)


class CausalLM:
    """What a decoder is, whatever its transformer: `base_model` (causal, maybe with cross-attention) under
    `lm_head` (hidden -> vocabulary logits, with `logits_and_loss`). BertGenerationDecoder and GPT2LMHeadModel."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, labels=None, past_key_values=None,
                use_cache=None, output_attentions=False, output_hidden_states=False) -> CausalLMOutput:
        """As the base model's forward (BertGenerationEncoder.forward), plus `labels` (B, T): the next-token loss,
        shifted inside. Returns logits (B, T, V)."""
        check_labels(labels, self.config.vocab_size, like=input_ids if input_ids is not None else inputs_embeds)
        if labels is not None:
            use_cache = False  # training: nothing to keep
        out = self.base_model(input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states,
                              encoder_attention_mask, past_key_values, use_cache, output_attentions,
                              output_hidden_states)
        logits, loss = self.lm_head.logits_and_loss(out.last_hidden_state,
                                                    next_token_labels(labels) if labels is not None else None)
        check_loss(loss)
        return CausalLMOutput(loss, logits, out.past_key_values, out.hidden_states, out.attentions,
                              out.cross_attentions)

    def generate(self, input_ids=None, attention_mask=None, **settings):
        """Continue the (B, T) prompt (or start from the decoder start token); pass encoder_hidden_states (B, S, d)
        to read a source. Returns (B * num_return_sequences, T + new) ids: see bertgen_mini.generation."""
        return generate_decoder(self, input_ids, attention_mask, **settings)

    def tie_weights(self):
        """The LM head reads the input embedding matrix (one tensor, as in BERT's and GPT-2's checkpoints)."""
        if self.config.tie_word_embeddings:
            self.get_output_embeddings().weight = self.get_input_embeddings().weight


class BertGenerationDecoder(CausalLM, BertGenerationPreTrainedModel):
    """A BertGeneration stack with causal self-attention and an LM head on top (`bert` + `lm_head`)."""

    def __init__(self, config: BertGenerationConfig):
        super().__init__()
        if not config.is_decoder:
            raise ValueError("BertGenerationDecoder needs is_decoder=True (causal self-attention); "
                             "add add_cross_attention=True to read an encoder.")
        self.config = config
        self.bert = BertGenerationEncoder(config)
        self.lm_head = LMHead(config)
        self.init_weights()
        self.tie_weights()

    def init_weights(self):
        super().init_weights()
        nn.init.zeros_(self.lm_head.bias)

    def get_input_embeddings(self):
        return self.bert.embeddings.word_embeddings

    def get_output_embeddings(self):
        return self.lm_head.decoder

    @property
    def base_model(self):
        """The transformer under the LM head (transformers' name for it): what an encoder-decoder and generation
        run before asking the head for logits. GPT2LMHeadModel has one too."""
        return self.bert
