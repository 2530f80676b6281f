"""The projection every layer uses (bertgen_mini.linear) is nn.Linear's maths, whichever path computes it."""
import pytest
import torch
import torch.nn.functional as F

from bertgen_mini.linear import COLUMN_ROWS, ONEDNN, Linear, TrainingAffine, column_form, column_form_pays, linear, pack


@pytest.mark.parametrize("rows", [1, 2, COLUMN_ROWS + 3])
@pytest.mark.parametrize("bias", [True, False])
def test_column_form_matches_linear(rows, bias):
    torch.manual_seed(0)
    x, weight = torch.randn(rows, 24), torch.randn(40, 24)
    b = torch.randn(40) if bias else None
    y = column_form(x, weight, b)
    assert y.shape == (rows, 40) and y.is_contiguous()
    torch.testing.assert_close(y, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN")
@pytest.mark.parametrize("shape", [(1, 24), (3, 24), (2, 9, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_weight_matches_linear(shape, bias):
    torch.manual_seed(0)
    x, weight = torch.randn(shape), torch.randn(100, 24)
    b = torch.randn(100) if bias else None
    with torch.inference_mode():
        y = linear(x, weight, b, packed=lambda: pack(weight))
    torch.testing.assert_close(y, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 24), (2, 1, 24), (3, 5, 24)])
def test_linear_module_same_values_in_every_mode(shape):
    """Inference takes the column form or oneDNN, training nn.Linear's path: same numbers, same gradients, and the
    parameter names of nn.Linear (checkpoints load unchanged)."""
    torch.manual_seed(0)
    layer, x = Linear(24, 40), torch.randn(shape)
    expected = F.linear(x, layer.weight, layer.bias)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and set(layer.state_dict()) == {"weight", "bias"}


@pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN")
def test_packed_copy_follows_the_weight():
    """The oneDNN copy is remade after the weight changes in place (an optimizer step, a checkpoint load) and let
    go by train()."""
    torch.manual_seed(0)
    layer, x = Linear(24, 100), torch.randn(8, 24)
    with torch.no_grad():
        layer(x)
        first = layer.packed_weight()
        assert layer.packed_weight() is first  # kept between calls
        layer.weight.mul_(2)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        assert layer.packed_weight() is not first
    layer.eval()
    assert layer._packed is not None
    layer.train()
    assert layer._packed is None


def test_column_form_only_where_measured_faster():
    assert column_form_pays(COLUMN_ROWS, 384, 384) and not column_form_pays(COLUMN_ROWS + 1, 384, 384)
    assert column_form_pays(1, 1536, 384) and column_form_pays(2, 30522, 384)  # up to the LM head
    assert not column_form_pays(1, 384, 1536)  # a narrowing map (the feed-forward's way down) never


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_fall_back_in_inference(dtype):
    """oneDNN takes fp32 only (fp16 needs CPU features this machine lacks, fp64 it has no kernel for)."""
    torch.manual_seed(0)
    layer, x = Linear(24, 100).to(dtype).eval(), torch.randn(8, 24, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN")
@pytest.mark.parametrize("shape", [(5, 24), (2, 7, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_training_product_matches_linear_and_its_gradients(shape, bias):
    torch.manual_seed(0)
    x, weight = torch.randn(shape, requires_grad=True), torch.randn(40, 24, requires_grad=True)
    b = torch.randn(40, requires_grad=True) if bias else None
    grad_y = torch.randn(*shape[:-1], 40)
    leaves = [t for t in (x, weight, b) if t is not None]
    ours = torch.autograd.grad(TrainingAffine.apply(x, weight, b), leaves, grad_y)
    ref = torch.autograd.grad(F.linear(x, weight, b), leaves, grad_y)
    torch.testing.assert_close(TrainingAffine.apply(x, weight, b), F.linear(x, weight, b), rtol=1e-5, atol=1e-5)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN")
def test_train_mode_takes_onednn_and_eval_mode_keeps_f_linear():
    """Eval mode with gradients on computes exactly what F.linear (and so transformers) computes."""
    torch.manual_seed(0)
    layer, x = Linear(24, 40), torch.randn(3, 24, requires_grad=True)
    assert type(layer.train()(x).grad_fn).__name__ == "TrainingAffineBackward"
    assert torch.equal(layer.eval()(x), F.linear(x, layer.weight, layer.bias))
    layer.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast decides the dtype: F.linear's path
        assert layer(x).dtype == torch.bfloat16
    assert torch.equal(layer.double()(x.double()), F.linear(x.double(), layer.weight, layer.bias))
