"""By name, like the seed (issue 23): Hub ids through the Hugging Face cache, offline; AutoTokenizer; a folder's
generation defaults read as transformers reads them; the notebooks' model on the speed layer; no import circle.

Nothing here touches the network: tests/hub_cache.py builds a Hugging Face cache of its own once per session, and
huggingface_hub is pointed at it offline (in this process by its constants, which it reads from HF_HOME and
HF_HUB_OFFLINE at import; in a child process by those variables, as a user sets them).
"""
import ast
import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from huggingface_hub import constants

import bertgen_mini as bg
import hub_cache
from bertgen_mini import AutoTokenizer, speed
from hub_cache import BERT, FUSER, GPT2, LEGACY, SHARDED, WMT
from reference import hf_twin, small_pair
from test_generation import one_thread  # noqa: F401  autouse: tiny models run 30x faster on one thread here

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["This is the first sentence. This is the second sentence.", "Street names were changed in 1920.",
             "He wrote two novels , both of which were well received ."]


def folder(cache, repo_id, tag="main") -> Path:
    """The snapshot folder of repo_id in the test cache: what transformers is given here, as a plain path."""
    return cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / hub_cache.commit_of(repo_id, tag)


def hf_pair(path):
    transformers.logging.set_verbosity_error()
    return transformers.EncoderDecoderModel.from_pretrained(path)


def sources(tokenizer):
    return [tokenizer(s, add_special_tokens=False, return_tensors="pt").input_ids for s in SENTENCES]


# ---------------------------------------------------------------------------------------------- the seed's examples
SEED_EXAMPLES = '''
import json, warnings
from bertgen_mini import AutoTokenizer, BertGenerationDecoder, BertGenerationEncoder, BertTokenizer, EncoderDecoderModel
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    encoder = BertGenerationEncoder.from_pretrained("google-bert/bert-large-uncased", bos_token_id=101, eos_token_id=102)
    decoder = BertGenerationDecoder.from_pretrained("google-bert/bert-large-uncased", add_cross_attention=True, is_decoder=True, bos_token_id=101, eos_token_id=102)
    bert2bert = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    tokenizer = BertTokenizer.from_pretrained("google-bert/bert-large-uncased")
    input_ids = tokenizer("This is a long article to summarize", add_special_tokens=False, return_tensors="pt").input_ids
    labels = tokenizer("This is a short summary", return_tensors="pt").input_ids
    loss = bert2bert(input_ids=input_ids, decoder_input_ids=labels, labels=labels).loss
    loss.backward()
grad = decoder.bert.encoder.layer[0].crossattention.self.query.weight.grad
first = dict(loss=loss.item(), grad=grad.abs().sum().item(), input_ids=input_ids.tolist(), labels=labels.tolist(),
             warned=[str(w.message) for w in caught])

sentence_fuser = EncoderDecoderModel.from_pretrained("google/roberta2roberta_L-24_discofuse")
tokenizer = AutoTokenizer.from_pretrained("google/roberta2roberta_L-24_discofuse")
input_ids = tokenizer("This is the first sentence. This is the second sentence.", add_special_tokens=False, return_tensors="pt").input_ids
outputs = sentence_fuser.generate(input_ids)
print(tokenizer.decode(outputs[0]))
second = dict(input_ids=input_ids.tolist(), outputs=outputs.tolist(), text=tokenizer.decode(outputs[0]),
              greedy=sentence_fuser.generate(input_ids, num_beams=1, max_new_tokens=9).tolist())

import transformers  # the same calls by name with transformers, in the same cache
transformers.logging.set_verbosity_error()
model = transformers.EncoderDecoderModel.from_pretrained("google/roberta2roberta_L-24_discofuse")
tokenizer = transformers.AutoTokenizer.from_pretrained("google/roberta2roberta_L-24_discofuse")
ids = tokenizer("This is the first sentence. This is the second sentence.", add_special_tokens=False, return_tensors="pt").input_ids
outputs = model.generate(ids)
theirs = dict(input_ids=ids.tolist(), outputs=outputs.tolist(), text=tokenizer.decode(outputs[0]),
              greedy=model.generate(ids, num_beams=1, max_new_tokens=9).tolist(),
              bert_ids=transformers.BertTokenizer.from_pretrained("google-bert/bert-large-uncased")(
                  "This is a long article to summarize", add_special_tokens=False).input_ids)
print("RESULT " + json.dumps(dict(first=first, second=second, theirs=theirs)))
'''


def test_the_seed_examples_run_by_name_offline_and_give_transformers_tokens(hf_home):
    """Both examples verbatim but for the import, in a fresh process with HF_HOME and HF_HUB_OFFLINE=1 as a user
    sets them; transformers, asked by the same names in the same process, reads the same cache."""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", SEED_EXAMPLES], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    first, second, theirs = result["first"], result["second"], result["theirs"]
    assert first["input_ids"] == [theirs["bert_ids"]] and first["labels"][0][-1] == 102
    assert 0 < first["loss"] < 30 and first["grad"] > 0  # backward reached the new cross-attention
    assert any("copy" in message for message in first["warned"])  # decoder_input_ids=labels: expected, not an error
    assert second["input_ids"] == theirs["input_ids"]
    assert second["outputs"] == theirs["outputs"] and second["text"] == theirs["text"]
    assert second["greedy"] == theirs["greedy"]
    assert len(second["outputs"][0]) <= hub_cache.GENERATION["max_length"]  # the folder's settings were used


# ---------------------------------------------------------------------------------------------- generation defaults
ARGUMENTS = [dict(), dict(num_beams=1), dict(max_new_tokens=5), dict(max_length=9), dict(min_length=9),
             dict(min_new_tokens=2, max_new_tokens=12), dict(num_beams=2, length_penalty=0.5, early_stopping=False),
             dict(no_repeat_ngram_size=0), dict(max_length=9, max_new_tokens=4)]


@pytest.mark.parametrize("repo_id", [FUSER, LEGACY])
def test_generate_uses_the_folders_defaults_and_arguments_override_them_as_in_transformers(offline_hub, repo_id):
    """FUSER keeps its settings in generation_config.json; LEGACY in config.json, split between the top level and
    the decoder section, as 2020 checkpoints did. Without arguments and with each, the tokens are transformers'."""
    ours, theirs = bg.EncoderDecoderModel.from_pretrained(repo_id), hf_pair(folder(offline_hub, repo_id))
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    for ids in sources(tokenizer):
        for arguments in ARGUMENTS:
            want = theirs.generate(ids, **arguments)
            assert torch.equal(ours.generate(ids, **arguments), want), (arguments, ids)


def test_the_read_defaults_are_transformers_generation_config(offline_hub):
    for repo_id in (FUSER, LEGACY):
        ours, theirs = bg.EncoderDecoderModel.from_pretrained(repo_id), hf_pair(folder(offline_hub, repo_id))
        for name, value in ours.generation_config.items():
            assert getattr(theirs.generation_config, name) == value, (repo_id, name)
    legacy = bg.EncoderDecoderModel.from_pretrained(LEGACY).generation_config
    assert legacy["num_beams"] == 2 and legacy["max_length"] == 12 and legacy["min_length"] == 4  # top, then decoder


def test_save_pretrained_writes_the_defaults_and_transformers_reads_them_back(offline_hub, tmp_path):
    model = bg.EncoderDecoderModel.from_pretrained(LEGACY)
    model.save_pretrained(tmp_path)
    saved = transformers.GenerationConfig.from_pretrained(tmp_path)
    for name, value in model.generation_config.items():
        assert getattr(saved, name) == value, name
    ids = sources(AutoTokenizer.from_pretrained(LEGACY))[0]
    again = bg.EncoderDecoderModel.from_pretrained(tmp_path)
    assert again.generation_config == model.generation_config
    assert torch.equal(again.generate(ids), hf_pair(tmp_path).generate(ids))


def test_a_model_built_in_code_generates_transformers_default_20_new_tokens():
    model = small_pair()
    assert model.generation_config is None
    twin = hf_twin(model)
    model.config.eos_token_id = None  # nothing ends early: the length is the default's
    ids = torch.tensor([[5, 6, 7, 8]])
    out = model.generate(ids)
    assert out.shape == (1, 21) and out[0, 0] == 2
    assert torch.equal(out, twin.generate(ids, eos_token_id=None))
    assert model.generate(ids, max_length=20).shape == (1, 20)  # transformers' max_length counts the start token


def test_settings_bertgen_mini_lacks_are_refused_not_ignored(offline_hub):
    model = bg.EncoderDecoderModel.from_pretrained(FUSER)
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="repetition_penalty"):
        model.generate(ids, repetition_penalty=1.3)
    model.generation_config["forced_eos_token_id"] = 1
    with pytest.raises(ValueError, match="forced_eos_token_id.*model.generation_config"):
        model.generate(ids)
    model.generation_config["forced_eos_token_id"] = None  # the value that does nothing is fine
    model.generate(ids)


# ---------------------------------------------------------------------------------------------- loading by name
def test_revision_picks_the_branch_or_commit_and_local_files_only_reads_the_cache(offline_hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # only local_files_only keeps it off the network
    assert bg.BertGenerationConfig.from_pretrained(BERT, local_files_only=True).num_hidden_layers == 6
    assert bg.BertGenerationConfig.from_pretrained(BERT, revision="v1", local_files_only=True).num_hidden_layers == 4
    commit = hub_cache.commit_of(BERT, "v1")
    encoder = bg.BertGenerationEncoder.from_pretrained(BERT, revision=commit, local_files_only=True, verbose=False)
    assert len(encoder.encoder.layer) == 4 and not encoder.training
    with pytest.raises(FileNotFoundError, match="local_files_only=True"):
        bg.EncoderDecoderModel.from_pretrained("google/not-downloaded", local_files_only=True)


def test_offline_with_nothing_cached_is_one_error_naming_id_cache_and_command(offline_hub):
    for load in (bg.EncoderDecoderModel.from_pretrained, AutoTokenizer.from_pretrained,
                 bg.BertTokenizer.from_pretrained, bg.BertGenerationConfig.from_pretrained):
        with pytest.raises(FileNotFoundError) as caught:
            load("google/bert2bert_L-24_wmt_en_de")
        message = str(caught.value)
        assert "google/bert2bert_L-24_wmt_en_de" in message and str(offline_hub) in message
        assert "hf download google/bert2bert_L-24_wmt_en_de" in message and "HF_HUB_OFFLINE=1" in message
        assert caught.value.__cause__ is None and caught.value.__context__ is None  # one error, no chain
    with pytest.raises(FileNotFoundError, match="without vocab.txt"):  # cached, but not the file asked for
        bg.BertTokenizer.from_pretrained(FUSER)


def test_a_missing_local_path_keeps_its_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        bg.EncoderDecoderModel.from_pretrained(tmp_path / "runs" / "missing")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        bg.BertGenerationConfig.from_pretrained("../no/such/folder")
    with pytest.raises(FileNotFoundError, match="needs a vocab.txt"):
        bg.BertTokenizer.from_pretrained(tmp_path / "missing")


@pytest.mark.parametrize("repo_id", [WMT, SHARDED])
def test_bin_only_and_sharded_snapshots_load_the_same_weights_as_transformers(offline_hub, repo_id):
    ours, theirs = bg.EncoderDecoderModel.from_pretrained(repo_id), hf_pair(folder(offline_hub, repo_id))
    reference = theirs.state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, reference[name]), name


# ---------------------------------------------------------------------------------------------- AutoTokenizer
def test_auto_tokenizer_picks_the_class_of_each_folder_as_transformers_does(offline_hub, tmp_path):
    spiece_only, vocab_only = tmp_path / "spiece", tmp_path / "wordpiece"
    spiece_only.mkdir(), vocab_only.mkdir()
    (spiece_only / "spiece.model").write_bytes((folder(offline_hub, FUSER) / "spiece.model").read_bytes())
    (vocab_only / "vocab.txt").write_bytes((folder(offline_hub, BERT) / "vocab.txt").read_bytes())
    auto, spiece = transformers.AutoTokenizer.from_pretrained, transformers.BertGenerationTokenizer.from_pretrained
    cases = [(BERT, bg.BertTokenizer, auto(folder(offline_hub, BERT))),         # tokenizer_config.json names it
             (WMT, bg.BertTokenizer, auto(folder(offline_hub, WMT))),           # config.json names it
             (FUSER, bg.BertGenerationTokenizer, auto(folder(offline_hub, FUSER))),  # config.json's model type
             # the files alone, where transformers' AutoTokenizer gives up: its class for them is the reference
             (spiece_only, bg.BertGenerationTokenizer, spiece(spiece_only)),
             (vocab_only, bg.BertTokenizer, transformers.BertTokenizer.from_pretrained(vocab_only))]
    text = "Café au lait <::::> is n't it ? Straße 12."
    for name, cls, theirs in cases:
        ours = AutoTokenizer.from_pretrained(name)
        assert type(ours) is cls, name
        assert ours(text).input_ids == theirs(text).input_ids, name


def test_a_gpt2_model_and_its_byte_level_bpe_load_by_name(offline_hub, tmp_path):
    """The tokenizer fetches merges.txt beside vocab.json; AutoTokenizer picks GPT2Tokenizer from config.json's model
    type, and RobertaTokenizer where tokenizer_config.json names it (the files alone: GPT-2's)."""
    text = "Café au lait <::::> is n't it ? Straße 12. <|endoftext|>"
    tokenizer = AutoTokenizer.from_pretrained(GPT2)
    assert type(tokenizer) is bg.GPT2Tokenizer
    assert tokenizer(text).input_ids == transformers.AutoTokenizer.from_pretrained(folder(offline_hub, GPT2))(
        text).input_ids
    model = bg.GPT2LMHeadModel.from_pretrained(GPT2, verbose=False)
    assert model.config.vocab_size == len(tokenizer)
    roberta, files_only = tmp_path / "roberta", tmp_path / "files"
    for target in (roberta, files_only):
        target.mkdir()
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(folder(offline_hub, GPT2) / name, target / name)
    (roberta / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizerFast"}))
    assert type(AutoTokenizer.from_pretrained(roberta)) is bg.RobertaTokenizer
    assert type(AutoTokenizer.from_pretrained(files_only)) is bg.GPT2Tokenizer


def test_auto_tokenizer_fetches_tokenizer_json_from_a_hub_repo_that_has_only_it(offline_hub, monkeypatch):
    """transformers 5 saves a byte-level BPE as tokenizer.json alone (no vocab.json, merges.txt): AutoTokenizer
    fetches it from the Hub (the test cache holds every file, so the fetches are counted), and the ids are
    transformers'."""
    repo_id, text = "test/gpt2-tokenizer-json-only", "Café au lait <::::> is n't it ? <|endoftext|>"
    target = hub_cache.snapshot(offline_hub, repo_id)
    transformers.GPT2Tokenizer.from_pretrained(str(folder(offline_hub, GPT2))).save_pretrained(str(target))
    for name in ("vocab.json", "merges.txt"):
        (target / name).unlink(missing_ok=True)
    fetched, download = [], bg.hub.hf_hub_download
    monkeypatch.setattr(bg.hub, "hf_hub_download", lambda repo, name, **kw: fetched.append(name) or download(
        repo, name, **kw))
    ours = AutoTokenizer.from_pretrained(repo_id)
    assert type(ours) is bg.GPT2Tokenizer and "tokenizer.json" in fetched
    assert ours(text).input_ids == transformers.AutoTokenizer.from_pretrained(str(target))(text).input_ids


def test_auto_tokenizer_refuses_what_it_cannot_read_and_lists_what_it_can(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5TokenizerFast"}))
    with pytest.raises(ValueError, match="'T5TokenizerFast'.*Supported: BertTokenizer, BertGenerationTokenizer, GPT2Tokenizer, RobertaTokenizer"):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").unlink()
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match="Cannot tell which tokenizer.*spiece.model"):
        AutoTokenizer.from_pretrained(tmp_path)


def test_special_token_overrides_work_as_the_wmt_model_cards_pass_them(offline_hub):
    overrides = dict(pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    text = "<s> Die Katze sitzt . </s> <pad>"
    theirs = transformers.AutoTokenizer.from_pretrained(folder(offline_hub, WMT), **overrides)
    for ours in (AutoTokenizer.from_pretrained(WMT, **overrides), bg.BertTokenizer.from_pretrained(WMT, **overrides)):
        assert ours(text).input_ids == theirs(text).input_ids
        assert (ours.pad_token_id, ours.eos_token_id, ours.bos_token_id) == (
            theirs.pad_token_id, theirs.eos_token_id, theirs.bos_token_id)
    sentencepiece = bg.BertGenerationTokenizer.from_pretrained(FUSER, eos_token="<::::>")
    assert sentencepiece.eos_token_id == sentencepiece.convert_tokens_to_ids("<::::>")


def test_the_older_special_tokens_map_json_is_read_as_transformers_reads_it(offline_hub, tmp_path):
    (tmp_path / "vocab.txt").write_bytes((folder(offline_hub, BERT) / "vocab.txt").read_bytes())
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": False, "rstrip": False}}))
    ours, theirs = bg.BertTokenizer.from_pretrained(tmp_path), transformers.BertTokenizer.from_pretrained(tmp_path)
    text = "<s> a cat </s>"
    assert ours(text).input_ids == theirs(text).input_ids and ours.eos_token_id == theirs.eos_token_id


# ---------------------------------------------------------------------------------------------- speed, imports
def test_the_notebooks_model_generates_through_the_speed_layer_with_the_textbook_tokens():
    """zoo.finetuned_bert2bert(), as notebooks 04-07 call it (it trains once if this machine has not yet: the
    notebooks' run then finds it cached), against the same model with fast=False."""
    from bertgen_mini.data import load_wikisplit
    from bertgen_mini.zoo import finetuned_bert2bert
    fast, tokenizer = finetuned_bert2bert(verbose=False)
    textbook, _ = finetuned_bert2bert(verbose=False, fast=False)
    assert {speed.Linear, speed.FusedLMHead} <= {type(m) for m in fast.modules()}
    assert speed.Linear not in {type(m) for m in textbook.modules()} and not fast.training
    pairs = load_wikisplit("validation")[:4]
    batch = tokenizer([p.source for p in pairs], padding=True, return_tensors="pt")
    for settings in (dict(max_new_tokens=20), dict(max_new_tokens=12, num_beams=2)):  # the packed products
        assert torch.equal(fast.generate(batch.input_ids, batch.attention_mask, **settings),
                           textbook.generate(batch.input_ids, batch.attention_mask, **settings))
    torch.set_num_threads(2)  # one row's products split the weights among the threads: two, as on a laptop
    one = tokenizer(pairs[0].source, return_tensors="pt").input_ids
    assert torch.equal(fast.generate(one, max_new_tokens=20), textbook.generate(one, max_new_tokens=20))


def test_train_and_evaluate_no_longer_import_each_other():
    def imported(name):
        tree = ast.parse((REPO / "bertgen_mini" / f"{name}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "train" not in imported("evaluate")
    assert "devices" in imported("train") and "devices" in imported("evaluate")
