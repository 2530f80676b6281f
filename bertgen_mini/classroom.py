"""For teaching with the notebooks: build the student version, and collect the students' answers.

    python -m bertgen_mini.classroom student [--out student]        # the notebooks without outputs or solutions
    python -m bertgen_mini.classroom collect answers/ [--out answers.md]   # every student's answers, one report

The student version is a folder a student works in (by default `student/` at the top of the checkout, which git
ignores, so a `git pull` of the course never conflicts with a student's work):

    student/README.md            how to start, what the checks say, where answers are kept
    student/notebooks/0N_*.ipynb every notebook, outputs and execution counts stripped, no pointer to solutions
    student/bench/results/...    the recorded results the notebooks read (by a ../ path)

It leaves out notebooks/solutions/. Run again (after a `git pull` that brought a new notebook), it adds what is
missing and never overwrites a notebook already there: a student's work is never replaced.

Students' answers: each check saves the student's result in `my_answers.json` beside the notebook
(bertgen_mini.exercises.answers). `collect` reads any number of those files (or folders holding them) and writes one
Markdown report: a table of who has which exercise right, wrong or recorded, then every written answer, grouped by
exercise. nbgrader's conventions, for comparison: the repository's notebooks with notebooks/solutions/ are the
"source" version, `student` makes the "release" version, the check cells are the autograder tests (they say what
is wrong instead of raising), and the written answers are the manually graded cells.
"""
import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from .exercises import exercise_modules
from .exercises.answers import read_answers
from .files import atomic_write_text
from .paths import ANSWERS_FILE

REPO = Path(__file__).resolve().parent.parent
# The notebooks name their model answers' file; the student version has none, so the sentence is rewritten.
SOLUTIONS_SENTENCE = re.compile(r"\b([Mm])odel\s+answers\s+are\s+in\s+`notebooks/solutions/nb\d+\.py`")
READ_BY_PATH = re.compile(r"""["']\.\./([\w./-]+)["']""")  # a file a notebook reads from beside notebooks/
OUTPUTS = "runs"  # the git-ignored folder notebooks write into: a student's version starts without it
MARKS = {"correct": "✓", "wrong": "✗", "recorded": "✎"}

STUDENT_README = """# bertgen_mini: your notebooks

Start Jupyter from this folder and open `notebooks/01_tokenizers.ipynb` first:

    jupyter lab notebooks/

Each notebook says at the top what you will be able to do. The exercises sit where their topic is: fill in the cell
(a function, a prediction, or a few sentences), then run the check cell under it. A check says *not attempted yet*,
*not yet* with what is wrong, *correct*, or, for a written answer, *recorded* with the key points of the model
answer to compare yours with. A check never stops the notebook. In a predict-then-run exercise, predict first: the
cells that show the answer wait for your prediction.

Every answer you check is saved in `notebooks/{answers}` as you go: it survives a restart, and it is what you
hand in when your teacher asks for your answers.

This folder is yours. Updating the course (`git pull`) never changes it; `python -m bertgen_mini.classroom student`
adds notebooks that are new since, and never replaces one you have. Figures the notebooks draw go to `runs/figures/`.
"""


def student_notebook(notebook: dict, name: str) -> dict:
    """A notebook as a student gets it: no outputs, no execution counts, no saved widget state, and no pointer to
    the solutions. Raises ValueError when a cell still names notebooks/solutions/ in a way this cannot rewrite."""
    notebook = json.loads(json.dumps(notebook))  # a deep copy
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        source = "".join(cell["source"])
        source = SOLUTIONS_SENTENCE.sub(lambda m: ("Y" if m[1] == "M" else "y") + "our teacher has the model answers",
                                        source)
        if "solutions/" in source:
            raise ValueError(f"{name}: a cell still points to notebooks/solutions/, which the student version "
                             f"leaves out: say 'model answers are in `notebooks/solutions/nbNN.py`' or drop it.")
        cell["source"] = source.splitlines(keepends=True)
    return notebook


def build_student_version(out, notebooks_dir=None) -> list[Path]:
    """Write the student version into `out` (see the module's docstring); returns the files written. Files already
    there are kept as they are."""
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else REPO / "notebooks"
    sources = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"No notebooks in {notebooks_dir}: run this from a checkout of bertgen_mini "
                                "(the notebooks are not installed with the package).")
    out = Path(out)
    written = []

    def write_new(path: Path, text: str):
        if not path.exists():
            atomic_write_text(path, text)
            written.append(path)

    read_elsewhere = set()
    for source in sources:
        notebook = json.loads(source.read_text(encoding="utf-8"))
        code = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
        read_elsewhere |= {p for p in READ_BY_PATH.findall(code)
                           if (notebooks_dir.parent / p).is_file() and Path(p).parts[0] != OUTPUTS}
        write_new(out / "notebooks" / source.name,
                  json.dumps(student_notebook(notebook, source.name), indent=1, ensure_ascii=False) + "\n")
    for relative in sorted({str(Path(p).parent) for p in read_elsewhere}):  # the folder, for files read beside it
        for file in sorted((notebooks_dir.parent / relative).iterdir()):
            if file.is_file():
                target = out / relative / file.name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(file, target)
                    written.append(target)
    write_new(out / "README.md", STUDENT_README.format(answers=ANSWERS_FILE))
    return written


def exercise_ids() -> list[str]:
    """Every exercise of every notebook, in order: 01.1, 01.2, ..."""
    return [exercise_id for module in exercise_modules() for exercise_id in sorted(module.EXERCISES)]


def find_answer_files(paths) -> list[Path]:
    """The answers files among `paths`: files as given, folders searched for my_answers.json."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.rglob(ANSWERS_FILE))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} is neither an answers file nor a folder.")
    if not found:
        raise FileNotFoundError(f"No {ANSWERS_FILE} in {', '.join(map(str, paths))}.")
    return found


def collect(paths) -> str:
    """One Markdown report of the answers files in `paths`: progress per student and exercise, then the written
    answers. A student is named by the file's "student" field, or by its folder when two files share a name; a
    file that cannot be read is listed, not skipped silently."""
    students, unreadable = {}, []
    for path in find_answer_files(paths):
        try:
            data = read_answers(path)
        except ValueError as err:
            unreadable.append(str(err))
            continue
        name = str(data.get("student") or path.parent.name)
        if name in students:
            name = f"{name} ({path.parent})"
        students[name] = data["answers"]
    ids = exercise_ids()
    ids += sorted({i for answers in students.values() for i in answers} - set(ids))
    lines = ["# Answers", "", f"{len(students)} students. " + ", ".join(f"{mark} {status}" for status, mark in
                                                                       MARKS.items()) + "; blank: not attempted.", ""]
    lines += ["| student | " + " | ".join(ids) + " |", "|---" * (len(ids) + 1) + "|"]
    for name, answers in sorted(students.items()):
        marks = [MARKS.get(answers.get(i, {}).get("status"), "") for i in ids]
        lines.append(f"| {name} | " + " | ".join(marks) + " |")
    lines += [f"\nCould not read: {problem}" for problem in unreadable]
    lines += ["", "## Written answers"]
    for i in ids:
        written = [(name, a[i]) for name, a in sorted(students.items()) if a.get(i, {}).get("status") == "recorded"]
        if written:
            lines += ["", f"### {i}", ""]
            lines += [f"**{name}** ({entry.get('attempts', 1)} attempts, {entry.get('time', '?')}): "
                      + " ".join(str(entry.get("answer", "")).split()) + "\n" for name, entry in written]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertgen_mini.classroom", description="Build the student "
                                     "version of the notebooks, or collect the students' answers (see TEACHERS.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write the notebooks without outputs or solutions into a folder "
                                                  "a student works in (files already there are kept)")
    student.add_argument("--out", default=str(REPO / "student"), help="the folder (default: student/ in the "
                                                                      "checkout, which git ignores)")
    gather = commands.add_parser("collect", help=f"one Markdown report of the students' {ANSWERS_FILE} files")
    gather.add_argument("paths", nargs="+", help=f"{ANSWERS_FILE} files, or folders to search for them")
    gather.add_argument("--out", default=None, help="write the report here (default: print it)")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            written = build_student_version(args.out)
            print(f"{len(written)} files written into {args.out}" + ("" if written else " (all were there already)")
                  + f". Students start with: cd {args.out} && jupyter lab notebooks/")
        else:
            report = collect(args.paths)
            if args.out:
                atomic_write_text(args.out, report)
                print(f"wrote {args.out}")
            else:
                print(report)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
