"""The notebooks' exercises: every check passes with the solutions in notebooks/solutions/, says "not attempted" on
a stub, and answers a wrong answer (or code that raises) with one helpful line and False, never an exception;
written answers are recorded (never called "correct"), shown with the model answer's key points and kept in the
answers file; the committed notebooks show no answer before the student predicts it; and every check is called
from its notebook."""
import json
import math
import runpy
from pathlib import Path

import pytest
import torch

from bertgen_mini.exercises import KINDS, answers, exercise_modules

REPO = Path(__file__).resolve().parent.parent
MODULES = {m.__name__.rsplit(".", 1)[1]: m for m in exercise_modules()}  # notebook 08 has none
NOTEBOOKS = sorted(path for module in MODULES for path in (REPO / "notebooks").glob(f"{module[2:]}_*.ipynb"))
EXERCISES = [(module, exercise_id, *entry) for module, m in MODULES.items()
             for exercise_id, entry in m.EXERCISES.items()]
IDS = [e[1] for e in EXERCISES]


def stub_function(*args, **kwargs):
    raise NotImplementedError


STUBS = {"function": stub_function, "value": ..., "written": ""}


def no_scaling(q, k, v, mask=None):
    probs = (q @ k.transpose(-2, -1) + (0 if mask is None else mask)).softmax(-1)
    return probs @ v, probs


def no_warmup(step, warmup, total):
    return max(0.0, (total - step) / (total - warmup))


def unmasked_shift(labels, pad_token_id, start_token_id):
    return torch.cat([torch.full_like(labels[:, :1], start_token_id), labels[:, :-1]], 1)


def least_monotonic_head(capture):
    from bertgen_mini.attention_capture import attention_stats
    return divmod(int(attention_stats(capture, "cross")["monotonicity"].argmin()), capture.num_heads)


def rightmost_first(word, merge_ranks):
    pieces = list(word)
    while pairs := [(merge_ranks[p], -i) for i, p in enumerate(zip(pieces, pieces[1:])) if p in merge_ranks]:
        i = -min(pairs)[1]
        pieces[i:i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def no_end_token(source, target, tokenizer, max_length):
    labels = tokenizer.encode(target)[:max_length]
    return {"input_ids": tokenizer.encode(source)[:max_length], "labels": labels,
            "decoder_input_ids": [tokenizer.bos_token_id] + labels[:-1]}


SHORT = "Bananas are yellow."
# exercise id -> (a wrong answer, a piece of the line its check must print)
WRONG = {
    "01.1": (no_end_token, "labels must end with the end token"),
    "01.2": (["café", "!"], "you predicted ['café', '!'], the package gives ['cafe', '!']"),
    "01.3": (SHORT, "too short to record"),
    "02.1": (no_scaling, "Divide the scores by sqrt(d_h)"),
    "02.2": ((1, 4, 7, 5), "The right numbers in another order"),
    "02.3": (lambda d, f: 0, "with d=16, f=32 your formula gives 0"),
    "02.4": (42, "write your answer as text"),
    "03.1": (lambda report: 83.3333, "That is a percentage"),
    "03.2": (unmasked_shift, "-100 must become the padding id"),
    "03.3": (SHORT, "too short to record"),
    "04.1": (SHORT, "too short to record"),
    "04.2": (math.log(32), "That is in nats"),
    "04.3": (least_monotonic_head, "has monotonicity"),
    "05.1": (no_warmup, "during warmup the factor is (step + 1) / warmup"),
    "05.2": (1.5, "the mean of the two means"),
    "05.3": (SHORT, "too short to record"),
    "05.4": (8, "every batch of the epoch"),
    "06.1": (lambda log_probs, alpha: log_probs.sum(), "your score is"),
    "06.2": (1, "0.5 alone is below 0.75"),
    "06.3": (SHORT, "too short to record"),
    "07.1": (0.5, "Half would be right"),
    "07.2": (lambda rows, task: [r["recipe"] for r in rows if r["task"] == task], "Leave out the copy row itself"),
    "07.3": (SHORT, "too short to record"),
    "09.1": (rightmost_first, "of two equal pairs the leftmost"),
    "09.2": (lambda positions, types, pad: positions[pad:] + types[0], "drop padding_idx + 1 rows"),
    "09.3": (384 * 64, "nn.Linear has a bias too"),
    "09.4": (SHORT, "too short to record"),
}


@pytest.fixture(autouse=True)
def answers_file(tmp_path, monkeypatch):
    """Every test keeps its answers in a file of its own."""
    path = tmp_path / "my_answers.json"
    monkeypatch.setenv("BERTGEN_ANSWERS", str(path))
    return path


@pytest.fixture(scope="module")
def solutions():
    return {module: runpy.run_path(str(REPO / "notebooks" / "solutions" / f"{module}.py")) for module in MODULES}


def test_enough_exercises_of_every_kind_and_a_wrong_answer_for_each():
    assert len(EXERCISES) >= 18 and len(NOTEBOOKS) == len(MODULES) >= 8    # every module has its notebook
    assert all(2 <= len(m.EXERCISES) <= 4 for m in MODULES.values())
    assert {kind for *_, kind in EXERCISES} == set(KINDS) == set(STUBS)
    assert set(WRONG) == set(IDS)


@pytest.mark.parametrize("module, exercise_id, check, name, kind", EXERCISES, ids=IDS)
def test_check_passes_with_the_solution_and_saves_it(capsys, answers_file, solutions, module, exercise_id, check,
                                                      name, kind):
    assert check(solutions[module][name]) is True
    out = capsys.readouterr().out
    if kind == "written":
        assert f"Exercise {exercise_id}: answer recorded" in out and "correct" not in out
        assert "key points of the model answer" in out and out.count("•") >= 2
    else:
        assert f"Exercise {exercise_id}: correct ✓" in out and len(out.strip().splitlines()) == 1
    saved = answers.read_answers(answers_file)["answers"][exercise_id]
    assert saved["status"] == ("recorded" if kind == "written" else "correct") and saved["attempts"] == 1


@pytest.mark.parametrize("module, exercise_id, check, name, kind", EXERCISES, ids=IDS)
def test_check_says_not_attempted_on_a_stub_and_saves_nothing(capsys, answers_file, module, exercise_id, check,
                                                               name, kind):
    assert check(STUBS[kind]) is False
    assert capsys.readouterr().out == (f"Exercise {exercise_id}: not attempted yet — fill in the cell above, then "
                                       "run this cell again.\n")
    assert not answers_file.exists()


@pytest.mark.parametrize("module, exercise_id, check, name, kind", EXERCISES, ids=IDS)
def test_a_wrong_answer_prints_one_helpful_line_and_returns_false(capsys, module, exercise_id, check, name, kind):
    wrong, says = WRONG[exercise_id]
    assert check(wrong) is False          # returns: a wrong answer never raises, so Run All goes on
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {exercise_id}: not yet — ") and says in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_code_that_raises_is_reported_in_one_line_with_where_it_failed(capsys):
    def decoder_layer_params(d, f):
        return d / 0

    assert MODULES["nb02"].check_decoder_layer_params(decoder_layer_params) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 02.3: not yet — your code raised ZeroDivisionError: division by zero "
                          "(in decoder_layer_params, line ")
    assert len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("mistake, says", [
    (lambda r: sum(r.numels[n] for n in r.new) / sum(r.numels[n] for n in r.loaded + r.new), "share of *new*"),
    (lambda r: len(r.loaded) / len(r.loaded + r.new), "You counted tensors"),
    (lambda r: sum(r.numels[n] for n in r.loaded) / sum(r.numels[n] for n in r.loaded + r.new + r.unused),
     "unused tensors are in the checkpoint"),
    (lambda r: sum(r.numels[n] for n in r.loaded) / sum(r.numels.values()), "what it has twice"),
    (lambda r: sum(r.numels[n] for n in r.loaded) / sum(v for n, v in r.numels.items() if n not in r.unused),
     "a second name of a tied weight and a buffer"),
    (lambda r: sum(r.numels[n] for n in r.loaded) / sum(r.numels[n] for n in r.new), "not by the new ones"),
    (lambda r: "83%", "return a number"),
])
def test_pretrained_fraction_hint_names_the_mistake(capsys, mistake, says):
    assert MODULES["nb03"].check_pretrained_fraction(mistake) is False
    assert says in capsys.readouterr().out


def test_a_bool_is_not_a_number_even_where_it_equals_one(capsys):
    from bertgen_mini.train import warmup_linear_decay

    def bool_at_the_ends(step, warmup, total):
        factor = warmup_linear_decay(warmup, total)(step)
        return bool(factor) if factor in (0, 1) else factor

    assert MODULES["nb05"].check_schedule(bool_at_the_ends) is False and "got True" in capsys.readouterr().out
    assert MODULES["nb07"].check_share_ratio_prediction(True) is False
    assert "predict a number, not True" in capsys.readouterr().out


@pytest.mark.parametrize("prediction", [[384, 64], {"weight": 384 * 64}, True, 24640.0])
def test_a_prediction_of_another_type_gets_the_explanation_not_an_error(capsys, prediction):
    """A hint table is looked up by comparing, not hashing: a list (unhashable) once made 09.3 say "your code raised
    TypeError"."""
    assert MODULES["nb09"].check_projection_prediction(prediction) is (prediction == 24640.0)
    out = capsys.readouterr().out
    assert "raised" not in out and ("correct" in out if prediction == 24640.0 else "is nn.Linear(384, 64)" in out)


def test_a_hint_table_matches_numbers_within_the_tolerance_and_other_answers_by_type():
    from bertgen_mini.exercises import hint_for
    hints = {1.5: "mean of means", 8: "every batch", (1, 2): "a pair"}
    assert hint_for(hints, 1.5004, close=1e-3) == "mean of means" and hint_for(hints, 1.51, close=1e-3) is None
    assert hint_for(hints, 8.0) == "every batch" and hint_for(hints, (1, 2)) == "a pair"
    assert hint_for(hints, [1, 2]) is None and hint_for(hints, True) is None and hint_for(hints, "8") is None


def test_share_ratio_rejects_the_naive_half_and_accepts_the_rounded_truth(capsys):
    check = MODULES["nb07"].check_share_ratio_prediction
    assert check(0.5) is False and "what does the decoder have that the encoder does not" in capsys.readouterr().out
    assert check(0.54) is True and check(0.537) is True


def test_a_written_answer_is_kept_across_a_restart_and_shown_again_on_a_stub(capsys, answers_file):
    check = MODULES["nb01"].check_separator_answer
    answer = "Six pieces mean six decisions in the right order, and decoding spaces them out."
    assert check(answer) is True
    assert check(answer + " More.") is True
    saved = json.loads(answers_file.read_text())["answers"]["01.3"]
    assert saved["answer"] == answer + " More." and saved["attempts"] == 2 and saved["status"] == "recorded"
    capsys.readouterr()
    assert check("") is False             # a new kernel, a notebook cell that lost the text
    out = capsys.readouterr().out
    assert "not attempted yet in this cell" in out and answer + " More." in out


def test_a_damaged_answers_file_is_left_alone_and_the_check_still_answers(capsys, answers_file):
    answers_file.write_text("{ half a file")
    assert MODULES["nb05"].check_step_loss_prediction(1.25) is True
    out = capsys.readouterr().out
    assert "correct ✓" in out and "not saved" in out and str(answers_file) in out
    assert answers_file.read_text() == "{ half a file"


def cells(notebook):
    return json.loads(notebook.read_text())["cells"]


def output_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts += output.get("text", [])
        for mime, data in output.get("data", {}).items():
            if mime.startswith("text/"):
                parts += data if isinstance(data, list) else [data]
    return "".join(parts)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_committed_outputs_show_no_prediction_before_the_student_makes_it(notebook, solutions):
    """A cell tagged `reveals-answer` shows a predict-then-run answer: it waits for the prediction (its saved output
    is the waiting line only), and the answers that are lists or tuples appear in no saved output at all."""
    module = f"nb{notebook.name[:2]}"
    for cell in cells(notebook):
        if "reveals-answer" in cell.get("metadata", {}).get("tags", []):
            assert "predicted(" in "".join(cell["source"]), f"{notebook.name}: a reveals-answer cell must wait"
            assert output_text(cell).strip() in ("", "(This cell shows the answer: make your prediction above first, "
                                                     "then run it.)"), f"{notebook.name}: a revealing output is saved"
            assert not any("data" in o for o in cell.get("outputs", [])), f"{notebook.name}: a revealing figure"
    saved = "".join(output_text(cell) for cell in cells(notebook))
    for exercise_id, (check, name, kind) in MODULES[module].EXERCISES.items():
        value = solutions[module][name]
        if kind == "value" and isinstance(value, (list, tuple)):
            assert repr(value) not in saved and repr(list(value)) not in saved, \
                f"{notebook.name}: the answer to {exercise_id} is in a saved output"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_every_check_is_called_from_its_notebook_on_a_stub(notebook):
    module = MODULES[f"nb{notebook.name[:2]}"]
    code = "\n".join("".join(c["source"]) for c in cells(notebook) if c["cell_type"] == "code")
    for exercise_id, (check, name, kind) in module.EXERCISES.items():
        assert f"{check.__name__}({name})" in code, f"{notebook.name} does not call {check.__name__}({name})"
        assert "not attempted yet" in notebook.read_text(), f"{notebook.name}: its committed checks should meet stubs"
