"""The LM head and its cross-entropy loss, fused so training never keeps a (tokens x vocabulary) tensor for backward.

For a mean cross-entropy over n labelled positions, the gradient with respect to the logits z is known the moment
z is:

    dL/dz_i = (softmax(z_i) - onehot(y_i)) / n        (0 for positions labelled -100)

So the forward pass, chunk by chunk, computes z, the loss, and that gradient, and immediately folds it into the
gradients of the hidden states (g W), the weight (g^T h) and the bias; backward only scales them by the incoming
gradient. Plain autograd would keep the log-softmax (tokens x 30522 floats: 60 MB at batch 16 x 32) and build two
more such tensors in backward. Same matmuls, same numbers (to float rounding), a lower memory peak.
"""
import torch
import torch.nn.functional as F

from .linear import onednn_affine

# Rows of the softmax / logit gradient alive at once (128 x 30522 floats = 16 MB, a buffer that stays in the CPU's
# cache between the softmax and the two products). With bench/forward_backward.py (MiniLM, batch 16 x 32 targets,
# 2 threads) 64, 256 and 512 rows were each 1-3% slower a step; 256 also raised the memory peak.
CHUNK_ROWS = 128


class LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, labels):
        """hidden (N, d), weight (V, d), bias (V,), labels (N,) -> mean loss over labels != -100, logits (N, V)."""
        keep = labels != -100
        count = keep.sum().clamp(min=1)
        targets = labels.clamp(min=0)
        w, b = weight.to(hidden.dtype), bias.to(hidden.dtype)  # no-ops in fp32; the autocast dtype otherwise
        logits = onednn_affine(hidden, w, b)  # (N, V) in one product: faster than per chunk plus a copy into place
        grad_hidden, grad_weight, grad_bias = torch.empty_like(hidden), torch.zeros_like(weight), torch.zeros_like(bias)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        # One softmax buffer serves every chunk (the logits are returned intact): a fresh 16 MB each time would be
        # memory the kernel maps and zeroes page by page, every chunk of every step.
        buffer = logits.new_empty(min(CHUNK_ROWS, len(logits)), logits.shape[1], dtype=torch.float32)
        for start in range(0, hidden.shape[0], CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            h, y, k = hidden[rows], targets[rows], keep[rows]
            g = torch.log_softmax(logits[rows], -1, dtype=torch.float32, out=buffer[:len(y)])  # (c, V)
            total -= (g.gather(1, y[:, None]).squeeze(1) * k).sum()
            g.exp_()  # softmax, in the same buffer
            g[torch.arange(len(y), device=g.device), y] -= 1
            g = g.mul_(k[:, None] / count).to(h.dtype)  # (c, V): dL/dz for this chunk
            grad_hidden[rows] = onednn_affine(g, w.t())  # g W: every row written, so grad_hidden starts empty
            # The (V, d) weight gradient grows in place: a fresh 47 MB product per chunk costs a page-faulting
            # allocation each time. Under autocast g and h are half precision; their product is added in fp32.
            if g.dtype == grad_weight.dtype:
                grad_weight.addmm_(g.t(), h)
            else:
                grad_weight += (g.t() @ h).to(grad_weight.dtype)
            grad_bias += g.sum(0).to(grad_bias.dtype)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.mark_non_differentiable(logits)
        ctx.set_materialize_grads(False)  # backward ignores the logits' gradient: no (N, V) tensor of zeros for it
        return total / count, logits

    @staticmethod
    def backward(ctx, grad_loss, _grad_logits):
        # Scaled in place: a fresh (V, d) product would cost a page-faulting 47 MB allocation. A second backward
        # through the same graph (retain_graph=True) then fails loudly: autograd sees its saved tensors modified.
        return tuple(grad.mul_(grad_loss) for grad in ctx.saved_tensors) + (None,)


def logits_and_loss(hidden, lm_head, labels=None):
    """hidden (B, T, d), labels (B, T) aligned with the positions (-100 = no loss) -> logits (B, T, V), loss.

    Training (gradients wanted) takes the fused path; evaluation computes the same loss the plain way."""
    if labels is None:
        return lm_head(hidden), None
    linear = lm_head.decoder
    if torch.is_grad_enabled() and (hidden.requires_grad or linear.weight.requires_grad):
        loss, logits = LinearCrossEntropy.apply(hidden.flatten(0, 1), linear.weight, linear.bias, labels.flatten())
        return logits.view(*hidden.shape[:2], -1), loss
    logits = lm_head(hidden)
    return logits, F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
