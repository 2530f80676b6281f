"""The affine map every projection in the model uses, y = x W^T + b, with a faster path for generation steps.

A generation step multiplies each weight matrix by a handful of rows (one per sequence, or per beam). On CPU,
MKL does that 1.5-2.5x faster in the column form

    y^T = W x^T + b        (W is (out, in), x^T is (in, rows))

than in nn.Linear's x W^T, measured on this project's 2-core machine for the decoder's (out >= in) shapes; with a
single row it falls to a matrix-vector routine slower than both, so a lone row is sent twice. The numbers are the
same up to float rounding (~1e-7), and training, large batches and GPUs keep nn.Linear's own path.
Measurements: bench/generate.py and the README's generation table.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

FEW_ROWS = 4  # at most this many rows take the column form (above it MKL's own choice was as fast or faster)


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
    """x (..., in) -> (..., out) = x W^T + b, in the column form for a few rows of an inference step on CPU."""
    rows = x.numel() // x.shape[-1]
    few = rows <= FEW_ROWS and x.device.type == "cpu" and weight.shape[0] >= weight.shape[1]
    if not few or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return F.linear(x, weight, bias)
    return column_form(x.reshape(rows, -1), weight, bias).view(*x.shape[:-1], -1)


class Linear(nn.Linear):
    """nn.Linear (same parameters, same checkpoint names) computed by `linear`."""

    def forward(self, x):
        return linear(x, self.weight, self.bias)
