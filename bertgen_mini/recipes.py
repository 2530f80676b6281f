"""Recipes: the ways Rothe, Narayan & Severyn (TACL 2020, Table 1) build an encoder-decoder from public BERT,
RoBERTa and GPT-2 checkpoints, the parameter groups that train it, and the training presets measured on this
project's machines.

    bert2bert       BERT encoder, BERT decoder (cross-attention new)
    bertshare       the same, but one set of weights for both halves (only cross-attention is the decoder's own)
    bert2rnd        BERT encoder, random decoder
    rnd2bert        random encoder, BERT decoder
    rnd2rnd         both random (the BERT vocabulary and sizes only)
    roberta2roberta RoBERTa encoder, RoBERTa decoder (a BertGeneration decoder: RoBERTa's MLM-head transform dropped)
    robertashare    the same, one set of weights
    bert2gpt        BERT encoder, GPT-2 decoder (GPT-2's cross-attention new; enc_to_dec_proj new if the widths differ)
    rnd2gpt         random encoder (BERT's vocabulary and sizes), GPT-2 decoder
    roberta2gpt     RoBERTa encoder, GPT-2 decoder

The first five need one BERT folder (`RECIPES`); the others a RoBERTa folder (`roberta_dir`) or a GPT-2 folder
(`gpt2_dir`) too (`OTHER_CHECKPOINT_RECIPES`). Where the halves read different vocabularies (bert2gpt: WordPiece
in, GPT-2's byte-level BPE out) `tokenizer` is the source's and `target_tokenizer` the target's.

Warm-starting leaves two kinds of weights: pretrained ones, which a large learning rate would wreck, and new ones
(each decoder layer's cross-attention, the LM-head bias), which start from noise and need to move fast.
`param_groups` gives each kind its own learning rate. `cross_init="self"` starts every cross-attention block
from its layer's pretrained self-attention: the query/key/value maps then already compare BERT-like vectors,
so attending to matching source tokens (which is most of WikiSplit: the target is mostly a copy) is learned in far
fewer steps. The measurements behind PRESETS are in bench/train_recipes.md.

BERT's WordPiece vocabulary has no WikiSplit separator `<::::>` and would spell it in six pieces (`< : : : : >`).
`build_tokenizer` adds it as one token after the vocabulary, and `build_model` gives the model an embedding row
(and LM-head row) for it, started at the mean of the others (bertgen_mini.vocab), as transformers users do with
`tokenizer.add_tokens(...)` and `model.resize_token_embeddings(len(tokenizer))`. A tokenizer of each half that
is longer than its checkpoint's vocabulary grows that half the same way.

Special tokens of the target side: the decoder starts from [CLS] (RoBERTa: <s>), ends at [SEP] (</s>) and pads
with [PAD] (<pad>). GPT-2 has one special token, <|endoftext|>, and no padding: as transformers' bert2gpt2
example, the decoder starts from it (bos), ends at it (eos) and pads with it (pad = eos); the labels mark padding
with -100, and EncoderDecoderModel never treats the start position as padding.
"""
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from .auto import AutoTokenizer
from .checks import check_tokenizer_fits
from .config import BertGenerationConfig
from .data import SENTENCE_SEPARATOR, end_of_sequence_id
from .encoder_decoder import EncoderDecoderModel
from .gpt2 import GPT2Config, GPT2LMHeadModel
from .paths import default_bert_dir
from .tokenizer_base import CONFIG_NAME as TOKENIZER_CONFIG, read_saved_settings
from .tokenizer_bpe import GPT2Tokenizer, RobertaTokenizer
from .tokenizer_wordpiece import BertTokenizer
from .vocab import resize_token_embeddings

RECIPES = ("bert2bert", "bertshare", "bert2rnd", "rnd2bert", "rnd2rnd")  # one BERT checkpoint
OTHER_CHECKPOINT_RECIPES = ("roberta2roberta", "robertashare", "bert2gpt", "rnd2gpt", "roberta2gpt")
ALL_RECIPES = RECIPES + OTHER_CHECKPOINT_RECIPES
# The vocabulary each kind of half reads: a random half has BERT's vocabulary and sizes.
VOCABULARY = {"bert": "bert", "rnd": "bert", "roberta": "roberta", "gpt": "gpt2"}
CROSS_INITS = ("random", "self")
ADDED_TOKENS = (SENTENCE_SEPARATOR,)  # appended to BERT's vocabulary by build_tokenizer, in this order
TARGET_TOKENIZER_DIR = "target_tokenizer"  # where save_tokenizers puts the decoder's tokenizer, if not the encoder's


def build_tokenizer(bert_dir=None) -> BertTokenizer:
    """The WordPiece tokenizer of the BERT folder `bert_dir` (default: the bundled MiniLM) with WikiSplit's separator
    `<::::>` added as one token, id len(vocab.txt). It is not a special token: decode(skip_special_tokens=True)
    drops [CLS], [SEP] and [PAD] but keeps it, since it is text the model writes and the scores read."""
    tokenizer = BertTokenizer.from_pretrained(default_bert_dir() if bert_dir is None else bert_dir)
    tokenizer.add_tokens(list(ADDED_TOKENS))
    return tokenizer


def build_tokenizers(recipe: str = "bert2bert", bert_dir=None, roberta_dir=None, gpt2_dir=None) -> tuple:
    """(source tokenizer, target tokenizer) of `recipe`: the vocabulary each half reads (VOCABULARY), with WikiSplit's
    `<::::>` added as one token to each, so that the encoder reads it and the decoder writes it in one piece. BERT and
    random halves: build_tokenizer(bert_dir); RoBERTa: the RobertaTokenizer of roberta_dir; GPT-2: the GPT2Tokenizer
    of gpt2_dir (folders or Hub ids). When both halves read one vocabulary both are the same object; bert2gpt gives
    (WordPiece, GPT-2's byte-level BPE). build_model grows each half to its tokenizer's length."""
    folders = checkpoint_folders(recipe, bert_dir, roberta_dir, gpt2_dir)
    source, target = halves(recipe)

    def tokenizer_of(kind):
        if VOCABULARY[kind] == "bert":
            return build_tokenizer(folders[kind])
        tokenizer = (RobertaTokenizer if kind == "roberta" else GPT2Tokenizer).from_pretrained(folders[kind])
        tokenizer.add_tokens(list(ADDED_TOKENS))
        return tokenizer
    source_tokenizer = tokenizer_of(source)
    return source_tokenizer, source_tokenizer if VOCABULARY[source] == VOCABULARY[target] else tokenizer_of(target)


def save_tokenizers(folder, tokenizer, target_tokenizer=None) -> None:
    """Save the source tokenizer in `folder` and, when the decoder reads another vocabulary, the target tokenizer in
    `folder`/target_tokenizer (a target_tokenizer/ left there by an earlier save is removed when there is none now,
    so that load_tokenizers never pairs a model with another run's vocabulary)."""
    tokenizer.save_pretrained(folder)
    target_folder = Path(folder) / TARGET_TOKENIZER_DIR
    if target_tokenizer is not None and target_tokenizer is not tokenizer:
        target_tokenizer.save_pretrained(target_folder)
    elif target_folder.is_symlink():
        target_folder.unlink()  # the link only: what it points to is not this run's
    elif target_folder.is_dir():
        shutil.rmtree(target_folder)


def load_tokenizers(folder, model=None) -> tuple:
    """(source tokenizer, target tokenizer) as save_tokenizers saved them in `folder` (the same object twice when
    there is no target_tokenizer/), each of the class its tokenizer_config.json names (AutoTokenizer); a folder
    without one holds a WordPiece vocab.txt, as hand-made folders do. With `model`, each is checked to have one token
    per row of its half's vocabulary (checks.check_tokenizer_fits)."""
    folder = Path(folder)
    named = read_saved_settings(folder / TOKENIZER_CONFIG).get("tokenizer_class")
    tokenizer = AutoTokenizer.from_pretrained(folder) if named else BertTokenizer.from_pretrained(folder)
    target_tokenizer = tokenizer
    if (folder / TARGET_TOKENIZER_DIR).is_dir():
        target_tokenizer = AutoTokenizer.from_pretrained(folder / TARGET_TOKENIZER_DIR)
    if model is not None:
        check_tokenizer_fits(tokenizer, model, None if target_tokenizer is tokenizer else target_tokenizer)
    return tokenizer, target_tokenizer


def halves(recipe: str) -> tuple[str, str]:
    """'bert2gpt' -> ('bert', 'gpt'); 'robertashare' -> ('roberta', 'roberta'): the kind of each half."""
    if recipe.endswith("share"):
        return (recipe.removesuffix("share"),) * 2
    encoder, decoder = recipe.split("2")
    return encoder, decoder


def checkpoint_folders(recipe: str, bert_dir=None, roberta_dir=None, gpt2_dir=None) -> dict:
    """{kind of half: the checkpoint it starts from} for the kinds of `recipe` ("bert", "rnd", "roberta", "gpt"),
    bert_dir defaulting to the bundled MiniLM; an unknown recipe, or a RoBERTa or GPT-2 folder it needs and was not
    given, is a ValueError that says what to pass."""
    if recipe not in ALL_RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}: choose one of {', '.join(ALL_RECIPES)}.")
    given = {"bert": default_bert_dir() if bert_dir is None else bert_dir, "roberta": roberta_dir, "gpt": gpt2_dir}
    given["rnd"] = given["bert"]  # a random half has BERT's sizes: read from its config
    for kind, argument in (("roberta", "roberta_dir"), ("gpt", "gpt2_dir")):
        if kind in halves(recipe) and given[kind] is None:
            raise ValueError(f"The recipe {recipe!r} warm-starts from a {'RoBERTa' if kind == 'roberta' else 'GPT-2'}"
                             f" checkpoint: pass its folder as {argument}=.")
    return {kind: given[kind] for kind in halves(recipe)}


def build_model(recipe: str = "bert2bert", bert_dir=None, cross_init: str = "random", dropout: float | None = None,
                seed: int = 0, verbose: bool = True, tokenizer=None, roberta_dir=None, gpt2_dir=None,
                target_tokenizer=None) -> EncoderDecoderModel:
    """An EncoderDecoderModel built the `recipe` way (ALL_RECIPES) from checkpoint folders: `bert_dir` (default: the
    bundled MiniLM), `roberta_dir` for the roberta recipes, `gpt2_dir` for the gpt ones.

    cross_init: "random" (transformers' default) or "self" (copy each layer's self-attention into its
    cross-attention). dropout: if given, replaces every dropout probability (0.0 turns dropout off, which helps
    short runs). seed fixes the random weights. `model.load_report.new` lists the tensors that did not come from
    a checkpoint (a random half, cross-attention, LM-head bias, enc_to_dec_proj): `param_groups` gives them the
    higher rate.
    tokenizer: the tokenizer of the source (the encoder's vocabulary), default build_tokenizer(bert_dir) for a BERT
    or random encoder and none for RoBERTa. target_tokenizer: the target's (the decoder's), default `tokenizer`
    when both halves read one vocabulary, else none (bert2gpt: pass the GPT-2 tokenizer). A half whose tokenizer is
    longer than its vocabulary (the added `<::::>`) grows to len(tokenizer) rows; the start, end and padding ids
    come from the target's tokenizer (see set_special_tokens), or from the checkpoint's config without one.
    """
    folders = checkpoint_folders(recipe, bert_dir, roberta_dir, gpt2_dir)
    if cross_init not in CROSS_INITS:
        raise ValueError(f"Unknown cross_init {cross_init!r}: choose 'random' or 'self'.")
    source, target = halves(recipe)
    if tokenizer is None and VOCABULARY[source] == "bert":
        tokenizer = build_tokenizer(folders[source])
    if target_tokenizer is None and VOCABULARY[source] == VOCABULARY[target]:
        target_tokenizer = tokenizer
    overrides = {}
    if dropout is not None:
        for half, config_class in (("encoder", BertGenerationConfig),
                                   ("decoder", GPT2Config if target == "gpt" else BertGenerationConfig)):
            overrides.update({f"{half}_{name}": dropout for name in config_class.dropout_fields()})
    torch.manual_seed(seed)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(
        folders[source], folders[target], tie_encoder_decoder=recipe.endswith("share"), verbose=False, **overrides)
    grow_vocabularies(model, tokenizer, target_tokenizer)  # before a random half is drawn: it then covers new rows
    if source == "rnd":
        forget_pretrained(model, model.encoder, "encoder.")
    if target == "rnd":
        forget_pretrained(model, model.decoder, "decoder.")
    if cross_init == "self":
        cross_attention_from_self(model.decoder)
    set_special_tokens(model, model.encoder.config if tokenizer is None else tokenizer,
                       model.decoder.config if target_tokenizer is None else target_tokenizer)
    if verbose:
        print(model.load_report)
    return model


def grow_vocabularies(model: EncoderDecoderModel, tokenizer, target_tokenizer) -> None:
    """Give each half as many token rows as its tokenizer has (when it has more than the checkpoint): a shared pair
    grows its one table once."""
    if model.config.tie_encoder_decoder:
        if tokenizer is not None and len(tokenizer) > model.encoder.config.vocab_size:
            resize_token_embeddings(model, len(tokenizer))
        return
    for half, half_tokenizer in ((model.encoder, tokenizer), (model.decoder, target_tokenizer)):
        if half_tokenizer is not None and len(half_tokenizer) > half.config.vocab_size:
            resize_token_embeddings(half, len(half_tokenizer))


def cross_attention_from_self(decoder) -> None:
    """cross_init="self": every layer's cross-attention starts as a copy of its self-attention."""
    if isinstance(decoder, GPT2LMHeadModel):
        for block in decoder.transformer.h:
            block.cross_attention_from_self()
        return
    for layer in decoder.bert.encoder.layer:
        layer.crossattention.load_state_dict(layer.attention.state_dict())


def forget_pretrained(model: EncoderDecoderModel, half, prefix: str) -> None:
    """Re-initialise one half at random and move its names from `loaded` to `new` in model.load_report."""
    half.init_weights()
    if hasattr(half, "tie_weights"):
        half.tie_weights()
    report = model.load_report
    moved = [name for name in report.loaded if name.startswith(prefix)]
    model.load_report = replace(report, loaded=[n for n in report.loaded if not n.startswith(prefix)],
                                new=moved + report.new)


def special_ids(vocabulary) -> tuple:
    """(start, end, pad) of a target vocabulary: a tokenizer, or without one a checkpoint's config. [CLS], [SEP],
    [PAD] for BERT; <s>, </s>, <pad> for RoBERTa (its cls and sep, as its bos and eos); GPT-2's <|endoftext|> for
    all three (no cls or sep: start = bos; no padding token: pad = eos). The end is data.end_of_sequence_id, the
    id encode_pairs ends every target's labels with."""
    def first(*names):
        ids = [getattr(vocabulary, name, None) for name in names]
        return next((i for i in ids if i is not None), None)
    end, pad = end_of_sequence_id(vocabulary), first("pad_token_id")
    return first("cls_token_id", "bos_token_id"), end, end if pad is None else pad


def set_special_tokens(model: EncoderDecoderModel, source, target=None) -> None:
    """Set the start, end and padding ids (special_ids) of the pair and of each half's config: the target's for
    the pair and the decoder, the source's for the encoder. source and target: a tokenizer, or a half's config
    where there is none; target defaults to source (one vocabulary for both halves)."""
    source, target = special_ids(source), special_ids(source if target is None else target)
    config = model.config
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = target
    for half, (start, end, pad) in ((model.encoder.config, source), (model.decoder.config, target)):
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
    # CI and the notebooks' default on a CPU: 6-7 minutes of training on 2 idle cores, then a greedy evaluation
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
