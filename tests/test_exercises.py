"""The notebooks' exercises: every check passes with the solutions in notebooks/solutions/, every check says "not
attempted" (returns False, raises nothing) on a stub, a wrong answer fails with an AssertionError, and every check
is called from its notebook."""
import importlib
import json
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("0[1-7]_*.ipynb"))
MODULES = {f"nb{n:02d}": importlib.import_module(f"bertgen_mini.exercises.nb{n:02d}") for n in range(1, 8)}
EXERCISES = [(module, exercise_id, *entry) for module, m in MODULES.items() for exercise_id, entry in m.EXERCISES.items()]


def stub_function(*args, **kwargs):
    raise NotImplementedError


STUBS = {"function": stub_function, "value": ..., "written": ""}


@pytest.fixture(scope="module")
def solutions():
    return {module: runpy.run_path(str(REPO / "notebooks" / "solutions" / f"{module}.py")) for module in MODULES}


def test_enough_exercises_of_every_kind():
    assert len(EXERCISES) >= 18
    assert all(2 <= len(m.EXERCISES) <= 4 for m in MODULES.values())
    assert {kind for *_, kind in EXERCISES} == {"function", "value", "written"}


@pytest.mark.parametrize("module, exercise_id, check, name, kind", EXERCISES, ids=[e[1] for e in EXERCISES])
def test_check_passes_with_the_solution(solutions, module, exercise_id, check, name, kind):
    assert check(solutions[module][name]) is True


@pytest.mark.parametrize("module, exercise_id, check, name, kind", EXERCISES, ids=[e[1] for e in EXERCISES])
def test_check_says_not_attempted_on_a_stub(capsys, module, exercise_id, check, name, kind):
    assert check(STUBS[kind]) is False
    assert f"Exercise {exercise_id}: not attempted yet" in capsys.readouterr().out


def test_a_wrong_answer_fails_with_a_helpful_message():
    with pytest.raises(AssertionError, match="Exercise 02.3: with d=16, f=32"):
        MODULES["nb02"].check_decoder_layer_params(lambda d, f: 0)
    with pytest.raises(AssertionError, match="Exercise 05.2: you predicted 1.5"):
        MODULES["nb05"].check_step_loss_prediction(1.5)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_every_check_is_called_from_its_notebook_on_a_stub(notebook):
    module = MODULES[f"nb{notebook.name[:2]}"]
    code = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    for exercise_id, (check, name, kind) in module.EXERCISES.items():
        assert f"{check.__name__}({name})" in code, f"{notebook.name} does not call {check.__name__}({name})"
        assert "not attempted yet" in notebook.read_text(), f"{notebook.name}: its committed checks should meet stubs"
