"""The affine map every projection in the model uses, y = x W^T + b, with a faster path for generation steps.

A generation step multiplies each weight matrix by a handful of rows (one per sequence, or per beam). On CPU,
MKL does that faster in the column form

    y^T = W x^T + b        (W is (out, in), x^T is (in, rows))

than in nn.Linear's x W^T, where it was measured to pay on this project's 2-core machine (`column_form_pays`):
1.3-3x for 2-4 rows of the 384 x 384 and 1536 x 384 projections; for the 30,522 x 384 LM head 3-6x with 1-4 rows
and still 1.25x with 128 (512 rows were slower). With a single row MKL would fall to a matrix-vector routine, so a
lone row is sent twice. In one process, switching it on took batch-1 greedy decoding from 100 to 146 tokens/s
(4 beams: 77 to 105). The numbers are the same up to float rounding (~1e-7); training and GPUs keep nn.Linear's
own path. See bench/generate.py and the README's table.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FEW_ROWS = 4     # a square or widening map (out >= in) takes the column form up to this many rows
TALL_ROWS = 128  # a tall one (out >= 8 * in: the LM head) up to this many


def column_form_pays(rows: int, out_features: int, in_features: int) -> bool:
    """Whether the column form was measured faster for this product (never for a narrowing map, out < in)."""
    if out_features < in_features:
        return False
    return rows <= (TALL_ROWS if out_features >= 8 * in_features else FEW_ROWS)


def column_form(x, weight, bias=None):
    """x (rows, in) -> (rows, out) = (W x^T + b)^T: the weight times the rows as columns, then one pass that
    adds the bias while writing the result back row-major. A lone row is sent twice (see above)."""
    rows = x.shape[0]
    columns = (x if rows > 1 else torch.cat([x, x])).t()       # (in, max(rows, 2)), a view of the rows
    y_t = torch.mm(weight, columns)[:, :rows]                   # (out, rows)
    if bias is None:
        return y_t.t().contiguous()
    return torch.add(y_t.t(), bias, out=x.new_empty(rows, weight.shape[0]))


def linear(x, weight, bias=None):
    """x (..., in) -> (..., out) = x W^T + b, in the column form where it pays, for inference on CPU."""
    rows = x.numel() // x.shape[-1]
    faster = x.device.type == "cpu" and column_form_pays(rows, *weight.shape)
    if not faster or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return F.linear(x, weight, bias)
    return column_form(x.reshape(rows, -1), weight, bias).view(*x.shape[:-1], -1)


class Linear(nn.Linear):
    """nn.Linear (same parameters, same checkpoint names) computed by `linear`."""

    def forward(self, x):
        return linear(x, self.weight, self.bias)
