"""The affine map every projection in the model uses, y = x W^T + b, with faster paths on CPU.

Which routine multiplies (GPUs, half precision and autocast always use F.linear):

* training (train mode, gradients on, fp32 on CPU): oneDNN, for y and for the input's gradient g W
  (`TrainingAffine`). The feed-forward's way down, which makes its own gradients, takes the same choice from
  `Linear.product`; the fused loss (loss.py) calls `onednn_affine` itself. `Linear.scaled` multiplies by a
  scaled copy of the weight through the same choice (attention folds its constants in that way).
* eval mode with gradients on: F.linear, exactly what transformers computes. oneDNN sums in another order (the same
  numbers to float rounding, ~1e-6 relative), which twelve layers can grow past the 1e-5 the parity tests hold
  logits to.
* inference (generation above all: every step multiplies each weight matrix by only a few rows, one per sequence
  or beam), one of two paths, measured on this project's 2-core AMD EPYC (Zen 4):
  - oneDNN with a pre-packed weight. PyTorch's CPU matmul calls MKL, which on this processor multiplied the
    30,522 x 384 LM head by 16 rows at 6 GB/s of weights (the memory gives 32); oneDNN, also inside PyTorch (the
    library torch.compile uses for CPU linears), does it 2.5x faster once the weight is rearranged into its blocked
    layout: 1.5-2x for the 384 x 384 and 1536 x 384 maps at 4-64 rows, 1.2-1.7x even at 512. The packed copy is
    made on first use, kept beside the weight (`Linear.packed_weight`), remade whenever the weight changes, and
    dropped by `model.train()`: it costs one more copy of each weight while it lives.
  - The column form y^T = W x^T + b for one or two rows of a square or widening map (out >= in), where MKL beat
    oneDNN, or tied with it (the LM head with 2 threads), with one thread or two: a lone row is sent twice, since with
    one column MKL falls to a slower matrix-vector routine.

The numbers are the same up to float rounding (~1e-6 relative). See bench/generate.py and the README's table.
"""
import platform

import torch
import torch.nn as nn
import torch.nn.functional as F

COLUMN_ROWS = 2        # the column form up to this many rows of a square or widening map (out >= in)
PACKED_FOR_ROWS = 16   # the row count oneDNN lays the packed weight out for (it serves any count; 16 was fastest)


def onednn_works() -> bool:
    """Whether this build and CPU run oneDNN's linear on a packed weight. Only x86 was measured (ARM builds route
    oneDNN through other libraries), so elsewhere the answer is no; tried once, at import."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2), 1)
        return torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), packed, None, "none", [], "").sum().item() == 4
    except (AttributeError, RuntimeError):
        return False


ONEDNN = onednn_works()


def column_form_pays(rows: int, out_features: int, in_features: int) -> bool:
    """Whether the column form was measured at least as fast as the others: a square or widening map, 1-2 rows."""
    return rows <= COLUMN_ROWS and out_features >= in_features


def column_form(x, weight, bias=None):
    """x (rows, in) -> (rows, out) = (W x^T + b)^T: the weight times the rows as columns, then one pass that
    adds the bias while writing the result back row-major. A lone row is sent twice (see above)."""
    rows = x.shape[0]
    columns = (x if rows > 1 else torch.cat([x, x])).t()       # (in, max(rows, 2)), a view of the rows
    y_t = torch.mm(weight, columns)[:, :rows]                   # (out, rows)
    if bias is None:
        return y_t.t().contiguous()
    return torch.add(y_t.t(), bias, out=x.new_empty(rows, weight.shape[0]))


def pack(weight):
    """The (out, in) weight in oneDNN's blocked layout, for `linear(..., packed=...)`. Inference only."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACKED_FOR_ROWS)


def needs_grad(*tensors) -> bool:
    """Whether autograd will record an operation on these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def onednn_linear(x, weight, bias=None):
    """x (..., in) @ weight^T + bias by oneDNN; weight: (out, in), a transposed view of (in, out), or pack(...)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def onednn_fits(x, weight) -> bool:
    """Whether oneDNN takes this product: fp32 on a CPU where it runs (what was measured; fp16 needs newer CPUs),
    outside autocast (which would have F.linear compute in half precision)."""
    return (ONEDNN and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def onednn_affine(x, weight, bias=None):
    """x (rows, in) @ weight^T + bias for training-size products: oneDNN where it fits, F.linear otherwise. For
    the LM head it was 1.2-1.9x faster than MKL forward (512 and 128 rows x 30,522) and 1.4x for the gradient of the
    hidden states. No autograd: callers compute their own gradients."""
    return onednn_linear(x, weight, bias) if onednn_fits(x, weight) else F.linear(x, weight, bias)


class TrainingAffine(torch.autograd.Function):
    """y = x W^T + b by oneDNN, forward and for the input's gradient g W (1.1-1.4x faster than MKL at the training
    sizes of bench/forward_backward.py); the weight's gradient g^T x stays with MKL, as fast or faster there.
    Saves what F.linear's autograd saves: x and W."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        flat_grad_y = grad_y.flatten(0, -2)  # (rows, out)
        grad_x = onednn_linear(grad_y, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = flat_grad_y.t() @ x.flatten(0, -2) if ctx.needs_input_grad[1] else None
        grad_bias = flat_grad_y.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias=None, packed=None):
    """x (..., in) -> (..., out) = x W^T + b. Inference on CPU takes the column form where it pays, else oneDNN
    where it fits when `packed` (a function returning pack(weight), kept by the caller) is given; everything else is
    F.linear."""
    rows = x.numel() // x.shape[-1]
    if x.device.type != "cpu" or needs_grad(x, weight):
        return F.linear(x, weight, bias)
    if column_form_pays(rows, *weight.shape):
        return column_form(x.reshape(rows, -1), weight, bias).view(*x.shape[:-1], -1)
    if packed is not None and onednn_fits(x, weight):
        return onednn_linear(x, packed(), bias)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """nn.Linear (same parameters, same checkpoint names) computed by `linear`, keeping the oneDNN copy of its
    weight between inference calls."""

    _packed = None  # ((weight version, address), packed weight) once inference has asked for it

    def packed_weight(self):
        """pack(self.weight), remade when the weight has changed since (an optimizer step, a load, a move)."""
        key = (self.weight._version, self.weight.data_ptr())
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, pack(self.weight))
        return self._packed[1]

    def product(self):
        """x W^T + b without autograd, as this module's mode computes it: oneDNN where it fits in train mode,
        F.linear in eval mode (exactly transformers' numbers). For callers that make their own gradients."""
        return onednn_affine if self.training else F.linear

    def forward(self, x):
        return self.affine(x, self.weight, self.bias, self.packed_weight)

    def scaled(self, x, scale: float):
        """scale * (x W^T + b), computed as x (scale W)^T + scale b: a constant folded into the (out, in) weight
        costs a pass over it instead of one over the (rows, out) output, and none over the output in backward."""
        if scale == 1:
            return self(x)
        return self.affine(x, self.weight * scale, None if self.bias is None else self.bias * scale)

    def affine(self, x, weight, bias, packed=None):
        """x weight^T + bias by the routine this module's mode and the tensors call for (see the list above)."""
        if self.training and needs_grad(x, weight) and onednn_fits(x, weight):
            return TrainingAffine.apply(x, weight, bias)
        return linear(x, weight, bias, packed)

    def train(self, mode: bool = True):
        if mode:
            self._packed = None  # training will change the weight: free the copy now (eval() keeps it)
        return super().train(mode)
