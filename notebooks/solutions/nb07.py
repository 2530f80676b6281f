"""Solutions to notebook 07 (the paper's experiment)."""
from bertgen_mini.experiments import BASELINE


def beats_copy(rows, task):
    """07.2: the recipes whose SARI on `task` is above copying the input."""
    copy = next(r["sari"] for r in rows if (r["task"], r["recipe"]) == (task, BASELINE))
    return [r["recipe"] for r in rows if r["task"] == task and r["recipe"] != BASELINE and r["sari"] > copy]


# 07.1: encoder and decoder share everything but the decoder's cross-attention and LM-head bias: a bit more than half.
predicted_ratio = 0.54

# 07.3
budget_answer = """The paper's claim compares bert2rnd with rnd2bert, and here both are still below copying the
input: after 300 steps a random half has not yet learned the language, so both models write babble, and the order
between two babbling models (a SARI point or two, one seed, 100 sentences) says nothing about which half matters.
To test the claim, the random halves need a budget where they leave babble and beat the copy baseline (many more
steps and pairs, for instance the GPU preset on WikiSplit's full training split), and several seeds, so that the gap
between bert2rnd and rnd2bert can be compared with the spread between seeds."""
