"""Solutions to notebook 04 (cross-attention)."""
from bertgen_mini.attention_capture import attention_stats

# 04.2: an even spread over 32 keys: log2(32) = 5 bits.
predicted_bits = 5.0


def most_monotonic_head(capture):
    """04.3: (layer, head) with the highest cross-attention monotonicity."""
    scores = attention_stats(capture, "cross")["monotonicity"]          # (L, nh)
    layer, head = divmod(int(scores.argmax()), capture.num_heads)
    return layer, head


# 04.1
self_init_answer = """Random query and key maps give every (target, source) pair nearly the same score, so the
softmax is almost flat (entropy at its ceiling, log2 of the number of source tokens): the decoder cannot tell which
source token matters and training must find an alignment from scratch. BERT's self-attention maps were trained to
score tokens against each other, so copied into the cross-attention they already give different source tokens
different scores (sharper rows, about a bit below the ceiling) and pass useful gradients from the first step. For
WikiSplit, a task that is mostly copying, training only has to reshape those trained maps into the diagonal
alignment a copy needs."""
