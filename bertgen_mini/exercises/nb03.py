"""Checks for notebook 03 (warm-starting)."""
import math

import torch

from . import check, check_written, is_number, require


def fraction_hint(got: float, loaded: int, new: int, unused: int, extra: int) -> str:
    """What a wrong pretrained_fraction most likely did, from the numbers of the check's report (`extra`: the
    parameters report.numels lists that are in neither loaded nor new: a tied copy and a buffer)."""
    right = loaded / (loaded + new)
    mistakes = [
        (100 * right, "That is a percentage: return a fraction between 0 and 1."),
        (new / (loaded + new), "That is the share of *new* parameters: the question asks for the loaded ones."),
        (2 / 3, "You counted tensors (2 of 3): weigh each by its size, report.numels[name]."),
        (loaded / (loaded + new + unused), "The unused tensors are in the checkpoint, not in the model: leave them "
                                           "out of the total."),
        ((loaded + unused) / (loaded + new + unused), "The unused tensors are in the checkpoint, not in the model: "
                                                      "they count neither as loaded nor in the total."),
        (loaded / (loaded + new + unused + extra), "Summing all of report.numels counts what the model does not "
                                                   "have (unused tensors) and what it has twice: a tied copy of a "
                                                   "weight, a buffer. Sum over report.loaded and report.new only."),
        (loaded / (loaded + new + extra), "report.numels also lists a second name of a tied weight and a buffer, "
                                          "which are not parameters of their own: count only report.loaded and "
                                          "report.new."),
        (loaded / new, "Divide by all the model's parameters (loaded + new), not by the new ones."),
    ]
    for value, hint in mistakes:
        if math.isclose(got, value, rel_tol=1e-6):
            return hint
    return "Sum report.numels over report.loaded, and divide by that sum plus the same over report.new."


def check_pretrained_fraction(pretrained_fraction) -> bool:
    """03.1: pretrained_fraction(report), the share of a model's parameters loaded from the checkpoint."""
    from ..checkpoint import LoadReport

    def test():
        # numels, as in a real report, also lists a tied weight's second name and a buffer: neither is a parameter
        # of its own, and neither is in loaded or new.
        report = LoadReport("a checkpoint", loaded=["a.weight", "b.weight"], new=["cross.weight"],
                            unused=["pooler.weight"],
                            numels={"a.weight": 100, "b.weight": 50, "cross.weight": 30, "pooler.weight": 999,
                                    "head.weight": 100, "positions": 7})
        got = pretrained_fraction(report)
        require(is_number(got) or torch.is_tensor(got) and got.numel() == 1,
                f"return a number (a float between 0 and 1), not {type(got).__name__}")
        got = float(got)
        require(abs(got - 150 / 180) < 1e-9,
                f"for a report with 150 loaded and 30 new parameters you got {got:.4g}. "
                + fraction_hint(got, loaded=150, new=30, unused=999, extra=107))
    return check("03.1", test, pretrained_fraction)


def check_shift_right(shift_right) -> bool:
    """03.2: shift_right(labels, pad_token_id, start_token_id), checked against bertgen_mini.shift_tokens_right."""
    from ..encoder_decoder import shift_tokens_right

    def test():
        labels = torch.tensor([[7, 8, 9, 102], [5, 102, -100, -100]])   # (B, T), -100 where the loss ignores
        expected = shift_tokens_right(labels, 0, 101)
        got = shift_right(labels.clone(), 0, 101)
        require(torch.is_tensor(got) and got.shape == labels.shape,
                f"return a tensor of the labels' shape {tuple(labels.shape)}")
        if torch.equal(got, expected.masked_fill(expected == 0, -100)):
            hint = "-100 must become the padding id: the decoder cannot look up an embedding for -100."
        elif torch.equal(got[:, :-1], labels[:, 1:]) or torch.equal(got, labels):
            hint = "Shift to the right: the start token goes first and every label moves one step later."
        else:
            hint = ("The start token first, every label moved one step right (the last dropped), and -100 replaced "
                    "by the padding id.")
        require(torch.equal(got, expected), f"for labels {labels.tolist()} you gave {got.tolist()}. {hint}")
        return f"{labels[1].tolist()} -> {got[1].tolist()}"
    return check("03.2", test, shift_right)


def check_copy_pitfall_answer(answer) -> bool:
    """03.3 (written): the copy pitfall."""
    return check_written("03.3", answer, [
        "With decoder_input_ids = labels, position t reads y_t and is asked for y_t: the answer is in its own input, "
        "so it learns to copy its input and the loss falls without using the source.",
        "At generation there is no target to read: the decoder sees only what it wrote, so it repeats itself or "
        "writes nonsense.",
        "Passing labels alone lets the model shift them right: position t reads y_(t-1) and must predict y_t from "
        "the source and the tokens before it."])


EXERCISES = {"03.1": (check_pretrained_fraction, "pretrained_fraction", "function"),
             "03.2": (check_shift_right, "shift_right", "function"),
             "03.3": (check_copy_pitfall_answer, "copy_pitfall_answer", "written")}
