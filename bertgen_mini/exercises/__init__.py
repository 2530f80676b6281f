"""Checks for the notebooks' exercises: one module per notebook that has exercises (nb01 ... nb09, listed by
exercise_modules()), one check function per exercise.

A check takes what the student wrote (a function, a predicted value or a written answer), builds its own small
fixtures (tiny models, the package's own functions as the ground truth) and prints **one line**, never raising,
so a wrong answer never stops "Run All" and never shows the check's code:

* "not attempted yet" when it meets a stub (a function that raises NotImplementedError, a value left as `...`, an
  empty written answer): returns False;
* "not yet — <what is wrong>" for a wrong answer, or for code that raised (its error in one line): returns False;
* "correct" for a function or a prediction that is right: returns True;
* "recorded" for a written answer, which no program can mark, followed by the model answer's key points to
  compare with: returns True.

Every attempted result is also saved in the answers file (`exercises.answers`), so written answers survive a
kernel restart and a teacher can collect them. Each module lists its exercises in EXERCISES: {exercise id: (check
function, the name the notebook gives the answer, kind)}, kind being "function", "value" or "written".
tests/test_exercises.py runs every check with the solutions in notebooks/solutions/ (all must pass), with stubs
(all must say "not attempted") and with wrong answers (all must say what is wrong, return False and not raise).
"""
import importlib
import inspect
import math
import pkgutil
import re
import sysconfig
import traceback
from pathlib import Path

import torch

from ..paths import answers_path
from .answers import record, saved_answer

KINDS = ("function", "value", "written")
NOT_ATTEMPTED = "not attempted yet — fill in the cell above, then run this cell again."  # a check's line on a stub
MIN_WORDS = 8  # a written answer shorter than this is not an answer to "in two or three sentences"
# Frames in these folders are the package's, the libraries' or Python's own, not the student's code.
NOT_YOURS = [Path(__file__).resolve().parent.parent] + [Path(sysconfig.get_paths()[k]).resolve()
                                                        for k in ("stdlib", "purelib", "platlib")]


def exercise_modules() -> list:
    """The exercise modules (nb01, nb02, ...; a notebook without exercises has none), imported, in order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"nb\d\d", m.name))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


class NotAttempted(Exception):
    """Raised inside a check when it meets a stub."""


class Wrong(Exception):
    """Raised inside a check when the answer is wrong; the message says what is wrong (one line)."""


def require(condition, message: str) -> None:
    """Raise Wrong(message) unless `condition`: the checks' `assert`, which `python -O` cannot switch off."""
    if not condition:
        raise Wrong(message)


def is_stub(value) -> bool:
    """True for what the notebooks ship in a value or written exercise: `...` or an empty string."""
    return value is ... or (isinstance(value, str) and not value.strip())


def is_number(value) -> bool:
    """True for an int or a float, not for a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def attempted(value):
    """`value` unchanged, or NotAttempted when it is still a stub."""
    if is_stub(value):
        raise NotAttempted
    return value


def predicted(prediction) -> bool:
    """For a cell that shows a predict-then-run exercise's answer: True once `prediction` is filled in; until then
    it prints that the cell waits, and the cell shows nothing (so the notebook's saved outputs give nothing away)."""
    if is_stub(prediction):
        print("(This cell shows the answer: make your prediction above first, then run it.)")
        return False
    return True


def one_line(text: str, limit: int = 300) -> str:
    """`text` with its whitespace collapsed, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def where_in_your_code(error: BaseException) -> str:
    """' (in make_example, line 3)' for the innermost frame of `error` outside this package, or ''."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not any(Path(f.filename).resolve().is_relative_to(folder) for folder in NOT_YOURS)]
    return f" (in {frames[-1].name}, line {frames[-1].lineno})" if frames else ""


def source_of(answer) -> str:
    """What the answers file keeps of an answer: a function's source (or its name), a value's repr, a text."""
    if callable(answer):
        try:
            return inspect.getsource(answer)
        except (OSError, TypeError):
            return getattr(answer, "__name__", repr(answer))
    return answer if isinstance(answer, str) else repr(answer)


def check(exercise_id: str, test, answer=None) -> bool:
    """Run `test()` (no arguments; it may return a note to print on success) and print one line: "not attempted
    yet" (False) on a stub, "not yet: ..." (False) when it raises Wrong or the student's code raises anything, else
    "correct" (True). `answer`, when given, is what the answers file keeps with the result. Never raises (but
    KeyboardInterrupt)."""
    try:
        note = test()
    except (NotImplementedError, NotAttempted):
        status, line = None, NOT_ATTEMPTED  # nothing to save
    except Wrong as wrong:
        status, line = "wrong", f"not yet — {one_line(wrong)}"
    except Exception as error:  # the student's code failed: say how and where, without a traceback
        status, line = "wrong", (f"not yet — your code raised {type(error).__name__}: {one_line(error, 200)}"
                                 f"{where_in_your_code(error)}")
    else:
        status, line = "correct", "correct ✓" + (f" {note}" if note else "")
    problem = record(exercise_id, status, source_of(answer)) if status else None
    print(f"Exercise {exercise_id}: {line}" + (f" ({problem})" if problem else ""))
    return status == "correct"


def check_written(exercise_id: str, answer, key_points: list[str]) -> bool:
    """A written answer cannot be marked by a program: save it and show the model answer's `key_points`, for the
    student to compare with. Returns True once recorded. On a stub, an answer saved earlier is shown again (the
    answers file keeps it across kernel restarts)."""
    if is_stub(answer):
        earlier = saved_answer(exercise_id)
        if earlier and earlier.get("status") == "recorded":
            print(f"Exercise {exercise_id}: not attempted yet in this cell, but the answer you recorded on "
                  f"{earlier['time'].replace('T', ' ')} is saved; paste it back between the quotes, or write a new "
                  f"one:\n    {earlier['answer']}")
        else:
            print(f"Exercise {exercise_id}: {NOT_ATTEMPTED}")
        return False
    if not isinstance(answer, str):
        print(f"Exercise {exercise_id}: not yet — write your answer as text between the triple quotes, not as "
              f"{type(answer).__name__}.")
        return False
    words = len(answer.split())
    if words < MIN_WORDS:
        print(f"Exercise {exercise_id}: not yet — {words} words is too short to record: answer in two or three "
              "sentences.")
        return False
    where = record(exercise_id, "recorded", answer.strip()) or f"saved in {answers_path()}"
    print(f"Exercise {exercise_id}: answer recorded ({words} words, {where}). No program can mark prose: compare "
          "yours with the key points of the model answer:\n" + "\n".join(f"  • {point}" for point in key_points))
    return True


def check_prediction(exercise_id: str, prediction, compute_truth, explain: str, close=None, hint=None) -> bool:
    """A predict-then-run exercise: `prediction` must equal compute_truth() (or be within `close` of it, for
    numbers), the value the package computes (only computed once there is a prediction). A wrong prediction is
    told the package's value, with a line about that mistake when `hint` has one, else `explain`, which says where
    the truth comes from. `hint` is a dict {a likely wrong answer: its line} (see hint_for) or a function
    hint(guess, truth) that returns the line or None."""
    def test():
        guess = attempted(prediction)
        if close is not None:
            require(is_number(guess), f"predict a number, not {guess!r}")
        truth = compute_truth()
        right = abs(guess - truth) <= close if close is not None else guess == truth
        line = hint_for(hint, guess, close or 0) if isinstance(hint, dict) else hint(guess, truth) if hint else None
        require(right, f"you predicted {guess!r}, the package gives {truth!r}. {line or explain}")
        return f"the package gives {truth!r} too."
    return check(exercise_id, test, prediction)


def hint_for(hints: dict, guess, close: float = 0):
    """The line of `hints` ({wrong answer: line}) whose answer `guess` is: a number within `close` of it (or equal
    to it but for rounding), anything else equal and of the same type (so a list, which is no dict key, or a bool,
    which equals 1, raises nothing and matches nothing by accident); None when there is none."""
    for wrong, line in hints.items():
        if is_number(guess) and is_number(wrong):
            if math.isclose(guess, wrong, abs_tol=close):
                return line
        elif type(guess) is type(wrong) and guess == wrong:
            return line
    return None


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
