"""The five warm-start recipes, cross-attention from self-attention, and the parameter groups, on a tiny BERT."""
import pytest
import torch

import bertgen_mini as bg
from bertgen_mini.checkpoint import read_state_dict
from bertgen_mini.recipes import PRESETS, RECIPES, build_model, param_groups
from bertgen_mini.train import TrainConfig
from reference import SMALL

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "<", ":", ">"]


def write_vocab(folder, size=SMALL["vocab_size"]):
    """A vocab.txt of `size` lines: BERT's specials first ([CLS] = 2, [SEP] = 3), then letters and w<i> words."""
    words = SPECIALS + list("abcdefghijklmnopqrstuvwxyz")
    words += [f"w{i}" for i in range(size - len(words))]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")


def save_tiny_bert(folder):
    """A random SMALL BERT-style checkpoint folder (config.json, model.safetensors, vocab.txt)."""
    torch.manual_seed(0)
    bg.BertGenerationEncoder(bg.BertGenerationConfig(**SMALL)).save_pretrained(folder)
    write_vocab(folder)
    return folder


@pytest.fixture
def tiny_bert(tmp_path):
    return save_tiny_bert(tmp_path / "bert")


def encoder_matches_checkpoint(model, folder):
    saved = read_state_dict(folder)
    return torch.equal(model.encoder.encoder.layer[0].attention.self.query.weight,
                       saved["encoder.layer.0.attention.self.query.weight"])


def decoder_matches_checkpoint(model, folder):
    saved = read_state_dict(folder)
    return torch.equal(model.decoder.bert.encoder.layer[0].attention.self.query.weight,
                       saved["encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("recipe, encoder_pretrained, decoder_pretrained",
                         [("bert2bert", True, True), ("bertshare", True, True), ("bert2rnd", True, False),
                          ("rnd2bert", False, True), ("rnd2rnd", False, False)])
def test_each_recipe_warm_starts_the_right_halves(tiny_bert, recipe, encoder_pretrained, decoder_pretrained):
    model = build_model(recipe, tiny_bert, verbose=False)
    assert encoder_matches_checkpoint(model, tiny_bert) == encoder_pretrained
    assert decoder_matches_checkpoint(model, tiny_bert) == decoder_pretrained
    new = model.load_report.new
    assert any(".crossattention." in n for n in new) and "decoder.lm_head.bias" in new
    assert any(n.startswith("encoder.") for n in new) != encoder_pretrained
    assert any(n.startswith("decoder.bert.encoder.layer.0.attention.") for n in new) != decoder_pretrained


def test_bertshare_shares_everything_but_cross_attention(tiny_bert):
    shared, pair = build_model("bertshare", tiny_bert, verbose=False), build_model("bert2bert", tiny_bert, verbose=False)
    assert shared.decoder.bert.encoder.layer[1].attention is shared.encoder.encoder.layer[1].attention
    cross = sum(p.numel() for n, p in pair.named_parameters() if "crossattention" in n)
    encoder = sum(p.numel() for p in pair.encoder.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(shared) == encoder + cross + pair.decoder.lm_head.bias.numel()


def test_cross_attention_can_start_from_self_attention(tiny_bert):
    model = build_model("bert2bert", tiny_bert, cross_init="self", verbose=False)
    for layer in model.decoder.bert.encoder.layer:
        for name, value in layer.attention.state_dict().items():
            assert torch.equal(layer.crossattention.state_dict()[name], value), name
    layer = model.decoder.bert.encoder.layer[0]
    assert layer.crossattention.self.query.weight is not layer.attention.self.query.weight  # copies, not ties


def test_special_tokens_come_from_the_vocabulary_and_dropout_can_be_switched_off(tiny_bert):
    model = build_model("bert2bert", tiny_bert, dropout=0.0, verbose=False)
    assert (model.config.decoder_start_token_id, model.config.eos_token_id, model.config.pad_token_id) == (2, 3, 0)
    assert model.encoder.config.hidden_dropout_prob == model.decoder.config.attention_probs_dropout_prob == 0.0


def test_param_groups_split_new_from_pretrained_and_skip_decay_on_norms(tiny_bert):
    model = build_model("bert2bert", tiny_bert, verbose=False)
    groups = {g["name"]: g for g in param_groups(model, lr=1e-4, new_lr=1e-3, weight_decay=0.01)}
    assert set(groups) == {"pretrained", "pretrained_no_decay", "new", "new_no_decay"}
    in_groups = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(in_groups) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    ids = lambda name: {id(p) for p in groups[name]["params"]}
    cross = model.decoder.bert.encoder.layer[0].crossattention
    assert id(cross.self.query.weight) in ids("new") and id(cross.output.LayerNorm.weight) in ids("new_no_decay")
    assert id(model.decoder.lm_head.bias) in ids("new_no_decay")
    assert groups["new"]["lr"] == 1e-3 and groups["pretrained"]["lr"] == 1e-4
    assert groups["pretrained_no_decay"]["weight_decay"] == 0.0


def test_unknown_recipe_is_refused_with_the_choices(tiny_bert):
    with pytest.raises(ValueError, match="bert2bert"):
        build_model("gpt2bert", tiny_bert)


def test_presets_are_valid_train_configs():
    for name, preset in PRESETS.items():
        assert TrainConfig(**preset).recipe in RECIPES, name
