"""``bench publish --push hf:ORG/REPO``: everything that can be checked before anything is
written or registered (syntax, token, the Hub reachable), and the upload of the prepared
folder."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import timm
from huggingface_hub import HfApi, constants

from bench_core.weights import CONFIG, WEIGHTS
from benchmark.publishing.trained import PublishError


@dataclass(frozen=True)
class HubTarget:
    """A checked ``--push hf:ORG/REPO``: the repo, the Hub endpoint it was reached at, and
    the token (from the environment; never logged, printed or written)."""

    repo_id: str
    endpoint: str
    token: str = field(repr=False)

    @property
    def spec(self) -> str:
        return f"hf-hub:{self.repo_id}"


def check_push(repo: str, environ: dict[str, str], folder: Path) -> HubTarget:
    """Everything about ``--push`` that can be checked before anything is written or
    registered: the ``hf:ORG/REPO`` syntax, a token, the Hub reachable (HF_ENDPOINT, else
    huggingface.co; HF_HUB_OFFLINE refuses at once)."""
    repo_id = repo.removeprefix("hf:").removeprefix("hf-hub:")
    later = f"Nothing was written or registered; the folder would be {folder}."
    if not repo.startswith(("hf:", "hf-hub:")) or \
            not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id):
        raise PublishError(f"--push '{repo}' must look like hf:ORG/REPO.", later)
    if not (environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")):
        raise PublishError("--push needs a Hugging Face token in HF_TOKEN.",
                           f"{later} Set HF_TOKEN (a write token) and publish again, or publish "
                           "without --push.")
    if environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PublishError("--push cannot reach the Hugging Face Hub: HF_HUB_OFFLINE is set.",
                           f"{later} Unset HF_HUB_OFFLINE, or publish without --push.")
    endpoint = (environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError as err:
        raise PublishError(f"--push cannot reach the Hugging Face Hub at {endpoint} ({err}).",
                           f"{later} Publish without --push now and upload the folder later "
                           f"(`hf upload {repo_id} FOLDER`), or publish again when online.") from None
    return HubTarget(repo_id, endpoint,
                     environ.get("HF_TOKEN") or environ["HUGGING_FACE_HUB_TOKEN"])


def push(folder: Path, target: HubTarget) -> str:
    """Upload the prepared ``folder`` as it is to the Hub repo of ``target``; any HTTP or
    connection error becomes a PublishError saying the folder is ready and where.

    Not timm's ``push_to_hf_hub``: it re-serialises the model into a temporary folder (with
    ``safe_serialization="both"`` by default also a pickled ``pytorch_model.bin``), writes its
    own ``config.json`` without our section (source, suite, the weights' SHA-256) and its own
    generic README when the repo has none; it cannot upload a prepared folder. So the folder
    timm's ``save_for_hf`` wrote (and our card) goes up with huggingface_hub's ``upload_folder``,
    tagged as a timm library upload, as timm's helper does."""
    api = HfApi(endpoint=target.endpoint, token=target.token, library_name="timm",
                library_version=timm.__version__)
    try:
        repo_id = api.create_repo(target.repo_id, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                          allow_patterns=[CONFIG, WEIGHTS, "README.md"],
                          commit_message="Publish with transfer-bench")
    except Exception as err:  # HfHubHTTPError, and the HTTP library's transport errors
        raise PublishError(f"--push to {target.repo_id} at {target.endpoint} failed "
                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); nothing "
                           "was registered.",
                           f"The folder is ready to upload: {folder}. Upload it with `hf upload "
                           f"{target.repo_id} {folder}`, or publish again (without --push to "
                           "only register it).") from None
    return f"hf-hub:{repo_id}"

