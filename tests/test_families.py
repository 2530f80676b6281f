"""The three families end to end (issue 24): a source and a target tokenizer through the data pipeline, training,
checkpoints, resuming and scoring; `python -m bertgen_mini.train --recipe bert2gpt --gpt2 <folder or Hub id>`;
the sweep with the new recipes.

The checkpoints are tiny random models that transformers saves into tmp folders, over one byte-level BPE trained on
WikiSplit (RoBERTa's special tokens first, then GPT-2's <|endoftext|>), and a tiny BERT over a made-up WordPiece
vocabulary; the Hub's openai-community/gpt2 is tests/hub_cache.py's offline stand-in.
"""
import json
import signal
import shutil

import pytest
import torch
import transformers

import bertgen_mini as bg
from bertgen_mini import experiments as ex, stand_ins
from bertgen_mini.data import Pair, Seq2SeqBatches, encode_pairs
from bertgen_mini.evaluate import main as evaluate_main
from bertgen_mini.recipes import TARGET_TOKENIZER_DIR, build_model, build_tokenizers, load_tokenizers, save_tokenizers
from bertgen_mini.train import Trainer, TrainConfig, TrainingInterrupted, checkpoints, main as train_main, train
from test_generation import one_thread  # noqa: F401  autouse: tiny models run faster on one thread here
from test_recipes import save_tiny_bert
from test_roberta import save_tiny_roberta

transformers.logging.set_verbosity_error()
EOT = 5  # <|endoftext|> in the BPE below: after RoBERTa's <s> <pad> </s> <unk> <mask>
LINES = ["Tom , who was born in 1950 , wrote songs .\tTom was born in 1950 . <::::> He wrote songs .",
         "The town lies on a river and has a bridge .\tThe town lies on a river . <::::> It has a bridge .",
         "Anna sings , and Ben plays .\tAnna sings . <::::> Ben plays .",
         "The café opened in 2001 but closed soon .\tThe café opened in 2001 . <::::> It closed soon ."]
TINY = dict(steps=2, batch_size=2, warmup_steps=0, eval_rows=2, max_source_len=24, max_target_len=24, dropout=0.0,
            progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory, wikisplit_rows):
    """A folder with bert/ (tiny BERT, WordPiece), bpe/ (the BPE), gpt2/ (tiny GPT-2, width 48: the projection is
    there), roberta/ (tiny RoBERTa), both with the BPE's files, and data/ (tune.tsv and validation.tsv of LINES)."""
    root = tmp_path_factory.mktemp("families")
    bpe = stand_ins.train_byte_level_bpe([text for row in wikisplit_rows[:2000] for text in row], root / "bpe",
                                         vocab_size=600, special_tokens=stand_ins.ROBERTA_SPECIALS
                                         + stand_ins.GPT2_SPECIALS)
    vocab = len(json.loads((bpe / "vocab.json").read_text()))
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=vocab, n_positions=64, n_embd=48, n_layer=2, n_head=4, bos_token_id=EOT,
        eos_token_id=EOT)).save_pretrained(root / "gpt2")
    save_tiny_roberta(root / "roberta", vocab_size=vocab)
    for folder in ("gpt2", "roberta"):
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(bpe / name, root / folder / name)
    save_tiny_bert(root / "bert")
    (root / "data").mkdir()
    for name in ("tune.tsv", "validation.tsv"):
        (root / "data" / name).write_text("\n".join(LINES * 2) + "\n", encoding="utf-8")
    return root


def config(world, out, recipe="bert2gpt", **overrides):
    folders = {"bert2gpt": dict(bert_dir=world / "bert", gpt2=world / "gpt2"),
               "roberta2gpt": dict(roberta=world / "roberta", gpt2=world / "gpt2"),
               "robertashare": dict(roberta=world / "roberta"), "bert2bert": dict(bert_dir=world / "bert")}[recipe]
    settings = {**TINY, **folders, "data_dir": world / "data", **overrides}
    return TrainConfig(output_dir=str(out), recipe=recipe, **{k: str(v) if hasattr(v, "is_dir") else v
                                                             for k, v in settings.items()})


# ---------------------------------------------------------------------------------------------- two tokenizers
def test_each_half_gets_its_own_tokenizer_with_the_separator_as_one_token(world):
    bert, gpt2, roberta = world / "bert", world / "gpt2", world / "roberta"
    source, target = build_tokenizers("bert2bert", bert)
    assert source is target and isinstance(source, bg.BertTokenizer)
    for recipe, classes in (("bert2gpt", (bg.BertTokenizer, bg.GPT2Tokenizer)),
                            ("roberta2gpt", (bg.RobertaTokenizer, bg.GPT2Tokenizer)),
                            ("robertashare", (bg.RobertaTokenizer, bg.RobertaTokenizer))):
        source, target = build_tokenizers(recipe, bert, roberta, gpt2)
        assert (type(source), type(target)) == classes and (source is target) == recipe.endswith("share")
        for tokenizer in (source, target):
            assert tokenizer.tokenize("a . <::::> b .").count("<::::>") == 1
            assert tokenizer.convert_tokens_to_ids("<::::>") == tokenizer.vocab_size  # the id after the vocabulary


def test_sources_are_read_by_the_source_tokenizer_and_labels_written_by_the_target_one(world):
    source, target = build_tokenizers("bert2gpt", world / "bert", gpt2_dir=world / "gpt2")
    pairs = [Pair(*line.split("\t")) for line in LINES]
    sources, labels, _ = encode_pairs(pairs, source, 24, 40, target)
    assert sources[0] == source(pairs[0].source, truncation=True, max_length=24)["input_ids"]  # [CLS] ... [SEP]
    assert labels[0] == target.encode(pairs[0].target) + [EOT]  # GPT-2 ends with <|endoftext|>; no start token
    assert target.decode(labels[0][:-1]) == pairs[0].target     # cased, accents kept: BPE gives the text back
    batch = next(iter(Seq2SeqBatches(pairs, source, 4, 24, 40, shuffle=False, target_tokenizer=target)))
    assert (batch["input_ids"][batch["attention_mask"] == 0] == source.pad_token_id).all()  # WordPiece's [PAD]
    assert batch["labels"].tolist()[0][:len(labels[0])] == labels[0]


def test_the_target_tokenizer_is_saved_apart_checked_against_the_decoder_and_never_left_stale(world, tmp_path):
    source, target = build_tokenizers("bert2gpt", world / "bert", gpt2_dir=world / "gpt2")
    save_tokenizers(tmp_path, source, target)
    assert (tmp_path / "vocab.txt").is_file() and (tmp_path / TARGET_TOKENIZER_DIR / "merges.txt").is_file()
    model = build_model("bert2gpt", world / "bert", gpt2_dir=world / "gpt2", tokenizer=source, verbose=False)
    with pytest.raises(ValueError, match=r"target tokenizer has \d+ tokens but the model's decoder vocabulary"):
        load_tokenizers(tmp_path, model)  # a decoder not grown for the target's <::::>
    again = load_tokenizers(tmp_path)
    assert [type(t) for t in again] == [bg.BertTokenizer, bg.GPT2Tokenizer] and len(again[1]) == len(target)
    save_tokenizers(tmp_path, source)  # a bert2bert saved over it: the GPT-2 tokenizer must not outlive its model
    assert not (tmp_path / TARGET_TOKENIZER_DIR).exists()
    source_again, target_again = load_tokenizers(tmp_path)
    assert source_again is target_again


def test_settings_name_the_checkpoint_a_recipe_needs_or_does_not_read(world, tmp_path):
    with pytest.raises(ValueError, match=r"gpt2=None \(--gpt2\) must be a GPT-2 checkpoint folder or Hub id"):
        TrainConfig(recipe="bert2gpt")
    with pytest.raises(ValueError, match=r"roberta=None \(--roberta\) must be a RoBERTa"):
        TrainConfig(recipe="roberta2gpt", gpt2="gpt2")
    with pytest.raises(ValueError, match=r"gpt2='gpt2' \(--gpt2\) must be left out: the recipe bert2bert reads no"):
        TrainConfig(recipe="bert2bert", gpt2="gpt2")  # a mistyped recipe must not train bert2bert silently
    with pytest.raises(ValueError, match=r"bert_dir='b' \(--bert-dir\) must be left out"):
        TrainConfig(recipe="robertashare", roberta="r", bert_dir="b")
    with pytest.raises(ValueError, match=r"--output-dir .* is the warm-start checkpoint --gpt2"):
        train(config(world, world / "gpt2"))
    with pytest.raises(ValueError, match=r"--max-target-len 80 is more than the decoder's 64 positions"):
        train(config(world, tmp_path / "run", max_target_len=80))  # before the first step, not in it


# ---------------------------------------------------------------------------------------------- whole runs
def test_bert2gpt_trains_from_the_command_line_and_evaluate_scores_its_folder(world, tmp_path):
    out = tmp_path / "run"
    train_main(["--recipe", "bert2gpt", "--gpt2", str(world / "gpt2"), "--bert-dir", str(world / "bert"),
                "--data-dir", str(world / "data"), "--output-dir", str(out), "--steps", "2", "--batch-size", "2",
                "--eval-rows", "2", "--max-source-len", "24", "--max-target-len", "24", "--no-progress"])
    assert {"vocab.txt", TARGET_TOKENIZER_DIR, "model.safetensors"} <= {p.name for p in out.iterdir()}
    assert {p.name for p in (out / TARGET_TOKENIZER_DIR).iterdir()} >= {"vocab.json", "merges.txt"}
    model = bg.EncoderDecoderModel.from_pretrained(out)
    source, target = load_tokenizers(out, model)  # each checked against its half
    assert isinstance(source, bg.BertTokenizer) and isinstance(target, bg.GPT2Tokenizer)
    assert model.config.decoder_start_token_id == model.config.eos_token_id == EOT
    scores = evaluate_main(["--model-dir", str(out), "--data-dir", str(world / "data"), "--rows", "2",
                            "--max-new-tokens", "6"])
    rows = [json.loads(line) for line in open(out / "predictions.jsonl", encoding="utf-8")]
    assert rows[0]["reference"] == " ".join(LINES[0].split("\t")[1].split())  # as GPT-2's BPE writes it: cased
    assert rows[0]["source"] == " ".join(LINES[0].split("\t")[0].split())     # the copy, in the same vocabulary
    assert 0 <= scores["sari"] <= 100 and "sari_copy" in scores


@pytest.mark.parametrize("recipe", ["roberta2gpt", "robertashare"])
def test_roberta_recipes_train_and_save_their_own_tokenizers(world, tmp_path, recipe):
    model, source, target = train(config(world, tmp_path / "run", recipe))
    assert isinstance(source, bg.RobertaTokenizer) and (source is target) == (recipe == "robertashare")
    saved = load_tokenizers(tmp_path / "run", bg.EncoderDecoderModel.from_pretrained(tmp_path / "run"))
    assert [type(t) for t in saved] == [type(source), type(target)]
    assert model.encoder.config.pad_token_id == source.pad_token_id == 1  # <pad>, RoBERTa's padding_idx


def test_bert2gpt_trains_from_the_command_line_with_a_hub_id_offline(world, tmp_path, offline_hub):
    train_main(["--recipe", "bert2gpt", "--gpt2", "openai-community/gpt2", "--bert-dir", str(world / "bert"),
                "--data-dir", str(world / "data"), "--output-dir", str(tmp_path / "run"), "--steps", "1",
                "--batch-size", "2", "--eval-rows", "0", "--max-source-len", "24", "--max-target-len", "24",
                "--no-progress"])
    model = bg.EncoderDecoderModel.from_pretrained(tmp_path / "run")
    _, target = load_tokenizers(tmp_path / "run", model)
    assert isinstance(model.decoder, bg.GPT2LMHeadModel) and isinstance(target, bg.GPT2Tokenizer)
    state = json.loads((checkpoints(tmp_path / "run")[-1] / "trainer_state.json").read_text())
    assert state["config"]["gpt2"] == "openai-community/gpt2"
    assert {"vocabulary", "target_vocabulary", "initial_weights", "gpt2_weights"} <= set(state["inputs"])


def interrupted_at(step, monkeypatch):
    """Trainer runs stop as a Ctrl-C stops them, after `step`."""
    monkeypatch.setattr(Trainer, "stop_signal", lambda self, received: signal.SIGINT if self.step == step else 0)


def test_a_resumed_bert2gpt_run_equals_an_uninterrupted_one(world, tmp_path, monkeypatch):
    settings = dict(steps=4, save_every=2, eval_rows=0, dropout=0.1)  # dropout: the RNG state must come back too
    straight = train(config(world, tmp_path / "a", **settings))[0]
    interrupted_at(2, monkeypatch)
    with pytest.raises(TrainingInterrupted):
        train(config(world, tmp_path / "b", **settings))
    monkeypatch.undo()
    resumed = train(config(world, tmp_path / "b", **settings))[0]
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    losses = lambda run: [r["loss"] for r in map(json.loads, open(tmp_path / run / "log.jsonl")) if "loss" in r]
    assert losses("a") == losses("b") and len(losses("a")) == 4


def test_a_resume_with_another_target_vocabulary_is_refused(world, tmp_path, monkeypatch):
    gpt2 = tmp_path / "gpt2"
    shutil.copytree(world / "gpt2", gpt2)
    interrupted_at(1, monkeypatch)
    with pytest.raises(TrainingInterrupted):
        train(config(world, tmp_path / "run", gpt2=gpt2, eval_rows=0))
    monkeypatch.undo()
    lines = (gpt2 / "merges.txt").read_text(encoding="utf-8").split("\n")
    lines[1], lines[2] = lines[2], lines[1]  # two merges of single bytes swapped: the same tokens, other cuts
    (gpt2 / "merges.txt").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"(?s)checkpoint-1.*the target's vocabulary.*--no-resume"):
        train(config(world, tmp_path / "run", gpt2=gpt2, eval_rows=0))


# ---------------------------------------------------------------------------------------------- the sweep
def test_a_sweep_runs_a_gpt_recipe_beside_bert2bert_each_against_copying_in_its_vocabulary(world, tmp_path):
    rows = ex.run_sweep(tmp_path / "results.csv", tmp_path / "runs", tasks=["fuse"], recipes=["bert2bert", "bert2gpt"],
                        bert_dir=world / "bert", gpt2=world / "gpt2", data_dir=world / "data", steps=1, batch_size=2,
                        train_rows=4, eval_every=0, eval_rows=2, final_rows=2, max_source_len=24, max_target_len=24,
                        progress=False)
    scores = {r["recipe"]: r for r in rows}
    assert set(scores) == {"copy", "copy-gpt2", "bert2bert", "bert2gpt"} and scores["bert2gpt"]["steps"] == 1
    assert scores["copy"]["bleu"] != scores["copy-gpt2"]["bleu"]  # uncased WordPiece against the text as it is
    assert "| fuse | copy-gpt2 |" in ex.results_table(rows)


def test_a_sweep_asks_for_the_gpt2_checkpoint_before_training_anything(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--gpt2"):
        ex.run_sweep(tmp_path / "r.csv", tmp_path / "runs", recipes=["bert2bert", "bert2gpt"])
    assert not (tmp_path / "runs").exists()
    ex.main(["--estimate", "--recipes", "bert2gpt", "rnd2gpt", "--gpt2", "openai-community/gpt2"])
    assert "4 runs x" in capsys.readouterr().out  # two recipes, two tasks


# ---------------------------------------------------------------------------------------------- the stand-ins
def test_the_stand_ins_are_checkpoints_transformers_loads_and_computes_as_we_do(tmp_path, wikisplit_rows):
    bpe = stand_ins.train_byte_level_bpe([text for row in wikisplit_rows[:500] for text in row], tmp_path / "bpe",
                                         vocab_size=400, special_tokens=stand_ins.ROBERTA_SPECIALS
                                         + stand_ins.GPT2_SPECIALS)
    roberta = stand_ins.random_roberta(tmp_path / "roberta", bpe, hidden_size=32, intermediate_size=37)
    theirs, info = transformers.RobertaModel.from_pretrained(roberta, add_pooling_layer=False,
                                                             output_loading_info=True)
    assert not any(info.values())  # nothing missing, unexpected or mismatched
    tokenizer = bg.RobertaTokenizer.from_pretrained(roberta)
    batch = tokenizer(LINES[:2], padding=True, return_tensors="pt")
    assert batch.input_ids.tolist() == transformers.RobertaTokenizer.from_pretrained(str(roberta))(
        LINES[:2], padding=True, return_tensors="pt").input_ids.tolist()
    ours = bg.BertGenerationEncoder.from_pretrained(roberta, verbose=False)
    with torch.no_grad():
        real = batch.attention_mask.bool()
        torch.testing.assert_close(ours(batch.input_ids, batch.attention_mask).last_hidden_state[real],
                                   theirs.eval()(**batch).last_hidden_state[real], atol=1e-5, rtol=1e-5)

    gpt2 = stand_ins.random_gpt2(tmp_path / "gpt2", bpe, n_embd=32)
    theirs, info = transformers.GPT2LMHeadModel.from_pretrained(gpt2, output_loading_info=True)
    assert not any(info.values())
    ids = bg.GPT2Tokenizer.from_pretrained(gpt2)(LINES[0], return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(bg.GPT2LMHeadModel.from_pretrained(gpt2, verbose=False)(ids).logits,
                                   theirs.eval()(ids).logits, atol=1e-5, rtol=1e-5)
    assert theirs.config.eos_token_id == bg.GPT2Tokenizer.from_pretrained(gpt2).eos_token_id == EOT


def test_the_stand_ins_refuse_a_bpe_without_their_special_tokens(tmp_path, wikisplit_rows):
    bpe = stand_ins.train_byte_level_bpe([row[0] for row in wikisplit_rows[:300]], tmp_path / "bpe", vocab_size=300,
                                         special_tokens=())
    with pytest.raises(ValueError, match="<\\|endoftext\\|>"):
        stand_ins.random_gpt2(tmp_path / "gpt2", bpe)
    with pytest.raises(ValueError, match="RoBERTa's"):
        stand_ins.random_roberta(tmp_path / "roberta", bpe)
    with pytest.raises(ValueError, match="too small"):
        stand_ins.train_byte_level_bpe(["a"], tmp_path / "tiny", vocab_size=100)
