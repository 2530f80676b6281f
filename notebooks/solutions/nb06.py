"""Solutions to notebook 06 (decoding strategies)."""


def beam_score(token_log_probs, alpha):
    """06.1: the score beam search ranks a finished hypothesis by: sum of log p over |y| ** alpha, |y| counting
    the generated tokens, the end token included."""
    return token_log_probs.sum() / len(token_log_probs) ** alpha


# 06.2: sorted 0.5, 0.3, ...: 0.5 alone is below 0.75, 0.5 + 0.3 = 0.8 reaches it: two tokens are kept.
predicted_kept = 2

# 06.3
length_answer = """Every token multiplies the probability by a number below one, so its log-probability adds a
negative number: the raw sum always prefers shorter hypotheses, and a beam that writes the end token early can win
although a longer output is the better sentence (for splitting, the whole second sentence). Dividing by |y| ** alpha
shrinks the penalty of length: any alpha > 0 favours longer outputs than the raw sum does (alpha = 1 ranks by the
mean log-probability per token, larger alphas favour length more), and alpha < 0 favours shorter ones still.
Greedy search needs none: it never compares hypotheses of different lengths."""
