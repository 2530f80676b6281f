"""The generation-step projection (bertgen_mini.linear) is nn.Linear's maths, whichever form computes it."""
import pytest
import torch
import torch.nn.functional as F

from bertgen_mini.linear import FEW_ROWS, TALL_ROWS, Linear, column_form, column_form_pays


@pytest.mark.parametrize("rows", [1, 2, FEW_ROWS, FEW_ROWS + 3])
@pytest.mark.parametrize("bias", [True, False])
def test_column_form_matches_linear(rows, bias):
    torch.manual_seed(0)
    x, weight = torch.randn(rows, 24), torch.randn(40, 24)
    b = torch.randn(40) if bias else None
    y = column_form(x, weight, b)
    assert y.shape == (rows, 40) and y.is_contiguous()
    torch.testing.assert_close(y, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 24), (2, 1, 24), (3, 5, 24)])
def test_linear_module_same_values_in_every_mode(shape):
    """Few rows without autograd take the column form, everything else nn.Linear's path: same numbers, same
    gradients, and the parameter names of nn.Linear (checkpoints load unchanged)."""
    torch.manual_seed(0)
    layer, x = Linear(24, 40), torch.randn(shape)
    expected = F.linear(x, layer.weight, layer.bias)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and set(layer.state_dict()) == {"weight", "bias"}


def test_column_form_only_where_measured_faster():
    assert column_form_pays(FEW_ROWS, 384, 384) and not column_form_pays(FEW_ROWS + 1, 384, 384)
    assert column_form_pays(TALL_ROWS, 30522, 384) and not column_form_pays(TALL_ROWS + 1, 30522, 384)
    assert not column_form_pays(1, 384, 1536)  # a narrowing map (the feed-forward's way down) never
