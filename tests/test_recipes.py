"""The five warm-start recipes, cross-attention from self-attention, and the parameter groups, on a tiny BERT."""
import pytest
import torch

import bertgen_mini as bg
from bertgen_mini.checkpoint import read_state_dict
from bertgen_mini.data import Pair, encode_pairs
from bertgen_mini.recipes import PRESETS, RECIPES, build_model, build_tokenizer, param_groups, special_ids
from bertgen_mini.tokenizer_wordpiece import BertTokenizer
from bertgen_mini.train import TrainConfig, train
from bertgen_mini.vocab import resize_token_embeddings
from reference import SMALL, hf_twin

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


def test_labels_end_with_the_models_end_id_when_a_wordpiece_tokenizer_also_names_an_eos(tiny_bert):
    vocab = tiny_bert / "vocab.txt"  # the paper's WMT bert2bert cards pass eos_token="</s>", a word of their vocab
    vocab.write_text(vocab.read_text(encoding="utf-8").replace("\nw0\n", "\n</s>\n"), encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(tiny_bert, eos_token="</s>")
    assert tokenizer.eos_token_id not in (None, tokenizer.unk_token_id, tokenizer.sep_token_id)
    model = build_model("bert2bert", tiny_bert, tokenizer=tokenizer, verbose=False)
    _, labels, _ = encode_pairs([Pair("a b .", "a . b .")], tokenizer, 16, 16)
    assert labels[0][-1] == model.config.eos_token_id == model.decoder.config.eos_token_id == 3  # [SEP], as BERT's


def test_a_sentencepiece_target_ends_with_its_eos_not_its_sep_the_wikisplit_separator():
    texts = [f"w{i} and w{i + 1} went home <::::> they slept ." for i in range(200)]
    tokenizer = bg.BertGenerationTokenizer.train(texts, vocab_size=40)
    assert tokenizer.sep_token == "<::::>" and special_ids(tokenizer) == (tokenizer.bos_token_id, 1, 0)  # </s>


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


# ---- the separator <::::> as one token, and the rows the model grows for it ------------------------------------

def test_the_separator_is_one_new_token_with_a_row_at_the_mean_in_both_halves(tiny_bert):
    tokenizer = build_tokenizer(tiny_bert)
    assert tokenizer.tokenize("a . <::::> b .") == ["a", ".", "<::::>", "b", "."]
    assert len(tokenizer) == SMALL["vocab_size"] + 1 == tokenizer.convert_tokens_to_ids("<::::>") + 1
    model = build_model("bert2bert", tiny_bert, verbose=False)
    saved = read_state_dict(tiny_bert)["embeddings.word_embeddings.weight"]
    for half in (model.encoder, model.decoder):
        table = half.get_input_embeddings().weight
        assert half.config.vocab_size == len(table) == half.get_input_embeddings().num_embeddings == len(tokenizer)
        assert torch.equal(table[:-1], saved)
        torch.testing.assert_close(table[-1], saved.mean(0))
    head = model.decoder.lm_head
    assert head.decoder.weight is model.decoder.get_input_embeddings().weight and head.bias is head.decoder.bias
    assert head.bias.shape == (len(tokenizer),) and model.config.encoder.vocab_size == len(tokenizer)
    ids = torch.tensor([tokenizer.encode("a . <::::> b .")])
    assert model(input_ids=ids, labels=ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_bertshare_grows_its_one_table_once(tiny_bert):
    model = build_model("bertshare", tiny_bert, verbose=False)
    table = model.encoder.get_input_embeddings().weight
    assert len(table) == SMALL["vocab_size"] + 1 == model.decoder.config.vocab_size
    assert model.decoder.get_input_embeddings().weight is table is model.decoder.lm_head.decoder.weight


def test_a_random_half_draws_its_new_row_at_random_too(tiny_bert):
    model = build_model("rnd2rnd", tiny_bert, verbose=False)
    table = model.encoder.get_input_embeddings().weight
    assert not torch.allclose(table[-1], table[:-1].mean(0), atol=1e-3)


def test_new_rows_start_where_transformers_resize_token_embeddings_puts_them(tiny_bert):
    ours = bg.BertGenerationDecoder.from_pretrained(tiny_bert, is_decoder=True, verbose=False)
    with torch.no_grad():
        ours.lm_head.bias.normal_()  # a bias with a mean away from 0, as a trained one has
    old_bias = ours.lm_head.bias.detach().clone()
    theirs = hf_twin(ours)
    resize_token_embeddings(ours, SMALL["vocab_size"] + 3)
    theirs.resize_token_embeddings(SMALL["vocab_size"] + 3)  # samples within ~1e-6 of the mean here
    expected = theirs.state_dict()
    for name, tensor in ours.state_dict().items():
        if name not in ("lm_head.bias", "lm_head.decoder.bias"):  # transformers 5.24 pads this one with zeros
            torch.testing.assert_close(tensor, expected[name], atol=1e-5, rtol=0, msg=name)
    assert torch.equal(ours.lm_head.bias[:-3], old_bias)
    torch.testing.assert_close(ours.lm_head.bias[-3:], old_bias.mean().expand(3))
    assert theirs.config.vocab_size == ours.config.vocab_size == SMALL["vocab_size"] + 3


@pytest.mark.parametrize("recipe", ["bert2bert", "bertshare"])
def test_grown_model_and_tokenizer_reload_here_and_in_transformers(tiny_bert, tmp_path, recipe):
    transformers = pytest.importorskip("transformers")
    tokenizer = build_tokenizer(tiny_bert)
    model = build_model(recipe, tiny_bert, verbose=False, tokenizer=tokenizer).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    text, target = "a b , c d .", "a b . <::::> c d ."
    for again in (BertTokenizer.from_pretrained(tmp_path), transformers.BertTokenizer.from_pretrained(str(tmp_path))):
        assert again(target)["input_ids"] == tokenizer(target)["input_ids"] and len(again) == len(tokenizer)
    ids, labels = torch.tensor([tokenizer.encode(text)]), torch.tensor([tokenizer.encode(target)])
    expected = model(input_ids=ids, labels=labels)
    theirs, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    for loaded in (bg.EncoderDecoderModel.from_pretrained(tmp_path), theirs):
        out = loaded.eval()(input_ids=ids, labels=labels)
        torch.testing.assert_close(out.logits, expected.logits)
        torch.testing.assert_close(out.loss, expected.loss)


LINES = ["w1 w2 a b , w3 c .\tw1 w2 a b . <::::> w3 c .", "a b c w4 , w5 .\ta b c w4 . <::::> w5 .",
         "w6 w7 , w8 w9 .\tw6 w7 . <::::> w8 w9 .", "d e f , g h .\td e f . <::::> g h ."]


def test_a_tiny_model_trained_on_splits_writes_the_separator_as_one_token(tiny_bert, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("tune.tsv", "validation.tsv"):
        (data / name).write_text("\n".join(LINES) + "\n", encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: a second thread only waits (150 steps take a few seconds)
    try:
        train(TrainConfig(output_dir=str(tmp_path / "run"), bert_dir=str(tiny_bert), data_dir=str(data), steps=150,
                          batch_size=4, lr=3e-3, warmup_steps=5, dropout=0.0, eval_rows=0, progress=False,
                          max_source_len=24, max_target_len=24))
    finally:
        torch.set_num_threads(threads)
    model = bg.EncoderDecoderModel.from_pretrained(tmp_path / "run").eval()
    tokenizer = BertTokenizer.from_pretrained(tmp_path / "run")
    batch = tokenizer([line.split("\t")[0] for line in LINES], padding=True, return_tensors="pt")
    out = model.generate(batch.input_ids, batch.attention_mask, max_new_tokens=16)
    separator = tokenizer.convert_tokens_to_ids("<::::>")
    assert [row.tolist().count(separator) for row in out] == [1] * len(LINES)
    assert tokenizer.batch_decode(out, skip_special_tokens=True)[0] == "w1 w2 a b. <::::> w3 c."


def test_shrinking_keeps_the_first_rows(tiny_bert):
    encoder = bg.BertGenerationEncoder.from_pretrained(tiny_bert, verbose=False)
    before = encoder.get_input_embeddings().weight.detach().clone()
    resize_token_embeddings(encoder, 50)
    assert torch.equal(encoder.get_input_embeddings().weight, before[:50]) and encoder.config.vocab_size == 50


def test_unknown_recipe_is_refused_with_the_choices(tiny_bert):
    with pytest.raises(ValueError, match="bert2bert"):
        build_model("gpt2bert", tiny_bert)


def test_presets_are_valid_train_configs():
    for name, preset in PRESETS.items():
        assert TrainConfig(**preset).recipe in RECIPES, name
