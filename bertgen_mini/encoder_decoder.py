"""EncoderDecoderModel: a BertGenerationEncoder reads the source, a decoder writes the target: a
BertGenerationDecoder (bert2bert, roberta2roberta, ...) or GPT-2 (gpt2.GPT2LMHeadModel: bert2gpt, roberta2gpt).

Training feeds the decoder the target shifted one step right (teacher forcing):

    labels             =        y1  y2  y3  </s>
    decoder_input_ids  = <start> y1  y2  y3

and scores its logits against `labels` with cross-entropy, ignoring positions labelled -100 (padding). When the
halves differ in width (BERT-base's 768 into a wider GPT-2), the encoder's states go through one linear map,
`enc_to_dec_proj`, before the decoder's cross-attention reads them, as in transformers. The shared variant (the
paper's BERTSHARE, `tie_encoder_decoder=True`) uses one set of weights for both halves; only the decoder's
cross-attention is its own. References: Rothe, Narayan & Severyn (TACL 2020); transformers' `EncoderDecoderModel`
and its `shift_tokens_right`.
"""
from dataclasses import dataclass

import torch.nn as nn

from .checks import check_encoder_decoder, check_labels, check_loss, check_shareable, warn_if_copying
from .checkpoint import CONFIG_NAME, PretrainedMixin, read_json, unique_state_dict
from .config import BertGenerationConfig
from .generation import generate_seq2seq
from .gpt2 import GPT2LMHeadModel
from .hub import resolve
from .model import BertGenerationDecoder, BertGenerationEncoder
from .outputs import Seq2SeqLMOutput

DECODERS = {"gpt2": GPT2LMHeadModel}  # a decoder's class by its config's model_type; any other: BertGenerationDecoder


def decoder_class(model_type):
    """The decoder class for a checkpoint or config of this model_type (see DECODERS)."""
    return DECODERS.get(model_type, BertGenerationDecoder)


def refuse_roberta_halves(values: dict) -> None:
    """transformers' own roberta2x pairs keep RoBERTa's layout (RobertaModel, RobertaForCausalLM and its LM-head
    transform), which is not a BertGeneration half: say how to build the pair here instead."""
    for half in ("encoder", "decoder"):
        if values[half].get("model_type") == "roberta":
            raise ValueError(f"This pair's {half} is a transformers RobertaModel/RobertaForCausalLM, whose layout "
                             "bertgen_mini does not load as a pair. Warm-start from the RoBERTa checkpoint folder "
                             "instead: EncoderDecoderModel.from_encoder_decoder_pretrained(roberta_dir, ...) or "
                             "recipes.build_model('roberta2roberta', roberta_dir=...).")


def shift_tokens_right(labels, pad_token_id, decoder_start_token_id):
    """(B, T) labels -> (B, T) decoder inputs: start token first, labels moved one right, -100 turned into pad."""
    if decoder_start_token_id is None:
        raise ValueError("Set model.config.decoder_start_token_id (for a BERT vocabulary: the [CLS] id, 101): "
                         "the decoder needs a first token to start from.")
    if pad_token_id is None:
        raise ValueError("Set model.config.pad_token_id (for a BERT vocabulary: 0) to replace -100 in the labels.")
    shifted = labels.new_full(labels.shape, decoder_start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)


@dataclass
class EncoderDecoderConfig:
    """The two halves' configs plus what the pair needs to train and generate."""

    encoder: BertGenerationConfig
    decoder: BertGenerationConfig                # or a gpt2.GPT2Config
    decoder_start_token_id: int | None = None   # first decoder input ([CLS] = 101 for BERT vocabularies)
    pad_token_id: int | None = None             # replaces -100 when labels are shifted
    eos_token_id: int | None = None             # generation stops here ([SEP] = 102 for BERT)
    tie_encoder_decoder: bool = False           # BERTSHARE: one set of weights for both halves

    def to_dict(self) -> dict:
        return {"model_type": "encoder-decoder", "is_encoder_decoder": True,
                "encoder": self.encoder.to_dict(), "decoder": self.decoder.to_dict(),
                "decoder_start_token_id": self.decoder_start_token_id, "pad_token_id": self.pad_token_id,
                "eos_token_id": self.eos_token_id, "tie_encoder_decoder": self.tie_encoder_decoder}

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderDecoderConfig":
        if values.get("model_type") != "encoder-decoder" or "encoder" not in values:
            raise ValueError(f"This config.json describes a {values.get('model_type')!r} model, not an encoder-"
                             "decoder. Use EncoderDecoderModel.from_encoder_decoder_pretrained(enc_dir, dec_dir) "
                             "to build one from BERT checkpoints.")
        refuse_roberta_halves(values)
        decoder_config = decoder_class(values["decoder"].get("model_type")).config_class.from_dict(values["decoder"])
        return cls(BertGenerationConfig.from_dict(values["encoder"]), decoder_config,
                   values.get("decoder_start_token_id"), values.get("pad_token_id"), values.get("eos_token_id"),
                   values.get("tie_encoder_decoder", False))

    @classmethod
    def from_pretrained(cls, name_or_folder, revision=None, local_files_only=False) -> "EncoderDecoderConfig":
        """The config.json of a saved pair: a folder or a Hugging Face Hub id (see bertgen_mini.hub)."""
        folder = resolve(name_or_folder, need=[CONFIG_NAME], revision=revision, local_files_only=local_files_only)
        return cls.from_dict(read_json(folder / CONFIG_NAME))


class EncoderDecoderModel(PretrainedMixin, nn.Module):
    """bert2bert and friends. Build it from two models (`EncoderDecoderModel(encoder=enc, decoder=dec)`), from two
    checkpoints (`from_encoder_decoder_pretrained`), or from a saved pair (`from_pretrained`)."""

    config_class = EncoderDecoderConfig

    def __init__(self, config: EncoderDecoderConfig | None = None, encoder=None, decoder=None,
                 tie_encoder_decoder=None):
        super().__init__()
        if config is None and (encoder is None or decoder is None):
            raise ValueError("Pass either a config or both an encoder and a decoder.")
        self.encoder = encoder if encoder is not None else BertGenerationEncoder(config.encoder)
        self.decoder = decoder if decoder is not None else decoder_class(config.decoder.model_type)(config.decoder)
        if config is None:
            config = EncoderDecoderConfig(self.encoder.config, self.decoder.config,
                                          pad_token_id=self.decoder.config.pad_token_id,
                                          eos_token_id=self.decoder.config.eos_token_id)
        if tie_encoder_decoder is not None:
            config.tie_encoder_decoder = tie_encoder_decoder
        self.config = config
        check_encoder_decoder(self.encoder.config, self.decoder.config)
        encoder_width, decoder_width = self.encoder.config.hidden_size, self.decoder.config.hidden_size
        if encoder_width != decoder_width:  # new weights, initialised as the decoder's maps are
            self.enc_to_dec_proj = nn.Linear(encoder_width, decoder_width)
            nn.init.normal_(self.enc_to_dec_proj.weight, std=self.decoder.config.initializer_range)
            nn.init.zeros_(self.enc_to_dec_proj.bias)
        if config.tie_encoder_decoder:
            self.tie_encoder_decoder()

    def to_decoder_width(self, encoder_states):
        """(B, S, d_enc) encoder output -> (B, S, d_dec), what cross-attention reads: through enc_to_dec_proj when
        the halves differ in width, as it is otherwise."""
        return self.enc_to_dec_proj(encoder_states) if hasattr(self, "enc_to_dec_proj") else encoder_states

    def tie_encoder_decoder(self):
        """Make the decoder reuse the encoder's embeddings, self-attention and feed-forward modules."""
        check_shareable(self.encoder.config, self.decoder.config)
        enc, dec = self.encoder, self.decoder.bert
        dec.embeddings = enc.embeddings
        for enc_layer, dec_layer in zip(enc.encoder.layer, dec.encoder.layer):
            dec_layer.attention, dec_layer.intermediate, dec_layer.output = (
                enc_layer.attention, enc_layer.intermediate, enc_layer.output)
        self.decoder.tie_weights()

    def get_encoder(self):
        return self.encoder

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=False, output_hidden_states=False) -> Seq2SeqLMOutput:
        """input_ids (B, S) with attention_mask (B, S); labels (B, T) with -100 where no loss is wanted, or
        decoder_input_ids (B, T). Returns loss, logits (B, T, V) and, when asked, attentions of all three kinds."""
        check_labels(labels, self.decoder.config.vocab_size, like=decoder_input_ids)
        warn_if_copying(decoder_input_ids, labels)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, inputs_embeds=inputs_embeds,
                                           output_attentions=output_attentions,
                                           output_hidden_states=output_hidden_states)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
            if decoder_attention_mask is None:
                decoder_attention_mask = (decoder_input_ids != self.config.pad_token_id).long()
                # The start token is never padding, even where it has the padding id (GPT-2: start = pad = eos);
                # transformers would hide it from every position there.
                decoder_attention_mask[:, 0] = 1
        # The decoder body, then the LM head with the loss on the labels as they are: shifting happened above.
        decoder_outputs = self.decoder.base_model(decoder_input_ids, decoder_attention_mask,
                                                  inputs_embeds=decoder_inputs_embeds,
                                                  encoder_hidden_states=self.to_decoder_width(
                                                      encoder_outputs.last_hidden_state),
                                                  encoder_attention_mask=attention_mask,
                                                  past_key_values=past_key_values,
                                                  use_cache=False if labels is not None else use_cache,
                                                  output_attentions=output_attentions,
                                                  output_hidden_states=output_hidden_states)
        logits, loss = self.decoder.lm_head.logits_and_loss(decoder_outputs.last_hidden_state, labels)
        check_loss(loss)
        return Seq2SeqLMOutput(loss, logits, decoder_outputs.past_key_values,
                               decoder_outputs.hidden_states, decoder_outputs.attentions,
                               decoder_outputs.cross_attentions, encoder_outputs.last_hidden_state,
                               encoder_outputs.hidden_states, encoder_outputs.attentions)

    def generate(self, input_ids, attention_mask=None, **settings):
        """(B, S) source ids -> (B * num_return_sequences, L) target ids, start token first. Greedy, 20 new tokens by
        default, unless the checkpoint folder saved other settings (model.generation_config); num_beams, do_sample,
        max_new_tokens, ... override them: see bertgen_mini.generation.generate_seq2seq."""
        return generate_seq2seq(self, input_ids, attention_mask, **settings)

    # ------------------------------------------------------------------------------------------ checkpoints
    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_dir, decoder_dir, tie_encoder_decoder=False, verbose=True,
                                        **kwargs):
        """Warm-start both halves from checkpoint folders: the encoder from BERT, RoBERTa or BertGeneration, the
        decoder from those or GPT-2 (a GPT2LMHeadModel then). `encoder_x=` / `decoder_x=` keyword arguments
        override field x of that half's config; the decoder always gets causal attention and cross-attention (new
        weights, reported as such)."""
        enc_kw = {k[len("encoder_"):]: v for k, v in kwargs.items() if k.startswith("encoder_")}
        dec_kw = {k[len("decoder_"):]: v for k, v in kwargs.items() if k.startswith("decoder_")}
        if unknown := [k for k in kwargs if not k.startswith(("encoder_", "decoder_"))]:
            raise TypeError(f"Unknown arguments {unknown}: prefix config fields with encoder_ or decoder_.")
        encoder = BertGenerationEncoder.from_pretrained(encoder_dir, verbose=False, **enc_kw)
        decoder_type = read_json(resolve(decoder_dir, need=[CONFIG_NAME]) / CONFIG_NAME).get("model_type")
        decoder = decoder_class(decoder_type).from_pretrained(
            decoder_dir, verbose=False, **{**dec_kw, "is_decoder": True, "add_cross_attention": True})
        model = cls(encoder=encoder, decoder=decoder, tie_encoder_decoder=tie_encoder_decoder)
        model.load_report = encoder.load_report.prefixed("encoder.") + decoder.load_report.prefixed("decoder.")
        if hasattr(model, "enc_to_dec_proj"):
            model.load_report.new += ["enc_to_dec_proj.weight", "enc_to_dec_proj.bias"]
            model.load_report.numels.update({f"enc_to_dec_proj.{k}": p.numel()
                                             for k, p in model.enc_to_dec_proj.named_parameters()})
        if verbose:
            print(model.load_report)
        return model.eval()  # as its halves come: model.train() before training

    @classmethod
    def from_pretrained(cls, name_or_folder, verbose=False, strict=True, revision=None, local_files_only=False):
        """Load a pair saved by `save_pretrained` here or by transformers' EncoderDecoderModel: a folder or a
        Hugging Face Hub id such as "google/roberta2roberta_L-24_discofuse" (revision, local_files_only: see
        PretrainedMixin.from_pretrained). In evaluation mode, with the folder's generation defaults, which
        `generate` uses for what its call leaves out. strict=False drops tensors the config has no place for, and
        casts integer data, instead of refusing (see load_state)."""
        model = super().from_pretrained(name_or_folder, verbose=False, strict=strict, revision=revision,
                                        local_files_only=local_files_only)  # printed once known complete
        model.load_report.check_complete()
        if verbose:
            print(model.load_report)
        return model

    def state_to_save(self) -> dict:
        """What save_pretrained stores, which transformers' EncoderDecoderModel.from_pretrained loads with nothing
        missing: a tensor the halves share (BERTSHARE) is stored once for each half (unique_state_dict)."""
        return unique_state_dict(self, halves=True)
