"""Notebook 09's exercises: every check passes with notebooks/solutions/nb09.py, says "not attempted" on the stubs,
and answers a wrong answer with one helpful line and False; the notebook calls each check on its stub, and its saved
outputs show no answer before the student predicts it."""
import json
import runpy
from pathlib import Path

import pytest

from bertgen_mini.exercises import answers, nb09

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "09_other_checkpoints.ipynb"
EXERCISES = [(exercise_id, *entry) for exercise_id, entry in nb09.EXERCISES.items()]


def stub_function(*args, **kwargs):
    raise NotImplementedError


def rightmost_first(word, merge_ranks):
    pieces = list(word)
    while pairs := [(merge_ranks[p], -i) for i, p in enumerate(zip(pieces, pieces[1:])) if p in merge_ranks]:
        i = -min(pairs)[1]
        pieces[i:i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


STUBS = {"function": stub_function, "value": ..., "written": ""}
WRONG = {"09.1": (rightmost_first, "of two equal pairs the leftmost"),
         "09.2": (lambda positions, types, pad: positions[pad:] + types[0], "drop padding_idx + 1 rows"),
         "09.3": (384 * 64, "nn.Linear has a bias too"),
         "09.4": ("Two vocabularies.", "too short to record")}


@pytest.fixture(autouse=True)
def answers_file(tmp_path, monkeypatch):
    path = tmp_path / "my_answers.json"
    monkeypatch.setenv("BERTGEN_ANSWERS", str(path))
    return path


@pytest.fixture(scope="module")
def solutions():
    return runpy.run_path(str(REPO / "notebooks" / "solutions" / "nb09.py"))


def test_four_exercises_of_every_kind_each_with_a_wrong_answer():
    assert {kind for *_, kind in EXERCISES} == {"function", "value", "written"} and set(WRONG) == set(nb09.EXERCISES)


@pytest.mark.parametrize("exercise_id, check, name, kind", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_each_check_passes_with_the_solution_says_not_attempted_on_the_stub_and_one_line_when_wrong(
        capsys, answers_file, solutions, exercise_id, check, name, kind):
    assert check(STUBS[kind]) is False
    assert f"Exercise {exercise_id}: not attempted yet" in capsys.readouterr().out and not answers_file.exists()
    assert check(solutions[name]) is True
    out = capsys.readouterr().out
    assert f"Exercise {exercise_id}: " + ("answer recorded" if kind == "written" else "correct ✓") in out
    assert answers.read_answers(answers_file)["answers"][exercise_id]["status"] == \
        ("recorded" if kind == "written" else "correct")
    wrong, says = WRONG[exercise_id]
    assert check(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {exercise_id}: not yet — ") and says in out
    assert len(out.strip().splitlines()) == 1


def test_the_notebook_calls_every_check_on_a_stub_and_shows_no_answer_before_the_prediction():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for check, name, _ in nb09.EXERCISES.values():
        assert f"{check.__name__}({name})" in code
    revealing = [c for c in cells if "reveals-answer" in c.get("metadata", {}).get("tags", [])]
    assert revealing and all("predicted(" in "".join(c["source"]) for c in revealing)
    for cell in revealing:
        shown = "".join(text for output in cell.get("outputs", []) for text in output.get("text", []))
        assert shown.strip() == "(This cell shows the answer: make your prediction above first, then run it.)"
    saved = NOTEBOOK.read_text(encoding="utf-8")
    assert all(f"Exercise {exercise_id}: not attempted yet" in saved for exercise_id in nb09.EXERCISES)
    assert f"{nb09.projection_parameters():,} parameters" not in saved
