"""The fault suite, round 2 (issue 25): checkpoints that would corrupt memory, work lost to a signal or a full disk,
writes through links, resumes that take another run's inputs, silent wrong results at the door, files that hang or
exhaust memory, stale experiment rows, and errors that blame the wrong thing. Each test shows the package now
refuses the fault with an error naming what to fix, or handles it. Where a fault could crash or hang the process
(memory corruption, a FIFO) it runs in a child process. Tiny models only."""
import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import bertgen_mini as bg
import fault_child
from bertgen_mini import experiments as ex
from bertgen_mini import zoo
from bertgen_mini.data import load_wikisplit
from bertgen_mini.evaluate import main as evaluate_main
from bertgen_mini.metrics import corpus_bleu, exact_match, score_all
from bertgen_mini.recipes import param_groups
from bertgen_mini.train import STATE_NAME, TENSORS_NAME, Trainer, TrainConfig, checkpoints, train
from reference import SMALL, small_pair
from test_experiments import LINES, tiny  # noqa: F401  (tiny: a fixture, a BERT folder and WikiSplit-like data)
from test_recipes import save_tiny_bert, write_vocab
from test_train import B, batches_of, config, random_pairs
from test_train import one_thread  # noqa: F401  (its autouse fixture: tiny models run fastest on one thread)


def in_child(fn, *args, timeout=60):
    """fn(*args) in a fresh process (see fault_child.forkserver); returns (exit code, how fn ended). A child still
    running after `timeout` seconds is killed, and the test fails: it hung."""
    outcome = Path(tempfile.gettempdir()) / f"outcome-{os.getpid()}-{time.monotonic_ns()}.txt"
    child = fault_child.forkserver().Process(target=fault_child.report, args=(outcome, fn, *args))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"{fn.__name__} hung: still running after {timeout} s")
    text = outcome.read_text(encoding="utf-8") if outcome.exists() else f"no outcome (exit code {child.exitcode})"
    outcome.unlink(missing_ok=True)
    return child.exitcode, text


def saved_pair(folder, **overrides):
    small_pair(**overrides).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------- 1: no memory corruption on resume

def swap_first_two_moments(tensors, other):
    for key in ("exp_avg", "exp_avg_sq"):  # word embeddings (101, 32) and position embeddings (64, 32)
        tensors[f"optimizer.0.{key}"], tensors[f"optimizer.1.{key}"] = (tensors[f"optimizer.1.{key}"],
                                                                        tensors[f"optimizer.0.{key}"])


def double_precision_moment(tensors, other):
    tensors["optimizer.0.exp_avg"] = tensors["optimizer.0.exp_avg"].double()


def another_models_moments(tensors, other):
    tensors.update({k: v for k, v in other.items() if k.startswith("optimizer.")})


@pytest.mark.parametrize("damage", [swap_first_two_moments, double_precision_moment, another_models_moments])
def test_optimizer_moments_that_do_not_fit_their_parameters_are_refused_before_anything_is_loaded(tmp_path, damage):
    batches = batches_of(random_pairs(8), B)
    fault_child.train_saved(saved_pair(tmp_path / "init"), batches, config(tmp_path / "run", steps=1))
    fault_child.train_saved(saved_pair(tmp_path / "wide", intermediate_size=48), batches,
                            config(tmp_path / "other", steps=1))  # another recipe: 8 of its tensors have other shapes
    state = tmp_path / "run" / "checkpoint-1" / TENSORS_NAME
    tensors = load_file(state)
    damage(tensors, load_file(tmp_path / "other" / "checkpoint-1" / TENSORS_NAME))
    save_file(tensors, state)
    code, outcome = in_child(fault_child.train_saved, tmp_path / "init", batches, config(tmp_path / "run", steps=3))
    assert code == 0, f"the resume crashed the process (exit code {code})"
    assert outcome.startswith("ValueError") and TENSORS_NAME in outcome and "--no-resume" in outcome, outcome
    assert "shape" in outcome or "dtype" in outcome


def test_optimizer_groups_of_another_layout_are_refused_naming_the_file(tmp_path):
    model = small_pair().train()
    Trainer(model, batches_of(random_pairs(8), B), config(tmp_path, steps=1), param_groups(model, 3e-3)).train()
    with pytest.raises(ValueError, match=rf"(?s){TENSORS_NAME}.*parameter groups.*2 in the checkpoint, 1 now"
                                         r".*--no-resume"):
        Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path, steps=2)).train()


# ------------------------------------------------------------------------- 2: no work lost

def wait_for_log(out, child, lines=1):
    deadline = time.monotonic() + 60
    while not ((out / "log.jsonl").is_file() and (out / "log.jsonl").read_text().count("\n") >= lines):
        assert child.is_alive() and time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_a_checkpoint_says_how_to_resume_and_exits_128_plus_the_signal(tmp_path, tiny, sig):
    bert, data = tiny
    out = tmp_path / "run"
    argv = ["--bert-dir", str(bert), "--data-dir", str(data), "--output-dir", str(out), "--steps", "100000",
            "--batch-size", "2", "--warmup-steps", "0", "--eval-rows", "0", "--max-source-len", "24",
            "--max-target-len", "24", "--no-progress"]
    child = fault_child.forkserver().Process(target=fault_child.train_command, args=(tmp_path / "stderr.txt", argv))
    child.start()
    try:
        wait_for_log(out, child, lines=2)
        os.kill(child.pid, sig)
        child.join(60)
    finally:
        child.kill()
    err = (tmp_path / "stderr.txt").read_text()
    assert child.exitcode == 128 + sig, err[-2000:]
    [saved] = checkpoints(out)
    assert f"Stopped by {signal.Signals(sig).name} at step {saved.name.split('-')[1]}" in err
    assert str(saved) in err and "run the same command again to resume" in err


@pytest.mark.parametrize("where", ["same", "link", "inside"])
def test_an_output_dir_that_would_overwrite_or_prune_the_warm_start_checkpoint_is_refused_at_start(tmp_path, where):
    bert = save_tiny_bert(tmp_path / "runs" / "bert")
    before = (bert / "model.safetensors").read_bytes()
    output = {"same": bert, "inside": tmp_path / "runs"}.get(where)
    if where == "link":
        output = tmp_path / "link"
        output.symlink_to(bert)
    settings = TrainConfig(output_dir=str(output), bert_dir=str(bert), steps=1, batch_size=2, train_rows=4,
                           eval_rows=0, progress=False)
    with pytest.raises(ValueError, match=r"--output-dir .* --bert-dir"):
        train(settings)
    assert (bert / "model.safetensors").read_bytes() == before


def saved_pair_with_vocab(folder, vocab_lines=SMALL["vocab_size"]):
    saved_pair(folder)
    write_vocab(folder, vocab_lines)
    return folder


def test_evaluate_prints_its_scores_before_writing_so_a_failed_write_loses_nothing(tmp_path, monkeypatch, capsys):
    model = saved_pair_with_vocab(tmp_path / "model")
    monkeypatch.setattr("bertgen_mini.evaluate.evaluate", lambda *a, **k: ({"sari": 12.5}, []))

    def full_disk(path, text):
        raise OSError(28, f"Could not write {path}")
    monkeypatch.setattr("bertgen_mini.evaluate.atomic_write_text", full_disk)
    with pytest.raises(OSError):
        evaluate_main(["--model-dir", str(model), "--rows", "2"])
    assert '"sari": 12.5' in capsys.readouterr().out


@pytest.mark.parametrize("flag, value, match", [("--max-source-len", "600", r"--max-source-len 600.*64 positions"),
                                                ("--max-new-tokens", "100", r"--max-new-tokens 100.*64 positions")])
def test_evaluate_checks_its_length_flags_against_the_model_before_generating(tmp_path, monkeypatch, flag, value,
                                                                             match):
    model = saved_pair_with_vocab(tmp_path / "model")
    monkeypatch.setattr(bg.EncoderDecoderModel, "generate", lambda *a, **k: pytest.fail("generated first"))
    with pytest.raises(ValueError, match=match):
        evaluate_main(["--model-dir", str(model), "--rows", "2", flag, value])


# ------------------------------------------------------------------------- 3: writes never go through links

@pytest.mark.parametrize("name", ["vocab.txt", "tokenizer_config.json"])
def test_a_tokenizer_save_replaces_a_link_instead_of_writing_through_it(tmp_path, name):
    write_vocab(tmp_path / "source")
    tokenizer = bg.BertTokenizer.from_pretrained(tmp_path / "source")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / name).symlink_to(outside)
    tokenizer.save_pretrained(tmp_path / "saved")
    assert outside.read_text() == "not yours\n"
    assert not (tmp_path / "saved" / name).is_symlink()
    assert bg.BertTokenizer.from_pretrained(tmp_path / "saved").get_vocab() == tokenizer.get_vocab()


def test_the_training_log_is_not_appended_through_a_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").symlink_to(outside)
    with pytest.raises(OSError, match=r"log.jsonl is a link"):
        Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path / "run", steps=1)).train()
    assert outside.read_text() == "not yours\n"


def test_a_full_disk_during_a_checkpoint_names_the_file_and_leaves_no_empty_folder(tmp_path):
    """A real write failure (a file-size limit: the write fails with EFBIG, as it would with ENOSPC on a full disk)
    makes safetensors raise its own SafetensorError, not an OSError."""
    batches = batches_of(random_pairs(8), B)
    _, outcome = in_child(fault_child.with_file_size_limit, 4096, fault_child.train_saved,
                             saved_pair(tmp_path / "init"), batches, config(tmp_path / "run", steps=1))
    assert re.match(r"OSError: .*Could not write .*checkpoint-1/model.safetensors", outcome), outcome
    assert not (tmp_path / "run" / "checkpoint-1").exists()


def test_a_full_disk_during_a_tokenizer_save_keeps_the_old_files_whole(tmp_path):
    write_vocab(tmp_path / "tok", size=1200)  # about 6 kB
    before = {name: (tmp_path / "tok" / name).read_bytes() for name in ("vocab.txt", "tokenizer_config.json")
              if (tmp_path / "tok" / name).exists()}
    _, outcome = in_child(fault_child.with_file_size_limit, 4096, fault_child.save_tokenizer, tmp_path / "tok")
    assert re.match(r"OSError: .*Could not write .*tok/vocab.txt", outcome), outcome
    assert {name: (tmp_path / "tok" / name).read_bytes() for name in ("vocab.txt", "tokenizer_config.json")
            if (tmp_path / "tok" / name).exists()} == before  # both files as they were: none written


# ------------------------------------------------------------------------- 4: resume takes only its own inputs

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A folder with bert/, data/ and run/ (a train() of 2 steps, checkpoint-2 kept), all named relative to it."""
    world = tmp_path_factory.mktemp("world")
    (world / "data").mkdir()
    for name in ("tune.tsv", "validation.tsv"):
        (world / "data" / name).write_text("\n".join(LINES * 2) + "\n", encoding="utf-8")
    save_tiny_bert(world / "bert")
    cwd = os.getcwd()
    os.chdir(world)
    try:
        train(run_config())
    finally:
        os.chdir(cwd)
    return world


def run_config(**overrides):
    return TrainConfig(**{"output_dir": "run", "bert_dir": "bert", "data_dir": "data", "steps": 2, "save_every": 1,
                          "batch_size": 2, "train_rows": 6, "eval_rows": 0, "max_source_len": 24,
                          "max_target_len": 24, "warmup_steps": 0, "progress": False, **overrides})


def other_data(world):
    (world / "data2").mkdir()
    (world / "data2" / "tune.tsv").write_text("\n".join(reversed(LINES * 2)) + "\n", encoding="utf-8")
    shutil.copy(world / "data" / "validation.tsv", world / "data2")
    return {"data_dir": "data2"}


def reordered_vocabulary(world):
    lines = (world / "bert" / "vocab.txt").read_text().splitlines()
    lines[40], lines[41] = lines[41], lines[40]
    (world / "bert" / "vocab.txt").write_text("\n".join(lines) + "\n")
    return {}


def other_starting_weights(world):
    torch.manual_seed(7)
    bg.BertGenerationEncoder(bg.BertGenerationConfig(**SMALL)).save_pretrained(world / "bert")
    return {}


def weights_of_another_run(world):
    weights = world / "run" / "checkpoint-2" / "model.safetensors"
    tensors = load_file(weights)
    save_file({k: v + 0.01 for k, v in tensors.items()}, weights)
    return {}


@pytest.mark.parametrize("change, match", [
    (other_data, "training pairs"), (lambda world: {"data_dir": None}, "training pairs"),
    (reordered_vocabulary, "vocabulary"), (other_starting_weights, "weights the run started from"),
    (weights_of_another_run, "model.safetensors")])
def test_a_resume_with_another_runs_inputs_is_refused_naming_them(tmp_path, finished_run, monkeypatch, change, match):
    world = tmp_path / "world"
    shutil.copytree(finished_run, world, symlinks=True)
    monkeypatch.chdir(world)
    overrides = change(world)
    with pytest.raises(ValueError, match=rf"(?s)checkpoint-2.*{match}.*--no-resume"):
        train(run_config(steps=3, **overrides))


def test_a_resume_with_the_same_inputs_goes_on(tmp_path, finished_run, monkeypatch):
    world = tmp_path / "world"
    shutil.copytree(finished_run, world, symlinks=True)
    monkeypatch.chdir(world)
    train(run_config(steps=3))
    assert [p.name for p in checkpoints(world / "run")] == ["checkpoint-3"]


@pytest.mark.parametrize("damage", [{"step": "3"}, {"step": -1}, {"epoch": None}, {"config": 5}, {"world_size": 0},
                                    {"batch_in_epoch": 1.5}])
def test_damaged_fields_of_the_trainer_state_are_an_error_naming_the_file(tmp_path, damage):
    Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path, steps=1)).train()
    path = tmp_path / "checkpoint-1" / STATE_NAME
    state = json.loads(path.read_text())
    for key, value in damage.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=rf"(?s)checkpoint-1/{STATE_NAME}.*{next(iter(damage))}.*--no-resume"):
        Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path, steps=2)).train()


# ------------------------------------------------------------------------- 5: silent wrong results at the door

def test_attention_mask_values_other_than_0_and_1_are_refused():
    model = small_pair()
    ids = torch.randint(3, 101, (2, 5))
    for mask in (torch.tensor([[1, 1, 2, 1, 0]] * 2), torch.tensor([[1.0, 0.5, 1, 1, 1]] * 2)):
        with pytest.raises(ValueError, match=r"attention_mask holds values other than 0 and 1"):
            model(input_ids=ids, attention_mask=mask, labels=ids[:, :4])
    with pytest.raises(ValueError, match=r"attention_mask holds values other than 0 and 1"):
        model.generate(ids, torch.tensor([[1, 1, 1, -1, 1]] * 2), max_new_tokens=2)
    states = torch.randn(2, 5, 32)
    with pytest.raises(ValueError, match=r"encoder attention_mask holds values other than 0 and 1"):
        model.decoder(input_ids=ids, encoder_hidden_states=states, encoder_attention_mask=torch.full((2, 5), 3))


@pytest.mark.parametrize("setting, match", [
    ({"eos_token_id": -1}, r"eos_token_id=-1"), ({"pad_token_id": -2}, r"pad_token_id=-2"),
    ({"decoder_start_token_id": -1}, r"decoder_start_token_id=-1"),
    ({"no_repeat_ngram_size": -1}, r"no_repeat_ngram_size=-1"),
    ({"length_penalty": float("nan")}, r"length_penalty=nan"),
    ({"min_new_tokens": -1}, r"min_new_tokens=-1")])
def test_generation_settings_that_would_silently_change_the_output_are_refused(setting, match):
    with pytest.raises(ValueError, match=match):
        small_pair().generate(torch.randint(3, 101, (2, 5)), max_new_tokens=3, **setting)


@pytest.mark.parametrize("scorer", [exact_match, corpus_bleu, lambda p, r: score_all(p, p, r)])
def test_one_string_as_the_references_is_refused_not_read_as_one_reference_per_character(scorer):
    with pytest.raises(TypeError, match=r"references is one string.*\[reference\]"):
        scorer(["a b", "c", "d"], "abc")


def tokenizer_folder(tmp_path, **settings):
    write_vocab(tmp_path / "tok")
    if settings:
        (tmp_path / "tok" / "tokenizer_config.json").write_text(json.dumps(settings))
    return tmp_path / "tok"


@pytest.mark.parametrize("setting, match", [
    ({"do_lower_case": "false"}, r"do_lower_case='false' is a str: give it as bool"),
    ({"model_max_length": "512"}, r"model_max_length='512' is a str"),
    ({"never_split": "abc"}, r"never_split='abc' is a str"),
    ({"unk_token": 5}, r"unk_token=5 is a int"),
    ({"max_input_chars_per_word": 1.5}, r"max_input_chars_per_word=1.5 is a float")])
def test_tokenizer_config_fields_of_the_wrong_type_are_refused_naming_the_file(tmp_path, setting, match):
    with pytest.raises(TypeError, match=rf"tokenizer_config.json: .*{match}"):
        bg.BertTokenizer.from_pretrained(tokenizer_folder(tmp_path, **setting))


def test_a_tokenizer_config_saved_by_an_older_transformers_loads_its_added_token_objects(tmp_path):
    folder = tokenizer_folder(tmp_path, unk_token={"__type": "AddedToken", "content": "[UNK]", "lstrip": False})
    assert bg.BertTokenizer.from_pretrained(folder).unk_token == "[UNK]"


@pytest.mark.parametrize("kind", ["dangling link", "folder", "fifo"])
def test_a_tokenizer_config_that_cannot_be_read_is_an_error_not_skipped(tmp_path, kind):
    folder = tokenizer_folder(tmp_path)
    target = folder / "tokenizer_config.json"
    {"dangling link": lambda: target.symlink_to(tmp_path / "gone.json"), "folder": target.mkdir,
     "fifo": lambda: os.mkfifo(target)}[kind]()
    with pytest.raises((OSError, ValueError), match="tokenizer_config.json"):
        bg.BertTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("edit, match", [(lambda lines: lines.insert(20, lines[12]), r"line 21 repeats line 13"),
                                         (lambda lines: lines.insert(20, ""), r"line 21 is blank"),
                                         (lambda lines: lines.append(""), r"line 102 is blank")])
def test_duplicate_or_blank_vocabulary_lines_are_refused_with_the_line_number(tmp_path, edit, match):
    folder = tokenizer_folder(tmp_path)
    lines = (folder / "vocab.txt").read_text().split("\n")[:-1]
    edit(lines)
    (folder / "vocab.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"vocab.txt.*{match}"):
        bg.BertTokenizer.from_pretrained(folder)


def test_a_tokenizer_shorter_than_the_models_vocabulary_is_refused_where_they_are_paired(tmp_path, monkeypatch):
    model = saved_pair_with_vocab(tmp_path / "model", vocab_lines=SMALL["vocab_size"] - 1)
    with pytest.raises(ValueError, match=r"100 tokens but the model's vocabulary has 101"):
        evaluate_main(["--model-dir", str(model), "--rows", "2"])
    tokenizer = bg.BertTokenizer.from_pretrained(model)
    with pytest.raises(ValueError, match=r"100 tokens but the model's vocabulary has 101"):
        Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path / "run"), tokenizer=tokenizer)
    cached = zoo.model_folder("cpu-quick", tmp_path / "cache")
    shutil.copytree(model, cached)
    (cached / zoo.DONE_MARKER).write_text("{}")
    with pytest.raises(ValueError, match=r"100 tokens but the model's vocabulary has 101"):
        zoo.finetuned_bert2bert(quick=True, cache_dir=tmp_path / "cache")


# ------------------------------------------------------------------------- 6: no hang, no unbounded allocation

def test_a_config_json_that_is_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    _, outcome = in_child(fault_child.load_config, tmp_path, timeout=20)
    assert outcome.startswith("ValueError") and "config.json is a FIFO" in outcome, outcome


@pytest.mark.parametrize("kind", ["endless", "huge"])
def test_a_config_json_that_never_ends_or_is_huge_is_refused_without_reading_it_all(tmp_path, kind):
    if kind == "endless":
        (tmp_path / "config.json").symlink_to("/dev/zero")
        match = r"config.json is a character device, not a regular file"
    else:
        with open(tmp_path / "config.json", "wb") as f:
            f.truncate(2**30)  # a sparse GiB: costs no disk, but reading it would cost a GiB of memory
        match = r"config.json is 1024.0 MiB: larger than any settings file"
    with pytest.raises(ValueError, match=match):
        bg.BertGenerationConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("field, value", [("vocab_size", 10**12), ("num_hidden_layers", 10**9),
                                          ("intermediate_size", 10**12), ("max_position_embeddings", 10**12)])
def test_a_config_of_absurd_size_is_refused_by_name_before_allocating(tmp_path, field, value):
    (tmp_path / "config.json").write_text(json.dumps({**SMALL, field: value}))
    with pytest.raises(ValueError, match=rf"config.json: .*{field}={value}.*parameters"):
        bg.BertGenerationEncoder.from_pretrained(tmp_path)


@pytest.mark.parametrize("setting", [{"num_beams": 10**6}, {"num_return_sequences": 10**6, "do_sample": True}])
def test_a_beam_or_sample_count_past_the_cap_is_refused_before_allocating(setting):
    with pytest.raises(ValueError, match=r"at most 1024"):
        small_pair().generate(torch.randint(3, 101, (1, 5)), max_new_tokens=2, **setting)


# ------------------------------------------------------------------------- 7: the experiments CLI

@pytest.mark.parametrize("flag", ["--steps", "--final-rows", "--eval-every", "--eval-rows", "--threads"])
def test_experiments_refuses_negative_counts(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        ex.main(["--estimate", flag, "-1"])
    assert exit_.value.code == 2 and f"argument {flag}: -1 is too small" in capsys.readouterr().err


def test_rows_already_in_the_results_are_reused_only_when_their_settings_match(tmp_path, monkeypatch):
    calls = []

    def fake_run(task, recipe, output_dir, settings, *args):
        calls.append((recipe, settings["steps"]))
        return {"task": task, "recipe": recipe, "exact": 0.0, "sari": 1.0, "sari_t2t": 2.0, "bleu": 3.0,
                "loss": 4.0, "steps": settings["steps"], "rows": 3, "minutes": 0.1}, []
    monkeypatch.setattr(ex, "run_recipe", fake_run)
    monkeypatch.setattr(ex, "copy_baseline", lambda task, tokenizer, rows, data_dir=None: {
        **fake_run(task, ex.BASELINE, None, {"steps": 0})[0], "rows": rows})
    sweep = lambda **settings: ex.run_sweep(tmp_path / "r.csv", tmp_path / "runs", tasks=["split"],
                                            recipes=["bert2bert"], bert_dir=save_tiny_bert(tmp_path / "bert"),
                                            **{"final_rows": 3, **settings})
    sweep(steps=5)
    sweep(steps=7)
    rows = sweep(steps=7)
    assert calls == [("copy", 0), ("bert2bert", 5), ("copy", 0), ("bert2bert", 7)]
    assert sorted((r["recipe"], r["steps"]) for r in rows) == [("bert2bert", 7), ("copy", 0)]


def test_a_sweep_without_curve_points_skips_the_figure_with_a_note(tmp_path, monkeypatch, capsys):
    row = {"task": "split", "recipe": "copy", "exact": 0.0, "sari": 1.0, "sari_t2t": 2.0, "bleu": 3.0,
           "loss": float("nan"), "steps": 0, "rows": 3, "minutes": 0.0}
    monkeypatch.setattr(ex, "run_sweep", lambda *a, **k: [row])
    ex.main(["--results", str(tmp_path / "r.csv"), "--eval-every", "0"])
    assert "no learning-curve points" in capsys.readouterr().out
    assert not (tmp_path / "r.png").exists()


# ------------------------------------------------------------------------- 8: errors that blame the right thing

@pytest.mark.parametrize("setting, error, match", [
    ({"max_new_tokens": 5.0}, TypeError, r"max_new_tokens=5.0 is a float: give it as int"),
    ({"top_k": 2.5, "do_sample": True}, TypeError, r"top_k=2.5 is a float: give it as int"),
    ({"num_return_sequences": 0}, ValueError, r"num_return_sequences=0"),
    ({"num_return_sequences": -2, "do_sample": True}, ValueError, r"num_return_sequences=-2"),
    ({"pad_token_id": 500}, ValueError, r"pad_token_id=500 is outside the decoder's vocabulary"),
    ({"decoder_start_token_id": 500}, ValueError, r"decoder_start_token_id=500 is outside the decoder's vocabulary"),
    ({"eos_token_id": 101}, ValueError, r"eos_token_id=101 is outside the decoder's vocabulary")])
def test_generation_settings_errors_blame_the_setting(setting, error, match):
    with pytest.raises(error, match=match):
        small_pair().generate(torch.randint(3, 101, (2, 5)), max_new_tokens=setting.pop("max_new_tokens", 3),
                              **setting)


def test_ids_given_as_a_list_or_floats_get_a_type_error_that_says_what_to_pass():
    model = small_pair()
    for ids in ([[5, 6, 7]], torch.tensor([[5.0, 6.0]])):
        with pytest.raises(TypeError, match=r"input_ids .*LongTensor"):
            model(input_ids=ids, labels=torch.tensor([[5, 1]]))
        with pytest.raises(TypeError, match=r"input_ids .*LongTensor"):
            model.generate(ids, max_new_tokens=2)


def test_a_second_trainer_on_the_same_output_dir_is_refused_naming_the_first_and_a_dead_ones_lock_is_taken(
        tmp_path):
    batches = batches_of(random_pairs(8), B)
    first = fault_child.forkserver().Process(target=fault_child.train_saved, args=(
        saved_pair(tmp_path / "init"), batches, config(tmp_path / "run", steps=10**6)))
    first.start()
    try:
        wait_for_log(tmp_path / "run", first)
        with pytest.raises(RuntimeError, match=rf"{tmp_path / 'run'} is in use by process {first.pid}"):
            Trainer(small_pair().train(), batches, config(tmp_path / "run", steps=10**6)).train()
    finally:
        first.kill()
        first.join()
    Trainer(small_pair().train(), batches, config(tmp_path / "run", steps=2, resume=False)).train()  # stale: taken


def test_a_checkpoint_folder_that_is_a_link_is_refused(tmp_path):
    Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path / "a", steps=2)).train()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint-2").symlink_to(tmp_path / "a" / "checkpoint-2")
    with pytest.raises(ValueError, match=r"checkpoint-2 is a link"):
        Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path / "b", steps=3)).train()


def test_evaluate_shows_progress(tmp_path, capsys):
    model = saved_pair_with_vocab(tmp_path / "model")
    evaluate_main(["--model-dir", str(model), "--rows", "4", "--batch-size", "2", "--max-new-tokens", "2"])
    assert "2/2" in capsys.readouterr().err  # tqdm's bar over the batches


def test_a_mistyped_model_dir_is_an_error_and_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"typo is not a folder"):
        evaluate_main(["--model-dir", str(tmp_path / "typo")])
    assert not (tmp_path / "typo").exists()


def test_a_byte_order_mark_is_not_kept_in_the_first_source(tmp_path):
    (tmp_path / "tune.tsv").write_text("\ufeff" + "\n".join(LINES) + "\n", encoding="utf-8")
    assert load_wikisplit("tune", tmp_path)[0].source == LINES[0].split("\t")[0]


def test_boolean_ids_are_refused_by_decode(tmp_path):
    tokenizer = bg.BertTokenizer.from_pretrained(tokenizer_folder(tmp_path))
    for ids in ([True, False], torch.tensor([True, False])):
        with pytest.raises(ValueError, match="integer token ids"):
            tokenizer.decode(ids)
