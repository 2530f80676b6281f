"""A local folder or a Hugging Face Hub id ("google/roberta2roberta_L-24_discofuse"), as a local folder.

Every `from_pretrained` in the package takes either. An existing folder is used as it is. A name that is not a
folder here but has the form of a Hub id is looked up by `huggingface_hub` (the field's own library) in the
standard Hugging Face cache ($HF_HOME/hub, or $HF_HUB_CACHE), where transformers keeps what it downloads: a model
either library fetched is found by the other. Only the files asked for are fetched, with huggingface_hub's
progress bars; what comes back is the cached snapshot folder (`models--org--name/snapshots/<commit>/`), which
reads like any checkpoint folder.

Offline (HF_HUB_OFFLINE=1, `local_files_only=True`, or no network) only the cache is read, and a model that is
not in it gets one error naming the id, the cache folder and the command that fetches it when online.
"""
from pathlib import Path

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, \
    RevisionNotFoundError
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .files import checkpoint_dir


def is_hub_id(name) -> bool:
    """Whether `name` is to be looked up on the Hub: a str that names no file or folder here and has the form of a
    Hub id ("name" or "org/name": letters, digits, - _ . only)."""
    if not isinstance(name, str) or Path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def resolve(name_or_folder, need=(), may=(), revision=None, local_files_only=False) -> Path:
    """The local folder holding a checkpoint's files.

    name_or_folder: a folder (returned as it is: nothing is checked or fetched), or a Hub id.
    need: files the caller cannot do without; an entry may be a tuple of alternatives, the first one the model
        has is fetched (("model.safetensors", "pytorch_model.bin")).
    may: files fetched when the model has them (generation_config.json, tokenizer_config.json, ...).
    revision: a branch, tag or commit of the Hub id (default "main"); every file comes from the same commit.
    local_files_only: read the cache only, as HF_HUB_OFFLINE=1 does for every call.
    Raises FileNotFoundError, with what to do, when the files cannot be had.
    """
    if not is_hub_id(name_or_folder):
        return checkpoint_dir(name_or_folder)  # a folder, or a clear error for a path that is none
    repo_id, folder, missing, offline = name_or_folder, None, [], False
    for entry in [*need, *may]:
        for filename in entry if isinstance(entry, tuple) else (entry,):
            try:
                path = Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=local_files_only))
            except EntryNotFoundError as err:  # the model has no such file, or it is not cached and cannot be fetched
                offline |= isinstance(err, LocalEntryNotFoundError)
                continue
            except RepositoryNotFoundError:
                raise FileNotFoundError(
                    f"{repo_id} is not a folder here, and the Hugging Face Hub has no model of that name that this "
                    "machine may read. Check the spelling; a private or gated model needs `hf auth login` first."
                ) from None
            except RevisionNotFoundError:
                raise FileNotFoundError(f"The Hub's {repo_id} has no revision {revision!r}: pass a branch, tag or "
                                        "commit it has, or leave revision out for 'main'.") from None
            folder, revision = path.parent, path.parent.name  # later files from this same commit
            break
        else:
            if entry not in may:
                missing.append(" or ".join(entry) if isinstance(entry, tuple) else entry)
    if offline and (missing or folder is None):
        why = ("HF_HUB_OFFLINE=1 is set" if constants.HF_HUB_OFFLINE else
               "local_files_only=True" if local_files_only else "the Hub could not be reached")
        cached = (Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")).is_dir()
        raise FileNotFoundError(
            f"{repo_id} is not a folder here, and the Hugging Face cache ({constants.HF_HUB_CACHE}) holds "
            f"{'it without ' + (', '.join(missing) or 'the files this reads') if cached else 'no copy of it'}; "
            f"it cannot be downloaded now ({why}). When online, fetch it with `hf download {repo_id}"
            f"{'' if revision is None else ' --revision ' + revision}` (or run this again: it downloads what it "
            "needs into that cache), or pass the folder that holds the files.")
    if missing or folder is None:
        raise FileNotFoundError(f"The Hub's {repo_id} has no {', '.join(missing) or 'file this reads'}: it is not "
                                "a checkpoint of the kind this loads.")
    return folder
