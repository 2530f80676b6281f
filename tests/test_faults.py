"""The fault suite: every way a careful user or an attacker found to get a wrong result, a silent one, or code run
from a file (issue 18), each as a test that the package now refuses it with an error naming the thing to fix.
Tiny models only: the whole file runs in well under a minute on two cores."""
import errno
import json
import os
import signal
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

import bertgen_mini as bg
import fault_child
from bertgen_mini import train as train_module
from bertgen_mini.checkpoint import load_state
from bertgen_mini.evaluate import main as evaluate_main
from bertgen_mini.files import atomic_write_text
from bertgen_mini.train import (LEGACY_STATE_NAME, STATE_NAME, TENSORS_NAME, Trainer, TrainConfig, checkpoints,
                                convert_legacy_state, parse_args, warmup_linear_decay)
from reference import SMALL, small_pair
from test_recipes import write_vocab
from test_train import B, batches_of, config, random_pairs, trained_weights
from test_train import one_thread  # noqa: F401  (its autouse fixture: tiny models run fastest on one thread)


class Evil:
    """Unpickling this runs `touch <marker>`: the payload a shared run folder or a downloaded checkpoint can carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant_pickle(path, marker):
    torch.save({"x": Evil(marker)}, path)


def run(tmp_path, **overrides):
    """A tiny training run in tmp_path: 8 random pairs, batches of 4, 6 steps unless overridden."""
    return Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path, **overrides)).train()


# ------------------------------------------------------------------------- 1: no code runs from any file read

def checkpoint_folder(tmp_path):
    """A saved pair with its tokenizer and a trainer state: every file a run folder holds."""
    run(tmp_path / "run", steps=1)
    folder = tmp_path / "run" / "checkpoint-1"
    write_vocab(folder)
    return folder


def load_model(folder):
    bg.EncoderDecoderModel.from_pretrained(folder)


def load_wordpiece(folder):
    bg.BertTokenizer.from_pretrained(folder)


def load_sentencepiece(folder):
    bg.BertGenerationTokenizer(folder / "spiece.model")


def resume(folder):
    Trainer(small_pair(), batches_of(random_pairs(8), B), config(folder.parent, steps=2)).train()


def legacy_state(folder):
    (folder / STATE_NAME).unlink()
    resume(folder)


READERS = {"model.safetensors": load_model, "pytorch_model.bin": load_model, "config.json": load_model,
           "vocab.txt": load_wordpiece, "tokenizer_config.json": load_wordpiece, "spiece.model": load_sentencepiece,
           STATE_NAME: resume, TENSORS_NAME: resume, LEGACY_STATE_NAME: legacy_state}


@pytest.mark.parametrize("name", READERS)
def test_a_code_running_pickle_in_any_file_read_runs_nothing_and_the_error_names_the_file(tmp_path, name):
    folder = checkpoint_folder(tmp_path)
    if name == "pytorch_model.bin":
        (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    plant_pickle(folder / name, marker)
    with pytest.raises((ValueError, OSError, TypeError)) as error:
        READERS[name](folder)
    assert not marker.exists(), "the pickle's code ran"
    assert name in str(error.value)


def test_an_old_runs_trainer_state_is_refused_with_how_to_continue(tmp_path):
    folder = checkpoint_folder(tmp_path)
    (folder / STATE_NAME).unlink()
    torch.save({"step": 1}, folder / LEGACY_STATE_NAME)
    with pytest.raises(ValueError, match="trainer_state.pt.*convert_legacy_state.*--no-resume"):
        resume(folder)
    plant_pickle(folder / LEGACY_STATE_NAME, tmp_path / "PWNED")  # converting refuses code too
    with pytest.raises(ValueError, match="trainer_state.pt is not a plain trainer state"):
        convert_legacy_state(folder)
    assert not (tmp_path / "PWNED").exists()


def test_an_old_runs_plain_trainer_state_converts_and_resumes_exactly(tmp_path):
    straight = small_pair().train()
    Trainer(straight, batches_of(random_pairs(8), B), config(tmp_path / "a", steps=4)).train()
    first = Trainer(small_pair().train(), batches_of(random_pairs(8), B), config(tmp_path / "b", steps=4))
    first.train(until=2)
    folder = tmp_path / "b" / "checkpoint-2"
    torch.save(first.state(), folder / LEGACY_STATE_NAME)  # what the older version wrote
    (folder / STATE_NAME).unlink()
    (folder / TENSORS_NAME).unlink()
    convert_legacy_state(folder)
    resumed = small_pair(seed=5).train()
    Trainer(resumed, batches_of(random_pairs(8), B), config(tmp_path / "b", steps=4)).train()
    for name, value in trained_weights(straight).items():
        assert torch.equal(value, resumed.state_dict()[name]), name


# ------------------------------------------------------------------------- 2: keep_checkpoints, and odd folders

@pytest.mark.parametrize("keep", [0, -1])
def test_keep_checkpoints_below_one_is_refused(tmp_path, keep):
    with pytest.raises(ValueError, match=r"keep_checkpoints=.*--keep-checkpoints\) must be at least 1"):
        config(tmp_path, keep_checkpoints=keep)


def test_keep_one_checkpoint_keeps_the_newest(tmp_path):
    run(tmp_path, steps=3, save_every=1, keep_checkpoints=1)
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-3"]


def test_a_folder_not_named_checkpoint_step_is_ignored_with_a_note(tmp_path):
    (tmp_path / "checkpoint-best").mkdir()
    with pytest.warns(UserWarning, match="checkpoint-best is not named checkpoint-<step>: ignored"):
        run(tmp_path, steps=2, save_every=1, keep_checkpoints=1)
    assert (tmp_path / "checkpoint-best").is_dir() and [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2"]


# ------------------------------------------------------------------------- 3: foreign or mismatched checkpoints

def foreign_folder(tmp_path, **config_json):
    torch.manual_seed(0)
    bg.BertGenerationEncoder(bg.BertGenerationConfig(**SMALL)).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config_json))
    return tmp_path


def test_gpt2_and_xlm_roberta_folders_are_refused_saying_what_they_are(tmp_path):
    gpt2 = foreign_folder(tmp_path / "gpt2", model_type="gpt2", architectures=["GPT2LMHeadModel"], n_embd=32)
    with pytest.raises(ValueError, match=r"GPT-2 checkpoint.*Supported: BERT \('bert'\).*GPT2LMHeadModel"):
        bg.BertGenerationEncoder.from_pretrained(gpt2, verbose=False)
    xlmr = foreign_folder(tmp_path / "xlmr", model_type="xlm-roberta", architectures=["XLMRobertaModel"], **SMALL)
    with pytest.raises(ValueError, match=r"XLM-RoBERTa checkpoint.*Supported: BERT"):
        bg.BertGenerationDecoder.from_pretrained(xlmr, is_decoder=True, verbose=False)


def test_a_pair_whose_config_has_fewer_layers_than_its_weights_is_refused(tmp_path):
    small_pair().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["encoder"]["num_hidden_layers"] = saved["decoder"]["num_hidden_layers"] = 1
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"no place for \(decoder.bert.encoder.layer.\*.*fewer layers.*strict=False"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path)
    report = bg.EncoderDecoderModel.from_pretrained(tmp_path, strict=False).load_report  # the caller opts in
    assert {"encoder.encoder.layer.1.output.dense.weight"} <= set(report.unused)


def test_integer_data_for_a_float_weight_is_refused_unless_asked(tmp_path):
    small_pair().save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    name = "encoder.encoder.layer.0.output.dense.weight"
    tensors[name] = torch.ones_like(tensors[name], dtype=torch.int64)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=f"'{name}' holds torch.int64 values.*strict=False"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path)
    model = small_pair()
    assert load_state(model, tensors, "x", strict=False).cast == [name]


def test_warm_starting_from_bert_still_drops_token_types_and_pooler_and_says_so(minilm_dir, capsys):
    encoder = bg.BertGenerationEncoder.from_pretrained(minilm_dir)
    assert {"embeddings.token_type_embeddings.weight", "pooler.dense.weight"} <= set(encoder.load_report.unused)
    assert "unused" in capsys.readouterr().out and not encoder.load_report.new


# ------------------------------------------------------------------------- 4: resume is honest

def test_resume_applies_a_new_learning_rate_and_logs_it(tmp_path):
    Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path, lr=3e-3)).train(until=3)
    trainer = Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path, lr=1e-3, steps=8))
    trainer.train()
    records = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    step4 = next(r for r in records if r["step"] == 4)
    assert step4["changed_on_resume"] == {"lr": [3e-3, 1e-3], "steps": [6, 8]}
    assert step4["lr"] == pytest.approx(1e-3 * warmup_linear_decay(2, 8)(4))
    saved = json.loads((tmp_path / "checkpoint-8" / STATE_NAME).read_text())
    assert (saved["config"]["lr"], saved["param_groups"][0]["initial_lr"]) == (1e-3, 1e-3)


@pytest.mark.parametrize("change", [{"recipe": "bertshare"}, {"batch_size": 2}, {"grad_accum": 2}])
def test_resume_with_settings_that_cannot_change_is_refused_listing_them(tmp_path, change):
    Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path)).train(until=2)
    name, value = next(iter(change.items()))
    with pytest.raises(ValueError, match=rf"(?s){name}: .* in the checkpoint, {value!r} now.*--no-resume"):
        Trainer(small_pair(), batches_of(random_pairs(8), B), config(tmp_path, **change)).train()


def test_resume_past_the_requested_steps_is_refused(tmp_path):
    run(tmp_path, steps=4)
    with pytest.raises(ValueError, match="at step 4, past --steps 2: raise --steps"):
        run(tmp_path, steps=2)


# ------------------------------------------------------------------------- 5: settings that train nothing

@pytest.mark.parametrize("field, value, flag", [
    ("steps", 0, "--steps"), ("steps", -5, "--steps"), ("grad_accum", 0, "--grad-accum"), ("dropout", 2.0, "--dropout"),
    ("save_every", -1, "--save-every"), ("train_rows", -4990, "--train-rows"), ("max_target_len", 0,
    "--max-target-len"), ("lr", float("nan"), "--lr"), ("batch_size", 0, "--batch-size"), ("recipe", "gpt2gpt",
    "--recipe")])
def test_settings_that_cannot_train_are_refused_naming_the_flag(field, value, flag):
    with pytest.raises(ValueError, match=rf"{field}=.*\({flag}\) must be"):
        TrainConfig(**{field: value})


def test_the_cli_reports_a_bad_setting_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--steps", "0"])
    assert exit_.value.code == 2 and "steps=0 (--steps) must be at least 1" in capsys.readouterr().err
    with pytest.raises(TypeError, match=r"TrainConfig.steps='5' is a str: give it as int"):
        TrainConfig(steps="5")


@pytest.mark.parametrize("flag, value", [("--rows", "-1"), ("--batch-size", "0"), ("--num-beams", "0")])
def test_evaluate_refuses_counts_that_score_nothing(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit):
        evaluate_main(["--model-dir", str(tmp_path), flag, value])
    assert f"argument {flag}: {value} is too small" in capsys.readouterr().err


def test_evaluate_checks_its_output_folder_before_generating(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("a file, not a folder")
    monkeypatch.setattr("bertgen_mini.evaluate.evaluate", lambda *a, **k: pytest.fail("generated first"))
    with pytest.raises(OSError, match="Cannot write into .*taken"):
        evaluate_main(["--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "taken")])


# ------------------------------------------------------------------------- 6: labels, masks, empty batches

def test_wrong_labels_masks_and_empty_batches_are_refused_in_train_mode():
    model = small_pair().train()
    ids, labels = torch.randint(3, 101, (2, 5)), torch.randint(3, 101, (2, 4))
    with pytest.raises(ValueError, match=r"labels\[0, 1\] = -1 is not a token id.*-100"):
        model(input_ids=ids, labels=torch.tensor([[5, -1, 7, 1], [5, 6, 7, 1]]))
    with pytest.raises(ValueError, match=r"labels\[1, 0\] = 101 is not a token id: labels must be ids in 0..100"):
        model(input_ids=ids, labels=torch.tensor([[5, 6, 7, 1], [101, 6, 7, 1]]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 6\) but input_ids \(2, 5\)"):
        model(input_ids=ids, attention_mask=torch.ones(2, 6, dtype=torch.long), labels=labels)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 5\) but input_ids \(2, 5\)"):
        model(input_ids=ids, attention_mask=torch.ones(1, 5, dtype=torch.long), labels=labels)
    with pytest.raises(ValueError, match=r"input_ids has shape \(2, 0\): pass a non-empty batch"):
        model(input_ids=ids[:, :0], labels=labels)
    with pytest.raises(ValueError, match=r"labels have shape \(2, 0\)"):
        model(input_ids=ids, labels=labels[:, :0])
    with pytest.raises(ValueError, match=r"labels\[0, 0\] = -5"):
        model.decoder(input_ids=labels, labels=-5 * torch.ones_like(labels))


# ------------------------------------------------------------------------- 8: NaN weights

@pytest.mark.parametrize("settings", [{}, {"num_beams": 3}, {"do_sample": True, "seed": 0}])
def test_nan_weights_stop_generation_naming_the_step(settings):
    model = small_pair()
    with torch.no_grad():
        model.decoder.lm_head.bias[7] = float("nan")
    with pytest.raises(FloatingPointError, match="Generation step 1: the model's scores hold NaN"):
        model.generate(torch.randint(3, 101, (2, 5)), max_new_tokens=4, **settings)


def test_nan_loss_in_evaluation_is_an_error():
    model = small_pair()
    with torch.no_grad():
        model.encoder.embeddings.LayerNorm.weight[0] = float("nan")
        with pytest.raises(FloatingPointError, match="The loss is nan.*torch.isfinite"):
            model(input_ids=torch.randint(3, 101, (2, 5)), labels=torch.randint(3, 101, (2, 4)))


# ------------------------------------------------------------------------- 9: errors that name the problem

def test_damaged_trainer_state_names_the_file(tmp_path):
    run(tmp_path, steps=2, save_every=1, keep_checkpoints=2)
    tensors = tmp_path / "checkpoint-2" / TENSORS_NAME
    tensors.write_bytes(tensors.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"checkpoint-2/{TENSORS_NAME} is damaged.*Delete"):
        run(tmp_path, steps=3)
    state = tmp_path / "checkpoint-2" / STATE_NAME
    state.write_text(state.read_text()[:50])
    with pytest.raises(ValueError, match=f"checkpoint-2/{STATE_NAME} is damaged"):
        run(tmp_path, steps=3)


@pytest.mark.parametrize("failure", [RuntimeError("[enforce fail at inline_container.cc] unexpected pos 64"),
                                     OSError(errno.ENOSPC, "No space left on device")])
def test_a_full_disk_while_saving_names_the_file_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, failure):
    run(tmp_path, steps=1)

    def full_disk(tensors, path, *args, **kwargs):
        raise failure
    monkeypatch.setattr(train_module, "save_file", full_disk)
    with pytest.raises(OSError, match=f"Could not write .*checkpoint-2/{TENSORS_NAME}.*disk full"):
        run(tmp_path, steps=2)
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-1"]
    assert not (tmp_path / "checkpoint-2").exists()  # no half-written folder, not even an empty one (issue 25)


@pytest.mark.parametrize("change, error, match", [
    ({"hidden_size": "32"}, TypeError, r"hidden_size='32' is a str: give it as int"),
    ({"num_attention_heads": 0}, ValueError, r"num_attention_heads=0: a model needs at least 1"),
    ({"hidden_dropout_prob": 1.5}, ValueError, r"hidden_dropout_prob=1.5: a dropout probability lies in \[0, 1\)"),
    ({"pad_token_id": 500}, ValueError, r"pad_token_id=500 is outside the vocabulary")])
def test_bad_config_values_name_the_file_and_the_field(tmp_path, change, error, match):
    (tmp_path / "config.json").write_text(json.dumps({**SMALL, **change}))
    with pytest.raises(error, match=f"config.json: .*{match}"):
        bg.BertGenerationConfig.from_pretrained(tmp_path)


def test_a_config_that_is_not_an_object_or_a_file_for_a_folder_is_named(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(TypeError, match="config.json: A config is a JSON object of settings, got a list"):
        bg.BertGenerationConfig.from_pretrained(tmp_path)
    small_pair().save_pretrained(tmp_path / "model")
    for load in (bg.EncoderDecoderModel.from_pretrained, bg.BertGenerationEncoder.from_pretrained):
        with pytest.raises(NotADirectoryError, match=r"model/config.json is a file; pass the .*folder"):
            load(tmp_path / "model" / "config.json")


def test_a_lone_surrogate_and_float_ids_are_refused_by_the_tokenizers(tmp_path):
    tokenizer = bg.BertGenerationTokenizer.train(["hello world", "split it here"] * 20, vocab_size=30,
                                                hard_vocab_limit=False)
    with pytest.raises(ValueError, match=r"lone surrogate '\\ud800' at position 1.*errors='replace'"):
        tokenizer("a\ud800b")
    for ids in ([5, 6.7], torch.tensor([5.0, 6.0])):
        with pytest.raises(ValueError, match="integer token ids"):
            tokenizer.decode(ids)


# ------------------------------------------------------------------------- 10: files get the user's permissions

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_get_the_permissions_of_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        small_pair().save_pretrained(tmp_path)
        atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


# ------------------------------------------------------------------------- a kill at any point of a save

@pytest.mark.parametrize("kill_at", ["checkpoint-4/model.safetensors", f"checkpoint-4/{TENSORS_NAME}",
                                     f"checkpoint-4/{STATE_NAME}"])
def test_a_kill_during_a_save_keeps_the_last_checkpoint_and_the_resume_is_exact(tmp_path, kill_at):
    batches = batches_of(random_pairs(12), B)
    small_pair(hidden_dropout_prob=0.1).save_pretrained(tmp_path / "init")
    child = fault_child.forkserver().Process(  # a fresh process; torch is imported once for all three
        target=fault_child.train_and_die,
        args=(tmp_path / "init", batches, config(tmp_path / "b", save_every=1), kill_at))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-3"]
    straight = small_pair(hidden_dropout_prob=0.1).train()
    Trainer(straight, batches, config(tmp_path / "a")).train()
    resumed = small_pair(seed=9, hidden_dropout_prob=0.1).train()
    Trainer(resumed, batches, config(tmp_path / "b")).train()
    for name, value in trained_weights(straight).items():
        assert torch.equal(value, resumed.state_dict()[name]), name
