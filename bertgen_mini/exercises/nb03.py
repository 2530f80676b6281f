"""Checks for notebook 03 (warm-starting)."""
import torch

from . import check, check_written


def check_pretrained_fraction(pretrained_fraction) -> bool:
    """03.1: pretrained_fraction(report), the share of a model's parameters loaded from the checkpoint."""
    from ..checkpoint import LoadReport

    def test():
        report = LoadReport("a checkpoint", loaded=["a.weight", "b.weight"], new=["cross.weight"],
                            unused=["pooler.weight"],
                            numels={"a.weight": 100, "b.weight": 50, "cross.weight": 30, "pooler.weight": 999})
        got = pretrained_fraction(report)
        assert abs(got - 150 / 180) < 1e-9, (
            f"for a report with 150 loaded and 30 new parameters (and 999 unused ones) you got {got:.4f}, expected "
            f"{150 / 180:.4f}. The unused tensors are in the checkpoint, not in the model: leave them out.")
    return check("03.1", test)


def check_shift_right(shift_right) -> bool:
    """03.2: shift_right(labels, pad_token_id, start_token_id), checked against bertgen_mini.shift_tokens_right."""
    from ..encoder_decoder import shift_tokens_right

    def test():
        labels = torch.tensor([[7, 8, 9, 102], [5, 102, -100, -100]])   # (B, T), -100 where the loss ignores
        expected = shift_tokens_right(labels, 0, 101)
        got = shift_right(labels.clone(), 0, 101)
        assert torch.is_tensor(got) and got.shape == labels.shape, \
            f"return a tensor of the labels' shape {tuple(labels.shape)}"
        assert torch.equal(got, expected), (
            f"for labels {labels.tolist()} you gave {got.tolist()}, expected {expected.tolist()}: the start token "
            "first, every label moved one step right (the last dropped), and -100 replaced by the padding id.")
        return f"{labels[1].tolist()} -> {got[1].tolist()}"
    return check("03.2", test)


def check_copy_pitfall_answer(answer) -> bool:
    """03.3 (written): the copy pitfall."""
    return check_written("03.3", answer, "nb03")


EXERCISES = {"03.1": (check_pretrained_fraction, "pretrained_fraction", "function"),
             "03.2": (check_shift_right, "shift_right", "function"),
             "03.3": (check_copy_pitfall_answer, "copy_pitfall_answer", "written")}
