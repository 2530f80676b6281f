"""Solutions to notebook 05 (training)."""


def my_factor(step, warmup, total):
    """05.1: (step + 1) / warmup during warmup, then a straight line from 1 down to 0 at `total`, never below 0."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / (total - warmup))


# 05.2: (10 x 2.0 + 30 x 1.0) / 40 tokens = 1.25 (the mean of the two means, 1.5, would weigh a token of the small
# micro-batch three times as much as one of the large).
predicted_loss = 1.25

# 05.4: 8 batches, every 2nd one for each process: 4.
predicted_batches = 4

# 05.3
precision_answer = """fp16 keeps 5 exponent bits: its smallest normal number is about 6e-5, so small gradients
(common deep in a network or late in training) round to zero and those weights stop learning. Multiplying the loss by
a large factor before backward moves the gradients into fp16's range; the GradScaler divides them again before the
optimizer step (and skips a step whose gradients overflowed). bf16 keeps fp32's 8 exponent bits, so it has fp32's
range (only fewer significant digits) and small gradients do not underflow: no scaler is needed."""
