"""Helpers that build transformers' reference models with the same weights as ours (tests only)."""
import torch
import transformers

import bertgen_mini as bg

transformers.logging.set_verbosity_error()

SMALL = dict(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=64)
TOL = dict(atol=1e-5, rtol=1e-5)


def assert_same_outputs(ours, theirs, *per_layer):
    """Logits and loss of two model outputs to TOL, and every tensor of the per-layer fields named (attentions,
    hidden states, ...), layer by layer."""
    torch.testing.assert_close(ours.logits, theirs.logits, **TOL)
    torch.testing.assert_close(ours.loss, theirs.loss, **TOL)
    for name in per_layer:
        for x, y in zip(getattr(ours, name), getattr(theirs, name), strict=True):
            torch.testing.assert_close(x, y, **TOL, msg=name)


def hf_config(config: bg.BertGenerationConfig):
    return transformers.BertGenerationConfig(**{k: v for k, v in config.to_dict().items() if k != "model_type"})


def hf_twin(model, attn_implementation="eager"):
    """transformers' version of one of our models (encoder, decoder or pair), holding the same weights."""
    if isinstance(model, bg.EncoderDecoderModel):
        enc, dec = hf_twin(model.encoder, attn_implementation), hf_twin(model.decoder, attn_implementation)
        twin = transformers.EncoderDecoderModel(encoder=enc, decoder=dec)
        twin.config.decoder_start_token_id = model.config.decoder_start_token_id
        twin.config.pad_token_id = model.config.pad_token_id
        twin.config.eos_token_id = model.config.eos_token_id
    else:
        cls = transformers.BertGenerationDecoder if model.config.is_decoder else transformers.BertGenerationEncoder
        twin = cls._from_config(hf_config(model.config), attn_implementation=attn_implementation)
        twin.load_state_dict(model.state_dict(), strict=False)
    twin.train(model.training)
    return twin


def small_pair(seed=0, tie_encoder_decoder=False, **overrides):
    torch.manual_seed(seed)
    enc = bg.BertGenerationEncoder(bg.BertGenerationConfig(**{**SMALL, **overrides}))
    dec = bg.BertGenerationDecoder(bg.BertGenerationConfig(**{**SMALL, **overrides}, is_decoder=True,
                                                           add_cross_attention=True))
    model = bg.EncoderDecoderModel(encoder=enc, decoder=dec, tie_encoder_decoder=tie_encoder_decoder)
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = 2, 0, 1
    return model.eval()
