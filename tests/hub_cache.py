"""A Hugging Face hub cache of our own, offline: what `hf download` (or transformers) would leave in $HF_HOME/hub,
filled by transformers' own save_pretrained with small stand-ins under the names of real models.

Layout, as huggingface_hub keeps it: `models--org--name/refs/<branch>` holds a commit hash and
`models--org--name/snapshots/<commit>/` the files (real caches link them to `blobs/`; plain files read the same).
"""
import hashlib
import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file

from bertgen_mini import BertGenerationTokenizer
from bertgen_mini.data import load_wikisplit
from bertgen_mini.paths import default_bert_dir

BERT = "google-bert/bert-large-uncased"                # the seed's first example: the bundled MiniLM
FUSER = "google/roberta2roberta_L-24_discofuse"        # the seed's second: a small BertGeneration pair
LEGACY = "google/roberta2roberta_L-24_wikisplit"       # generation settings in config.json only, as in 2020
WMT = "google/bert2bert_L-24_wmt_de_en"                # pytorch_model.bin only; config.json names BertTokenizer
SHARDED = "google/roberta2roberta_L-24_gigaword"       # weights in shards
GPT2 = "openai-community/gpt2"                         # a tiny GPT-2 over a byte-level BPE (vocab.json, merges.txt)
# Non-default generation settings, as a fine-tuned model's generation_config.json holds them
GENERATION = dict(num_beams=3, max_length=14, min_length=6, no_repeat_ngram_size=2, length_penalty=1.8,
                  early_stopping=True, decoder_start_token_id=2, bos_token_id=2, eos_token_id=1, pad_token_id=0)
# The same split between config.json's top level and its decoder section, as older configs held them
LEGACY_TOP = dict(num_beams=2, max_length=12, length_penalty=0.6, decoder_start_token_id=2, eos_token_id=1,
                  pad_token_id=0, min_length=None)
LEGACY_DECODER = dict(no_repeat_ngram_size=3, min_length=4, max_length=20, early_stopping=True)


def commit_of(repo_id: str, tag: str = "main") -> str:
    """A fixed 40-hex commit hash for a repo and tag."""
    return hashlib.sha1(f"{repo_id}@{tag}".encode()).hexdigest()


def snapshot(cache: Path, repo_id: str, tag: str = "main") -> Path:
    """The (new) snapshot folder of repo_id at tag, with refs/<tag> pointing at it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / tag).write_text(commit_of(repo_id, tag))
    folder = repo / "snapshots" / commit_of(repo_id, tag)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lively_pair(spiece: Path, tie: bool, seed: int = 0):
    """transformers' BertGeneration encoder-decoder over the sentencepiece vocabulary, random weights made lively
    (x8, so that logits spread over several nats and no two tokens tie), the end token made likelier."""
    torch.manual_seed(seed)
    vocab = transformers.BertGenerationTokenizer(str(spiece)).vocab_size
    small = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    encoder = transformers.BertGenerationEncoder(transformers.BertGenerationConfig(**small))
    decoder = transformers.BertGenerationDecoder(transformers.BertGenerationConfig(
        **small, is_decoder=True, add_cross_attention=True))
    pair = transformers.EncoderDecoderModel(encoder=encoder, decoder=decoder)
    with torch.no_grad():
        for p in pair.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
        pair.decoder.lm_head.bias[1] += 2.0
    if tie:  # the paper's roberta2roberta checkpoints share one set of weights (BERTSHARE): the decoder's copy
        pair.decoder.bert.load_state_dict(encoder.state_dict(), strict=False)  # (transformers 5 keeps two equal ones)
        pair.config.tie_encoder_decoder = True
    pair.config.decoder_start_token_id, pair.config.pad_token_id, pair.config.eos_token_id = 2, 0, 1
    return pair.eval()


def save_pair(pair, folder: Path, generation: dict | None) -> None:
    pair.generation_config = transformers.GenerationConfig(**(generation or {}))
    pair.save_pretrained(folder)
    if generation is None:
        (folder / "generation_config.json").unlink()


def build(root: Path) -> Path:
    """Fill root/hub (HF_HOME=root) with the stand-ins above; returns the hub cache folder."""
    transformers.logging.set_verbosity_error()
    cache = root / "hub"
    bert = snapshot(cache, BERT)
    minilm = default_bert_dir()
    transformers.BertModel.from_pretrained(minilm).save_pretrained(bert)
    transformers.BertTokenizer.from_pretrained(minilm).save_pretrained(bert)
    shutil.copy(minilm / "vocab.txt", bert / "vocab.txt")  # the Hub's folder has it (transformers 5 writes none)
    older = snapshot(cache, BERT, "v1")  # another revision: two layers fewer
    config = json.loads((bert / "config.json").read_text())
    transformers.BertModel(transformers.BertConfig(**{**config, "num_hidden_layers": 4})).save_pretrained(older)

    texts = [text for pair in load_wikisplit("tune")[:2000] for text in pair]
    fuser = snapshot(cache, FUSER)
    BertGenerationTokenizer.train(texts, vocab_size=800).save_vocabulary(fuser)  # spiece.model only, as the hub's
    save_pair(lively_pair(fuser / "spiece.model", tie=True), fuser, GENERATION)

    legacy = snapshot(cache, LEGACY)
    shutil.copy(fuser / "spiece.model", legacy / "spiece.model")
    save_pair(lively_pair(legacy / "spiece.model", tie=False, seed=1), legacy, None)
    config = json.loads((legacy / "config.json").read_text())
    config.update(LEGACY_TOP)
    config["decoder"].update(LEGACY_DECODER)
    (legacy / "config.json").write_text(json.dumps(config, indent=2))

    wmt = snapshot(cache, WMT)
    shutil.copy(minilm / "vocab.txt", wmt / "vocab.txt")
    save_pair(lively_pair(fuser / "spiece.model", tie=False, seed=2), wmt, GENERATION)
    torch.save(load_file(wmt / "model.safetensors"), wmt / "pytorch_model.bin")
    (wmt / "model.safetensors").unlink()
    config = json.loads((wmt / "config.json").read_text())  # bert-generation halves, a WordPiece vocabulary:
    (wmt / "config.json").write_text(json.dumps({**config, "tokenizer_class": "BertTokenizer"}))  # named here

    sharded = snapshot(cache, SHARDED)
    shutil.copy(fuser / "spiece.model", sharded / "spiece.model")
    pair = lively_pair(sharded / "spiece.model", tie=False, seed=3)
    pair.save_pretrained(sharded, max_shard_size="40KB")

    gpt2 = snapshot(cache, GPT2)
    from tokenizers import ByteLevelBPETokenizer  # the Rust library transformers' tokenizers run on
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=600, special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(gpt2))  # vocab.json + merges.txt, as the Hub's folder has them
    torch.manual_seed(4)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=bpe.get_vocab_size(), n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=0,
        eos_token_id=0)).save_pretrained(gpt2)
    return cache
