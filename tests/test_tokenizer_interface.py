"""The shared call interface (padding, truncation, tensors, batches, errors) behaves like transformers'."""
import pytest
import torch

from bertgen_mini.tokenizer_wordpiece import BertTokenizer

TEXTS = ["A short one.", "A somewhat longer sentence, with a comma and more words in it."]


@pytest.fixture(scope="session")
def ours(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def reference(minilm_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizer.from_pretrained(str(minilm_dir))


@pytest.mark.parametrize("options", [
    {}, {"padding": True}, {"padding": "max_length", "max_length": 24}, {"truncation": True, "max_length": 6},
    {"padding": True, "truncation": True, "max_length": 8}, {"add_special_tokens": False, "padding": True},
])
def test_batch_call_matches_transformers(ours, reference, options):
    ours_out, reference_out = ours(TEXTS, **options), reference(TEXTS, **options)
    assert dict(ours_out) == dict(reference_out)


def test_pt_tensors_have_batch_shape_and_a_mask(ours, reference):
    batch = ours(TEXTS, padding=True, return_tensors="pt")
    expected = reference(TEXTS, padding=True, return_tensors="pt")
    assert batch.input_ids.shape == (2, 17) and batch.input_ids.dtype == torch.long
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    assert ours("one text", return_tensors="pt")["input_ids"].shape == (1, 4)
    assert list(ours("x", return_token_type_ids=False)) == ["input_ids", "attention_mask"]


def test_decode_takes_tensors_and_batch_decode_takes_rows(ours):
    batch = ours(TEXTS, padding=True, return_tensors="pt")
    assert ours.batch_decode(batch.input_ids, skip_special_tokens=True) == [
        "a short one.", "a somewhat longer sentence, with a comma and more words in it."]
    assert ours.decode(batch.input_ids[0]) == "[CLS] a short one. [SEP]" + " [PAD]" * 11


def test_too_long_text_without_truncation_says_how_many_tokens_and_what_to_do(ours):
    with pytest.raises(ValueError, match=r"17 tokens long but max_length=8.*truncation=True"):
        ours(TEXTS[1], max_length=8)


def test_unequal_lengths_as_tensors_ask_for_padding(ours):
    with pytest.raises(ValueError, match="padding=True"):
        ours(TEXTS, return_tensors="pt")


def test_ids_outside_the_vocabulary_are_refused(ours):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours.decode([101, 30522])
    with pytest.raises(ValueError, match="batch_decode"):
        ours.decode([[101, 102]])


def test_non_text_input_is_refused(ours):
    with pytest.raises(TypeError, match="str or a list of str"):
        ours([1, 2, 3])
