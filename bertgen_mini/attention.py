"""Multi-head attention as BERT lays it out, plus the key/value cache used while generating.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + M) V

Self-attention takes Q, K and V from the same sequence; cross-attention takes Q from the decoder and K, V from the
encoder's output. M is an additive mask: 0 where attending is allowed and a very large negative number where it is
not (padding, or the future in a decoder).

The module names (`self.query`, `output.dense`, `output.LayerNorm`, ...) are those of BERT checkpoints, so a
pretrained state dict loads without renaming. References: Vaswani et al. 2017 "Attention Is All You Need";
Devlin et al. 2019 (BERT); transformers' `BertGenerationSelfAttention` / `BertGenerationCrossAttention`.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .linear import Linear


class KVCache:
    """Keys and values kept between generation steps, per decoder layer.

    Self-attention entries grow by one position a step; cross-attention entries are computed once per source
    (the encoder output does not change while decoding) and reused. Each entry is a pair of (B, nh, T, hs) tensors.
    """

    def __init__(self, num_layers: int):
        self.self_attention = [None] * num_layers
        self.cross_attention = [None] * num_layers

    def get_seq_length(self) -> int:
        """How many decoder positions are already cached."""
        first = self.self_attention[0]
        return 0 if first is None else first[0].shape[2]

    def repeat_rows(self, copies: int) -> None:
        """Each row becomes `copies` consecutive rows: the beams (or samples) of one source share its first step."""
        for entries in (self.self_attention, self.cross_attention):
            for i, kv in enumerate(entries):
                if kv is not None:
                    entries[i] = tuple(t.repeat_interleave(copies, dim=0) for t in kv)

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues old row rows[i] (beam search moved hypotheses). Only self-attention entries move: a beam
        never leaves its source, so the cross-attention rows it would take hold the same keys and values."""
        for i, kv in enumerate(self.self_attention):
            if kv is not None:
                self.self_attention[i] = tuple(t.index_select(0, rows) for t in kv)


class Dropout(nn.Module):
    """Inverted dropout: zero each value with probability p, scale the rest by 1/(1-p).

    Same maths as nn.Dropout, but what autograd keeps for backward is a 1-byte mask, where torch's CPU kernel
    keeps a 4-byte one: about 50 MB less for a MiniLM bert2bert step at batch 16. The coin flips are 16-bit
    integers, four cut from each 64-bit draw of torch's generator (drawing is serial on CPU and costs per draw:
    2.4x faster than a 31-bit draw per flip, 5x faster than bernoulli_), compared with k = round(p * 2^16). So p
    is taken to the nearest multiple of 2^-16 (0.1 -> 0.100006), and the scale uses that same value, keeping
    E[y] = x exact. `zero` and `keep_scale` give the two halves apart, for callers that apply the scale to a smaller
    tensor than the one dropped out."""

    FLIPS = 2 ** 16

    def __init__(self, p):
        super().__init__()
        self.p = p

    def keep_scale(self) -> float:
        """1/(1-p) for the p actually used, by which kept values grow; 1 when dropout is off or drops everything."""
        if not self.training or self.p in (0, 1):
            return 1.0
        return self.FLIPS / (self.FLIPS - self.dropped_flips())

    def dropped_flips(self) -> int:
        """k: a flip among the k lowest of its 2^16 values drops its value."""
        return min(round(self.p * self.FLIPS), self.FLIPS - 1)

    def zero(self, x):
        """x with each value zeroed with probability p, not rescaled: for callers that fold keep_scale() into a
        smaller tensor than x. x itself when dropout is off."""
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0
        n = x.numel()
        draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-2 ** 63, 2 ** 63 - 1)
        drop = draws.view(torch.int16)[:n].view(x.shape) < self.dropped_flips() - self.FLIPS // 2  # from -2^15
        return torch.where(drop, 0.0, x)

    def forward(self, x):
        y, scale = self.zero(x), self.keep_scale()
        return y if scale == 1 else y.mul_(scale)  # y is x itself when dropout is off: never scaled in place then


class ResidualOutput(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): closes both the attention and the feed-forward block."""

    def __init__(self, in_features, config):
        super().__init__()
        self.dense = Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.close(self.dense(x), residual)

    def close(self, y, residual):
        """dropout -> LayerNorm(y + residual) on the block's already projected output y. Dropout's scale rides on
        the addition (residual + s * zeroed y), one pass over y fewer than scaling it first."""
        return self.LayerNorm(torch.add(residual, self.dropout.zero(y), alpha=self.dropout.keep_scale()))


class HeadProjections(nn.Module):
    """The query/key/value projections and the scaled dot product, all heads at once."""

    def __init__(self, config, is_cross_attention):
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = Linear(d, d)
        self.key = Linear(d, d)
        self.value = Linear(d, d)
        self.dropout = Dropout(config.attention_probs_dropout_prob)
        self.is_cross_attention = is_cross_attention

    def split_heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_size).transpose(1, 2)  # (B, nh, T, hs)

    def keys_values(self, hidden, context, cache, layer_idx, value_scale=1.0):
        """K and V (times value_scale) for this call, reading and updating the cache when one is given."""
        if self.is_cross_attention:
            if cache is not None and cache.cross_attention[layer_idx] is not None:
                return cache.cross_attention[layer_idx]  # the source is fixed: computed at the first step
            kv = self.split_heads(self.key(context)), self.split_heads(self.value.scaled(context, value_scale))
            if cache is not None:  # stored contiguous: every later step reads them, 1.2-2x faster than a strided view
                kv = cache.cross_attention[layer_idx] = tuple(t.contiguous() for t in kv)
            return kv
        k, v = self.split_heads(self.key(hidden)), self.split_heads(self.value.scaled(hidden, value_scale))
        if cache is not None:
            past = cache.self_attention[layer_idx]
            if past is not None:  # earlier positions were cached: append this step's keys and values
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            cache.self_attention[layer_idx] = (k, v)
        return k, v

    def forward(self, hidden, mask=None, context=None, cache=None, layer_idx=0, output_attentions=False):
        """hidden (B, T, d); context (B, S, d) for cross-attention; mask additive, broadcastable to
        (B, nh, T, S). Returns the (B, T, d) mixed values and, if asked, the (B, nh, T, S) probabilities."""
        B, T, d = hidden.shape
        # The explicit form returns its probabilities for plotting and drops them out in training (the fused CPU
        # kernel has no dropout and would fall back to this very computation anyway). Its two constants go into the
        # small projections instead of over the large (B, nh, T, S) maps, D being dropout's 0/1 mask:
        #   softmax(Q K^T / sqrt(hs) + M) D V / (1 - p) = softmax((Q / sqrt(hs)) K^T + M) D (V / (1 - p))
        # which saves four passes over the maps a layer, forward and backward (2-4% of an encoder self-attention or
        # cross-attention block, ~1% of a MiniLM training step). A cached V stays unscaled (a later call may run in
        # another mode): dropout then scales the maps itself.
        explicit = output_attentions or (self.training and self.dropout.p > 0)
        value_scale = self.dropout.keep_scale() if explicit and cache is None else 1.0
        q = self.split_heads(self.query.scaled(hidden, 1 / math.sqrt(self.head_size) if explicit else 1.0))
        k, v = self.keys_values(hidden, context, cache, layer_idx, value_scale)  # (B, nh, T, hs), (B, nh, S, hs)
        if explicit:
            scores = q @ k.transpose(-2, -1)  # (B, nh, T, S)
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            y = (self.dropout.zero(probs) if value_scale != 1 else self.dropout(probs)) @ v
        else:
            # The same maths in one fused kernel (flash attention where the backend allows).
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            probs = None
        return y.transpose(1, 2).reshape(B, T, d), probs if output_attentions else None  # (B, T, d)


class Attention(nn.Module):
    """One attention block: heads (`self`, BERT's name) then the residual output."""

    def __init__(self, config, is_cross_attention=False):
        super().__init__()
        self.self = HeadProjections(config, is_cross_attention)  # 'self' is the checkpoint's name for the heads
        self.output = ResidualOutput(config.hidden_size, config)

    def forward(self, hidden, mask=None, context=None, cache=None, layer_idx=0, output_attentions=False):
        mixed, probs = self.self(hidden, mask, context, cache, layer_idx, output_attentions)
        return self.output(mixed, hidden), probs
