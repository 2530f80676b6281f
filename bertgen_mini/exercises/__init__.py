"""Checks for the notebooks' exercises: one module per notebook (nb01 ... nb07), one check function per exercise.

A check takes what the student wrote (a function, a predicted value or a written answer), builds its own small
fixtures (tiny models, the package's own functions as the ground truth) and says one of three things:

* "not attempted yet" when it meets a stub (a function that raises NotImplementedError, a value left as `...`, an
  empty written answer); it returns False and raises nothing, so a fresh notebook runs clean;
* a helpful AssertionError when the answer is wrong;
* a short "correct" line, returning True.

Each module lists its exercises in EXERCISES: {exercise id: (check function, the name the notebook gives the
answer, kind)}, kind being "function", "value" or "written". tests/test_exercises.py runs every check with the
solutions in notebooks/solutions/ (all must pass) and with stubs (all must say "not attempted").
"""
import torch

KINDS = ("function", "value", "written")
WRITTEN_ANSWERS = {}  # exercise id -> the last answer recorded in this session


class NotAttempted(Exception):
    """Raised inside a check when it meets a stub."""


def attempted(value):
    """`value` unchanged, or NotAttempted when it is still a stub: `...` or an empty string."""
    if value is ... or (isinstance(value, str) and not value.strip()):
        raise NotAttempted
    return value


def check(exercise_id: str, test) -> bool:
    """Run `test()` (no arguments; it may return a line to print on success). Returns True when it passes, False
    (with a "not attempted yet" line) when it meets a stub; a wrong answer raises AssertionError naming the
    exercise."""
    try:
        note = test()
    except (NotImplementedError, NotAttempted):
        print(f"Exercise {exercise_id}: not attempted yet — fill in the cell above, then run this cell again.")
        return False
    except AssertionError as wrong:
        raise AssertionError(f"Exercise {exercise_id}: {wrong}") from None
    print(f"Exercise {exercise_id}: correct ✓" + (f" {note}" if note else ""))
    return True


def check_written(exercise_id: str, answer: str, notebook: str) -> bool:
    """A written answer cannot be marked by a program: record it and point to the model answer to compare with."""
    def test():
        text = attempted(answer)
        assert isinstance(text, str), "write your answer as a string, between quotes"
        WRITTEN_ANSWERS[exercise_id] = text
        return (f"(answer recorded, {len(text.split())} words). Compare it with the discussion in "
                f"notebooks/solutions/{notebook}.py.")
    return check(exercise_id, test)


def check_prediction(exercise_id: str, prediction, compute_truth, explain: str, close=None) -> bool:
    """A predict-then-run exercise: `prediction` must equal compute_truth() (or be within `close` of it, for
    numbers), the value the package computes (only computed once there is a prediction). `explain` says where the
    truth comes from, shown when the prediction is wrong."""
    def test():
        guess = attempted(prediction)
        truth = compute_truth()
        if close is not None:
            assert isinstance(guess, (int, float)), f"predict a number, not {guess!r}"
        right = abs(guess - truth) <= close if close is not None else guess == truth
        assert right, f"you predicted {guess!r}, the package gives {truth!r}. {explain}"
        return f"the package gives {truth!r} too."
    return check(exercise_id, test)


def tiny_pair(seed: int = 0, vocab_size: int = 50, layers: int = 2, heads: int = 4):
    """A tiny random encoder-decoder (width 16) for checks: start token 2, end token 1, padding 0. Eval mode."""
    from ..config import BertGenerationConfig
    from ..encoder_decoder import EncoderDecoderModel
    from ..model import BertGenerationDecoder, BertGenerationEncoder

    torch.manual_seed(seed)
    sizes = dict(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=layers, num_attention_heads=heads,
                 intermediate_size=32, max_position_embeddings=64)
    model = EncoderDecoderModel(encoder=BertGenerationEncoder(BertGenerationConfig(**sizes)),
                                decoder=BertGenerationDecoder(BertGenerationConfig(
                                    **sizes, is_decoder=True, add_cross_attention=True)))
    model.config.decoder_start_token_id, model.config.eos_token_id, model.config.pad_token_id = 2, 1, 0
    return model.eval()
