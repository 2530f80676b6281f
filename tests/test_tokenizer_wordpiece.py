"""BertTokenizer (pure-Python WordPiece) gives exactly the ids and text of transformers' Rust-backed BertTokenizer,
and the shared call interface (padding, truncation, tensors, batches, errors) behaves like transformers'."""
import json
import shutil

import pytest
import torch
from hypothesis import given, settings, strategies as st

from bertgen_mini.tokenizer_wordpiece import BertTokenizer

HARD_CASES = [
    "", "   ", "\t\n\r", "Hello, World!", "I don't know , it 's ok .", "naïve café résumé Ünïcode",
    "a\u0300 e\u0301 o\u0308", "\u0301\u0301 lonely marks", "ΣΊΣΥΦΟΣ and Σ", "İstanbul ß ﬁ ligature",
    "日本語のテキスト 中文字符 한국어", "emoji 😀👍🏽 👨‍👩‍👧 flags 🇫🇷", "שלום עולם مرحبا بالعالم", "\u202eevil rtl\u202c",
    "zero\u200bwidth no\u00a0break\u2028line\u2029para\u3000ideo", "NUL\x00 bell\x07 del\x7f fffd\ufffd",
    "hello [SEP] world [MASK]x [cls] [PAD]", "x" * 101, "y" * 100, "$5.00 + 3^2 = 14 ~ @home #tag",
    "«quotes» „German“ 「Japanese」 — dash … ellipsis", "private\ue000use", "𝔣𝔯𝔞𝔨𝔱𝔲𝔯 ℌ ①②", "A\u030a vs Å",
]
TEXTS = ["A short one.", "A somewhat longer sentence, with a comma and more words in it."]


@pytest.fixture(scope="session")
def ours(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def reference(minilm_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizer.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="session")
def texts_and_reference_ids(reference, wikisplit_rows):
    """Both columns of both WikiSplit files (20,000 texts) and transformers' ids for them."""
    texts = [text for row in wikisplit_rows for text in row]
    return texts, reference(texts)["input_ids"]


@pytest.fixture(scope="session")
def ours_with_separator(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    assert tokenizer.add_tokens(["<::::>"]) == 1
    return tokenizer


def reference_with(minilm_dir, separator="<::::>", special=False):
    """transformers' tokenizer with `separator` added as ours adds it: matched in the text as written."""
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizer.from_pretrained(str(minilm_dir))
    if special:
        reference.add_special_tokens({"additional_special_tokens": [separator]})
    else:
        reference.add_tokens([transformers.AddedToken(separator, normalized=False)])
    return reference


def test_ids_match_transformers_on_every_wikisplit_sentence(ours, texts_and_reference_ids):
    texts, expected = texts_and_reference_ids
    mismatches = [(t, ours.tokenize(t)) for t, ids in zip(texts, expected) if ours.encode(t) != ids]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[0]}"


def test_decode_matches_transformers_on_every_wikisplit_sentence(ours, reference, texts_and_reference_ids):
    _, all_ids = texts_and_reference_ids
    assert ours.batch_decode(all_ids) == reference.batch_decode(all_ids)
    sample = all_ids[::10]
    skipped = reference.batch_decode(sample, skip_special_tokens=True)
    assert ours.batch_decode(sample, skip_special_tokens=True) == skipped


def test_with_the_separator_added_ids_and_text_match_transformers_on_every_wikisplit_sentence(
        ours_with_separator, minilm_dir, wikisplit_rows):
    reference = reference_with(minilm_dir)
    texts = [text for row in wikisplit_rows for text in row]
    expected = reference(texts)["input_ids"]
    mismatches = [t for t, ids in zip(texts, expected) if ours_with_separator.encode(t) != ids]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[0]!r}"
    separator = ours_with_separator.convert_tokens_to_ids("<::::>")
    assert separator == 30522 and sum(ids.count(separator) for ids in expected) >= len(wikisplit_rows)
    sample = expected[::9]  # sources and targets
    assert ours_with_separator.batch_decode(sample) == reference.batch_decode(sample)
    kept = ours_with_separator.batch_decode(sample, skip_special_tokens=True)
    assert kept == reference.batch_decode(sample, skip_special_tokens=True) and "<::::>" in kept[1]


SEPARATOR_CASES = ["a<::::>b", "a . <::::> b .", "<::::>", "  <::::>  ", "<::::><::::>", "<::::<::::>>", "<:::: >",
                   "Ü<::::>ü [SEP]<::::>", "<::::>\u0301 x"]


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("text", SEPARATOR_CASES)
def test_added_tokens_stay_whole_like_transformers(minilm_dir, text, special):
    ours = BertTokenizer.from_pretrained(minilm_dir)
    ours.add_tokens(["<::::>"], special_tokens=special)
    reference = reference_with(minilm_dir, special=special)
    ids = reference(text)["input_ids"]
    assert ours.encode(text) == ids, (ours.tokenize(text), reference.convert_ids_to_tokens(ids))
    assert ours.decode(ids) == reference.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
    assert ("<::::>" in ours.all_special_tokens) == special == ("<::::>" in reference.all_special_tokens)


@pytest.mark.parametrize("special", [False, True])
def test_added_tokens_save_and_load_with_their_ids_here_and_in_transformers(minilm_dir, tmp_path, special):
    transformers = pytest.importorskip("transformers")
    ours = BertTokenizer.from_pretrained(minilm_dir)
    ours.add_tokens(["<::::>", "[new]", "hello"], special_tokens=special)  # "hello" is in the vocabulary already
    assert len(ours) == 30524 and ours.convert_tokens_to_ids(["[new]", "hello"]) == [30523, 7592]
    ours.save_pretrained(tmp_path)
    text = "Hello . <::::> [new] hello ."
    for again in (BertTokenizer.from_pretrained(tmp_path), transformers.BertTokenizer.from_pretrained(str(tmp_path))):
        assert len(again) == len(ours) and again(text)["input_ids"] == ours(text)["input_ids"]
        assert again.convert_ids_to_tokens(30522) == "<::::>" and ("<::::>" in again.all_special_tokens) == special


def test_added_tokens_transformers_5_keeps_in_tokenizer_json_are_read(minilm_dir, tmp_path):
    """transformers 5 saves a BERT tokenizer's added tokens in tokenizer.json only (tokenizer_config.json has no
    added_tokens_decoder): they load with their ids, as transformers loads them."""
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertTokenizer.from_pretrained(str(minilm_dir))
    theirs.add_tokens(["<::::>", "[new]"])
    theirs.save_pretrained(str(tmp_path))
    assert "added_tokens_decoder" not in json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    shutil.copy(minilm_dir / "vocab.txt", tmp_path)
    ours, text = BertTokenizer.from_pretrained(tmp_path), "Hello . <::::> [new] hello ."
    assert len(ours) == len(theirs) and ours(text)["input_ids"] == theirs(text)["input_ids"]


def test_added_token_saved_with_another_vocabulary_is_refused(ours_with_separator, tmp_path):
    ours_with_separator.save_pretrained(tmp_path)
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "vocab.txt").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="saved with id 30522 but gets id 30521"):
        BertTokenizer.from_pretrained(tmp_path)


def test_blank_added_token_is_refused(ours):
    with pytest.raises(ValueError, match="non-blank strings"):
        ours.add_tokens([" "])  # checked before anything is added, so the shared fixture stays as it was


@pytest.mark.parametrize("text", HARD_CASES)
def test_hard_unicode_cases_match_transformers(ours, reference, text):
    ids = reference(text)["input_ids"]
    assert ours.encode(text) == ids, (ours.tokenize(text), reference.convert_ids_to_tokens(ids))
    assert ours.decode(ids) == reference.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)


def test_decode_of_odd_piece_orders_matches_transformers(ours, reference):
    tokens = ["##s", "hello", "##s", ".", "##.", ",", "?", "!", "'", "s", "[UNK]", "do", "n", "'", "t"]
    ids = reference.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids(tokens) == ids
    assert ours.decode(ids) == reference.decode(ids)
    cleaned = reference.decode(ids, clean_up_tokenization_spaces=True)
    assert ours.decode(ids, clean_up_tokenization_spaces=True) == cleaned


def test_special_token_attributes_match_transformers(ours, reference):
    for name in ("pad_token_id", "cls_token_id", "sep_token_id", "unk_token_id", "mask_token_id", "vocab_size"):
        assert getattr(ours, name) == getattr(reference, name), name
    assert len(ours) == len(reference) and ours.model_max_length == reference.model_max_length == 512


def test_wordpiece_is_greedy_longest_match_first(ours):
    # "##ffa" is taken before "##ff" because it is longer, even though "##able" would then have matched
    assert ours.tokenize("unaffable tokenization") == ["una", "##ffa", "##ble", "token", "##ization"]
    assert ours.tokenize("z" * 101) == ["[UNK]"]


def test_never_split_keeps_a_word_out_of_the_basic_pass(minilm_dir):
    tokenizer = BertTokenizer(minilm_dir / "vocab.txt", never_split=["[unused0]"])
    assert tokenizer.tokenize("a [unused0] b") == ["a", "[unused0]", "b"]
    assert BertTokenizer(minilm_dir).tokenize("a [unused0] b") == ["a", "[", "unused", "##0", "]", "b"]


def test_cased_settings_match_transformers(minilm_dir):
    transformers = pytest.importorskip("transformers")
    text = "Café ÉCOLE Straße naïve 中文"
    for settings_ in ({"do_lower_case": False}, {"strip_accents": False}, {"tokenize_chinese_chars": False}):
        reference = transformers.BertTokenizer(str(minilm_dir / "vocab.txt"), **settings_)
        assert BertTokenizer(minilm_dir, **settings_).encode(text) == reference(text)["input_ids"], settings_


def test_save_and_load_round_trip(ours, tmp_path):
    ours.save_pretrained(tmp_path)
    again = BertTokenizer.from_pretrained(tmp_path)
    assert again.get_vocab() == ours.get_vocab() and again.model_max_length == 512
    assert again.encode("Round trip, naïvely.") == ours.encode("Round trip, naïvely.")


def test_vocab_without_unk_says_so(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no '\[UNK\]' line"):
        BertTokenizer(tmp_path / "vocab.txt")


def test_missing_or_binary_vocab_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs a vocab.txt"):
        BertTokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not a UTF-8 vocab.txt"):
        BertTokenizer(tmp_path)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_random_unicode_never_crashes_and_decode_encode_is_stable(ours, text):
    once = ours.decode(ours.encode(text), skip_special_tokens=True)
    assert ours.decode(ours.encode(once), skip_special_tokens=True) == once


# ---- the shared call interface --------------------------------------------------------------------------------

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
