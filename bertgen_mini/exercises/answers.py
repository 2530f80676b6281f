"""The answers file: every attempted exercise, kept on disk as it is checked.

A check writes the student's result into one JSON file (bertgen_mini.paths.answers_path(): `my_answers.json` in
the folder the notebook runs from, or `$BERTGEN_ANSWERS`), so written answers survive a kernel restart or a lost
notebook, and a teacher can collect them (`python -m bertgen_mini.classroom collect`). Layout:

    {"student": "ada",
     "answers": {"01.3": {"status": "recorded", "answer": "...", "attempts": 2, "time": "2026-12-03T10:02:11"},
                 "02.1": {"status": "correct", "answer": "def attention_by_hand(...): ...", ...}}}

status is "correct", "wrong" or "recorded" (a written answer, which no program marks). Stubs are never written.
The file is replaced atomically; a file that cannot be read is left untouched (nothing a student wrote is lost).
"""
import getpass
import json
import os
import time
from pathlib import Path

from ..files import atomic_write_text
from ..paths import answers_path

STATUSES = ("correct", "wrong", "recorded")


def student_name() -> str:
    """Who is answering: `$BERTGEN_STUDENT`, else the login name."""
    try:
        return os.environ.get("BERTGEN_STUDENT") or getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "unknown"


def read_answers(path=None) -> dict:
    """The answers file as a dict ({"student": ..., "answers": {...}}); an empty one when there is no file yet.
    Raises ValueError, naming the file, when it is not an answers file."""
    path = Path(path if path is not None else answers_path())
    if not path.is_file():
        return {"student": student_name(), "answers": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} cannot be read ({str(err)[:80]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        raise ValueError(f"{path} is not an answers file (no 'answers' table)")
    return data


def record(exercise_id: str, status: str, answer: str | None = None) -> str | None:
    """Save one result. Returns None, or a line saying why it could not be saved (the check still answers: saving
    is a service, never a reason to fail)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    path = answers_path()
    try:
        data = read_answers(path)
        previous = data["answers"].get(exercise_id, {})
        data["answers"][exercise_id] = {"status": status, "answer": answer,
                                        "attempts": previous.get("attempts", 0) + 1,
                                        "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    except (OSError, ValueError) as err:
        return f"not saved: {err}; fix or move that file to keep your answers"
    return None


def saved_answer(exercise_id: str) -> dict | None:
    """What the answers file holds for `exercise_id` (None when nothing, or when the file cannot be read)."""
    try:
        return read_answers()["answers"].get(exercise_id)
    except ValueError:
        return None
