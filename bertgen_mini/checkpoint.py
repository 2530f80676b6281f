"""Checkpoints in the Hugging Face layout: a folder with `config.json` and `model.safetensors`.

Reading accepts what transformers writes (BERT, RoBERTa, BertGeneration, GPT-2 and EncoderDecoderModel folders,
tied weights stored once, weights split into shards listed by an index file) and `pytorch_model.bin` through
`torch.load(weights_only=True)`, which never runs pickled code. `from_pretrained` also takes a Hugging Face Hub id
(bertgen_mini.hub fetches the files into the standard cache) and reads the folder's generation defaults as
transformers does (`read_generation_config`). A config.json of another kind of model (XLM-RoBERTa, T5, ...) is
refused with a message that says what it is.
Loading maps BERT's (and GPT-2's) names onto ours, converts RoBERTa's embeddings (roberta.py) and returns a
`LoadReport`: which weights came from the checkpoint, which are new (cross-attention, the LM-head bias) and which
the checkpoint had but this model does not use (token types, pooler, MLM head, GPT-2's stored causal masks), with
a note for each conversion. Anything else left unused (more layers than the config has, another model's names), a
tensor of another kind (integers for a float weight) or two different tensors for one tied weight is an error
unless the caller passes strict=False: a load that silently drops or converts weights gives a model that runs but
computes something else. Writing is atomic, and stores tied tensors once per model (once per half of a pair),
under the names transformers keeps.
"""
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .files import atomic_write, atomic_write_text, checkpoint_dir, read_text, regular_file
from .generation import GENERATION_FIELDS, first_set
from .hub import is_hub_id, resolve
from .roberta import from_roberta

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
GENERATION_CONFIG_NAME = "generation_config.json"
# The weights, in transformers' order of preference: one file, or an index naming the shards (each read alike)
WEIGHT_FILES = (WEIGHTS_NAME, "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKEN_IDS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id")
# Tensors a checkpoint may hold that these models have no place for by design, so a strict load does not refuse them:
# BERT's that BertGeneration does not use (warm-starting drops them, Rothe et al.), and the causal mask GPT-2
# checkpoints may store in each attention (`attn.bias`, `attn.masked_bias`): buffers, not weights.
UNUSED_BY_DESIGN = re.compile(r"(embeddings\.token_type_embeddings|pooler|cls)\."
                              r"|h\.\d+\.(attn|crossattention)\.(masked_)?bias$")
SUPPORTED_MODEL_TYPES = ("bert", "bert-generation", "roberta")
# What users most often pass by mistake, by the name their config.json gives them
KNOWN_MODEL_TYPES = {"gpt2": "GPT-2", "xlm-roberta": "XLM-RoBERTa", "distilbert": "DistilBERT",
                     "albert": "ALBERT", "electra": "ELECTRA", "t5": "T5", "bart": "BART"}


def read_json(path, what: str = "a checkpoint folder needs its config.json"):
    """The JSON value in the regular file `path` (at most files.MAX_SETTINGS_BYTES), with errors that name the file:
    FileNotFoundError (`what` says why the file is needed), ValueError for invalid JSON, a FIFO, a device or a huge
    file (see files.read_bytes)."""
    path = Path(path)
    if path.parent.is_file():
        raise NotADirectoryError(f"{path.parent} is a file; pass the checkpoint folder that holds it "
                                 f"({path.parent.parent}).")
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        if path.is_symlink():
            raise  # regular_file's message: a link to a missing file
        raise FileNotFoundError(f"{path} does not exist: {what}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the file is damaged, copy it again.") from None


def check_model_type(values: dict) -> None:
    """Refuse a config.json of another kind of model, saying what it is and what loads here."""
    model_type, architectures = values.get("model_type"), values.get("architectures") or []
    if model_type is None and architectures and not all(str(a).startswith("Bert") for a in architectures):
        model_type = architectures[0]
    if model_type is None or model_type in SUPPORTED_MODEL_TYPES:
        return
    if model_type == "encoder-decoder":
        raise ValueError("This is an encoder-decoder pair: load it with EncoderDecoderModel.from_pretrained.")
    what = KNOWN_MODEL_TYPES.get(model_type, repr(model_type))
    gpt2 = " GPT-2 loads as a decoder: bertgen_mini.GPT2LMHeadModel.from_pretrained(folder)."
    raise ValueError(f"This is a {what} checkpoint (model_type {model_type!r}, architectures {architectures}), "
                     "not BERT: its weights do not fit BertGeneration. Supported: BERT ('bert'), RoBERTa ('roberta') "
                     f"and BertGeneration ('bert-generation') checkpoints, e.g. bertgen_mini.default_bert_dir()."
                     f"{gpt2 if model_type == 'gpt2' else ''}")


def weights_file(directory) -> Path:
    """The file read_state_dict reads first in `directory`: the preferred one of WEIGHT_FILES that is there. Clear
    errors for a missing folder or file, and for a weights file that is not a regular file (a FIFO would hang the
    read)."""
    directory = checkpoint_dir(directory)
    for name in WEIGHT_FILES:
        if os.path.lexists(directory / name):
            return regular_file(directory / name)
    raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME} (nor pytorch_model.bin). Is this the right folder? "
                            f"It holds: {sorted(p.name for p in directory.iterdir())[:10]}")


def shard_names(index_file) -> list:
    """The shard files a `*.index.json` names (its weight_map: tensor -> file), each once, in order."""
    weight_map = read_json(index_file).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index_file} has no weight_map naming the shards: the file is damaged, copy it again.")
    return list(dict.fromkeys(weight_map.values()))


def read_tensor_file(path: Path) -> dict:
    """The tensors of one .safetensors or .bin file, by name, with errors that name the file and the fix."""
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path} is damaged ({err}). Copy or download the checkpoint again.") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only=True refuses any object but tensors and plain values: no code runs
        raise ValueError(f"{path} could not be read as plain tensors ({str(err)[:300]}). It may hold code "
                         f"rather than weights: re-save it as {WEIGHTS_NAME} from a source you trust.") from None


def read_state_dict(directory) -> dict:
    """Tensors of the checkpoint in `directory`, by name, from every shard. Clear errors for a missing or damaged
    folder."""
    path = weights_file(directory)
    if not path.name.endswith(".index.json"):
        return read_tensor_file(path)
    tensors = {}
    for name in shard_names(path):
        if not os.path.lexists(path.parent / name):
            raise FileNotFoundError(f"{path.parent / name}, a shard {path.name} names, is missing: the checkpoint is "
                                    "incomplete. Copy or download it again.")
        tensors.update(read_tensor_file(regular_file(path.parent / name)))
    return tensors


def fetch_checkpoint(name_or_folder, revision=None, local_files_only=False) -> Path:
    """The folder of a checkpoint, a local one or a Hub id's cached snapshot (see bertgen_mini.hub), with its
    config.json, its weights (every shard) and, when it has one, generation_config.json."""
    folder = resolve(name_or_folder, need=[CONFIG_NAME, WEIGHT_FILES], may=[GENERATION_CONFIG_NAME],
                     revision=revision, local_files_only=local_files_only)
    if is_hub_id(name_or_folder) and (index := weights_file(folder)).name.endswith(".index.json"):
        resolve(name_or_folder, need=shard_names(index), revision=folder.name, local_files_only=local_files_only)
    return folder


def read_generation_config(directory) -> dict:
    """The generation defaults a checkpoint folder sets ({} when none), in transformers' names, read as transformers
    5 reads them: generation_config.json when there is one, else the generation fields of config.json (the legacy
    place), an encoder-decoder's `decoder` section filling those its top level leaves unset. Unset (null) fields
    are left out; fields that are not generation settings are ignored."""
    directory = Path(directory)
    if os.path.lexists(directory / GENERATION_CONFIG_NAME):  # there but unreadable: an error, not skipped
        values, decoder = read_json(directory / GENERATION_CONFIG_NAME), {}
    else:
        values = read_json(directory / CONFIG_NAME)
        decoder = values.get("decoder") if isinstance(values.get("decoder"), dict) else {}
    if not isinstance(values, dict):
        raise ValueError(f"{directory}: its generation settings are not a JSON object; the file is damaged.")
    found = {name: first_set(values.get(name), decoder.get(name)) for name in GENERATION_FIELDS}
    return {name: value for name, value in found.items() if value is not None}


def canonical_name(name: str) -> str:
    """One spelling for every checkpoint dialect: old TF-ported names and the body prefix (`bert.`, GPT-2's
    `transformer.`, which GPT2Model checkpoints lack) go."""
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    return name.removeprefix("bert.").removeprefix("transformer.")


def module_group(name: str) -> str:
    """'decoder.bert.encoder.layer.3.attention.self.query.weight' -> 'decoder.bert.encoder.layer.*', and
    '....layer.3.crossattention....' -> '....layer.*.crossattention' (GPT-2's blocks: 'transformer.h.*',
    'transformer.h.*.crossattention', 'transformer.h.*.ln_cross_attn'): a report names parts, not hundreds of
    tensors."""
    name = re.sub(r"\.\d+\.", ".*.", name)
    match = re.match(r".*?(layer|\bh)\.\*(\.crossattention|\.ln_cross_attn)?", name)
    return match.group(0) if match else name.rsplit(".", 1)[0]


@dataclass
class LoadReport:
    """What a load did, as lists of tensor names. Printing it gives one short table, a row per part."""

    source: str
    loaded: list = field(default_factory=list)
    new: list = field(default_factory=list)      # in the model, not in the checkpoint: freshly initialised
    unused: list = field(default_factory=list)   # in the checkpoint, not in the model: ignored
    numels: dict = field(default_factory=dict, repr=False)
    cast: list = field(default_factory=list)     # strict=False only: loaded from integer (or float into integer) data
    notes: list = field(default_factory=list)    # what reading converted (RoBERTa's positions), one line each

    def rows(self):
        """(part, status, tensors, parameters) for every part, in model order."""
        counts = {}
        for status, names in (("pretrained", self.loaded), ("new", self.new), ("unused", self.unused)):
            for name in names:
                row = counts.setdefault((module_group(name), status), [0, 0])
                row[0] += 1
                row[1] += self.numels.get(name, 0)
        return [(part, status, n, numel) for (part, status), (n, numel) in counts.items()]

    def __str__(self):
        rows = self.rows()
        width = max(len(part) for part, *_ in rows)
        lines = [f"Weights from {self.source}", f"  {'part':<{width}}  {'status':<10} {'tensors':>7} {'params':>9}"]
        lines += [f"  {part:<{width}}  {status:<10} {n:>7} {numel / 1e6:>8.2f}M" for part, status, n, numel in rows]
        if self.cast:
            lines.append(f"  cast to the model's dtype (strict=False): {', '.join(self.cast[:5])}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def prefixed(self, prefix: str) -> "LoadReport":
        """The same report with names under `prefix` (e.g. 'decoder.')."""
        add = lambda names: [prefix + n for n in names]
        numels = {prefix + k: v for k, v in self.numels.items()}
        return LoadReport(self.source, add(self.loaded), add(self.new), add(self.unused), numels, add(self.cast),
                          [f"{prefix.rstrip('.')}: {note}" for note in self.notes])

    def check_complete(self) -> None:
        """A saved model must fill every tensor: one left new means the checkpoint is incomplete."""
        if self.new:
            raise ValueError(f"{self.source} lacks {len(self.new)} of the model's tensors "
                             f"({', '.join(self.new[:3])}, ...): the checkpoint is incomplete or was "
                             "saved from a different architecture. Save it again.")

    def __add__(self, other):
        source = self.source if self.source == other.source else f"{self.source} and {other.source}"
        return LoadReport(source, self.loaded + other.loaded, self.new + other.new, self.unused + other.unused,
                          {**self.numels, **other.numels}, self.cast + other.cast, self.notes + other.notes)


def load_state(model: torch.nn.Module, tensors: dict, source: str, prefix: str = "", strict: bool = True) -> LoadReport:
    """Copy `tensors` into `model` (names matched after `canonical_name`; `prefix` is stripped from the
    checkpoint's names first). Tied parameters count as loaded when any of their names was found; two different
    tensors for one tied parameter are an error (the checkpoint was not saved tied). With strict (the default),
    tensors the model has no place for (BERT's token types, pooler and pretraining heads aside) and integer data
    for a float weight (or the reverse) are errors; strict=False drops or casts them, and reports it."""
    targets = model.state_dict(keep_vars=True)
    by_canonical = {canonical_name(k): k for k in targets}
    report = LoadReport(source, numels={k: t.numel() for k, t in {**targets, **tensors}.items()})
    loaded_ids = set()
    for name, tensor in tensors.items():
        if name.endswith("position_ids"):
            continue  # an index buffer some checkpoints store, not a weight
        target_name = by_canonical.get(canonical_name(name.removeprefix(prefix))) if name.startswith(prefix) else None
        if target_name is None:
            report.unused.append(name)
            continue
        target = targets[target_name]
        if target.shape != tensor.shape:
            raise ValueError(
                f"{source}: '{name}' has shape {tuple(tensor.shape)} but the model's '{target_name}' has "
                f"{tuple(target.shape)}. The config does not match these weights (vocab_size or hidden_size?): "
                "load the config from the same folder, and do not override sizes.")
        if tensor.is_floating_point() != target.is_floating_point():
            if strict:
                raise ValueError(
                    f"{source}: '{name}' holds {tensor.dtype} values but the model's '{target_name}' is "
                    f"{target.dtype}: these are not the weights the name promises (a damaged or hand-made "
                    "checkpoint). Re-save it with float weights, or pass strict=False to cast them anyway.")
            report.cast.append(name)
        if id(target) in loaded_ids and not torch.equal(target.detach(), tensor.to(target)):
            raise ValueError(
                f"{source}: '{name}' and another tensor of the checkpoint fill the same tied weight '{target_name}' "
                "with different values: the model shares one weight where the checkpoint holds two (a pair saved "
                "untied, e.g. trained in transformers, which does not tie encoder and decoder). Set "
                "tie_encoder_decoder (or tie_word_embeddings) to false in its config.json to load both.")
        with torch.no_grad():
            target.copy_(tensor)
        loaded_ids.add(id(target))
    seen = set()
    for name, target in targets.items():
        if id(target) in seen:
            continue  # a tied alias: reported once, under its first name
        seen.add(id(target))
        (report.loaded if id(target) in loaded_ids else report.new).append(name)
    unexpected = [n for n in report.unused if not UNUSED_BY_DESIGN.match(canonical_name(n.removeprefix(prefix)))]
    if strict and unexpected:
        parts = sorted({module_group(n) for n in unexpected})
        raise ValueError(
            f"{source} holds {len(unexpected)} tensors this model has no place for ({', '.join(parts[:4])}"
            f"{', ...' if len(parts) > 4 else ''}): the config describes another model than the weights (fewer "
            "layers? no cross-attention? another architecture?). Load the config saved with these weights, or "
            "pass strict=False to drop them on purpose.")
    return report


def unique_state_dict(model: torch.nn.Module, halves=False) -> dict:
    """The state dict with each shared tensor once, under its first name (transformers keeps the same one:
    `embeddings.word_embeddings.weight`, `lm_head.bias`, GPT-2's `transformer.wte.weight`). With halves=True (an
    encoder-decoder pair) each top-level part keeps its own copy of what it shares with another: transformers 5
    loads the halves separately and re-ties only inside each (a BERTSHARE folder stored once would miss the
    decoder's shared tensors there)."""
    out, seen, first_part = {}, set(), {}
    for name, tensor in model.state_dict().items():
        part, ptr = name.split(".")[0] if halves else "", tensor.data_ptr()
        if (part, ptr) in seen:
            continue
        seen.add((part, ptr))
        # safetensors stores no two names on one memory, so a second part's copy is a clone
        out[name] = tensor.contiguous() if first_part.setdefault(ptr, part) == part else tensor.clone()
    return out


def read_weights(directory) -> tuple[dict, LoadReport]:
    """The checkpoint's tensors in `directory`, by the names this package's models use, and a LoadReport of what
    reading changed: for a RoBERTa folder its embeddings converted and its MLM head dropped (roberta.py); empty
    for every other kind."""
    tensors, report = read_state_dict(directory), LoadReport(str(directory))
    values = read_json(Path(directory) / CONFIG_NAME)
    if values.get("model_type") == "roberta":
        tensors, dropped, report.notes = from_roberta(tensors, values.get("pad_token_id", 1))
        report.unused, report.numels = list(dropped), {k: t.numel() for k, t in dropped.items()}
    return tensors, report


def save_checkpoint(directory, config_dict: dict, tensors: dict) -> None:
    """Write config.json and model.safetensors, each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write(directory / CONFIG_NAME,
                 lambda tmp: Path(tmp).write_text(json.dumps(config_dict, indent=2) + "\n", encoding="utf-8"))


class PretrainedMixin:
    """`from_pretrained` / `save_pretrained` and `device` for the encoder, the decoder and the pair."""

    generation_config = None  # a loaded model's generation defaults (a dict, see read_generation_config); None: none

    @classmethod
    def from_pretrained(cls, name_or_folder, verbose=True, strict=True, revision=None, local_files_only=False,
                        **overrides):
        """Build from a checkpoint (BERT, RoBERTa or BertGeneration for BertGeneration halves, GPT-2 for
        GPT2LMHeadModel): a folder, or a Hugging Face Hub id ("org/name") fetched into the Hugging Face cache
        (revision: a branch, tag or commit; local_files_only: the cache only, as HF_HUB_OFFLINE=1). `overrides` set
        config fields (is_decoder=True, ...). The model comes back in evaluation mode, as transformers returns it
        (model.train() before training), with the folder's generation defaults in `model.generation_config` when
        it can generate. The LoadReport is kept in `model.load_report` and printed unless verbose=False.
        strict=False accepts tensors the model cannot use, and casts integer data, instead of refusing (see
        load_state)."""
        folder = fetch_checkpoint(name_or_folder, revision, local_files_only)
        config = cls.config_class.from_pretrained(folder, **overrides)
        model = cls(config)
        tensors, conversion = read_weights(folder)
        model.load_report = load_state(model, tensors, str(name_or_folder), strict=strict) + conversion
        if hasattr(model, "generate"):
            model.generation_config = read_generation_config(folder)
        if verbose:
            print(model.load_report)
        return model.eval()

    def save_pretrained(self, directory) -> None:
        """config.json + model.safetensors, which transformers' from_pretrained also loads, and for a model that
        generates generation_config.json: the token ids of its config and its generation defaults, which
        transformers reads as the same defaults."""
        save_checkpoint(directory, self.config.to_dict(), self.state_to_save())
        if hasattr(self, "generate"):
            ids = {name: getattr(self.config, name, None) for name in TOKEN_IDS}
            defaults = {**{k: v for k, v in ids.items() if v is not None}, **(self.generation_config or {})}
            atomic_write_text(Path(directory) / GENERATION_CONFIG_NAME, json.dumps(defaults, indent=2) + "\n")

    def state_to_save(self) -> dict:
        """The tensors save_pretrained stores: the state dict with each tied tensor once."""
        return unique_state_dict(self)

    @property
    def device(self):
        return next(self.parameters()).device
