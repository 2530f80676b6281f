"""Solutions to notebook 02 (model anatomy)."""


def attention_by_hand(q, k, v, mask=None):
    """02.1: q (B, nh, T, dh), k and v (B, nh, S, dh), mask additive (B or 1, 1, T, S) or None ->
    (context (B, nh, T, dh), probabilities (B, nh, T, S))."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5    # (B, nh, T, S)
    if mask is not None:
        scores = scores + mask
    probs = scores.softmax(-1)
    return probs @ v, probs


# 02.2: one (T, S) map per head and sentence: (B, nh, T, S).
predicted_shape = (1, 4, 5, 7)


def decoder_layer_params(d, f):
    """02.3: self-attention and cross-attention (each four d x d maps with biases and a LayerNorm), then the
    feed-forward block (d -> f -> d with biases) and its LayerNorm."""
    attention_block = 4 * (d * d + d) + 2 * d
    feed_forward = (d * f + f) + (f * d + d) + 2 * d
    return 2 * attention_block + feed_forward


# 02.4
tying_answer = """The LM head maps a hidden vector to one score per vocabulary entry, which needs a V x d matrix:
exactly the shape of the word-embedding matrix. Tying uses the same matrix for both (reading a token in, scoring it
out), so the head only adds its bias of V numbers. For MiniLM, V = 30,522 and d = 384: untying would add
30,522 x 384 = 11.7 M parameters, more than the six feed-forward blocks of the decoder (7.09 M in the notebook's
bar chart), and a pretrained checkpoint would give no value for them."""
