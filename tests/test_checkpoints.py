"""Checkpoints in the Hugging Face layout flow both ways, and every bad folder gets an error that names the fix."""
import json
import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import bertgen_mini as bg
from bertgen_mini.checkpoint import module_group
from reference import SMALL, hf_twin, small_pair
from test_faults import Evil


def test_save_then_load_gives_identical_outputs(tmp_path):
    model = small_pair()
    model.save_pretrained(tmp_path)
    loaded = bg.EncoderDecoderModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(3, 101, (2, 7))
    labels = torch.randint(3, 101, (2, 5))
    torch.testing.assert_close(model(input_ids=ids, labels=labels).logits, loaded(input_ids=ids, labels=labels).logits)
    assert loaded.config.decoder_start_token_id == model.config.decoder_start_token_id
    assert loaded.decoder.lm_head.decoder.weight is loaded.decoder.bert.embeddings.word_embeddings.weight


def test_transformers_loads_our_checkpoint_with_nothing_missing(tmp_path):
    model = small_pair()
    model.save_pretrained(tmp_path)
    ref, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, labels = torch.randint(3, 101, (2, 7)), torch.randint(3, 101, (2, 5))
    torch.testing.assert_close(model(input_ids=ids, labels=labels).loss, ref.eval()(input_ids=ids, labels=labels).loss)


def test_we_load_what_transformers_saves(tmp_path):
    model = small_pair(seed=3)
    hf_twin(model).save_pretrained(tmp_path)
    loaded = bg.EncoderDecoderModel.from_pretrained(tmp_path).eval()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_shared_model_round_trips(tmp_path):
    enc = bg.BertGenerationEncoder(bg.BertGenerationConfig(**SMALL))
    dec = bg.BertGenerationDecoder(bg.BertGenerationConfig(**SMALL, is_decoder=True, add_cross_attention=True))
    shared = bg.EncoderDecoderModel(encoder=enc, decoder=dec, tie_encoder_decoder=True)
    shared.save_pretrained(tmp_path)
    loaded = bg.EncoderDecoderModel.from_pretrained(tmp_path)
    assert loaded.config.tie_encoder_decoder
    assert loaded.decoder.bert.embeddings is loaded.encoder.embeddings


def test_shared_pair_loads_in_transformers_with_nothing_missing_and_back_with_identical_outputs(tmp_path):
    """transformers 5 loads each half on its own and ties nothing across them, so a BERTSHARE folder stores the
    shared tensors once per half; loading it back here ties them again, and refuses halves that have drifted
    apart (a pair trained untied) instead of keeping one of them silently."""
    shared = small_pair(tie_encoder_decoder=True)
    shared.save_pretrained(tmp_path / "ours")
    theirs, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, labels = torch.randint(3, 101, (2, 7)), torch.randint(3, 101, (2, 5))
    expected = shared(input_ids=ids, labels=labels)
    torch.testing.assert_close(theirs.eval()(input_ids=ids, labels=labels).logits, expected.logits)
    theirs.save_pretrained(tmp_path / "theirs")
    loaded = bg.EncoderDecoderModel.from_pretrained(tmp_path / "theirs").eval()
    assert loaded.config.tie_encoder_decoder and loaded.decoder.bert.embeddings is loaded.encoder.embeddings
    torch.testing.assert_close(loaded(input_ids=ids, labels=labels).logits, expected.logits)
    with torch.no_grad():
        theirs.decoder.bert.encoder.layer[0].attention.self.query.weight.add_(1.0)
    theirs.save_pretrained(tmp_path / "drifted")
    with pytest.raises(ValueError, match="different values"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path / "drifted")


def test_warm_start_report_names_new_and_unused_parts(minilm_dir):
    model = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir, verbose=False)
    report = model.load_report
    new_parts = {module_group(n) for n in report.new}
    assert new_parts == {"decoder.bert.encoder.layer.*.crossattention", "decoder.lm_head"}
    unused = {module_group(n) for n in report.unused}
    assert "encoder.embeddings.token_type_embeddings" in unused and "decoder.pooler.dense" in unused
    assert "corrupt" not in str(report)


def test_seed_example_runs_unchanged(minilm_dir):
    """README's example (transformers' bert2bert example with bertgen_mini imports) as written, then what it computed
    checked: transformers gets the same loss from the same weights, and backward reaches the new cross-attention."""
    from bertgen_mini import BertGenerationDecoder, BertGenerationEncoder, BertTokenizer, EncoderDecoderModel
    encoder = BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102, verbose=False)
    decoder = BertGenerationDecoder.from_pretrained(minilm_dir, add_cross_attention=True, is_decoder=True,
                                                    bos_token_id=101, eos_token_id=102, verbose=False)
    bert2bert = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    bert2bert.config.decoder_start_token_id, bert2bert.config.pad_token_id = 101, 0
    tokenizer = BertTokenizer(minilm_dir / "vocab.txt")
    input_ids = tokenizer("This is a long article to summarize", add_special_tokens=False,
                          return_tensors="pt").input_ids
    labels = tokenizer("This is a short summary", return_tensors="pt").input_ids
    loss = bert2bert(input_ids=input_ids, labels=labels).loss
    loss.backward()

    assert input_ids.tolist() == [[2023, 2003, 1037, 2146, 3720, 2000, 7680, 7849, 4697]] and labels[0, -1] == 102
    assert loss.dim() == 0 and 0 < loss.item() < 30
    grad = decoder.bert.encoder.layer[0].crossattention.self.query.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    bert2bert.eval()
    with torch.no_grad():
        ours = bert2bert(input_ids=input_ids, labels=labels).loss
        theirs = hf_twin(bert2bert)(input_ids=input_ids, labels=labels).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    with pytest.warns(UserWarning, match="copy"):  # the docs' decoder_input_ids=labels trains a copier: we warn
        bert2bert(input_ids=input_ids, decoder_input_ids=labels, labels=labels)


def test_bert_config_with_relative_positions_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"position_embedding_type": "relative_key", **SMALL}))
    with pytest.raises(ValueError, match="absolute positions"):
        bg.BertGenerationConfig.from_pretrained(tmp_path)


def test_missing_folder_and_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        bg.BertGenerationEncoder.from_pretrained(tmp_path / "nope")
    (tmp_path / "config.json").write_text(json.dumps(SMALL))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        bg.BertGenerationEncoder.from_pretrained(tmp_path, verbose=False)


def test_damaged_weights_and_config_name_the_file(tmp_path, minilm_dir):
    shutil.copy(minilm_dir / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="model.safetensors is damaged"):
        bg.BertGenerationEncoder.from_pretrained(tmp_path, verbose=False)
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        bg.BertGenerationEncoder.from_pretrained(tmp_path, verbose=False)


def test_size_mismatch_names_the_tensor_and_the_cause(minilm_dir):
    with pytest.raises(ValueError, match="word_embeddings.*vocab_size or hidden_size"):
        bg.BertGenerationEncoder.from_pretrained(minilm_dir, vocab_size=1000, verbose=False)


def test_incomplete_pair_checkpoint_is_refused(tmp_path):
    small_pair().save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["decoder.bert.encoder.layer.0.crossattention.self.query.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="lacks 1 of the model's tensors"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path)


def test_pytorch_bin_is_read_without_unpickling_code(tmp_path):
    model = small_pair()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    torch.save(weights, tmp_path / "pytorch_model.bin")
    loaded = bg.EncoderDecoderModel.from_pretrained(tmp_path)
    for (name, value), read in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(value, read), name
    marker = tmp_path / "PWNED"
    torch.save({**weights, "extra": Evil(marker)}, tmp_path / "pytorch_model.bin")  # weights plus a payload
    with pytest.raises(ValueError, match="pytorch_model.bin could not be read as plain tensors"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path)
    assert not marker.exists()


def test_bad_inputs_get_clear_errors():
    model = small_pair()
    with pytest.raises(ValueError, match="outside 0..100"):
        model(input_ids=torch.tensor([[5, 500]]), labels=torch.tensor([[5]]))
    with pytest.raises(ValueError, match="positions"):
        model(input_ids=torch.ones(1, 65, dtype=torch.long), labels=torch.tensor([[5]]))
    model.config.decoder_start_token_id = None
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        model(input_ids=torch.tensor([[5, 6]]), labels=torch.tensor([[5]]))
    with pytest.raises(ValueError, match="add_cross_attention"):
        bg.EncoderDecoderModel(encoder=model.encoder, decoder=bg.BertGenerationDecoder(
            bg.BertGenerationConfig(**SMALL, is_decoder=True)))
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        bg.BertGenerationConfig(hidden_size=30, num_attention_heads=4)
