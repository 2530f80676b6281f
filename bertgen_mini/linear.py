"""The affine map every projection in the model uses, y = x W^T + b, with a faster path for generation steps.

A generation step multiplies each weight matrix by a handful of rows (one per sequence, or per beam). On CPU,
MKL does that faster in the column form

    y^T = W x^T + b        (W is (out, in), x^T is (in, rows))

than in nn.Linear's x W^T for the shapes where out >= in: measured on this project's 2-core machine, 1.3-3x for
2-4 rows of the 384 x 384 and 1536 x 384 projections and 3-6x for the 30,522 x 384 LM head; with a single row MKL
would fall to a matrix-vector routine, so a lone row is sent twice. In the whole model this took batch-1 greedy
decoding from 100 to 146 tokens/s (4 beams: 77 to 105). The numbers are the same up to float rounding (~1e-7);
training, large batches and GPUs keep nn.Linear's own path. See bench/generate.py and the README's table.
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
