"""Every command line of the package describes every flag in its --help: a learner reads the flags there first."""
import re

import pytest

from bertgen_mini import classroom, evaluate, experiments, train

COMMANDS = {"train": (train.parse_args, []), "evaluate": (evaluate.main, []), "experiments": (experiments.main, []),
            "classroom student": (classroom.main, ["student"]), "classroom collect": (classroom.main, ["collect"])}


def flags_without_help(text: str) -> list:
    """The option lines of an argparse --help text that no description follows (on the line or the next)."""
    lines = text.splitlines()
    bare = []
    for i, line in enumerate(lines):
        if not re.match(r"  -\S", line):
            continue
        on_the_line = re.match(r"  -\S.*?\S\s{2,}\S", line)
        below = i + 1 < len(lines) and re.match(r"\s{20,}\S", lines[i + 1])
        if not (on_the_line or below):
            bare.append(line.strip())
    return bare


def test_the_checker_finds_a_flag_without_help():
    assert flags_without_help("options:\n  --described  what it does\n  --bare\n  --long-one LONG_ONE\n"
                              "                        what it does\n") == ["--bare"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_has_a_help_text(name, capsys):
    entry, prefix = COMMANDS[name]
    with pytest.raises(SystemExit):
        entry([*prefix, "--help"])
    text = capsys.readouterr().out
    assert "options:" in text
    assert flags_without_help(text) == [], f"{name} --help leaves these flags undescribed"
