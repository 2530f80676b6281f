"""The paper-experiment runner on a tiny random BERT and a few WikiSplit-like lines: every recipe trains, is scored
and gets a curve; finished rows are skipped and an interrupted run resumes; the shrunk quick-mode BERT computes
what the full one does; the figures draw from the load report."""
import pytest
import torch

import bertgen_mini as bg
import bertgen_mini.evaluate
from bertgen_mini import experiments as ex
from bertgen_mini.recipes import RECIPES, build_model
from bertgen_mini.tokenizer_wordpiece import BertTokenizer
from bertgen_mini.train import checkpoints
from test_recipes import save_tiny_bert

TINY = dict(steps=2, batch_size=2, train_rows=6, eval_every=1, eval_rows=2, final_rows=3, max_source_len=24,
            max_target_len=24)
LINES = ["w1 w2 a b , w3 c .\tw1 w2 a b . <::::> w3 c .", "a b c w4 , w5 .\ta b c w4 . <::::> w5 .",
         "w6 w7 , w8 w9 .\tw6 w7 . <::::> w8 w9 .", "d e f , g h .\td e f . <::::> g h ."]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only waits for a busy shared CPU
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(tmp_path):
    """(tiny BERT folder, folder with tune.tsv and validation.tsv of WikiSplit-like lines in its vocabulary)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("tune.tsv", "validation.tsv"):
        (data / name).write_text("\n".join(LINES * 2) + "\n", encoding="utf-8")
    return save_tiny_bert(tmp_path / "bert"), data


def test_quick_sweep_trains_and_scores_every_recipe_on_both_tasks(tmp_path, tiny):
    bert, data = tiny
    results = tmp_path / "results.csv"
    rows = ex.run_sweep(results, tmp_path / "runs", quick=True, bert_dir=bert, data_dir=data, **TINY)
    assert {(r["task"], r["recipe"]) for r in rows} == {(t, r) for t in ("split", "fuse")
                                                        for r in (ex.BASELINE,) + RECIPES}
    summary = lambda rows: [(r["task"], r["recipe"], round(r["sari"], 2)) for r in rows]
    assert summary(ex.read_rows(results)) == summary(rows)  # what was returned is what was written
    copy = next(r for r in rows if (r["task"], r["recipe"]) == ("split", ex.BASELINE))
    assert 0 < copy["sari"] < 100 and copy["rows"] == 3
    curves = ex.read_rows(ex.curves_path(results))
    assert sorted(c["step"] for c in curves if (c["task"], c["recipe"]) == ("fuse", "rnd2rnd")) == [1, 2]
    assert not checkpoints(tmp_path / "runs" / "split" / "bert2bert")  # weights dropped once scored
    assert "| split | bertshare |" in ex.results_table(rows)
    assert len(ex.plot_learning_curves(curves, rows).axes) == 2


def test_finished_rows_are_skipped_and_an_interrupted_run_resumes(tmp_path, tiny, monkeypatch, capsys):
    bert, data = tiny
    results, runs = tmp_path / "results.csv", tmp_path / "runs"
    settings = dict(TINY, steps=4, eval_every=2, save_every=2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if the run was stopped at its first evaluation, just after checkpoint-2
    monkeypatch.setattr(bertgen_mini.evaluate, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ex.run_sweep(results, runs, bert_dir=bert, data_dir=data, tasks=["split"], recipes=["bert2bert"], **settings)
    assert [r["recipe"] for r in ex.read_rows(results)] == [ex.BASELINE]
    assert [p.name for p in checkpoints(runs / "split" / "bert2bert")] == ["checkpoint-2"]

    monkeypatch.undo()
    rows = ex.run_sweep(results, runs, bert_dir=bert, data_dir=data, tasks=["split"], recipes=["bert2bert"],
                        **settings)
    assert "Resuming from" in capsys.readouterr().out and [r["recipe"] for r in rows] == [ex.BASELINE, "bert2bert"]
    assert [r["step"] for r in ex.read_log(runs / "split" / "bert2bert") if "loss" in r] == [1, 2, 3, 4]

    monkeypatch.setattr(ex, "train", lambda config: pytest.fail("a finished run was trained again"))
    again = ex.run_sweep(results, runs, bert_dir=bert, data_dir=data, tasks=["split"], recipes=["bert2bert"],
                         **settings)
    assert [(r["recipe"], r["sari"]) for r in again] == [(r["recipe"], round(r["sari"], 2)) for r in rows]


def test_unknown_recipe_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="bert2bert"):
        ex.run_sweep(tmp_path / "r.csv", tmp_path, recipes=["gpt2gpt"])


def test_shrunk_bert_tokenizes_the_same_and_computes_the_same(tmp_path, minilm_dir):
    texts = ["The fjord was cold , but the swimmers went in anyway .", "Untokenizable ☃ snowmen melt ."]
    small = ex.shrink_bert(minilm_dir, tmp_path / "small", texts, layers=2)
    full_tok, small_tok = BertTokenizer.from_pretrained(minilm_dir), BertTokenizer.from_pretrained(small)
    assert len(small_tok) < 100
    full_ids, small_ids = full_tok(texts[0])["input_ids"], small_tok(texts[0])["input_ids"]
    assert full_tok.convert_ids_to_tokens(full_ids) == small_tok.convert_ids_to_tokens(small_ids)
    full = bg.BertGenerationEncoder.from_pretrained(minilm_dir, num_hidden_layers=2, verbose=False,
                                                    strict=False).eval()  # layers 2-5 dropped on purpose
    shrunk = bg.BertGenerationEncoder.from_pretrained(small, verbose=False).eval()
    with torch.no_grad():
        expected = full(torch.tensor([full_ids])).last_hidden_state
        torch.testing.assert_close(shrunk(torch.tensor([small_ids])).last_hidden_state, expected)


def test_recipe_diagram_reads_the_load_report(tiny):
    bert, _ = tiny
    models = {r: build_model(r, bert, verbose=False) for r in RECIPES}
    bert2rnd, bert2bert = ex.pretrained_share(models["bert2rnd"]), ex.pretrained_share(models["bert2bert"])
    assert bert2rnd[("encoder", "self-attention")] == 1 and bert2rnd[("decoder", "self-attention")] == 0
    assert bert2bert[("decoder", "feed-forward")] == 1 and bert2bert[("decoder", "cross-attention")] == 0
    assert bert2bert[("decoder", "LM-head bias")] == 0 and ("encoder", "LM-head bias") not in bert2bert
    assert ex.shares_weights(models["bertshare"]) and not ex.shares_weights(models["bert2bert"])
    assert len(ex.plot_recipes(models).axes) == len(RECIPES)


def test_estimate_prints_the_plan_without_training(capsys):
    ex.main(["--estimate"])
    out = capsys.readouterr().out
    assert f"10 runs x {ex.sweep_settings(quick=False)['steps']} steps" in out and " h on one CPU core" in out
