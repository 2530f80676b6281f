"""Checks for notebook 04 (cross-attention)."""
import math

import torch

from . import check, check_prediction, check_written, require, tiny_pair


def check_uniform_entropy_prediction(predicted_bits) -> bool:
    """04.2: the entropy (bits) of a row that spreads its weight evenly over 32 source tokens."""
    from ..attention_capture import attention_entropy

    def hint(guess, truth):
        if math.isclose(guess, math.log(32), abs_tol=0.05):
            return "That is in nats (natural log): the notebook measures entropy in bits, log2."
        if math.isclose(guess, 1 / 32, abs_tol=0.01) or math.isclose(guess, 32, abs_tol=0.05):
            return "Entropy is -sum p log2 p: with 32 weights of 1/32 each, that is log2(32)."
        return None

    truth = lambda: round(float(attention_entropy(torch.full((1, 32), 1 / 32))), 3)
    return check_prediction("04.2", predicted_bits, truth, "An even spread over K keys has entropy log2(K) bits.",
                            close=0.05, hint=hint)


def check_most_monotonic_head(most_monotonic_head) -> bool:
    """04.3: most_monotonic_head(capture) -> (layer, head) with the highest cross-attention monotonicity, checked on
    captures of tiny random models."""
    from ..attention_capture import attention_stats, capture_from_ids

    def test():
        sources = torch.tensor([[2, 5, 6, 7, 8, 9, 10, 3], [2, 11, 12, 13, 14, 3, 0, 0]])       # (B, S)
        sequences = torch.tensor([[2, 15, 16, 17, 18, 19, 1], [2, 20, 21, 22, 1, 0, 0]])        # (B, 1 + T)
        for seed in (0, 1):
            model = tiny_pair(seed, layers=3, heads=4)
            for capture in capture_from_ids(model, sources, (sources != 0).long(), sequences):
                scores = attention_stats(capture, "cross")["monotonicity"]                      # (L, nh)
                answer = most_monotonic_head(capture)
                require(isinstance(answer, (tuple, list)) and len(answer) == 2,
                        f"return a pair (layer, head), not {answer!r}")
                layer, head = (int(i) for i in answer)
                require(0 <= layer < capture.num_layers and 0 <= head < capture.num_heads,
                        f"layer must be in 0..{capture.num_layers - 1} and head in 0..{capture.num_heads - 1}, "
                        f"got ({layer}, {head})")
                best = float(scores.max())
                swapped = head < capture.num_layers and layer < capture.num_heads and \
                    float(scores[head, layer]) >= best - 1e-6
                require(float(scores[layer, head]) >= best - 1e-6,
                        f"head {head} of layer {layer} has monotonicity {float(scores[layer, head]):.2f}, the best "
                        f"head {best:.2f}. " + ("You swapped them: return (layer, head). " if swapped else "") +
                        "attention_stats(capture, 'cross')['monotonicity'] has one row per layer and one column per "
                        "head; argmax of the flattened table is layer * heads + head.")
        return "(on four captures of tiny random models)"
    return check("04.3", test, most_monotonic_head)


def check_self_init_answer(answer) -> bool:
    """04.1 (written): why a cross-attention copied from self-attention starts sharper."""
    return check_written("04.1", answer, [
        "Random query and key maps give every (target, source) pair about the same score: the softmax is nearly "
        "flat (entropy near log2 of the source length), so nothing says where to look.",
        "BERT's self-attention maps were trained to score tokens against each other: copied, they already give "
        "different source tokens different weights (sharper rows) and pass useful gradients from the first step.",
        "WikiSplit is mostly copying: training only has to reshape trained maps into the copy alignment instead of "
        "finding one from scratch."])


EXERCISES = {"04.1": (check_self_init_answer, "self_init_answer", "written"),
             "04.2": (check_uniform_entropy_prediction, "predicted_bits", "value"),
             "04.3": (check_most_monotonic_head, "most_monotonic_head", "function")}
