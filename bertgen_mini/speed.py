"""Speed, as a layer on top of the textbook model: read this file last.

The model files (attention.py, model.py, encoder_decoder.py) are written with standard PyTorch modules only. On a
GPU those are already what is fast: cuBLAS products, flash attention through `scaled_dot_product_attention`, bf16
autocast, fused AdamW (the Trainer's choices), and `torch.compile` (`compile` below) for fewer kernel launches. On
a CPU some engineering still pays. It was measured on this project's 2-core AMD EPYC machines: first a Zen 4, now a
Zen 3 (AVX2 only), where some of the first findings no longer held; what is here pays on the Zen 3:

* `Linear`: in inference, nn.Linear computed by oneDNN (inside PyTorch: the library torch.compile uses for CPU
  linears) on a weight pre-packed into its blocked layout. PyTorch's products otherwise call MKL, which multiplies
  thin matrices slowly on these AMD processors: the 30,522 x 384 LM head times 16 rows takes 8.8 ms by MKL and 3.9
  by packed oneDNN (times 2-4 rows: 4-5x), and the 1536-wide maps with their weights out of cache gain 1.3-2.7x at
  2-16 rows. One row through a map of fewer than SMALL_MAP_OUT outputs (a batch-1 generation step) only streams
  the weight from memory, and MKL (like oneDNN) does that from one thread at about 12 GB/s; as one batched product
  over slices of the weight's rows, one slice a thread, both threads stream (about 20 GB/s): a MiniLM decoder
  step's 48 such products take 2.5 ms instead of 4.0, batch-1 greedy generation 96 -> 114 tok/s. With
  gradients (training) it is F.linear: oneDNN made the training products 1.1-1.4x faster on the Zen 4, but MKL
  is 10-40% faster on the Zen 3 (1,024 rows through 384 -> 1536: 7.4 against 8.5 ms forward, 7.1 against
  11.3 ms for the weight's gradient), so that swap was dropped.
* `Dropout`: the mask from four 16-bit coin flips per 64-bit draw of torch's (serial) CPU generator, where
  bernoulli_ draws one value per element (5x slower), and a 1-byte mask kept for backward instead of 4 bytes.
  `FastHeadProjections` drops attention probabilities with it, and scales q and v instead of the large maps;
  `FastResidualOutput` adds dropout's scale with the residual.
* `FusedLMHead`: the LM head fused with its cross-entropy, so no (tokens x vocabulary) tensor is kept for backward.
  It walks the vocabulary in slices, so that its two products keep long inner dimensions.
* `ActivationThenDown`: the feed-forward keeps its pre-activation only and recomputes GELU in backward.

`apply(model, device)` swaps these in place (module by module, with `__class__`, as torch's own module conversions
do: same parameters, same state-dict names) where the device is a CPU, and leaves a CUDA model as it is. Every swap
computes the textbook model's numbers to float rounding (tests/test_speed.py). With gradients on, every product
is F.linear, exactly the textbook's (and transformers') numbers outside the fused loss.
"""
import functools
import math
import platform
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import HeadProjections, ResidualOutput
from .model import FeedForwardUp, Layer, LMHead

# A map with fewer outputs than SMALL_MAP_OUT (not the LM head's 30,522) is packed only for 2 to THIN_ROWS - 1 rows
SMALL_MAP_OUT = 4096
THIN_ROWS = 128
PACKED_FOR_ROWS = 16   # the row count oneDNN lays the packed weight out for (it serves any count; 16 was fastest)
# The fused loss's softmax buffer: SLICE_ELEMENTS floats (8 MB) a vocabulary slice, at least SLICE_MIN columns wide
SLICE_ELEMENTS = 2 ** 21
SLICE_MIN = 256


# ------------------------------------------------------------------------------------------------ products
def onednn_works() -> bool:
    """Whether this build and CPU run oneDNN's linear on a packed weight. Only x86 was measured (ARM builds route
    oneDNN through other libraries), so elsewhere the answer is no; tried once, at import."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2), 1)
        return torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), packed, None, "none", [], "").sum().item() == 4
    except (AttributeError, RuntimeError):  # a torch release without these private ops: plain F.linear then
        return False


ONEDNN = onednn_works()


def needs_grad(*tensors) -> bool:
    """Whether autograd will record an operation on these tensors."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def onednn_linear(x, weight, bias=None):
    """x (..., in) @ weight^T + bias by oneDNN; weight: (out, in), or its packed copy (Linear.packed_weight)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def onednn_fits(x, weight) -> bool:
    """Whether oneDNN takes this product: fp32 on a CPU where it runs (what was measured), outside autocast."""
    return (ONEDNN and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def onednn_affine(x, weight, bias=None):
    """x @ weight^T + bias without autograd: oneDNN where it fits, F.linear otherwise."""
    return onednn_linear(x, weight, bias) if onednn_fits(x, weight) else F.linear(x, weight, bias)


def one_row_product(x, weight_slices, bias_slices=None):
    """x (..., in) holding one row, times the weight slices (k, in, out/k) plus the bias slices (k, 1, out/k):
    (..., out). One row only streams the weight from memory, and MKL does that from one thread (about 12 GB/s on
    this project's CPU); a batched product gives each thread a slice of the weight's rows (up to 26 GB/s)."""
    rows = x.reshape(1, 1, -1).expand(len(weight_slices), 1, -1)  # (k, 1, in): the same row for every slice
    y = torch.bmm(rows, weight_slices) if bias_slices is None else torch.baddbmm(bias_slices, rows, weight_slices)
    return y.view(*x.shape[:-1], -1)  # (k, 1, out/k) holds the outputs in order


class Linear(nn.Linear):
    """nn.Linear (same parameters, same checkpoint names) by the routine that was fastest on the CPU:

    * with gradients (training, or evaluation that keeps them): F.linear, exactly the textbook's numbers;
    * inference, one row through a small map (fewer than SMALL_MAP_OUT outputs): one batched product over slices
      of the weight's rows, one a thread (split_weight, one_row_product);
    * inference otherwise: oneDNN on a packed copy of the weight for the LM head, and for the small maps from 2 to
      THIN_ROWS - 1 rows; MKL is 7-17% faster from 256.
      The packed copy is made on first use, remade when the weight changes and freed by train(): one more copy of
      each weight (up to 140 MB for MiniLM bert2bert) while the model generates."""

    _packed = None  # ((weight version, address), packed weight) once inference has asked for it
    _split = None   # ((weight and bias addresses, threads), split_weight's answer) once one row asked for it

    def packed_weight(self):
        key = (self.weight._version, self.weight.data_ptr())
        if self._packed is None or self._packed[0] != key:
            packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), PACKED_FOR_ROWS)
            self._packed = (key, packed)
        return self._packed[1]

    def packed_pays(self, x) -> bool:
        """In inference, where oneDNN runs: the LM head always, a small map for 2 to THIN_ROWS - 1 rows. A weight
        made under inference_mode has no version counter to key the packed copy on, so it keeps F.linear."""
        w = self.weight
        if not onednn_fits(x, w) or w.is_inference():
            return False
        return w.shape[0] >= SMALL_MAP_OUT or 1 < x.numel() // x.shape[-1] < THIN_ROWS

    def split_weight(self):
        """For one row through a small map: the weight cut into k slices of its rows, one a thread, transposed
        (k, in, out/k), and the bias as (k, 1, out/k); views, kept while the weight stays where it is (an
        optimizer's in-place steps show through them). None for the LM head (packed is faster there), where
        the threads do not divide the outputs, or for a strided weight."""
        weight, bias = self.weight, self.bias
        key = (weight.data_ptr(), None if bias is None else bias.data_ptr(), torch.get_num_threads())
        if self._split is None or self._split[0] != key:
            (out, d), k = weight.shape, math.gcd(weight.shape[0], key[-1])
            fits = out < SMALL_MAP_OUT and k > 1 and weight.is_contiguous() and (bias is None or bias.is_contiguous())
            slices = None
            if fits:
                slices = (weight.detach().view(k, out // k, d).transpose(1, 2),
                          None if bias is None else bias.detach().view(k, 1, out // k))
            self._split = (key, slices)
        return self._split[1]

    def forward(self, x):
        if needs_grad(x, self.weight):  # training: the textbook product
            return F.linear(x, self.weight, self.bias)
        slices = self.split_weight() if x.numel() == x.shape[-1] and x.is_cpu else None  # one row
        if slices is not None:
            return one_row_product(x, *slices)
        if self.packed_pays(x):
            return onednn_linear(x, self.packed_weight(), self.bias)
        return F.linear(x, self.weight, self.bias)

    def train(self, mode: bool = True):
        if mode:
            self._packed = None  # training will change the weight: free the copy now (eval() keeps it)
        return super().train(mode)

    def __getstate__(self):  # copies and pickles leave the packed copy (oneDNN layout) and the row slices behind
        return {k: v for k, v in super().__getstate__().items() if k not in ("_packed", "_split")}


# ------------------------------------------------------------------------------------------------ dropout
class Dropout(nn.Dropout):
    """nn.Dropout's maths from cheaper coin flips: 16-bit integers, four cut from each 64-bit draw, compared with
    k = round(p * 2^16). p is taken to the nearest multiple of 2^-16 (0.1 -> 0.100006) and the scale uses that same
    value, so E[y] = x stays exact. Backward keeps the 1-byte mask (torch.where's), not a 4-byte one. `zero` and
    `keep_scale` give the two halves apart, for callers that apply the scale to a smaller tensor than x."""

    FLIPS = 2 ** 16

    def dropped_flips(self) -> int:
        return min(round(self.p * self.FLIPS), self.FLIPS - 1)  # a flip among the k lowest drops its value

    def keep_scale(self) -> float:
        """1/(1-p) for the p actually used; 1 when dropout is off or drops everything."""
        if not self.training or self.p in (0, 1):
            return 1.0
        return self.FLIPS / (self.FLIPS - self.dropped_flips())

    def zero(self, x):
        """x with each value zeroed with probability p, not rescaled (x itself when dropout is off)."""
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0
        n = x.numel()
        draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-2 ** 63, 2 ** 63 - 1)
        drop = draws.view(torch.int16)[:n].view(x.shape) < self.dropped_flips() - self.FLIPS // 2  # int16 from -2^15
        return torch.where(drop, 0.0, x)

    def forward(self, x):
        y, scale = self.zero(x), self.keep_scale()
        return y if scale == 1 else y.mul_(scale)  # y is where's output then, never x itself: safe in place


class FastResidualOutput(ResidualOutput):
    """LayerNorm(residual + Dropout(dense(x))) with dropout's scale riding on the addition: residual + s * zeroed,
    one pass over the block's output fewer."""

    def forward(self, x, residual):
        return self.close(self.dense(x), residual)

    def close(self, y, residual):
        return self.LayerNorm(torch.add(residual, self.dropout.zero(y), alpha=self.dropout.keep_scale()))


class FastHeadProjections(HeadProjections):
    """Attention whose probabilities, in training with dropout, take the explicit form with `Dropout` above (the
    CPU path of scaled_dot_product_attention draws with bernoulli_ over the (B, nh, T, S) maps), its two constants
    applied to the small q and v instead of the maps (2-4% of an attention block), D being dropout's 0/1 mask:

        softmax(Q K^T / sqrt(hs) + M) D V / (1 - p) = softmax((Q / sqrt(hs)) K^T + M) D (V / (1 - p))"""

    def attend(self, q, k, v, mask, output_attentions):
        if not (self.training and self.dropout.p > 0):
            return super().attend(q, k, v, mask, output_attentions)
        scores = (q / math.sqrt(self.head_size)) @ k.transpose(-2, -1)  # (B, nh, T, S)
        if mask is not None:
            scores = scores + mask
        probs = scores.softmax(dim=-1)
        y = self.dropout.zero(probs) @ (v * self.dropout.keep_scale())
        return y, probs if output_attentions else None


# ------------------------------------------------------------------------------------------------ feed-forward
class ActivationThenLinear(torch.autograd.Function):
    """y = act(u) W^T + b, keeping u but not act(u) for backward, where the activation is recomputed (cheap next
    to the product). Autograd would keep both: one (tokens x intermediate_size) tensor per layer more."""

    @staticmethod
    def forward(ctx, u, act, weight, bias):
        ctx.act = act
        ctx.save_for_backward(u, weight)
        return F.linear(act(u), weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        u, weight = ctx.saved_tensors
        with torch.enable_grad():
            u_ = u.detach().requires_grad_()
            a = ctx.act(u_)
        (grad_u,) = torch.autograd.grad(a, u_, grad_y @ weight.to(grad_y.dtype))  # through g W
        flat_grad_y = grad_y.flatten(0, -2)  # (tokens, d)
        grad_weight = (flat_grad_y.t() @ a.detach().flatten(0, -2).to(grad_y.dtype)).to(weight.dtype)  # g^T a
        return grad_u, None, grad_weight, flat_grad_y.sum(0).to(weight.dtype)


class PreActivationUp(FeedForwardUp):
    """The feed-forward's way up without its activation: ActivationThenDown applies it."""

    def forward(self, x):
        return self.dense(x)  # (B, T, intermediate_size), before the activation


class ActivationThenDown(FastResidualOutput):
    """act -> dense -> dropout -> LayerNorm(x + residual), recomputing act in backward. Set up by `apply`, which
    gives it the `act` of its layer's PreActivationUp."""

    def forward(self, u, residual):
        if needs_grad(u, self.dense.weight):
            y = ActivationThenLinear.apply(u, self.act, self.dense.weight, self.dense.bias)
        else:
            y = self.dense(self.act(u))
        return self.close(y, residual)


# ------------------------------------------------------------------------------------------------ the loss
class LinearCrossEntropy(torch.autograd.Function):
    """The LM head and its mean cross-entropy in one. For n labelled positions the gradient of the logits z is known
    the moment z is:

        dL/dz_i = (softmax(z_i) - onehot(y_i)) / n        (0 for positions labelled -100)

    so forward computes it and folds it at once into the gradients of the hidden states (g W), the weight (g^T h)
    and the bias; backward only scales them. It goes through the vocabulary a slice at a time (softmax needs each
    row's log-sum-exp, taken first), so both products keep long inner dimensions: g^T h by row chunks of 128 had
    only 128 to sum over and ran at half MKL's speed. Plain autograd keeps the (tokens x vocabulary) log-softmax
    (60 MB at batch 16 x 32) and builds two more such tensors in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels):
        """hidden (N, d), weight (V, d), bias (V,), labels (N,) -> mean loss over labels != -100, logits (N, V)."""
        keep = labels != -100
        count = keep.sum().clamp(min=1)
        targets = labels.clamp(min=0)
        w, b = weight.to(hidden.dtype), bias.to(hidden.dtype)  # no-ops in fp32; the autocast dtype otherwise
        logits = onednn_affine(hidden, w, b)  # (N, V) in one product
        n, vocab = logits.shape
        width = max(SLICE_MIN, SLICE_ELEMENTS // max(n, 1))  # vocabulary columns a slice
        slices = [slice(start, start + width) for start in range(0, vocab, width)]
        # One buffer serves every slice: memory the C library hands out afresh is mapped and zeroed by the kernel
        # page by page on first write (a fresh 47 MB matrix cost 12-16 ms, against under 2 ms to overwrite; so
        # torch.logsumexp, which makes two, took 45-50 ms where these slices take 20).
        buffer = logits.new_empty(n * min(width, vocab), dtype=torch.float32)

        def exp_minus(cols, shift):  # exp(z - shift) for a slice of the vocabulary, in the buffer: (N, v)
            z = logits[:, cols]
            return torch.sub(z, shift[:, None], out=buffer[:z.numel()].view(z.shape)).exp_()

        top = logits.amax(-1).float()  # (N,): subtracted first, so exp cannot overflow
        log_norm = top + sum(exp_minus(cols, top).sum(1) for cols in slices).log()  # (N,): log sum_v exp(z_v)
        total = ((log_norm - logits.gather(1, targets[:, None]).squeeze(1)) * keep).sum()
        weight_of_row = (keep / count).to(torch.float32)[:, None]  # (N, 1): 1/n, 0 for ignored positions
        grad_hidden = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device)
        grad_weight, grad_bias = torch.empty_like(weight), torch.empty_like(bias)
        rows = torch.arange(n, device=logits.device)
        for cols in slices:
            start = cols.start
            g = exp_minus(cols, log_norm)  # (N, v): the softmax over this slice
            inside = (targets >= start) & (targets < start + g.shape[1])
            g[rows[inside], targets[inside] - start] -= 1
            g = g.mul_(weight_of_row)  # (N, v): dL/dz for this slice, in fp32
            grad_hidden.addmm_(g, weight[cols])  # (N, d) += g W, summed over the slices in fp32
            if hidden.dtype == grad_weight.dtype:  # (v, d): each slice of the weight's gradient written once, in place
                torch.mm(g.t(), hidden, out=grad_weight[cols])
            else:  # autocast: the product in half precision, kept in fp32
                grad_weight[cols] = g.to(hidden.dtype).t() @ hidden
            grad_bias[cols] = g.sum(0)
        ctx.save_for_backward(grad_hidden.to(hidden.dtype), grad_weight, grad_bias)
        ctx.mark_non_differentiable(logits)
        ctx.set_materialize_grads(False)  # backward ignores the logits' gradient: no (N, V) tensor of zeros for it
        return total / count, logits

    @staticmethod
    def backward(ctx, grad_loss, _grad_logits):
        # Scaled in place (no fresh 47 MB product). A second backward through the same graph then fails loudly:
        # autograd sees its saved tensors modified.
        return tuple(grad.mul_(grad_loss) for grad in ctx.saved_tensors) + (None,)


class FusedLMHead(LMHead):
    """LMHead whose training loss (gradients wanted) runs LinearCrossEntropy; evaluation keeps the textbook path."""

    def logits_and_loss(self, hidden, labels=None):
        linear = self.decoder
        if labels is None or not needs_grad(hidden, linear.weight):
            return super().logits_and_loss(hidden, labels)
        loss, logits = LinearCrossEntropy.apply(hidden.flatten(0, 1), linear.weight, linear.bias, labels.flatten())
        return logits.view(*hidden.shape[:2], -1), loss


# ------------------------------------------------------------------------------------------------ switching on
def apply(model, device=None):
    """Swap the CPU engineering above into `model` in place and return it; parameters and state-dict names stay.

    device: where the model will run (default: where its parameters are). On anything but a CPU nothing is swapped:
    there the standard modules are the fast ones. Call it once, before training or generating; not with
    torch.compile (which compiles the textbook modules: see `compile`)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if device.type != "cpu":
        return model
    swaps = {nn.Linear: Linear, nn.Dropout: Dropout, HeadProjections: FastHeadProjections, LMHead: FusedLMHead,
             ResidualOutput: FastResidualOutput}
    for module in model.modules():
        if isinstance(module, Layer) and type(module.intermediate) is FeedForwardUp:
            module.intermediate.__class__ = PreActivationUp
            module.output.__class__ = ActivationThenDown  # before the exact-type pass below: not a plain output
            module.output.act = module.intermediate.act  # no parameters: the state dict is unchanged
    for module in model.modules():  # exact types: a module shared by two halves (BERTSHARE) is swapped once
        if type(module) in swaps:
            module.__class__ = swaps[type(module)]
    return model


@functools.cache
def compiler_works(backend: str = "inductor") -> bool:
    """Whether torch.compile with this backend runs here: tried once on a tiny function (inductor needs a C++
    compiler on CPU and a supported platform)."""
    try:
        return bool(torch.compile(lambda x: x.sin() + 1, backend=backend, fullgraph=True)(torch.ones(3)).sum() > 0)
    except Exception:  # noqa: BLE001 - any failure of the toolchain means: not here
        return False


def compile(model, backend: str = "inductor", **options):
    """torch.compile(model) where the backend works here, else the model itself with one warning (never a crash
    mid-run). Compile the textbook model (without `apply`): it traces as one graph, forward, loss and backward."""
    if not compiler_works(backend):
        warnings.warn(f"torch.compile (backend {backend!r}) does not work with this torch and platform (no C++ "
                      "compiler?): running eager instead.", stacklevel=2)
        return model
    return torch.compile(model, backend=backend, **options)
