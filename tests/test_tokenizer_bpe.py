"""GPT2Tokenizer and RobertaTokenizer (pure-Python byte-level BPE) give exactly the ids and text of transformers'
Rust-backed GPT2Tokenizer and RobertaTokenizer: on every WikiSplit text, on a fuzz set, for pairs, after saving and
loading either way; and the files they read are checked at the door."""
import json
import random
import shutil
import unicodedata

import pytest
import regex

from bertgen_mini.stand_ins import train_byte_level_bpe
from bertgen_mini.tokenizer_bpe import BYTE_TO_CHAR, GPT2Tokenizer, RobertaTokenizer
from bertgen_mini.tokenizer_wordpiece import BertTokenizer

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>")  # RoBERTa's ids 0-3, then GPT-2's token
CLASSES = {"gpt2": (GPT2Tokenizer, transformers.GPT2Tokenizer),
           "roberta": (RobertaTokenizer, transformers.RobertaTokenizer)}
HARD_CASES = [
    "", " ", "   ", "\t\n\r\n", "Hello world", " Hello world", "Hello world  ", "  lead and trail  ",
    "tab\there\n\nnew\r\nline", "I'm don't he'll we'd they've you're it's O'Neil 'quoted' ''s", "THEY'RE I'M",
    "😀 👍🏽 👨‍👩‍👧 🇫🇷 emoji", "naïve café résumé a\u0300 e\u0301 \u0301\u0301", "日本語のテキスト 中文 한국어",
    "שלום עולם مرحبا", "\u202eevil\u202c zero\u200bwidth no\u00a0break\u2028line\u3000ideo\x85nel",
    "NUL\x00 bell\x07 esc\x1b del\x7f \x1c\x1d\x1e\x1f fffd\ufffd", "$5.00 + 3^2 = 14 ~ @home #tag 1,234.5 ½ ①",
    "<s>a</s> <pad><unk> <mask>x<mask> <|endoftext|> y<|endoftext|>", "a <mask> b  <mask>\t<mask>\n", "<s<s>>",
    "x" * 300, "ab" * 100, "a1b2c3 " * 20, "𝔣𝔯𝔞𝔨𝔱𝔲𝔯 ℌ ﬁ ＡＢＣ", "<::::>", "a . <::::> b .", "<mask<mask>>",
]
PIECES = ["the", " the", "The", "word", " 42", "3.14", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", " ", "  ",
          "\t", "\n", "\r\n", "\u3000", "\xa0", "\u2028", ".", ",", "!?", "--", "😀", "👍🏽", "\u200d", "🇫🇷", "é",
          "e\u0301", "ß", "中", "ש", "ع", "\x00", "\x07", "\x1c", "\x7f", "\x85", "\ufeff", "<s>", "</s>", "<pad>",
          "<unk>", "<mask>", "<|endoftext|>", "<::::>"]
NEWER_LETTERS = regex.compile(r"[\p{L}\p{N}]")


def train_bpe(texts, folder, vocab_size=3000, special_tokens=SPECIALS):
    """A byte-level BPE trained on `texts` by the `tokenizers` package (transformers' Rust backend), saved in `folder`
    as vocab.json + merges.txt; returns the folder."""
    return train_byte_level_bpe(texts, folder, vocab_size, special_tokens)


def rust_knows(text):
    """False for text holding a code point that Python's Unicode tables leave unassigned but the `regex` package calls
    a letter or digit: the known difference in tokenizer_bpe's docstring (Unicode 17.0) lies among them."""
    return not any(unicodedata.category(c) == "Cn" and NEWER_LETTERS.match(c) for c in text)


def fuzz_texts(count=400, seed=0):
    """Hard cases plus `count` seeded strings of 1-12 pieces: words, contractions, whitespace runs, emoji, controls,
    special-token strings, and any code point but surrogates and the known difference."""
    rng = random.Random(seed)
    texts = list(HARD_CASES)
    while len(texts) < len(HARD_CASES) + count:
        pieces = [rng.choice(PIECES) if rng.random() < 0.7 else chr(rng.choice([rng.randrange(0x20, 0x3000),
                                                                                 rng.randrange(0x10000, 0x30000)]))
                  for _ in range(rng.randint(1, 12))]
        text = "".join(pieces)
        if rust_knows(text) and not any("\ud800" <= c <= "\udfff" for c in text):
            texts.append(text)
    return texts


@pytest.fixture(scope="session")
def bpe_dir(tmp_path_factory, wikisplit_rows):
    """A 3,000-token byte-level BPE trained once per session on tune (both columns), with RoBERTa's and GPT-2's
    special tokens in its vocabulary."""
    return train_bpe([text for row in wikisplit_rows[:5000] for text in row], tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="session")
def wikisplit_texts(wikisplit_rows):
    return [text for row in wikisplit_rows for text in row]


def pair(name, folder, **settings):
    ours, theirs = CLASSES[name]
    return ours.from_pretrained(folder, **settings), theirs.from_pretrained(str(folder), **settings)


def assert_same(ours, theirs, texts, pairs=None, every=1):
    """Ids, decoded text and (for every `every`-th text) decoded text without specials all equal transformers'."""
    ids = theirs(texts, pairs)["input_ids"] if pairs else theirs(texts)["input_ids"]
    mine = ours(texts, pairs)["input_ids"]
    wrong = [i for i in range(len(texts)) if mine[i] != ids[i]]
    first = wrong[0] if wrong else None
    assert not wrong, (f"{len(wrong)} of {len(texts)} differ, first {texts[first]!r}: "
                       f"{ours.convert_ids_to_tokens(mine[first])} against {theirs.convert_ids_to_tokens(ids[first])}")
    assert ours.batch_decode(ids) == theirs.batch_decode(ids)
    sample = ids[::every]
    assert ours.batch_decode(sample, skip_special_tokens=True) == theirs.batch_decode(sample, skip_special_tokens=True)


# ---- the same ids and text as transformers -------------------------------------------------------------------------

@pytest.mark.parametrize("name", CLASSES)
def test_ids_and_text_match_transformers_on_every_wikisplit_text(name, bpe_dir, wikisplit_texts):
    assert_same(*pair(name, bpe_dir), wikisplit_texts, every=10)


@pytest.mark.parametrize("add_prefix_space", [False, True])
@pytest.mark.parametrize("name", CLASSES)
def test_ids_and_text_match_transformers_on_the_fuzz_set(name, add_prefix_space, bpe_dir):
    assert_same(*pair(name, bpe_dir, add_prefix_space=add_prefix_space), fuzz_texts())


@pytest.mark.parametrize("name", CLASSES)
def test_pairs_and_their_truncation_match_transformers(name, bpe_dir):
    ours, theirs = pair(name, bpe_dir)
    firsts, seconds = fuzz_texts(60, seed=1), fuzz_texts(60, seed=2)
    assert_same(ours, theirs, firsts, seconds)
    assert ours.encode("one two", "three") == theirs("one two", "three")["input_ids"]
    first, second = "one two three four five six seven", "eight nine ten"  # 7 and 5 tokens
    for a, b in ((first, second), (second, first), (first, first)):
        for max_length in range(4, 16):  # longest_first: every way of sharing the budget
            expected = theirs(a, b, truncation=True, max_length=max_length)["input_ids"]
            assert ours(a, b, truncation=True, max_length=max_length)["input_ids"] == expected, (a, b, max_length)


@pytest.mark.parametrize("name", CLASSES)
def test_the_wikisplit_separator_added_as_one_token_matches_transformers(name, bpe_dir, wikisplit_rows):
    ours, theirs = pair(name, bpe_dir)
    assert ours.add_tokens(["<::::>"]) == theirs.add_tokens(["<::::>"]) == 1
    assert ours.convert_tokens_to_ids("<::::>") == theirs.convert_tokens_to_ids("<::::>") == len(ours) - 1 == 3000
    targets = [split for _, split in wikisplit_rows[:2000]]
    assert_same(ours, theirs, targets + HARD_CASES)


def test_bytes_cut_inside_a_character_decode_as_transformers_decodes_them(bpe_dir):
    ours, theirs = pair("gpt2", bpe_dir)
    rng = random.Random(0)
    byte_ids = [ours.convert_tokens_to_ids(char) for char in BYTE_TO_CHAR.values()]  # one id per byte
    sequences = [[rng.choice(byte_ids if rng.random() < 0.8 else range(len(ours))) for _ in range(rng.randint(1, 9))]
                 for _ in range(2000)]
    assert ours.batch_decode(sequences) == theirs.batch_decode(sequences)
    assert "\ufffd" in ours.decode([byte_ids[0xE2], byte_ids[0x82]])  # the first two bytes of "€"


def test_special_tokens_and_defaults_match_transformers(bpe_dir):
    for name in CLASSES:
        ours, theirs = pair(name, bpe_dir)
        for attribute in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
                          "bos_token_id", "eos_token_id", "unk_token_id", "sep_token_id", "pad_token_id",
                          "cls_token_id", "mask_token_id", "vocab_size", "all_special_tokens", "all_special_ids"):
            assert getattr(ours, attribute, None) == getattr(theirs, attribute), (name, attribute)
        assert len(ours) == len(theirs) and ours.get_vocab() == theirs.get_vocab()
        assert ours.convert_ids_to_tokens(7) == theirs.convert_ids_to_tokens(7)
        assert ours.convert_tokens_to_ids("not a token") == theirs.convert_tokens_to_ids("not a token")
    assert GPT2Tokenizer.from_pretrained(bpe_dir).pad_token is None  # GPT-2 has no pad token


def test_special_tokens_missing_from_the_vocabulary_get_the_ids_transformers_gives(tmp_path, wikisplit_rows):
    folder = train_bpe([text for row in wikisplit_rows[:500] for text in row], tmp_path, 600, special_tokens=())
    for name in CLASSES:
        ours, theirs = pair(name, folder)
        assert len(ours) == len(theirs) > 600 and ours.all_special_ids == theirs.all_special_ids
        assert_same(ours, theirs, ["a <mask> b </s>", "<|endoftext|>x"])


def test_gpt2_add_bos_and_eos_token_match_transformers(bpe_dir):
    ours, theirs = pair("gpt2", bpe_dir, add_bos_token=True, add_eos_token=True)
    assert_same(ours, theirs, ["one text", ""], ["and its pair", "x"])
    with pytest.raises(ValueError, match="add_bos_token=True needs a bos_token"):
        GPT2Tokenizer(bpe_dir, bos_token=None, add_bos_token=True)


# ---- the algorithm, on files small enough to read ------------------------------------------------------------------

def write_bpe(folder, tokens, merges, stand_ins=BYTE_TO_CHAR.values()):
    """vocab.json (the byte stand-ins, then `tokens`) and merges.txt (`merges`, one "left right" a line)."""
    vocab = {char: i for i, char in enumerate([*stand_ins, *tokens])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    return folder


def test_bpe_merges_the_best_ranked_pair_first_and_the_leftmost_on_ties(tmp_path):
    write_bpe(tmp_path, ["ab", "bc", "aa", "Ġa", "xy"], ["b c", "a b", "a a", "Ġ a", "x y", "x y"])
    ours, theirs = pair("gpt2", tmp_path)
    assert ours.tokenize("abc") == ["a", "bc"]  # "b c" (line 2) goes before "a b" (line 3), and takes the b
    assert ours.tokenize("aaa") == ["aa", "a"]  # the leftmost "a a" first
    assert ours.tokenize(" aaa") == ["Ġ", "aa", "a"]  # "a a" goes before "Ġ a", and no merge joins what is left
    assert ours.tokenize(" aab") == ["Ġa", "ab"]  # "a b" before "a a"; then "Ġ a" is the only pair listed
    assert ours.tokenize("ab\n") == ["ab", "Ċ"]  # a newline is a word of its own, written as its stand-in
    assert ours.merge_ranks[("x", "y")] == 5 and ours.tokenize("xy") == ["xy"]  # listed twice: the last rank counts
    assert_same(ours, theirs, ["abc", "aaa", " aaa", " aab", "ab\n", "abcabc aab", "xy", "axyb"])


def test_bytes_to_unicode_gives_every_byte_one_visible_stand_in():
    assert len(set(BYTE_TO_CHAR.values())) == 256 and all(char.isprintable() for char in BYTE_TO_CHAR.values())
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ" and BYTE_TO_CHAR[ord("a")] == "a"


def test_decode_gives_any_text_back_exactly(bpe_dir):
    tokenizer = GPT2Tokenizer.from_pretrained(bpe_dir)
    texts = fuzz_texts(200, seed=3)
    assert tokenizer.batch_decode(tokenizer(texts)["input_ids"]) == texts


def test_clean_up_tokenization_spaces_is_ignored_with_a_warning_as_in_transformers(bpe_dir):
    ours, theirs = pair("roberta", bpe_dir)
    ids = theirs("a , b . c 's")["input_ids"]
    with pytest.warns(UserWarning, match="ignores clean_up_tokenization_spaces"):
        text = ours.decode(ids, clean_up_tokenization_spaces=True)
    assert text == theirs.decode(ids, clean_up_tokenization_spaces=True) == "<s>a , b . c 's</s>"


# ---- saving and loading, both ways ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CLASSES)
def test_what_we_save_loads_in_transformers_and_what_it_saves_loads_here_with_the_same_ids(name, bpe_dir, tmp_path):
    ours_cls, theirs_cls = CLASSES[name]
    ours = ours_cls.from_pretrained(bpe_dir, add_prefix_space=True, model_max_length=64)
    ours.add_tokens(["<::::>"])
    ours.add_tokens(["[new]"], special_tokens=True)
    ours.save_pretrained(tmp_path / "ours")
    theirs = theirs_cls.from_pretrained(str(tmp_path / "ours"))
    assert theirs.add_prefix_space and theirs.model_max_length == 64 and len(theirs) == len(ours) == 3002
    texts = ["a . <::::> b [new] c", "Hello <mask> world <|endoftext|>"] + HARD_CASES
    assert_same(ours, theirs, texts)
    theirs.save_pretrained(tmp_path / "theirs")  # transformers 5 writes tokenizer.json, not vocab.json + merges.txt
    assert not (tmp_path / "theirs" / "vocab.json").exists()
    again = ours_cls.from_pretrained(tmp_path / "theirs")
    assert again.add_prefix_space and len(again) == 3002 and "[new]" in again.all_special_tokens
    assert_same(again, theirs, texts)
    assert again.get_vocab() == ours.get_vocab() and again.merge_ranks == ours.merge_ranks


def test_save_vocabulary_writes_vocab_and_merges_that_load_back(bpe_dir, tmp_path):
    ours = RobertaTokenizer.from_pretrained(bpe_dir)
    vocab, merges = ours.save_vocabulary(tmp_path, filename_prefix="x")
    assert vocab.endswith("x-vocab.json") and merges.endswith("x-merges.txt")
    again = RobertaTokenizer(vocab, merges_file=merges)
    assert again.get_vocab() == ours.get_vocab() and again.merge_ranks == ours.merge_ranks


def roberta_base_like(bpe_dir, folder, where):
    """vocab.json + merges.txt, with `<mask>` taking the spaces before it written where roberta-base-style folders
    write it: in tokenizer.json's added tokens, special_tokens_map.json, or tokenizer_config.json."""
    folder.mkdir()
    for file in ("vocab.json", "merges.txt"):
        shutil.copy(bpe_dir / file, folder)
    mask = {"content": "<mask>", "lstrip": True, "rstrip": False, "single_word": False, "normalized": False}
    if where == "tokenizer.json":
        transformers.RobertaTokenizer.from_pretrained(str(bpe_dir)).save_pretrained(str(folder))
        (folder / "tokenizer_config.json").unlink()
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        next(token for token in spec["added_tokens"] if token["content"] == "<mask>")["lstrip"] = True
        (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    elif where == "special_tokens_map.json":
        (folder / where).write_text(json.dumps({"mask_token": mask}), encoding="utf-8")
    else:
        decoder = {"4": {**mask, "rstrip": True, "special": True}}
        (folder / where).write_text(json.dumps({"added_tokens_decoder": decoder}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("where", ["tokenizer.json", "special_tokens_map.json", "tokenizer_config.json"])
def test_roberta_mask_takes_the_spaces_beside_it_as_transformers_reads_it_and_saves_it(bpe_dir, tmp_path, where):
    folder = roberta_base_like(bpe_dir, tmp_path / "in", where)
    ours, theirs = pair("roberta", folder)
    texts = ["Hello <mask> world", "a \u00a0\t<mask>b", "a\x1c<mask>", "a\u3000<mask>  c", "<s> <mask> <mask>",
             "<mask>"]
    assert_same(ours, theirs, texts)
    assert ours.tokenize("Hello <mask> world")[3] == "<mask>"  # the space before it is gone
    ours.save_pretrained(tmp_path / "out")
    assert_same(RobertaTokenizer.from_pretrained(tmp_path / "out"), theirs, texts)
    assert_same(ours, transformers.RobertaTokenizer.from_pretrained(str(tmp_path / "out")), texts)


# ---- the files are checked at the door -----------------------------------------------------------------------------

def test_vocab_ids_with_a_hole_or_a_repeat_are_refused_naming_the_file(tmp_path):
    write_bpe(tmp_path, ["ab"], ["a b"])
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    for broken, message in (({**vocab, "ab": 300}, "'ab' has id 300, but 257 tokens"),
                            ({**vocab, "ab": 5}, "both have id 5"), ({"a": "0"}, "to its id \\(an integer\\)")):
        (tmp_path / "vocab.json").write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(ValueError, match=f"vocab.json.*{message}"):
            GPT2Tokenizer(tmp_path)


@pytest.mark.parametrize("merges, message", [(["a b", "a  b"], "line 3: 'a  b' is not a merge"),
                                             (["a b", "ab c"], "line 3: the merge 'ab' \\+ 'c' needs 'abc'"),
                                             (["a x"], "line 2: the merge 'a' \\+ 'x' needs 'ax'")])
def test_bad_merges_are_refused_naming_the_line(tmp_path, merges, message):
    write_bpe(tmp_path, ["ab"], merges)
    with pytest.raises(ValueError, match=message):
        RobertaTokenizer(tmp_path)


def test_missing_files_and_other_tokenizer_json_models_say_so(tmp_path, bpe_dir):
    with pytest.raises(FileNotFoundError, match="needs vocab.json and merges.txt"):
        GPT2Tokenizer(tmp_path)
    shutil.copy(bpe_dir / "vocab.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="merges.txt does not exist"):
        GPT2Tokenizer(tmp_path)
    (tmp_path / "vocab.json").unlink()
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {}}}))
    with pytest.raises(ValueError, match="not GPT-2's byte-level BPE \\(model.type='WordPiece'"):
        GPT2Tokenizer(tmp_path)


def test_a_vocabulary_missing_a_byte_warns_and_drops_that_byte_as_transformers_does(tmp_path):
    write_bpe(tmp_path, ["a©"], ["a ©"], stand_ins=[char for byte, char in BYTE_TO_CHAR.items() if byte != 0xC3])
    with pytest.warns(UserWarning, match=r"no token for the bytes \[195\]"):
        ours = GPT2Tokenizer(tmp_path)
    assert ours.tokenize("aé") == ["a©"]  # é is C3 A9 in UTF-8: C3 is dropped before merging, A9 is ©
    assert_same(ours, transformers.GPT2Tokenizer.from_pretrained(str(tmp_path)), ["aé", "é", "\x00éa é"])


def test_lone_surrogates_and_mismatched_pairs_are_refused_with_the_fix(bpe_dir, minilm_dir):
    tokenizer = RobertaTokenizer.from_pretrained(bpe_dir)
    with pytest.raises(ValueError, match="lone surrogate '\\\\ud800'"):
        tokenizer("a\ud800b")
    with pytest.raises(ValueError, match="text_pair must match text: a str for a str, a list of 2"):
        tokenizer(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="BertTokenizer does not encode pairs of texts"):
        BertTokenizer.from_pretrained(minilm_dir)("a", "b")
