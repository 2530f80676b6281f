"""The fused LM-head loss (bertgen_mini.loss) against plain autograd, in fp32 and under bf16 autocast."""
import pytest
import torch
import torch.nn.functional as F

from bertgen_mini import loss as fused


def plain(hidden, weight, bias, labels):
    return F.cross_entropy(F.linear(hidden, weight, bias).float(), labels, ignore_index=-100)


@pytest.mark.parametrize("chunk_rows", [3, 64])
def test_fused_loss_and_gradients_equal_autograd_in_fp32(monkeypatch, chunk_rows):
    monkeypatch.setattr(fused, "CHUNK_ROWS", chunk_rows)  # 3: chunks that do not divide the 10 rows
    torch.manual_seed(0)
    leaves = [torch.randn(10, 8), torch.randn(50, 8), torch.randn(50)]
    labels = torch.tensor([1, 2, -100, 4, 49, 0, -100, 7, 8, 9])
    grads = []
    for compute in (plain, lambda *a: fused.LinearCrossEntropy.apply(*a)[0]):
        inputs = [t.clone().requires_grad_() for t in leaves]
        loss = compute(*inputs, labels)
        loss.backward()
        grads.append([loss.detach()] + [t.grad for t in inputs])
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fused_loss_under_bf16_autocast_matches_fp32_loosely():
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(12, 16), torch.randn(40, 16) * 0.3, torch.zeros(40)
    labels = torch.randint(0, 40, (12,))
    want = plain(hidden, weight, bias, labels)
    weight.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = fused.LinearCrossEntropy.apply(hidden.bfloat16(), weight, bias, labels)
    loss.backward()
    assert logits.dtype == torch.bfloat16 and weight.grad.dtype == torch.float32
    assert abs(loss.item() - want.item()) < 0.05 and torch.isfinite(weight.grad).all()


def test_fused_loss_scales_by_the_upstream_gradient_and_refuses_a_second_backward():
    """Backward scales the gradients computed in forward in place: right once, and loud if run again."""
    torch.manual_seed(0)
    hidden, weight, bias = (torch.randn(6, 8, requires_grad=True), torch.randn(30, 8, requires_grad=True),
                            torch.randn(30, requires_grad=True))
    labels = torch.tensor([1, 2, -100, 4, 29, 0])
    want = torch.autograd.grad(3 * plain(hidden, weight, bias, labels), (hidden, weight, bias))
    loss, _ = fused.LinearCrossEntropy.apply(hidden, weight, bias, labels)
    got = torch.autograd.grad(3 * loss, (hidden, weight, bias), retain_graph=True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, hidden)
