"""The paper's experiment at classroom scale: every warm-start recipe, the same budget and data, on WikiSplit
splitting (1 -> 2 sentences) and its reverse, fusion (2 -> 1), scored on validation with exact match, SARI and BLEU
beside the copy-the-input baseline.

    python -m bertgen_mini.experiments --quick      # a few steps each: a smoke test (CI, the notebook)
    python -m bertgen_mini.experiments              # the full sweep, ~3 h on one core: bench/results/paper_sweep.csv
    python -m bertgen_mini.experiments --recipes bert2bert bert2gpt roberta2roberta \
        --gpt2 openai-community/gpt2 --roberta FacebookAI/roberta-base     # the paper's other checkpoints too

The default sweep is the five recipes of one BERT checkpoint (recipes.RECIPES); the RoBERTa and GPT-2 recipes
(recipes.OTHER_CHECKPOINT_RECIPES) need their checkpoints, folders or Hub ids. A recipe is read against copying as
its decoder writes: the source round-tripped through its target vocabulary ("copy" for BERT's WordPiece,
"copy-gpt2" and "copy-roberta" for the byte-level BPEs, which keep case and spacing that uncased WordPiece drops).

On 2 cores, run `--tasks split` and `--tasks fuse` as two processes side by side (each with its own --results),
then concatenate their CSVs: 1.6 hours for the README's sweep.

A sweep writes one results row per (task, recipe) the moment that run is scored, and its learning curve
(validation SARI every eval_every steps) to a second CSV beside it. Run the same command again after an
interruption: rows already written with the same settings are skipped (each row records a hash of the settings that
made it; a row made with others is run again), and a half-trained run resumes from its last checkpoint
(bertgen_mini.train's exact resume). References: Rothe, Narayan & Severyn, "Leveraging Pre-trained Checkpoints for
Sequence Generation Tasks", TACL 2020 (the recipes, the WikiSplit and fusion experiments); Botha et al., EMNLP 2018
(WikiSplit).
"""
import argparse
import csv
import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from .data import TASKS, load_wikisplit
from .devices import ready_for_inference
from .evaluate import at_least, evaluate, round_trip
from .files import atomic_write_text
from .metrics import score_all
from .recipes import ALL_RECIPES, PRESETS, RECIPES, VOCABULARY, build_tokenizers, halves
from .tokenizer_wordpiece import BertTokenizer
from .train import TrainConfig, checkpoints, read_log, train
from .paths import default_bert_dir

BASELINE = "copy"  # the row for "predict the source unchanged": the bar every model must clear
RESULT_COLUMNS = ("task", "recipe", "exact", "sari", "sari_t2t", "bleu", "loss", "steps", "rows", "minutes",
                  "settings")  # settings: settings_id of what made the row
TEXT_COLUMNS = ("task", "recipe", "settings")
CURVE_COLUMNS = ("task", "recipe", "step", "sari", "sari_t2t", "exact", "bleu")
METRIC_NAMES = {"sari": "SARI", "sari_t2t": "SARI (t2t: deletion by precision)", "exact": "exact match",
                "bleu": "BLEU"}
FULL_PRESET = "cpu-hour"  # the settings every recipe gets in the full sweep (recipes.PRESETS), for FULL_OVERRIDES' steps
# Quick mode: the full budget's settings shrunk until all ten runs take about a minute on 2 idle CPU cores. It
# proves the pipeline runs; its scores mean nothing (4 steps teach a model almost nothing).
QUICK_OVERRIDES = dict(steps=4, batch_size=4, warmup_steps=1, train_rows=32, eval_every=2, eval_rows=4,
                       max_source_len=32, max_target_len=32, drop_long=False)
QUICK_FINAL_ROWS, FULL_FINAL_ROWS = 8, 300
# The full sweep as run for the README: 300 steps each (the preset's 700 for ten runs would take about 7 h on one
# core), a learning-curve point every 60 steps on 100 validation pairs, the table on 300.
FULL_OVERRIDES = dict(steps=300, eval_every=60, eval_rows=100, save_every=100)
# The estimate's constants, measured in the README's sweep (full-size MiniLM, fp32, one thread, the split and fuse
# sweeps side by side on 2 cores): 2.5-4.3 s per step of 16 pairs with the curve's evaluations, 0.06-0.2 s per
# scored pair (babbling models write all 128 tokens).
SECONDS_PER_STEP_PER_PAIR = 0.2    # one training step costs about this much per pair in the batch
SECONDS_PER_EVAL_ROW = 0.15        # greedy generation (up to 128 new tokens) and scoring, per pair


def sweep_settings(quick: bool, **overrides) -> dict:
    """TrainConfig fields shared by every run of a sweep (all but recipe, task and output_dir), plus final_rows:
    how many validation pairs the results table is scored on. overrides replace any of them."""
    settings = {k: v for k, v in PRESETS[FULL_PRESET].items() if k != "recipe"}
    settings.update(QUICK_OVERRIDES if quick else FULL_OVERRIDES)
    settings["final_rows"] = QUICK_FINAL_ROWS if quick else FULL_FINAL_ROWS
    settings["progress"] = not quick
    settings.update(overrides)
    return settings


def settings_id(settings: dict, bert_dir=None, data_dir=None, roberta=None, gpt2=None) -> str:
    """A short hash of what makes a sweep's rows (its settings, the checkpoints and the data folder): a results row
    is reused only by a sweep with the same one. (The RoBERTa and GPT-2 checkpoints count only when given, so a BERT
    sweep keeps the hash it had before they could be.)"""
    made_by = {**settings, "bert_dir": None if bert_dir is None else str(bert_dir),
               "data_dir": None if data_dir is None else str(data_dir)}
    made_by.update({name: str(value) for name, value in (("roberta", roberta), ("gpt2", gpt2)) if value is not None})
    return hashlib.sha1(json.dumps(made_by, sort_keys=True).encode()).hexdigest()[:10]


def baseline_name(recipe: str) -> str:
    """The copy row `recipe` is read against: "copy" where its decoder writes BERT's vocabulary, else "copy-gpt2" or
    "copy-roberta" (the source as that vocabulary writes it back)."""
    vocabulary = VOCABULARY[halves(recipe)[1]]
    return BASELINE if vocabulary == "bert" else f"{BASELINE}-{vocabulary}"


BASELINES = tuple(dict.fromkeys(baseline_name(recipe) for recipe in ALL_RECIPES))  # copy, copy-roberta, copy-gpt2


def recipe_folders(recipe: str, bert_dir=None, roberta=None, gpt2=None) -> dict:
    """The TrainConfig checkpoint fields (bert_dir, roberta, gpt2) that `recipe` reads, taken from those a sweep was
    given; the others None (TrainConfig refuses a checkpoint its recipe does not read)."""
    kinds = set(halves(recipe))
    return {"bert_dir": bert_dir if kinds & {"bert", "rnd"} else None,
            "roberta": roberta if "roberta" in kinds else None, "gpt2": gpt2 if "gpt" in kinds else None}


def estimate_seconds(settings: dict, runs: int) -> float:
    """Rough wall-clock seconds for `runs` trainings with these settings, one after another on one CPU core."""
    train_s = settings["steps"] * settings["batch_size"] * SECONDS_PER_STEP_PER_PAIR
    evals = settings["steps"] // settings["eval_every"] if settings.get("eval_every") else 1
    eval_s = (evals * settings["eval_rows"] + settings["final_rows"]) * SECONDS_PER_EVAL_ROW
    return runs * (train_s + eval_s)


# ---------------------------------------------------------------------------------------------------- CSV files

def read_rows(path) -> list[dict]:
    """The rows of a results or curves CSV (numbers as floats, steps as ints; a results file written before rows
    recorded their settings has no "settings"); [] when the file is missing."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key not in TEXT_COLUMNS:
                row[key] = int(value) if key in ("step", "steps", "rows") else float(value)
    return rows


def write_rows(path, rows: list[dict], columns) -> None:
    """Write rows as CSV atomically (a crash never leaves half a file), floats to 2 decimals."""
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = [",".join(columns)] + [",".join(fmt(row[c]) for c in columns) for row in rows]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def curves_path(results_csv) -> Path:
    """Where the learning curves of a results CSV go: paper_sweep.csv -> paper_sweep_curves.csv."""
    results_csv = Path(results_csv)
    return results_csv.with_name(results_csv.stem + "_curves.csv")


def shrink_bert(bert_dir, out_dir, texts, layers: int = 2) -> Path:
    """A small copy of the BERT checkpoint in bert_dir for smoke tests, written to out_dir: its first `layers`
    layers, and only the vocabulary that `texts` use (plus the special tokens), embedding rows included. WordPiece
    takes the longest piece it knows and every piece it took for `texts` is kept, so they tokenize exactly as
    before, to renumbered ids; the LM head's softmax shrinks from 30,522 words to a few hundred. Returns out_dir."""
    from safetensors.torch import save_file

    from .checkpoint import read_state_dict

    bert_dir, out_dir = Path(bert_dir), Path(out_dir)
    tokenizer = BertTokenizer.from_pretrained(bert_dir)
    used = {i for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"] for i in ids}
    keep = sorted(used | set(tokenizer.all_special_ids))  # sorted: [PAD] stays first, as BERT has it
    tensors = {}
    for name, tensor in read_state_dict(bert_dir).items():
        layer = name.split("layer.")[1].split(".")[0] if "encoder.layer." in name else None
        if layer is None or int(layer) < layers:
            tensors[name] = tensor[keep].clone() if name.endswith("word_embeddings.weight") else tensor.contiguous()
    config = json.loads((bert_dir / "config.json").read_text(encoding="utf-8"))
    config.update(vocab_size=len(keep), num_hidden_layers=layers)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out_dir / "model.safetensors")
    atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    atomic_write_text(out_dir / "vocab.txt", "".join(tokenizer.convert_ids_to_tokens(i) + "\n" for i in keep))
    if (bert_dir / "tokenizer_config.json").is_file():
        shutil.copy(bert_dir / "tokenizer_config.json", out_dir / "tokenizer_config.json")
    return out_dir


def quick_bert(bert_dir, run_dir, settings: dict, data_dir=None) -> Path:
    """shrink_bert of bert_dir (default: the bundled MiniLM) to the sentences a quick sweep reads: the training
    pairs and the validation pairs it scores. Written once to run_dir/quick-bert."""
    folder = Path(run_dir) / "quick-bert"
    if not (folder / "vocab.txt").is_file():
        rows = max(settings["eval_rows"], settings["final_rows"])
        pairs = load_wikisplit(settings.get("train_split", "tune"), data_dir)[:settings["train_rows"]]
        pairs += load_wikisplit("validation", data_dir)[:rows]
        shrink_bert(bert_dir or default_bert_dir(), folder, [text for pair in pairs for text in pair])
    return folder


# ---------------------------------------------------------------------------------------------------- one run

def copy_baseline(task: str, tokenizer, rows: int, data_dir=None) -> dict:
    """The scores of predicting every source unchanged on the first `rows` validation pairs of `task`, sources and
    references as `tokenizer` (the target vocabulary) writes them back."""
    pairs = load_wikisplit("validation", data_dir, task)[:rows]
    sources = round_trip([p.source for p in pairs], tokenizer)
    scores = score_all(sources, sources, round_trip([p.target for p in pairs], tokenizer))
    return {"task": task, "recipe": BASELINE, **scores, "loss": float("nan"), "steps": 0, "rows": len(pairs),
            "minutes": 0.0}


def run_config(task: str, recipe: str, output_dir, settings: dict, bert_dir=None, data_dir=None, roberta=None,
               gpt2=None) -> TrainConfig:
    """The TrainConfig of one run of a sweep (settings: sweep_settings, without final_rows); it checks them all."""
    folders = {name: None if value is None else str(value)
               for name, value in recipe_folders(recipe, bert_dir, roberta, gpt2).items()}
    return TrainConfig(**{k: v for k, v in settings.items() if k != "final_rows"}, recipe=recipe, task=task,
                       output_dir=str(output_dir), data_dir=None if data_dir is None else str(data_dir), **folders)


def run_recipe(task: str, recipe: str, output_dir, settings: dict, bert_dir=None, data_dir=None,
               keep_models: bool = False, roberta=None, gpt2=None) -> tuple[dict, list[dict]]:
    """Train `recipe` on `task` with `settings` (see sweep_settings) into output_dir, resuming from its last
    checkpoint if there is one, then score it on settings["final_rows"] validation pairs. bert_dir, roberta, gpt2:
    the checkpoints (folders or Hub ids; each read only by the recipes that use it).
    Returns (results row, learning-curve rows). Unless keep_models, the weights are deleted afterwards (each
    MiniLM run leaves ~0.2 GB of model and ~0.6 GB of checkpoint)."""
    config = run_config(task, recipe, output_dir, settings, bert_dir, data_dir, roberta, gpt2)
    start = time.time()
    model, tokenizer, target_tokenizer = train(config)
    ready_for_inference(model)  # the trainer's speed setting was for training; scoring takes the fast path
    pairs = load_wikisplit("validation", data_dir, task)[:settings["final_rows"]]
    scores, _ = evaluate(model, tokenizer, pairs, target_tokenizer=target_tokenizer)
    log = read_log(output_dir)
    losses = [r["loss"] for r in log if "loss" in r][-max(1, config.steps // 10):]  # the last tenth of the run
    row = {"task": task, "recipe": recipe, **{k: scores[k] for k in ("exact", "sari", "sari_t2t", "bleu")},
           "loss": sum(losses) / len(losses), "steps": config.steps, "rows": len(pairs),
           "minutes": (time.time() - start) / 60}
    curve = [{"task": task, "recipe": recipe, "step": r["step"],
              **{k: r[f"eval_{k}"] for k in ("sari", "sari_t2t", "exact", "bleu")}} for r in log if "eval_sari" in r]
    if not keep_models:
        for folder in checkpoints(output_dir):
            shutil.rmtree(folder)
        (Path(output_dir) / "model.safetensors").unlink(missing_ok=True)
    return row, curve


# ---------------------------------------------------------------------------------------------------- the sweep

def run_sweep(results_csv, run_dir, quick: bool = False, tasks=TASKS, recipes=RECIPES, bert_dir=None,
              data_dir=None, keep_models: bool = False, roberta=None, gpt2=None, **overrides) -> list[dict]:
    """Train and score every recipe (any of recipes.ALL_RECIPES; roberta and gpt2 name the RoBERTa and GPT-2
    checkpoints, folders or Hub ids, of those that need them) on every task with one budget
    (sweep_settings(quick, **overrides)), plus the copy baseline of each target vocabulary (baseline_name). Each row
    is appended to results_csv as soon as it exists, each learning curve to curves_path(results_csv); (task, recipe)
    pairs already in results_csv are skipped. Runs live in run_dir/<task>/<recipe>. Returns all rows of
    results_csv."""
    for name, chosen, known in (("task", tasks, TASKS), ("recipe", recipes, ALL_RECIPES)):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise ValueError(f"Unknown {name} {unknown}: choose from {', '.join(known)}.")
    settings = sweep_settings(quick, **overrides)
    for recipe in recipes:  # every run's settings checked now (a --gpt2 left out), not after hours of other runs
        run_config(tasks[0], recipe, Path(run_dir), settings, bert_dir, data_dir, roberta, gpt2)
    made_by = settings_id(settings, bert_dir, data_dir, roberta, gpt2)
    if quick and any(set(halves(r)) & {"bert", "rnd"} for r in recipes):
        # a two-layer MiniLM that knows only the words these sentences use: ten runs in about a minute
        bert_dir = quick_bert(bert_dir, run_dir, settings, data_dir)
    baselines = list(dict.fromkeys(baseline_name(r) for r in recipes))
    rows, curves = read_rows(results_csv), read_rows(curves_path(results_csv))
    done = {(r["task"], r["recipe"]) for r in rows if r.get("settings") == made_by}
    stale = [f"{r['task']}/{r['recipe']}" for r in rows if (r["task"], r["recipe"]) not in done
             and r["task"] in tasks and r["recipe"] in (*baselines, *recipes)]
    if stale:
        print(f"{results_csv} holds rows made with other settings (or before rows recorded them): "
              f"{', '.join(stale)} will run again.")
    todo = [(t, r) for t in tasks for r in recipes if (t, r) not in done]
    estimate = "about a minute" if quick else f"about {estimate_seconds(settings, len(todo)) / 3600:.1f} h"
    print(f"{len(todo)} of {len(tasks) * len(recipes)} runs to do, {settings['steps']} steps each: {estimate} on "
          f"one CPU core. Results: {results_csv}")

    def replace_row(row):  # the row of (task, recipe), whatever an earlier sweep wrote there, then the file
        rows[:] = [r for r in rows if (r["task"], r["recipe"]) != (row["task"], row["recipe"])] + [row]
        write_rows(results_csv, rows, RESULT_COLUMNS)
    writers = {}  # {baseline: the target tokenizer of the first recipe read against it}, each built once
    for baseline in baselines:
        if any((task, baseline) not in done for task in tasks):
            recipe = next(r for r in recipes if baseline_name(r) == baseline)
            folders = recipe_folders(recipe, bert_dir, roberta, gpt2)
            writers[baseline] = build_tokenizers(recipe, folders["bert_dir"], folders["roberta"], folders["gpt2"])[1]
    for task in tasks:
        for baseline in baselines:
            if (task, baseline) not in done:
                replace_row({**copy_baseline(task, writers[baseline], settings["final_rows"], data_dir),
                             "recipe": baseline, "settings": made_by})
        for recipe in recipes:
            if (task, recipe) in done:
                continue
            print(f"--- {task}: {recipe}")
            row, curve = run_recipe(task, recipe, Path(run_dir) / task / recipe, settings, bert_dir, data_dir,
                                    keep_models, roberta, gpt2)
            curves = [c for c in curves if (c["task"], c["recipe"]) != (task, recipe)] + curve
            write_rows(curves_path(results_csv), curves, CURVE_COLUMNS)
            replace_row({**row, "settings": made_by})  # last: a row means its curve is already saved
    return rows


def results_table(rows: list[dict]) -> str:
    """A Markdown table of results rows: one line per task and recipe, the baselines first."""
    order = {name: i for i, name in enumerate(BASELINES + ALL_RECIPES)}
    rows = sorted(rows, key=lambda r: (TASKS.index(r["task"]), order.get(r["recipe"], len(order))))
    lines = ["| task | recipe | exact | SARI | SARI (t2t) | BLEU | train loss | steps | rows |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        loss = "" if r["recipe"] in BASELINES else f"{r['loss']:.2f}"
        lines.append(f"| {r['task']} | {r['recipe']} | {r['exact']:.1f} | {r['sari']:.1f} | {r['sari_t2t']:.1f} "
                     f"| {r['bleu']:.1f} | {loss} | {r['steps']} | {r['rows']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- figures

def plot_learning_curves(curves: list[dict], rows: list[dict] = (), save=None, metric: str = "sari"):
    """Validation `metric` (a curves column: sari, sari_t2t, exact, bleu) against training step, one panel per task
    and one line per recipe; the copy baselines (from results `rows`, when given) as dashed lines. Returns the
    matplotlib figure."""
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(c["task"] == t for c in curves)]
    if not tasks:
        raise ValueError("No learning-curve points to plot: the runs were scored only at the end (eval_every=0).")
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.6), squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks):
        for recipe in ALL_RECIPES:
            points = sorted((c["step"], c[metric]) for c in curves if (c["task"], c["recipe"]) == (task, recipe))
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=recipe)
        for r in rows:
            if r["task"] == task and r["recipe"] in BASELINES:
                vocabulary = r["recipe"].removeprefix(BASELINE + "-")
                label = "copy the input" + ("" if r["recipe"] == BASELINE else f" ({vocabulary} vocabulary)")
                ax.axhline(r[metric], color="gray", linestyle="--" if r["recipe"] == BASELINE else ":", label=label)
        ax.set(title=f"WikiSplit {task}", xlabel="training step", ylabel=f"validation {METRIC_NAMES[metric]}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=9)
    if save:
        fig.savefig(save, dpi=120, bbox_inches="tight")
    return fig


PARTS = ("embeddings", "self-attention", "cross-attention", "feed-forward", "LM-head bias")  # its weight: tied embeddings
BOX_LABELS = {"embeddings": "embed.", "self-attention": "self-attn", "cross-attention": "cross-attn",
              "feed-forward": "feed-fwd", "LM-head bias": "LM bias"}  # short enough for 9-pt text in a box


# What a tensor's name holds -> its box, the first match winning: BERT's names, then GPT-2's
PART_KEYS = (("lm_head", "LM-head bias"), ("crossattention", "cross-attention"), ("ln_cross_attn", "cross-attention"),
             ("attention", "self-attention"), (".attn.", "self-attention"), (".ln_1.", "self-attention"),
             ("embeddings", "embeddings"), (".wte.", "embeddings"), (".wpe.", "embeddings"))


def part_of(name: str) -> str:
    """Which box of the recipe diagram a tensor belongs to: 'decoder.bert.encoder.layer.0.intermediate.dense.weight'
    -> 'feed-forward'. GPT-2's names too: 'decoder.transformer.h.0.ln_cross_attn.weight' -> 'cross-attention'."""
    for key, part in PART_KEYS:
        if key in name:
            return part
    return "feed-forward"  # BERT's intermediate.dense and output.{dense,LayerNorm}; GPT-2's mlp, ln_2, ln_f


def pretrained_share(model) -> dict:
    """{(half, part): fraction of its parameters loaded from the checkpoint} from model.load_report, for half in
    encoder/decoder and part in PARTS (parts a half lacks are left out)."""
    report, totals = model.load_report, {}
    for names, loaded in ((report.loaded, True), (report.new, False)):
        for name in names:
            key = (name.split(".")[0], part_of(name))
            total = totals.setdefault(key, [0, 0])
            total[0] += report.numels[name] * loaded
            total[1] += report.numels[name]
    return {key: loaded / max(1, size) for key, (loaded, size) in totals.items()}


def shares_weights(model) -> bool:
    """True when the decoder's self-attention is the encoder's very tensor (bertshare, robertashare; a GPT-2
    decoder never shares)."""
    decoder = getattr(model.decoder, "bert", None)
    return decoder is not None and decoder.encoder.layer[0].attention.self.query.weight is \
        model.encoder.encoder.layer[0].attention.self.query.weight


def plot_recipes(models: dict, save=None):
    """The recipes as boxes: for each {name: model}, an encoder and a decoder column of PARTS, coloured from
    blue (loaded from the checkpoint) to orange (new, random), as model.load_report says; hatched when the decoder
    shares the encoder's weights. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    colours = LinearSegmentedColormap.from_list("new_to_pretrained", ["tab:orange", "tab:blue"])
    fig, axes = plt.subplots(1, len(models), figsize=(2.0 * len(models), 3.2))
    for ax, (name, model) in zip(list(axes) if len(models) > 1 else [axes], models.items()):
        share, shared = pretrained_share(model), shares_weights(model)
        for col, half in enumerate(("encoder", "decoder")):
            for row, part in enumerate(PARTS):
                if (half, part) not in share:
                    continue
                hatch = "//" if shared and half == "decoder" and ("encoder", part) in share else None
                ax.add_patch(plt.Rectangle((col * 1.1, -row), 1, 0.85, facecolor=colours(share[(half, part)]),
                                           edgecolor="black", hatch=hatch))
                ax.text(col * 1.1 + 0.5, -row + 0.42, BOX_LABELS[part], ha="center", va="center", fontsize=9,
                        color="white")
            ax.text(col * 1.1 + 0.5, 1.05, half, ha="center", fontsize=9)
        ax.set(xlim=(-0.05, 2.15), ylim=(-len(PARTS) + 0.8, 1.4), title=name)
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(1.0)), plt.Rectangle((0, 0), 1, 1, color=colours(0.0)),
               plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//")]
    fig.legend(handles, ["from the checkpoint", "new (random)", "shared with the encoder"], loc="lower center",
               ncol=3, fontsize=9, frameon=False)
    if save:
        fig.savefig(save, dpi=120, bbox_inches="tight")
    return fig


# ---------------------------------------------------------------------------------------------------- the command

def main(argv=None):
    parser = argparse.ArgumentParser(description="Train and score every warm-start recipe on WikiSplit split and "
                                                 "fuse with one budget; resumes where an earlier run stopped.")
    parser.add_argument("--quick", action="store_true", help="a few steps each (a smoke test, about a minute)")
    parser.add_argument("--results", default=None, help="results CSV (default bench/results/paper_sweep.csv, "
                                                        "or runs/paper_sweep_quick/results.csv with --quick)")
    parser.add_argument("--run-dir", default=None, help="where runs and checkpoints go (default runs/paper_sweep"
                                                        "[_quick])")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS,
                        help="split (WikiSplit), fuse (its reverse), or both (default: both)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=ALL_RECIPES,
                        help="default: the five BERT recipes; the RoBERTa and GPT-2 ones need --roberta / --gpt2")
    parser.add_argument("--bert-dir", default=None, help="BERT checkpoint folder (default: the bundled MiniLM)")
    parser.add_argument("--roberta", default=None, help="RoBERTa checkpoint, a folder or Hub id (roberta2roberta, "
                                                        "robertashare, roberta2gpt)")
    parser.add_argument("--gpt2", default=None, help="GPT-2 checkpoint, a folder or Hub id (bert2gpt, rnd2gpt, "
                                                     "roberta2gpt), e.g. openai-community/gpt2")
    parser.add_argument("--data-dir", default=None, help="folder with WikiSplit tune.tsv and validation.tsv")
    parser.add_argument("--steps", type=at_least(1), default=None, help="override the budget's optimizer steps")
    parser.add_argument("--final-rows", type=at_least(1), default=None, help="validation pairs the table is scored on")
    parser.add_argument("--eval-every", type=at_least(0), default=None, help="steps between the learning curve's "
                                                                            "points (0: no curve)")
    parser.add_argument("--eval-rows", type=at_least(0), default=None, help="validation pairs each curve point is "
                                                                           "scored on")
    parser.add_argument("--seed", type=int, default=None, help="the random seed of every run (default 0): rerun "
                                                               "with others to see how much a score moves")
    parser.add_argument("--keep-models", action="store_true", help="keep each run's weights (0.8 GB a run)")
    parser.add_argument("--threads", type=at_least(1), default=1,
                        help="CPU threads (default 1: on a shared 2-core machine a second thread made small runs "
                             "20x slower)")
    parser.add_argument("--estimate", action="store_true", help="print the plan and its duration, then stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    suffix = "_quick" if args.quick else ""
    results = args.results or ("runs/paper_sweep_quick/results.csv" if args.quick else "bench/results/paper_sweep.csv")
    overrides = {}
    for name in ("steps", "final_rows", "eval_every", "eval_rows", "seed"):  # only the flags given replace the budget's
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.estimate:
        settings = sweep_settings(args.quick, **overrides)
        runs = len(args.tasks) * len(args.recipes)
        print(f"{runs} runs x {settings['steps']} steps: about {estimate_seconds(settings, runs) / 3600:.1f} h "
              f"on one CPU core.\nSettings: {settings}")
        return None
    rows = run_sweep(results, args.run_dir or f"runs/paper_sweep{suffix}", args.quick, args.tasks, args.recipes,
                     args.bert_dir, args.data_dir, args.keep_models, args.roberta, args.gpt2, **overrides)
    print(results_table(rows))
    curves = read_rows(curves_path(results))
    if curves:
        plot_learning_curves(curves, rows, save=Path(results).with_suffix(".png"))
    else:
        print("The sweep has no learning-curve points (--eval-every 0 scores only at the end): no figure drawn.")
    return rows


if __name__ == "__main__":
    main()
