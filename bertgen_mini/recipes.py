"""Recipes: the ways Rothe, Narayan & Severyn (TACL 2020, Table 1) build an encoder-decoder from one BERT checkpoint,
the parameter groups that train it, and the training presets measured on this project's machines.

    bert2bert   BERT encoder, BERT decoder (cross-attention new)
    bertshare   the same, but one set of weights for both halves (only cross-attention is the decoder's own)
    bert2rnd    BERT encoder, random decoder
    rnd2bert    random encoder, BERT decoder
    rnd2rnd     both random (the BERT vocabulary and sizes only)

Warm-starting leaves two kinds of weights: pretrained ones, which a large learning rate would wreck, and new ones
(each decoder layer's cross-attention, the LM-head bias), which start from noise and need to move fast.
`param_groups` gives each kind its own learning rate. `cross_init="self"` starts every cross-attention block
from its layer's pretrained self-attention: the query/key/value maps then already compare BERT-like vectors,
so attending to matching source tokens (which is most of WikiSplit: the target is mostly a copy) is learned in far
fewer steps. The measurements behind PRESETS are in bench/train_recipes.md.

BERT's WordPiece vocabulary has no WikiSplit separator `<::::>` and would spell it in six pieces (`< : : : : >`).
`build_tokenizer` adds it as one token after the vocabulary, and `build_model` gives the model an embedding row
(and LM-head row) for it, started at the mean of the others (bertgen_mini.vocab), as transformers users do with
`tokenizer.add_tokens(...)` and `model.resize_token_embeddings(len(tokenizer))`.
"""
from dataclasses import replace

import torch

from .data import SENTENCE_SEPARATOR
from .encoder_decoder import EncoderDecoderModel
from .paths import default_bert_dir
from .tokenizer_wordpiece import BertTokenizer
from .vocab import resize_token_embeddings

RECIPES = ("bert2bert", "bertshare", "bert2rnd", "rnd2bert", "rnd2rnd")
CROSS_INITS = ("random", "self")
ADDED_TOKENS = (SENTENCE_SEPARATOR,)  # appended to BERT's vocabulary by build_tokenizer, in this order


def build_tokenizer(bert_dir=None) -> BertTokenizer:
    """The WordPiece tokenizer of the BERT folder `bert_dir` (default: the bundled MiniLM) with WikiSplit's separator
    `<::::>` added as one token, id len(vocab.txt). It is not a special token: decode(skip_special_tokens=True)
    drops [CLS], [SEP] and [PAD] but keeps it, since it is text the model writes and the scores read."""
    tokenizer = BertTokenizer.from_pretrained(default_bert_dir() if bert_dir is None else bert_dir)
    tokenizer.add_tokens(list(ADDED_TOKENS))
    return tokenizer


def build_model(recipe: str = "bert2bert", bert_dir=None, cross_init: str = "random", dropout: float | None = None,
                seed: int = 0, verbose: bool = True, tokenizer=None) -> EncoderDecoderModel:
    """An EncoderDecoderModel built the `recipe` way from the BERT folder `bert_dir` (default: the bundled MiniLM).

    cross_init: "random" (transformers' default) or "self" (copy each layer's self-attention into its
    cross-attention). dropout: if given, replaces every dropout probability (0.0 turns dropout off, which helps
    short runs). seed fixes the random weights. `model.load_report.new` lists the tensors that did not come from
    the checkpoint (a random half, cross-attention, LM-head bias): `param_groups` gives them the higher rate.
    tokenizer: the tokenizer the model will read and write, default build_tokenizer(bert_dir); when it has more
    tokens than the checkpoint's vocabulary (the added `<::::>`), both halves' embeddings and the LM head grow to
    len(tokenizer) rows, and the start, end and padding ids are its [CLS], [SEP] and [PAD].
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    if cross_init not in CROSS_INITS:
        raise ValueError(f"Unknown cross_init {cross_init!r}: choose 'random' or 'self'.")
    bert_dir = default_bert_dir() if bert_dir is None else bert_dir
    overrides = {}
    if dropout is not None:
        for half in ("encoder", "decoder"):
            overrides[f"{half}_hidden_dropout_prob"] = overrides[f"{half}_attention_probs_dropout_prob"] = dropout
    tokenizer = build_tokenizer(bert_dir) if tokenizer is None else tokenizer
    torch.manual_seed(seed)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(
        bert_dir, bert_dir, tie_encoder_decoder=recipe == "bertshare", verbose=False, **overrides)
    if len(tokenizer) > model.encoder.config.vocab_size:
        resize_token_embeddings(model, len(tokenizer))  # before a random half is drawn: it then covers the new rows
    if recipe.startswith("rnd"):
        forget_pretrained(model, model.encoder, "encoder.")
    if recipe.endswith("2rnd"):
        forget_pretrained(model, model.decoder, "decoder.")
    if cross_init == "self":
        for layer in model.decoder.bert.encoder.layer:
            layer.crossattention.load_state_dict(layer.attention.state_dict())
    set_special_tokens(model, tokenizer)
    if verbose:
        print(model.load_report)
    return model


def forget_pretrained(model: EncoderDecoderModel, half, prefix: str) -> None:
    """Re-initialise one half at random and move its names from `loaded` to `new` in model.load_report."""
    half.init_weights()
    if hasattr(half, "tie_weights"):
        half.tie_weights()
    report = model.load_report
    moved = [name for name in report.loaded if name.startswith(prefix)]
    model.load_report = replace(report, loaded=[n for n in report.loaded if not n.startswith(prefix)],
                                new=moved + report.new)


def set_special_tokens(model: EncoderDecoderModel, tokenizer) -> None:
    """A BERT vocabulary has no <s>/</s>: the decoder starts from [CLS], ends at [SEP] and pads with [PAD]
    (their ids in `tokenizer`)."""
    start, end, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    config = model.config
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = start, end, pad
    for half in (model.encoder.config, model.decoder.config):
        half.bos_token_id, half.eos_token_id, half.pad_token_id = start, end, pad


def param_groups(model: torch.nn.Module, lr: float, new_lr: float | None = None, weight_decay: float = 0.01,
                 new_names=None) -> list[dict]:
    """AdamW parameter groups: {pretrained, new} x {decayed, not decayed}, each a dict with params, lr,
    weight_decay and a `name` for logs. Weight matrices are decayed; biases and LayerNorm are not (decaying a
    LayerNorm gain towards 0 only hurts). new_names: tensor names counted as new (default
    model.load_report.new, or none when the model has no report); new_lr defaults to lr. Empty groups are left out."""
    if new_names is None:
        new_names = getattr(getattr(model, "load_report", None), "new", [])
    new_names = set(new_names)
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        kind = "new" if name in new_names else "pretrained"
        decay = param.dim() >= 2 and "LayerNorm" not in name
        key = f"{kind}{'' if decay else '_no_decay'}"
        group = groups.setdefault(key, {"name": key, "params": [], "weight_decay": weight_decay if decay else 0.0,
                                        "lr": new_lr if kind == "new" and new_lr is not None else lr})
        group["params"].append(param)
    return list(groups.values())


# The presets: settings for bertgen_mini.train.TrainConfig, measured in bench/train_recipes.md (2 CPU cores, fp32).
CPU = dict(recipe="bert2bert", cross_init="self", batch_size=16, lr=5e-4, new_lr=None, drop_long=True)
CPU_SHORT = dict(CPU, dropout=0.0, max_source_len=48, max_target_len=56)  # short pairs, no dropout: fast to learn
PRESETS = {
    # CI and the notebooks' default on a CPU: about 6 minutes of training on 2 idle cores, then a greedy evaluation
    # of 300 whole validation sentences (half a minute) kept in the model's metrics.json: real splits, SARI 41.9
    # against copying's 31.4. The new weights (each layer's cross-attention, copied from its self-attention, and the
    # LM-head bias) learn at 2e-3, four times the pretrained ones' rate: 5e-4 for all gave SARI 24 after 160 steps
    # (looping outputs) and 35.6 after 220; 240 steps at 2e-3 (5 minutes) gave 40.7, too close to 40 to rely on.
    "cpu-quick": dict(CPU_SHORT, steps=300, warmup_steps=20, new_lr=2e-3, eval_rows=300),
    # About 40 minutes: real splits (greedy BLEU 68 against copying's 62 on 32 validation rows).
    "cpu-hour": dict(CPU_SHORT, steps=700, warmup_steps=50),
    # About 75 minutes with one thread: whole WikiSplit sentences (4,991 of tune's 5,000 pairs kept), BERT's
    # dropout, 1,500 steps (4.8 epochs). README's training table, all 5,000 validation pairs: SARI 51.1, exact 4.0,
    # BLEU 72.5 (copying 30.4, 0, 63.0).
    "cpu-long": dict(CPU, dropout=0.1, max_source_len=80, max_target_len=96, steps=1500, warmup_steps=100),
    # One GPU, bf16: NOT run on this project's machines. WikiSplit's train split (989,944 pairs, downloaded on
    # first use), a larger batch, full lengths and BERT's dropout for a longer run.
    "gpu": dict(recipe="bert2bert", cross_init="self", dropout=0.1, train_split="train", batch_size=64, lr=5e-4,
                new_lr=None, steps=5000, warmup_steps=500, max_source_len=128, max_target_len=128, drop_long=False,
                eval_every=500, save_every=500),
}
