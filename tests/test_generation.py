"""generate(): greedy, beam search and sampling pick the same tokens as transformers' generate with the same weights,
the key/value cache changes nothing but speed, and bad settings fail with a clear message.

Random-weight models put many tokens within float noise of each other. The small models here are made "lively"
(weights x10, so logits spread over several nats, plus an end-token bias so hypotheses finish at different steps);
the seeds used were checked to have no near-ties. Beam scores must agree within 1e-4.
"""
import pytest
import torch
import transformers

import bertgen_mini as bg
from bertgen_mini.logits_processors import ban_repeated_ngrams, keep_top_k, keep_top_p
from reference import hf_twin, small_pair

SMALL_IDS = dict(decoder_start_token_id=2, pad_token_id=0, eos_token_id=1)
BERT_IDS = dict(decoder_start_token_id=101, pad_token_id=0, eos_token_id=102)
BEAM_SETTINGS = [
    dict(num_beams=3),
    dict(num_beams=3, no_repeat_ngram_size=2),
    dict(num_beams=4, length_penalty=2.0, early_stopping=True, num_return_sequences=2),
    dict(num_beams=3, length_penalty=-1.0, early_stopping="never"),
    dict(num_beams=3, length_penalty=0.5, early_stopping="never", min_new_tokens=4),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: extra threads only add contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lively_pair(seed):
    model = small_pair(seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10.0)
        model.decoder.lm_head.bias[SMALL_IDS["eos_token_id"]] += 1.5
    return model


def small_batch(seed):
    """(4, 9) random sources of lengths 9, 4, 9, 6 (right-padded)."""
    ids = torch.randint(3, 101, (4, 9), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, 4:], mask[3, 6:] = 0, 0
    return ids.masked_fill(mask == 0, 0), mask


def hf_generate(twin, ids, mask, **settings):
    """transformers' generate with every default we rely on made explicit."""
    settings.setdefault("do_sample", False)
    return twin.generate(input_ids=ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True,
                         **settings)


def padded_like_ours(sequences, eos, pad, prompt_len=1):
    """transformers' beam search fills ended hypotheses with the end token when pad_token_id is 0 (it tests the
    pad id for truth); we fill with pad. Rewrite everything after a row's first end token as pad."""
    generated = sequences[:, prompt_len:]
    ended = (generated == eos).long()
    after = (ended.cumsum(dim=1) - ended) > 0
    return torch.cat([sequences[:, :prompt_len], generated.masked_fill(after, pad)], dim=1)


def assert_same_generation(ours, theirs, ids):
    expected = padded_like_ours(theirs.sequences, ids["eos_token_id"], ids["pad_token_id"])
    assert torch.equal(ours.sequences, expected), f"\nours:\n{ours.sequences}\ntransformers:\n{expected}"
    if ours.sequences_scores is not None:
        torch.testing.assert_close(ours.sequences_scores, theirs.sequences_scores, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------- MiniLM bert2bert
@pytest.fixture(scope="module")
def minilm_pair(minilm_dir):
    model = bg.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir, verbose=False).eval()
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = 101, 0, 102
    return model, hf_twin(model).eval()


@pytest.fixture(scope="module")
def wikisplit_batch(minilm_dir, wikisplit_rows):
    """Four WikiSplit sources of different lengths, right-padded."""
    tokenizer = transformers.BertTokenizer(str(minilm_dir / "vocab.txt"))
    sources = [wikisplit_rows[i][0] for i in (0, 1, 2, 5)]
    batch = tokenizer(sources, return_tensors="pt", padding=True)
    assert len(set(batch.attention_mask.sum(1).tolist())) == 4
    return batch.input_ids, batch.attention_mask


# Untrained cross-attention makes MiniLM bert2bert repeat [CLS]; n-gram blocking and a minimum length make it
# produce varied tokens, so those settings test more than the repetition.
MINILM_SETTINGS = [
    dict(num_beams=1),
    dict(num_beams=1, no_repeat_ngram_size=2),
    dict(num_beams=4),
    dict(num_beams=4, no_repeat_ngram_size=2, length_penalty=2.0, early_stopping=True),
    dict(num_beams=3, no_repeat_ngram_size=3, length_penalty=0.5, early_stopping="never", num_return_sequences=2),
]


@pytest.mark.parametrize("settings", MINILM_SETTINGS, ids=str)
def test_minilm_generation_matches_transformers(minilm_pair, wikisplit_batch, settings):
    model, twin = minilm_pair
    ids, mask = wikisplit_batch
    ours = model.generate(ids, mask, max_new_tokens=12, return_dict_in_generate=True, **settings)
    assert_same_generation(ours, hf_generate(twin, ids, mask, max_new_tokens=12, **BERT_IDS, **settings), BERT_IDS)


@pytest.mark.parametrize("settings", [dict(num_beams=1), dict(num_beams=4)], ids=str)
def test_minilm_cached_and_uncached_decoding_give_the_same_tokens(minilm_pair, wikisplit_batch, settings):
    model, _ = minilm_pair
    ids, mask = wikisplit_batch
    run = dict(max_new_tokens=10, no_repeat_ngram_size=2, **settings)
    cached, uncached = model.generate(ids, mask, use_cache=True, **run), model.generate(ids, mask, use_cache=False, **run)
    assert torch.equal(cached, uncached)


def test_minilm_config_ids_are_used_and_output_starts_with_the_start_token(minilm_pair, wikisplit_batch):
    model, _ = minilm_pair
    ids, mask = wikisplit_batch
    out = model.generate(ids[:2], mask[:2], max_new_tokens=3)
    assert out.shape == (2, 4) and (out[:, 0] == 101).all()


# ---------------------------------------------------------------------------------------------- random small models
@pytest.mark.parametrize("seed", [0, 1, 3])
@pytest.mark.parametrize("settings", [dict(num_beams=1), dict(num_beams=1, min_new_tokens=3)] + BEAM_SETTINGS, ids=str)
def test_small_model_generation_matches_transformers(seed, settings):
    model = lively_pair(seed)
    ids, mask = small_batch(seed)
    ours = model.generate(ids, mask, max_new_tokens=12, return_dict_in_generate=True, **SMALL_IDS, **settings)
    theirs = hf_generate(hf_twin(model), ids, mask, max_new_tokens=12, **SMALL_IDS, **settings)
    assert_same_generation(ours, theirs, SMALL_IDS)


@pytest.mark.parametrize("settings", [dict(num_beams=1), dict(num_beams=3, no_repeat_ngram_size=2)], ids=str)
def test_small_model_cached_and_uncached_decoding_give_the_same_tokens(settings):
    model = lively_pair(3)
    ids, mask = small_batch(3)
    run = dict(max_new_tokens=12, **SMALL_IDS, **settings)
    assert torch.equal(model.generate(ids, mask, **run), model.generate(ids, mask, use_cache=False, **run))


def test_finished_rows_are_padded_and_min_new_tokens_holds_back_the_end_token():
    model = lively_pair(1)
    ids, mask = small_batch(1)
    out = model.generate(ids, mask, max_new_tokens=12, **SMALL_IDS)
    ends = (out == 1).int().argmax(dim=1)
    assert (ends > 0).any(), "this seed should end some rows early"
    for row, end in zip(out, ends.tolist()):
        if end:
            assert (row[end + 1:] == 0).all()
    later = model.generate(ids, mask, max_new_tokens=12, min_new_tokens=5, **SMALL_IDS)
    assert not (later[:, 1:6] == 1).any()


def test_scores_and_cross_attentions_match_transformers():
    model = lively_pair(0)
    ids, mask = small_batch(0)
    twin = hf_twin(model)  # eager attention: it returns attention probabilities
    ours = model.generate(ids, mask, max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
                          output_attentions=True, **SMALL_IDS)
    theirs = hf_generate(twin, ids, mask, max_new_tokens=6, output_attentions=True, **SMALL_IDS)
    assert len(ours.scores) == len(theirs.scores)
    for a, b in zip(ours.scores, theirs.scores):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    steps = ours.sequences.shape[1] - 1
    for layer, probs in enumerate(ours.cross_attentions):
        assert probs.shape == (4, model.decoder.config.num_attention_heads, steps, ids.shape[1])
        expected = torch.cat([step[layer] for step in theirs.cross_attentions], dim=2)  # steps of (B, nh, 1, S)
        live = (probs.sum(dim=-1) > 0)[:, :, :, None]  # ours zeroes the rows after a row has ended
        torch.testing.assert_close(probs, expected * live, atol=1e-5, rtol=1e-4)
        assert (probs[..., mask[:, None, None, :].expand_as(probs) == 0] == 0).all()  # padding gets nothing


def test_beam_search_returns_step_scores_and_cross_attentions_of_the_returned_beams():
    model = lively_pair(3)
    ids, mask = small_batch(3)
    out = model.generate(ids, mask, max_new_tokens=8, num_beams=3, num_return_sequences=2, return_dict_in_generate=True,
                         output_scores=True, output_attentions=True, **SMALL_IDS)
    assert out.sequences.shape[0] == 8 and out.sequences_scores.shape == (8,)
    assert out.scores[0].shape == (4 * 3, model.decoder.config.vocab_size)
    probs = out.cross_attentions[0]
    assert probs.shape == (8, 4, out.sequences.shape[1] - 1, 9)
    assert torch.allclose(probs[:, :, 0].sum(-1), torch.ones(8, 4))  # the first step always attends


def test_lone_decoder_continues_a_prompt_like_transformers():
    torch.manual_seed(0)
    config = bg.BertGenerationConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64, is_decoder=True,
                                     eos_token_id=1, pad_token_id=0)
    decoder = bg.BertGenerationDecoder(config).eval()
    with torch.no_grad():
        decoder.bert.embeddings.word_embeddings.weight.mul_(10.0)
    prompt = torch.tensor([[5, 17, 40], [9, 9, 63]])
    twin = hf_twin(decoder)
    for settings in (dict(num_beams=1), dict(num_beams=3, no_repeat_ngram_size=2)):
        ours = decoder.generate(prompt, max_new_tokens=8, **settings)
        theirs = twin.generate(input_ids=prompt, max_new_tokens=8, do_sample=False, eos_token_id=1, pad_token_id=0,
                               **settings)
        assert torch.equal(ours, padded_like_ours(theirs, 1, 0, prompt_len=3))
    started = decoder.generate(max_new_tokens=4, decoder_start_token_id=7)
    assert started.shape == (1, 5) and started[0, 0] == 7
    with pytest.raises(TypeError, match="LongTensor"):  # a list prompt: the clear error, not an AttributeError
        decoder.generate([[5, 17, 40]], max_new_tokens=2)


# ---------------------------------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_with_a_seed_or_generator():
    model = lively_pair(0)
    ids, mask = small_batch(0)
    run = dict(do_sample=True, max_new_tokens=10, top_k=0, num_return_sequences=3, **SMALL_IDS)
    first = model.generate(ids, mask, seed=123, **run)
    assert first.shape[0] == 12
    assert torch.equal(first, model.generate(ids, mask, seed=123, **run))
    assert torch.equal(first, model.generate(ids, mask, generator=torch.Generator().manual_seed(123), **run))
    assert not torch.equal(first, model.generate(ids, mask, seed=7, **run))


def test_sampling_matches_transformers_under_the_same_global_seed():
    model = lively_pair(1)
    ids, mask = small_batch(1)
    twin = hf_twin(model)  # built first: building draws from the global random stream
    run = dict(do_sample=True, max_new_tokens=10, temperature=0.7, top_k=20, top_p=0.9, **SMALL_IDS)
    torch.manual_seed(5)
    ours = model.generate(ids, mask, **run)
    torch.manual_seed(5)
    theirs = twin.generate(input_ids=ids, attention_mask=mask, **run)
    assert torch.equal(ours, padded_like_ours(theirs, 1, 0))


@pytest.mark.parametrize("filters", [dict(top_k=3), dict(top_p=0.5), dict(top_k=5, top_p=0.8, temperature=2.0)],
                         ids=str)
@pytest.mark.parametrize("num_beams", [1, 3])
def test_top_k_and_top_p_never_emit_a_token_outside_the_allowed_set(filters, num_beams):
    model = lively_pair(3)
    ids, mask = small_batch(3)
    out = model.generate(ids, mask, do_sample=True, seed=0, max_new_tokens=10, num_beams=num_beams, output_scores=True,
                         return_dict_in_generate=True, **SMALL_IDS, **{"top_k": 0, **filters})
    for scores in out.scores:  # each step's processed scores: what the filters allow is finite
        allowed = scores.isfinite().sum(dim=-1)
        if "top_k" in filters:
            assert (allowed <= max(filters["top_k"], 2 if num_beams > 1 else 1)).all()
    if num_beams == 1:
        chosen = out.sequences[:, 1:len(out.scores) + 1]
        picked = torch.stack(out.scores, dim=1).gather(2, chosen[..., None])  # (B, steps, 1)
        live = padded_like_ours(out.sequences, 1, 0)[:, 1:len(out.scores) + 1] != 0
        assert picked[live].isfinite().all()


def test_filters_agree_with_transformers_warpers():
    scores = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3
    for k, keep in ((1, 1), (7, 1), (1, 2)):
        expected = transformers.TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, scores)
        assert torch.equal(keep_top_k(scores, k, keep), expected)
    for p, keep in ((0.3, 1), (0.9, 1), (0.05, 2)):
        expected = transformers.TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, scores)
        assert torch.equal(keep_top_p(scores, p, keep), expected)
    history = torch.randint(0, 5, (6, 12), generator=torch.Generator().manual_seed(1))
    for n in (1, 2, 3):
        expected = transformers.NoRepeatNGramLogitsProcessor(n)(history, scores[:, :5])
        assert torch.equal(ban_repeated_ngrams(scores[:, :5], history, n), expected)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad, message", [
    (dict(input_ids=torch.zeros(1, 0, dtype=torch.long)), "non-empty"),
    (dict(input_ids=torch.ones(2, 70, dtype=torch.long)), "Truncate"),
    (dict(max_new_tokens=80), "fewer new tokens"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences=3 > num_beams=2"),
    (dict(num_return_sequences=2), "do_sample=True"),
    (dict(attention_mask=torch.tensor([[1, 1, 1], [0, 0, 0]])), "empty"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(do_sample=True, temperature=0.0), "temperature"),
    (dict(max_new_tokens=0), "at least one"),
])
def test_bad_requests_fail_with_a_clear_message(bad, message):
    model = small_pair()
    request = {"input_ids": torch.tensor([[5, 6, 7], [8, 9, 10]]), "max_new_tokens": 4, **bad}
    with pytest.raises(ValueError, match=message):
        model.generate(**request)


def test_a_missing_start_token_is_a_clear_error():
    model = small_pair()
    model.config.decoder_start_token_id = None
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2)
    assert model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, decoder_start_token_id=4)[0, 0] == 4
