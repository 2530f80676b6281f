"""bertgen_mini.speed computes the textbook model's numbers (fp32, 1e-5) and torch.compile takes the textbook model
whole: forward, loss and backward in one graph."""
import copy
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import bertgen_mini as bg
from bertgen_mini import speed
from reference import SMALL, small_pair

TOL = dict(atol=1e-5, rtol=1e-5)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 101, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 6:], mask[1, 6:] = 0, 0  # one padded source
    labels = torch.randint(3, 101, (3, 6), generator=g)
    labels[2, 4:] = -100  # one padded target
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


def textbook_and_fast(**overrides):
    textbook = small_pair(**{**NO_DROPOUT, **overrides})
    return textbook, speed.apply(copy.deepcopy(textbook), "cpu")


def loss_logits_and_gradients(model):
    out = model(**batch())
    out.loss.backward()
    return [("loss", out.loss), ("logits", out.logits)] + [(n, p.grad) for n, p in model.named_parameters()]


def test_apply_swaps_modules_but_keeps_every_parameter_name():
    textbook, fast = textbook_and_fast()
    assert list(fast.state_dict()) == list(textbook.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), textbook.state_dict().values()))
    kinds = {type(m) for m in fast.modules()}
    assert {speed.Linear, speed.FusedLMHead, speed.FastHeadProjections, speed.ActivationThenDown} <= kinds
    assert nn.Linear not in kinds and nn.Dropout not in kinds
    assert fast.decoder.lm_head.decoder.weight is fast.decoder.bert.embeddings.word_embeddings.weight  # still tied


def test_apply_leaves_a_cuda_model_textbook():
    model = small_pair()
    kinds = {type(m) for m in model.modules()}
    assert {type(m) for m in speed.apply(model, "cuda").modules()} == kinds


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fast_path_gives_the_textbook_loss_logits_and_gradients(mode):
    textbook, fast = textbook_and_fast()
    for (name, want), (_, got) in zip(loss_logits_and_gradients(textbook.train(mode == "train")),
                                      loss_logits_and_gradients(fast.train(mode == "train")), strict=True):
        torch.testing.assert_close(got, want, **TOL, msg=name)


def test_fast_path_on_a_shared_model_gives_the_textbook_gradients():
    textbook = bg.EncoderDecoderModel(encoder=small_pair(**NO_DROPOUT).encoder, decoder=small_pair(**NO_DROPOUT).decoder,
                                      tie_encoder_decoder=True)
    textbook.config.decoder_start_token_id, textbook.config.pad_token_id = 2, 0
    fast = speed.apply(copy.deepcopy(textbook), "cpu")
    for (name, want), (_, got) in zip(loss_logits_and_gradients(textbook.train()),
                                      loss_logits_and_gradients(fast.train()), strict=True):
        torch.testing.assert_close(got, want, **TOL, msg=name)


@pytest.mark.parametrize("sources", [1, 2, 3])  # one row a step: the small maps split among threads; more: packed
@pytest.mark.parametrize("settings", [dict(), dict(num_beams=3), dict(num_beams=2, use_cache=False)])
def test_fast_path_generates_the_textbook_tokens(sources, settings):
    textbook, fast = textbook_and_fast()
    ids, mask = batch()["input_ids"][:sources], batch()["attention_mask"][:sources]
    kw = dict(max_new_tokens=8, min_new_tokens=8, **settings)
    assert torch.equal(fast.eval().generate(ids, mask, **kw), textbook.eval().generate(ids, mask, **kw))


def test_packed_weight_follows_the_weight_and_train_frees_it():
    torch.manual_seed(0)
    layer, x = speed.apply(nn.Sequential(nn.Linear(24, 100)), "cpu")[0], torch.randn(8, 24)
    if not speed.ONEDNN:
        pytest.skip("this torch build has no oneDNN")
    with torch.no_grad():
        layer(x)
        first = layer.packed_weight()
        assert layer.packed_weight() is first  # kept between calls
        layer.weight.mul_(2)  # as an optimizer step or a checkpoint load would
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), **TOL)
        assert layer.packed_weight() is not first
    assert copy.deepcopy(layer)._packed is None  # a copy packs its own weight when it needs to
    assert layer.eval()._packed is not None and layer.train()._packed is None


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_one_row_split_among_the_threads_gives_the_textbook_product(threads, bias):
    """One row through a small map is one batched product over slices of the weight's rows, one a thread; with
    outputs the threads do not divide (100 on 3), or one thread, it stays F.linear. The slices are views: they
    follow an in-place update of the weight, and a moved weight gets new ones."""
    torch.manual_seed(0)
    layer = speed.apply(nn.Sequential(nn.Linear(24, 100, bias=bias)), "cpu")[0]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            for x in (torch.randn(24), torch.randn(1, 1, 24)):
                torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), **TOL)
            assert (layer.split_weight() is None) == (threads != 2)
            layer.weight.mul_(2)  # as an optimizer step would
            torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), **TOL)
            layer.weight.data = layer.weight.data.clone()  # as moving the model to another device or dtype would
            if bias:
                layer.bias.data = layer.bias.data + 1
            torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), **TOL)
    finally:
        torch.set_num_threads(before)
    assert copy.deepcopy(layer)._split is None


def test_dropout_drops_about_p_and_keeps_the_expected_value():
    torch.manual_seed(0)
    drop = speed.Dropout(0.25)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01 and abs(y.mean().item() - 1.0) < 0.01
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)
    assert drop.eval()(x) is x
    kept = speed.Dropout(0.1).train()(torch.ones(1000))  # p taken to a multiple of 2^-16, the scale from that same p
    assert set(kept.unique().tolist()) <= {0.0, torch.tensor(2 ** 16 / (2 ** 16 - 6554)).item()}
    assert speed.Dropout(1.0).train()(x).abs().sum() == 0


def plain_loss(hidden, weight, bias, labels):
    return F.cross_entropy(F.linear(hidden, weight, bias), labels, ignore_index=-100)


@pytest.mark.parametrize("slice_min", [7, 64])
def test_fused_loss_and_gradients_equal_autograd(monkeypatch, slice_min):
    monkeypatch.setattr(speed, "SLICE_ELEMENTS", 1)  # slices of slice_min columns: 7 does not divide the 50 words
    monkeypatch.setattr(speed, "SLICE_MIN", slice_min)
    torch.manual_seed(0)
    leaves = [torch.randn(10, 8), torch.randn(50, 8), torch.randn(50)]
    labels = torch.tensor([1, 2, -100, 4, 49, 0, -100, 7, 8, 9])
    results = []
    for compute in (plain_loss, lambda *a: speed.LinearCrossEntropy.apply(*a)[0]):
        inputs = [t.clone().requires_grad_() for t in leaves]
        loss = compute(*inputs, labels)
        loss.backward()
        results.append([loss.detach()] + [t.grad for t in inputs])
    for want, got in zip(*results):
        torch.testing.assert_close(got, want, **TOL)


def test_fused_loss_under_bf16_autocast_and_a_second_backward_fails_loudly():
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(12, 16), (torch.randn(40, 16) * 0.3).requires_grad_(), torch.zeros(40)
    labels = torch.randint(0, 40, (12,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = speed.LinearCrossEntropy.apply(hidden.bfloat16(), weight, bias, labels)
    torch.autograd.grad(loss, weight, retain_graph=True)
    assert logits.dtype == torch.bfloat16 and abs(loss.item() - plain_loss(hidden, weight, bias, labels).item()) < 0.05
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # its gradients were scaled in place
        torch.autograd.grad(loss, weight)


def test_compiled_textbook_model_trains_as_one_graph():
    """fullgraph=True fails on any graph break; aot_eager traces forward and backward as inductor would, without
    a C++ compiler and in seconds (inductor takes about a minute for this tiny model on two cores)."""
    torch._dynamo.reset()
    model = small_pair(**NO_DROPOUT).train()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    got = compiled(**batch())
    got_grads = torch.autograd.grad(got.loss, list(model.parameters()))
    want = model(**batch())
    want_grads = torch.autograd.grad(want.loss, list(model.parameters()))
    torch.testing.assert_close(got.loss, want.loss, **TOL)
    torch.testing.assert_close(got.logits, want.logits, **TOL)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, **TOL)


def test_compile_without_a_working_backend_warns_once_and_runs_eager(monkeypatch):
    monkeypatch.setattr(speed, "compiler_works", lambda backend="inductor": False)
    model = bg.BertGenerationEncoder(bg.BertGenerationConfig(**SMALL))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert speed.compile(model) is model
    assert len(caught) == 1 and "running eager" in str(caught[0].message)


def test_trainer_switches_speed_on_in_one_place_and_compile_falls_back_to_eager(tmp_path, monkeypatch):
    from bertgen_mini.data import collate
    from bertgen_mini.train import Trainer, TrainConfig
    ids = batch()
    rows = [(s[m.bool()].tolist(), [t for t in l.tolist() if t != -100])
            for s, m, l in zip(ids["input_ids"], ids["attention_mask"], ids["labels"])]
    batches = [collate([r[0] for r in rows], [r[1] for r in rows], 0)]
    settings = dict(steps=1, batch_size=3, warmup_steps=1, progress=False)
    fast = small_pair()
    Trainer(fast, batches, TrainConfig(output_dir=str(tmp_path / "fast"), **settings))
    assert isinstance(fast.decoder.lm_head, speed.FusedLMHead)
    monkeypatch.setattr(speed, "compiler_works", lambda backend="inductor": False)
    textbook = small_pair()
    with pytest.warns(UserWarning, match="running eager"):
        trainer = Trainer(textbook, batches, TrainConfig(output_dir=str(tmp_path / "eager"), compile=True, **settings))
    trainer.train()
    assert trainer.step == 1 and type(textbook.decoder.lm_head) is not speed.FusedLMHead


def test_training_attention_with_dropout_gives_the_textbook_numbers_from_the_same_draws():
    """The fast block scales q and v instead of the maps, and adds the dropped output with its scale: the textbook
    order, with the same coin flips in the same order, gives the same numbers and gradients."""
    from bertgen_mini.attention import Attention
    torch.manual_seed(0)
    config = bg.BertGenerationConfig(**SMALL, attention_probs_dropout_prob=0.3, hidden_dropout_prob=0.2)
    block = speed.apply(Attention(config, is_cross_attention=True), "cpu").train()
    x, context = torch.randn(2, 5, 32, requires_grad=True), torch.randn(2, 7, 32, requires_grad=True)
    mask = torch.zeros(2, 1, 1, 7)
    mask[1, ..., 5:] = torch.finfo(torch.float32).min  # two padded source positions
    torch.manual_seed(1)
    got, got_probs = block(x, mask, context=context, output_attentions=True)
    heads, output = block.self, block.output
    q, k, v = (heads.split_heads(F.linear(t, m.weight, m.bias))
               for t, m in ((x, heads.query), (context, heads.key), (context, heads.value)))
    torch.manual_seed(1)  # the same draws, in the same order: the maps' dropout, then the output's
    probs = (q @ k.transpose(-2, -1) / heads.head_size ** 0.5 + mask).softmax(-1)
    mixed = (heads.dropout(probs) @ v).transpose(1, 2).reshape(2, 5, 32)
    want = output.LayerNorm(output.dropout(F.linear(mixed, output.dense.weight, output.dense.bias)) + x)
    torch.testing.assert_close(got_probs, probs, **TOL)
    torch.testing.assert_close(got, want, **TOL)
    g = torch.randn_like(want)
    params = (x, context, heads.query.weight, heads.value.weight, heads.value.bias)
    for a, b in zip(torch.autograd.grad(got, params, g, retain_graph=True), torch.autograd.grad(want, params, g)):
        torch.testing.assert_close(a, b, **TOL)
