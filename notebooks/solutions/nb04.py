"""Solutions to notebook 04 (cross-attention)."""
from bertgen_mini.attention_capture import attention_stats

# 04.1: an even spread over 32 keys: log2(32) = 5 bits.
predicted_bits = 5.0


def most_monotonic_head(capture):
    """04.2: (layer, head) with the highest cross-attention monotonicity."""
    scores = attention_stats(capture, "cross")["monotonicity"]          # (L, nh)
    layer, head = divmod(int(scores.argmax()), capture.num_heads)
    return layer, head


# 04.3
self_init_answer = """A random query and key map give every (target, source) pair a score near the others, so the
softmax is nearly flat: the decoder cannot tell which source token matters, and training must first discover what
to match. BERT's self-attention was trained to score a token against other tokens of the same text; copied into the
cross-attention, its query and key maps already give a high score to a source token that is the same as, or close
to, the decoder's current token. For WikiSplit, a task that is mostly copying, that is almost the alignment
needed: attention is sharper from step 0 and training only has to refine it."""
