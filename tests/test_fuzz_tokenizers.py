"""The tokenizers fuzzed with hypothesis: 5,000 generated strings each (batches of 50, so it takes seconds), any code
point, lone surrogates included, and the special tokens mixed in. Nothing crashes: every string either gives ids
inside the vocabulary or (sentencepiece and byte-level BPE, lone surrogates only) a ValueError that says so; where
text survives the vocabulary unchanged (lower-case letters, digits, spaces) decoding gives it back, whitespace
normalised. Byte-level BPE gives every text back exactly, and the same ids as transformers."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bertgen_mini import BertGenerationTokenizer, BertTokenizer, GPT2Tokenizer, RobertaTokenizer
from test_tokenizer_bpe import rust_knows, train_bpe

BATCH, EXAMPLES = 50, 100  # per tokenizer: 5,000 strings
ODD = ["<::::>", "[CLS]", "[SEP]", "[UNK]", "<s>", "</s>", "<pad>", "<mask>", "<|endoftext|>", "##", "'ll", " ", "  ",
       "\t\n", "\r\n", "😀", "\u0301", "\x00", "ﬁ"]


def text_from_bytes(data: bytes) -> str:
    """Hypothesis's bytes as text, 3 bytes a piece: the first picks the kind (ASCII half the time, else one of ODD,
    any BMP character, an astral one, or a lone surrogate), the other two which one. Drawing bytes is ~10x faster
    than hypothesis's own text strategies, and shrinks the same way (towards spaces)."""
    pieces = []
    for kind, a, b in zip(data[::3], data[1::3], data[2::3]):
        kind, number = kind % 8, a << 8 | b
        pieces.append(chr(32 + number % 95) if kind < 4 else ODD[number % len(ODD)] if kind == 4 else chr(number)
                      if kind == 5 else chr(0x10000 + number) if kind == 6 else chr(0xD800 + number % 0x800))
    return "".join(pieces)


anything = st.binary(max_size=60).map(text_from_bytes)
longer = st.binary(min_size=24, max_size=120).map(text_from_bytes)  # 8-40 pieces: hypothesis keeps `anything` short
plain = st.text(st.sampled_from("abcdefghij0123  "), max_size=30)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)  # the same strings every run: a failure here is reproducible, never flaky


@pytest.fixture(scope="module")
def wordpiece(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def sentencepiece():
    corpus = ["abcdefghij 0123 " * 3, "a b c d e f g h i j", "jihgfedcba 3210", "bad cafe 12 fig hide jab"] * 10
    return BertGenerationTokenizer.train(corpus, vocab_size=60, hard_vocab_limit=False, character_coverage=1.0)


@pytest.fixture(scope="module")
def byte_level_bpe(tmp_path_factory, wikisplit_rows):
    """GPT2Tokenizer and RobertaTokenizer on a 2,000-token BPE, with transformers' two on the same files."""
    transformers = pytest.importorskip("transformers")
    folder = train_bpe([text for row in wikisplit_rows[:2000] for text in row], tmp_path_factory.mktemp("bpe"), 2000)
    return [(ours.from_pretrained(folder), theirs.from_pretrained(str(folder))) for ours, theirs in
            ((GPT2Tokenizer, transformers.GPT2Tokenizer), (RobertaTokenizer, transformers.RobertaTokenizer))]


def has_lone_surrogate(text):
    return any("\ud800" <= c <= "\udfff" for c in text)


def check_batch(tokenizer, texts):
    """No crash; ids inside the vocabulary; decoding is stable from the second round trip on."""
    for ids in tokenizer(texts)["input_ids"]:
        assert all(0 <= i < len(tokenizer) for i in ids)
        round_trip = lambda text: tokenizer.decode(tokenizer.encode(text, add_special_tokens=False))
        once = round_trip(tokenizer.decode(ids))
        assert round_trip(once) == once


@FUZZ
@given(st.lists(anything, min_size=BATCH, max_size=BATCH))
def test_wordpiece_takes_any_text(wordpiece, texts):
    check_batch(wordpiece, texts)


@FUZZ
@given(st.lists(anything, min_size=BATCH, max_size=BATCH))
def test_sentencepiece_takes_any_text_and_names_lone_surrogates(sentencepiece, texts):
    for text in filter(has_lone_surrogate, texts):
        with pytest.raises(ValueError, match="lone surrogate"):
            sentencepiece(text)
    check_batch(sentencepiece, [text for text in texts if not has_lone_surrogate(text)] or [""])


@FUZZ
@given(st.lists(longer, min_size=BATCH, max_size=BATCH))
def test_byte_level_bpe_gives_any_text_back_exactly_with_the_ids_of_transformers(byte_level_bpe, texts):
    for ours, theirs in byte_level_bpe:
        for text in filter(has_lone_surrogate, texts):
            with pytest.raises(ValueError, match="lone surrogate"):
                ours(text)
        texts = [text for text in texts if not has_lone_surrogate(text)] or [""]
        ids = ours(texts, add_special_tokens=False)["input_ids"]
        assert all(0 <= i < len(ours) for row in ids for i in row) and ours.batch_decode(ids) == texts
        known = [text for text in texts if rust_knows(text)] or [""]  # Unicode 17.0: see tokenizer_bpe
        assert ours(known)["input_ids"] == theirs(known)["input_ids"]


@FUZZ
@given(st.lists(plain, min_size=BATCH, max_size=BATCH))
def test_text_the_vocabularies_can_spell_round_trips(wordpiece, sentencepiece, texts):
    expected = [" ".join(text.split()) for text in texts]
    assert wordpiece.batch_decode(wordpiece(texts, add_special_tokens=False)["input_ids"]) == expected
    assert sentencepiece.batch_decode(sentencepiece(texts)["input_ids"]) == expected
