"""Multi-head attention as BERT lays it out, plus the key/value cache used while generating.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + M) V
    MultiHead(X)       = Concat(head_1, ..., head_h) W^O,   head_i = Attention(X W_i^Q, C W_i^K, C W_i^V)

Self-attention takes Q, K and V from the same sequence (C = X); cross-attention takes Q from the decoder and K, V
from the encoder's output C. M is an additive mask: 0 where attending is allowed and a very large negative number
where it is not (padding, or the future in a decoder). Each block ends as every BERT sub-layer does:
LayerNorm(X + Dropout(MultiHead(X))).

The module names (`self.query`, `output.dense`, `output.LayerNorm`, ...) are those of BERT checkpoints, so a
pretrained state dict loads without renaming. `Heads` holds what does not depend on how Q, K and V are projected
(the heads, the cache, the scaled dot product); GPT-2's attention (gpt2.py) builds on it too. References: Vaswani
et al. 2017 "Attention Is All You Need"; Devlin et al. 2019 (BERT); transformers' `BertGenerationSelfAttention` /
`BertGenerationCrossAttention`.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualOutput(nn.Module):
    """LayerNorm(residual + Dropout(dense(x))): closes both the attention and the feed-forward block."""

    def __init__(self, in_features, config):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(residual + self.dropout(self.dense(x)))  # (B, T, d)


class Heads(nn.Module):
    """What every multi-head attention here shares, however it projects: splitting into heads, the key/value cache,
    and the scaled dot product. Subclasses make the queries, keys and values (BERT: three maps, `HeadProjections`;
    GPT-2: one map that makes all three, `gpt2.GPT2Attention`) and say how keys and values come from the encoder
    output (`context_keys_values`)."""

    def __init__(self, hidden_size, num_heads, dropout_prob, is_cross_attention):
        super().__init__()
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout = nn.Dropout(dropout_prob)
        self.is_cross_attention = is_cross_attention

    def split_heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_size).transpose(1, 2)  # (B, T, d) -> (B, nh, T, hs)

    def context_keys_values(self, context):
        """Cross-attention's keys and values, each (B, S, d), from the encoder output context (B, S, d)."""
        raise NotImplementedError

    def cross_keys_values(self, context, cache, layer_idx):
        """K and V of the encoder output, each (B, nh, S, hs): computed at the first step, then read from the cache
        (the source is fixed while decoding)."""
        if cache is not None and cache.cross_attention[layer_idx] is not None:
            return cache.cross_attention[layer_idx]
        kv = tuple(self.split_heads(t) for t in self.context_keys_values(context))
        if cache is not None:  # stored contiguous: every later step reads them, 1.2-2x faster than a strided view
            kv = cache.cross_attention[layer_idx] = tuple(t.contiguous() for t in kv)
        return kv

    def self_keys_values(self, k, v, cache, layer_idx):
        """This call's keys and values (B, T, d) as heads (B, nh, T, hs), after the cached earlier positions if any
        (then stored back, one step longer)."""
        k, v = self.split_heads(k), self.split_heads(v)
        if cache is not None:
            past = cache.self_attention[layer_idx]
            if past is not None:  # earlier positions were cached: append this step's keys and values
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            cache.self_attention[layer_idx] = (k, v)
        return k, v

    def attend(self, q, k, v, mask, output_attentions):
        """softmax(q k^T / sqrt(hs) + mask) v with dropout on the probabilities in training. q (B, nh, T, hs),
        k and v (B, nh, S, hs) -> (B, nh, T, hs) and, if asked, the (B, nh, T, S) probabilities."""
        if output_attentions:  # the explicit form, which can hand its probabilities out (to plot them)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, nh, T, S)
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            return self.dropout(probs) @ v, probs
        # The same maths in one fused kernel (flash attention where the device and dtype allow).
        p = self.dropout.p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None


class HeadProjections(Heads):
    """BERT's query/key/value projections and the scaled dot product, all heads at once."""

    def __init__(self, config, is_cross_attention):
        super().__init__(config.hidden_size, config.num_attention_heads, config.attention_probs_dropout_prob,
                         is_cross_attention)
        d = config.hidden_size
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)

    def context_keys_values(self, context):
        return self.key(context), self.value(context)

    def forward(self, hidden, mask=None, context=None, cache=None, layer_idx=0, output_attentions=False):
        """hidden (B, T, d); context (B, S, d) for cross-attention; mask additive, broadcastable to
        (B, nh, T, S). Returns the (B, T, d) mixed values and, if asked, the (B, nh, T, S) probabilities."""
        B, T, d = hidden.shape
        q = self.split_heads(self.query(hidden))                              # (B, nh, T, hs)
        if self.is_cross_attention:                                           # (B, nh, S, hs) each
            k, v = self.cross_keys_values(context, cache, layer_idx)
        else:
            k, v = self.self_keys_values(self.key(hidden), self.value(hidden), cache, layer_idx)
        y, probs = self.attend(q, k, v, mask, output_attentions)              # (B, nh, T, hs)
        return y.transpose(1, 2).reshape(B, T, d), probs                      # heads side by side: (B, T, d)


class Attention(nn.Module):
    """One attention block: heads (`self`, BERT's name) then the residual output."""

    def __init__(self, config, is_cross_attention=False):
        super().__init__()
        self.self = HeadProjections(config, is_cross_attention)  # 'self' is the checkpoint's name for the heads
        self.output = ResidualOutput(config.hidden_size, config)

    def forward(self, hidden, mask=None, context=None, cache=None, layer_idx=0, output_attentions=False):
        mixed, probs = self.self(hidden, mask, context, cache, layer_idx, output_attentions)
        return self.output(mixed, hidden), probs
