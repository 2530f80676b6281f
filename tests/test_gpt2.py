"""GPT-2 as a decoder: bertgen_mini's GPT2LMHeadModel and a bert2gpt pair compute transformers' numbers (fp32, 1e-5)
and pick its tokens, folders flow both ways with nothing missing, and the gpt recipes build and train a step.

The checkpoints are tiny random models that transformers builds and saves into tmp folders; inputs are token ids.
"""
import pytest
import torch
import transformers

import bertgen_mini as bg
from bertgen_mini import speed
from bertgen_mini.attention_capture import capture_from_ids
from bertgen_mini.checkpoint import module_group
from bertgen_mini.recipes import build_model, param_groups
from bertgen_mini.vocab import resize_token_embeddings
from reference import SMALL, TOL, assert_same_outputs
from test_generation import one_thread, padded_like_ours  # noqa: F401 (one_thread: an autouse fixture, here too)
from test_recipes import save_tiny_bert

transformers.logging.set_verbosity_error()
EOT = 66  # the tiny GPT-2's <|endoftext|>: its last id, as 50256 is GPT-2's
GPT2 = dict(vocab_size=67, n_positions=40, n_layer=2, n_head=4, bos_token_id=EOT, eos_token_id=EOT)
GPT2_IDS = dict(decoder_start_token_id=EOT, pad_token_id=EOT, eos_token_id=EOT)  # what the recipes use
DISTINCT_IDS = dict(decoder_start_token_id=3, pad_token_id=0, eos_token_id=EOT)   # start != pad


def hf_gpt2(n_embd=32, cross=False, seed=0, attn="eager"):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**GPT2, n_embd=n_embd, add_cross_attention=cross, is_decoder=cross)
    return transformers.GPT2LMHeadModel._from_config(config, attn_implementation=attn)


def hf_bert2gpt(n_embd=32, seed=0, ids=GPT2_IDS):
    """transformers' EncoderDecoderModel: a SMALL BertGeneration encoder (width 32) and a GPT-2 decoder."""
    torch.manual_seed(seed)
    encoder = transformers.BertGenerationEncoder._from_config(
        transformers.BertGenerationConfig(**SMALL), attn_implementation="eager")
    pair = transformers.EncoderDecoderModel(encoder=encoder, decoder=hf_gpt2(n_embd, cross=True, seed=seed + 1))
    for name, value in ids.items():
        setattr(pair.config, name, value)
    return pair.eval()


def ours_from(theirs, folder):
    theirs.save_pretrained(folder)
    return bg.EncoderDecoderModel.from_pretrained(folder).eval()


def batch(seed=1, target_vocab=EOT):
    """3 sources (one padded) and 3 targets (one padded with -100, each ending in the end token)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, SMALL["vocab_size"], (3, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 6:], mask[1, 6:] = 0, 0
    labels = torch.randint(1, target_vocab, (3, 6), generator=g)
    labels[:, -1] = EOT
    labels[2, 3], labels[2, 4:] = EOT, -100
    return ids, mask, labels


def decoder_mask(labels):
    """transformers' default decoder mask (1 where the decoder input is not the padding id) with the start position
    kept: bertgen_mini's default."""
    mask = (bg.shift_tokens_right(labels, EOT, EOT) != EOT).long()
    mask[:, 0] = 1
    return mask


# ---------------------------------------------------------------------------------------------- GPT-2 alone
def test_gpt2_checkpoint_loads_with_its_names_and_computes_transformers_logits(tmp_path):
    theirs = hf_gpt2().eval()
    theirs.save_pretrained(tmp_path)
    ours = bg.GPT2LMHeadModel.from_pretrained(tmp_path, verbose=False).eval()
    assert ours.lm_head.weight is ours.transformer.wte.weight
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ids = torch.randint(0, EOT, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    a = ours(ids, mask, labels=ids, output_attentions=True, output_hidden_states=True)
    b = theirs(ids, attention_mask=mask, labels=ids, output_attentions=True, output_hidden_states=True)
    assert_same_outputs(a, b, "hidden_states", "attentions")


def test_gpt2_folder_without_prefix_and_with_stored_masks_loads_and_reports_new_cross_attention(tmp_path):
    """Hub GPT-2 checkpoints are GPT2Model state dicts (no `transformer.` prefix) that store each layer's causal
    mask as `attn.bias`; warm-starting a decoder adds cross-attention, reported as new."""
    theirs = hf_gpt2()
    tensors = {k.removeprefix("transformer."): v for k, v in theirs.state_dict().items() if k != "lm_head.weight"}
    tensors.update({f"h.{i}.attn.bias": torch.ones(1, 1, 40, 40) for i in range(GPT2["n_layer"])})
    theirs.config.save_pretrained(tmp_path)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp_path / "model.safetensors")
    ours = bg.GPT2LMHeadModel.from_pretrained(tmp_path, verbose=False, add_cross_attention=True)
    report = ours.load_report
    assert {module_group(n) for n in report.new} == {"transformer.h.*.crossattention", "transformer.h.*.ln_cross_attn"}
    assert {module_group(n) for n in report.loaded} == {"transformer.wte", "transformer.wpe", "transformer.h.*",
                                                        "transformer.ln_f"}
    assert torch.equal(ours.transformer.wte.weight, theirs.transformer.wte.weight)
    assert "crossattention" in str(report)


def test_gpt2_config_refuses_what_it_does_not_implement(tmp_path):
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        bg.GPT2Config.from_dict({"model_type": "gpt2", "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(TypeError, match="hidden_dropout_prob"):
        bg.GPT2Config.from_dict({"model_type": "gpt2"}, hidden_dropout_prob=0.0)
    with pytest.raises(ValueError, match="GPT2LMHeadModel.from_pretrained"):
        bg.BertGenerationConfig.from_dict({"model_type": "gpt2"})
    with pytest.raises(ValueError, match="not GPT-2"):
        bg.GPT2Config.from_dict({"model_type": "bert"})


# ---------------------------------------------------------------------------------------------- bert2gpt
@pytest.mark.parametrize("n_embd", [32, 48], ids=["same width", "projected"])
def test_bert2gpt_from_transformers_gives_its_logits_loss_attentions_and_gradients(tmp_path, n_embd):
    theirs = hf_bert2gpt(n_embd, ids=DISTINCT_IDS)
    ours = ours_from(theirs, tmp_path)
    assert hasattr(ours, "enc_to_dec_proj") == (n_embd != SMALL["hidden_size"])
    ids, mask, labels = batch()
    labels[2, 3] = 7  # with pad != start, the default decoder mask is transformers' own
    a = ours(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    b = theirs(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    assert_same_outputs(a, b, "encoder_attentions", "decoder_attentions", "cross_attentions")
    a.loss.backward(), b.loss.backward()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, their_params[name].grad, **TOL, msg=name)


def test_the_start_token_stays_visible_where_it_is_also_the_padding_id(tmp_path):
    """GPT-2's start, end and padding id are one token. transformers masks decoder inputs equal to the padding id,
    the start token among them, so its default hides the start from every position (generation never does);
    bertgen_mini never masks the start position, and equals transformers given that mask."""
    theirs = hf_bert2gpt()
    ours = ours_from(theirs, tmp_path)
    ids, mask, labels = batch()
    a = ours(input_ids=ids, attention_mask=mask, labels=labels)
    b = theirs(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=decoder_mask(labels))
    assert_same_outputs(a, b)
    hidden_start = theirs(input_ids=ids, attention_mask=mask, labels=labels)  # transformers' own default
    assert not torch.allclose(hidden_start.logits[:, 0], b.logits[:, 0], **TOL)


def lively(pair):
    """Spread the logits over several nats (the decoder's weights x4, its cross-attention's x8, so that the source
    matters) so that no two tokens are within float noise. The seeds below were checked to give rows that differ
    from each other and end at different steps."""
    with torch.no_grad():
        for name, p in pair.decoder.named_parameters():
            if p.dim() == 2:
                p.mul_(8.0 if "crossattention" in name else 4.0)
    return pair


@pytest.mark.parametrize("settings", [dict(num_beams=1), dict(num_beams=3),
                                      dict(num_beams=4, length_penalty=2.0, num_return_sequences=2),
                                      dict(num_beams=3, no_repeat_ngram_size=2, early_stopping=True)], ids=str)
@pytest.mark.parametrize("n_embd, seed", [(32, 2), (48, 5)], ids=["same width", "projected"])
def test_bert2gpt_generates_transformers_tokens(tmp_path, settings, n_embd, seed):
    theirs = lively(hf_bert2gpt(n_embd, seed=seed))
    ours = ours_from(theirs, tmp_path)
    ids, mask, _ = batch(seed=3)
    run = dict(max_new_tokens=10, **GPT2_IDS, **settings)
    out = ours.generate(ids, mask, return_dict_in_generate=True, **run)
    expected = theirs.generate(input_ids=ids, attention_mask=mask, do_sample=False, return_dict_in_generate=True,
                               output_scores=True, **run)
    assert torch.equal(out.sequences, padded_like_ours(expected.sequences, EOT, EOT))
    if settings["num_beams"] > 1:
        torch.testing.assert_close(out.sequences_scores, expected.sequences_scores, atol=1e-4, rtol=0)
    assert torch.equal(ours.generate(ids, mask, use_cache=False, **run), out.sequences)


@pytest.mark.parametrize("n_embd", [32, 48], ids=["same width", "projected"])
def test_transformers_loads_our_bert2gpt_with_nothing_missing(tmp_path, n_embd):
    ours = ours_from(hf_bert2gpt(n_embd, seed=4), tmp_path / "theirs")
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, mask, labels = batch()
    expected = ours(input_ids=ids, attention_mask=mask, labels=labels)
    out = theirs.eval()(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=decoder_mask(labels))
    torch.testing.assert_close(out.logits, expected.logits, **TOL)
    again = bg.EncoderDecoderModel.from_pretrained(tmp_path / "ours").eval()
    assert torch.equal(again(input_ids=ids, attention_mask=mask, labels=labels).logits, expected.logits)


def test_speed_layer_keeps_bert2gpt_numbers(tmp_path):
    ours = ours_from(lively(hf_bert2gpt(48, seed=2)), tmp_path)
    ids, mask, labels = batch()
    expected = ours(input_ids=ids, attention_mask=mask, labels=labels)
    tokens = ours.generate(ids, mask, max_new_tokens=8, num_beams=3)
    speed.apply(ours)
    out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(out.logits, expected.logits, **TOL)
    assert torch.equal(ours.generate(ids, mask, max_new_tokens=8, num_beams=3), tokens)


def test_attention_capture_reads_gpt2_cross_attention(tmp_path):
    pair = ours_from(lively(hf_bert2gpt(48, seed=5)), tmp_path)
    ids, mask, _ = batch(seed=3)
    sequences = pair.generate(ids, mask, max_new_tokens=6)
    capture = capture_from_ids(pair, ids, mask, sequences)[1]
    S, T = int(mask[1].sum()), len(capture.target_tokens)
    assert capture.num_layers == GPT2["n_layer"] and capture.cross[0].shape == (GPT2["n_head"], T, S)
    torch.testing.assert_close(capture.cross[0].sum(-1), torch.ones(GPT2["n_head"], T))


def test_gpt2_decoder_cannot_share_weights_with_a_bert_encoder(tmp_path):
    pair = ours_from(hf_bert2gpt(), tmp_path)
    with pytest.raises(ValueError, match="cannot share weights"):
        bg.EncoderDecoderModel(encoder=pair.encoder, decoder=pair.decoder, tie_encoder_decoder=True)


# ---------------------------------------------------------------------------------------------- recipes
@pytest.fixture
def tiny_gpt2(tmp_path):
    folder = tmp_path / "gpt2"
    hf_gpt2(n_embd=48).save_pretrained(folder)
    return folder


def train_one_step(model, target_vocab):
    ids, mask, labels = batch(target_vocab=target_vocab)
    optimizer = torch.optim.AdamW(param_groups(model.train(), lr=1e-3))
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()) if p.grad is not None)
    return loss


@pytest.mark.parametrize("recipe", ["bert2gpt", "rnd2gpt"])
def test_gpt_recipes_warm_start_gpt2_with_eot_as_start_end_and_padding(tmp_path, tiny_gpt2, recipe):
    bert = save_tiny_bert(tmp_path / "bert")
    model = build_model(recipe, bert, gpt2_dir=tiny_gpt2, cross_init="self", verbose=False)
    assert isinstance(model.decoder, bg.GPT2LMHeadModel) and hasattr(model, "enc_to_dec_proj")
    config = model.config
    assert (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id) == (EOT, EOT, EOT)
    assert model.encoder.config.vocab_size == SMALL["vocab_size"] + 1  # WordPiece with <::::> in
    assert model.decoder.config.vocab_size == GPT2["vocab_size"]      # GPT-2's own out
    new = {module_group(n) for n in model.load_report.new}
    assert {"enc_to_dec_proj", "decoder.transformer.h.*.crossattention"} <= new
    assert any(n.startswith("encoder.") for n in model.load_report.new) == (recipe == "rnd2gpt")
    block = model.decoder.transformer.h[0]
    assert torch.equal(block.crossattention.q_attn.weight, block.attn.c_attn.weight[:, :48])
    train_one_step(model, EOT)


def test_a_gpt2_decoder_grows_for_a_target_tokenizer_with_added_tokens(tmp_path, tiny_gpt2):
    class Target:  # what the recipe reads from a tokenizer: its length and its special ids
        bos_token_id = eos_token_id = EOT
        pad_token_id = cls_token_id = sep_token_id = None

        def __len__(self):
            return GPT2["vocab_size"] + 2

    bert = save_tiny_bert(tmp_path / "bert")
    model = build_model("bert2gpt", bert, gpt2_dir=tiny_gpt2, target_tokenizer=Target(), verbose=False)
    wte = model.decoder.transformer.wte.weight
    assert wte.shape[0] == GPT2["vocab_size"] + 2 and model.decoder.lm_head.weight is wte
    torch.testing.assert_close(wte[-1], wte[:-2].mean(0))
    resize_token_embeddings(model.decoder, GPT2["vocab_size"])
    assert model.decoder.lm_head.weight.shape[0] == GPT2["vocab_size"]


def test_gpt_recipes_need_their_checkpoint_folder(tmp_path):
    with pytest.raises(ValueError, match="gpt2_dir="):
        build_model("bert2gpt", save_tiny_bert(tmp_path / "bert"))


def test_encoder_states_given_to_a_decoder_without_cross_attention_are_refused_at_the_door():
    """One check (checks.check_inputs) for both families, before any layer runs."""
    states = torch.zeros(1, 3, 32)
    gpt2 = bg.GPT2LMHeadModel(bg.GPT2Config(**GPT2, n_embd=32))
    bert = bg.BertGenerationDecoder(bg.BertGenerationConfig(vocab_size=67, hidden_size=32, num_hidden_layers=1,
                                                            num_attention_heads=4, intermediate_size=37,
                                                            is_decoder=True))
    for model in (gpt2, bert):
        with pytest.raises(ValueError, match="no cross-attention: build it with add_cross_attention=True"):
            model(torch.tensor([[1, 2]]), encoder_hidden_states=states)
