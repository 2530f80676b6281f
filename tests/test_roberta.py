"""RoBERTa checkpoints warm-start BertGeneration halves: with RoBERTa's position offset and token-type vector folded
into the position table, the encoder computes what transformers' RobertaModel computes on every real token, the
load report says what was converted and dropped, and the roberta recipes build and train a step.

The checkpoints are tiny random RoBERTa models that transformers builds and saves into tmp folders.
"""
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import bertgen_mini as bg
from bertgen_mini.checkpoint import module_group
from bertgen_mini.recipes import build_model
from reference import SMALL, TOL
from test_gpt2 import EOT, hf_gpt2, train_one_step

transformers.logging.set_verbosity_error()
PAD = 1  # RoBERTa's <pad>; <s> = 0, </s> = 2
ROBERTA = dict(SMALL, max_position_embeddings=SMALL["max_position_embeddings"] + PAD + 1, pad_token_id=PAD,
               bos_token_id=0, eos_token_id=2, type_vocab_size=1, layer_norm_eps=1e-5)


def save_tiny_roberta(folder, model_class=transformers.RobertaModel, seed=0, **overrides):
    torch.manual_seed(seed)
    config = transformers.RobertaConfig(**{**ROBERTA, **overrides})
    model = model_class._from_config(config, attn_implementation="eager")
    with torch.no_grad():  # RoBERTa's init leaves these at 0 or 1: give the fold something to get wrong
        model.base_model.embeddings.token_type_embeddings.weight.normal_()
        model.base_model.embeddings.position_embeddings.weight[:PAD + 1].normal_()
    model.save_pretrained(folder)
    return model.eval()


def right_padded_batch(seed=1):
    """(3, 10) ids of lengths 10, 6 and 8, padded with <pad> on the right."""
    ids = torch.randint(3, SMALL["vocab_size"], (3, 10), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, 6:], mask[2, 8:] = 0, 0
    return ids.masked_fill(mask == 0, PAD), mask


@pytest.fixture
def tiny_roberta(tmp_path):
    return tmp_path / "roberta", save_tiny_roberta(tmp_path / "roberta")


def test_config_reads_roberta_with_the_position_offset_taken_off(tiny_roberta):
    folder, _ = tiny_roberta
    config = bg.BertGenerationConfig.from_pretrained(folder)
    assert config.max_position_embeddings == SMALL["max_position_embeddings"]
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.layer_norm_eps) == (1, 0, 2, 1e-5)


def test_roberta_encoder_matches_robertamodel_on_every_real_token(tiny_roberta):
    folder, theirs = tiny_roberta
    ours = bg.BertGenerationEncoder.from_pretrained(folder, verbose=False).eval()
    ids, mask = right_padded_batch()
    real = mask.bool()
    expected = theirs(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours(ids, mask).last_hidden_state[real], expected[real], **TOL)
    longest = torch.randint(3, SMALL["vocab_size"], (1, SMALL["max_position_embeddings"]))  # every position row
    torch.testing.assert_close(ours(longest).last_hidden_state, theirs(longest).last_hidden_state, **TOL)


def test_load_report_says_what_was_sliced_folded_and_dropped(tmp_path):
    save_tiny_roberta(tmp_path, transformers.RobertaForMaskedLM)  # roberta. prefix, an MLM head, no pooler
    report = bg.BertGenerationEncoder.from_pretrained(tmp_path, verbose=False).load_report
    assert "embeddings.position_embeddings.weight" in report.loaded
    assert {module_group(n) for n in report.unused} == {"lm_head", "lm_head.dense", "lm_head.layer_norm"}
    text = str(report)
    assert "padding_idx + 1 = 2" in text and "rows 0-1 dropped" in text and "folded" in text and "MLM head" in text


def test_a_roberta_folder_without_its_token_type_vector_is_named_incomplete(tiny_roberta):
    folder, _ = tiny_roberta
    tensors = load_file(folder / "model.safetensors")
    del tensors["embeddings.token_type_embeddings.weight"]
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ValueError, match="token_type_embeddings.*incomplete"):
        bg.BertGenerationEncoder.from_pretrained(folder)


def test_roberta_decoder_body_matches_a_causal_robertamodel(tmp_path):
    """RobertaForCausalLM's transformer with the cross-attention left out; the LM head is BertGeneration's (the
    word embeddings and a new bias), so logits are not compared."""
    theirs = save_tiny_roberta(tmp_path, transformers.RobertaForCausalLM, is_decoder=True)
    ours = bg.BertGenerationDecoder.from_pretrained(tmp_path, verbose=False, is_decoder=True,
                                                    add_cross_attention=True).eval()
    assert {module_group(n) for n in ours.load_report.new} == {"bert.encoder.layer.*.crossattention", "lm_head"}
    assert ours.lm_head.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    ids, mask = right_padded_batch(seed=2)
    real = mask.bool()
    expected = theirs.roberta(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours.bert(ids, mask).last_hidden_state[real], expected[real], **TOL)


@pytest.mark.parametrize("recipe", ["roberta2roberta", "robertashare"])
def test_roberta_recipes_build_with_roberta_special_tokens_and_train_a_step(tiny_roberta, recipe):
    folder, _ = tiny_roberta
    model = build_model(recipe, roberta_dir=folder, cross_init="self", verbose=False)
    assert (model.config.decoder_start_token_id, model.config.eos_token_id, model.config.pad_token_id) == (0, 2, 1)
    shared = model.decoder.bert.embeddings is model.encoder.embeddings
    assert shared == (recipe == "robertashare")
    torch.testing.assert_close(model.encoder.embeddings.position_embeddings.weight,
                               model.decoder.bert.embeddings.position_embeddings.weight, rtol=0, atol=0)
    train_one_step(model, SMALL["vocab_size"])


def test_roberta2gpt_builds_and_trains_a_step(tiny_roberta, tmp_path):
    folder, _ = tiny_roberta
    hf_gpt2(n_embd=48).save_pretrained(tmp_path / "gpt2")
    model = build_model("roberta2gpt", roberta_dir=folder, gpt2_dir=tmp_path / "gpt2", verbose=False)
    assert model.encoder.config.pad_token_id == PAD and model.config.pad_token_id == EOT
    assert hasattr(model, "enc_to_dec_proj")
    train_one_step(model, EOT)


def test_transformers_roberta_pairs_are_refused_with_the_way_to_build_one(tmp_path, tiny_roberta):
    folder, _ = tiny_roberta
    pair = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(str(folder), str(folder))
    pair.save_pretrained(tmp_path / "pair")
    with pytest.raises(ValueError, match="roberta2roberta"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path / "pair")
