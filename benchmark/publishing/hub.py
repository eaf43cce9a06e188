"""``bench publish --push hf:ORG/REPO``: everything that can be checked before anything is
written or registered (syntax, token, the Hub reachable), and the upload of the prepared
folder. ``bench results publish --push`` goes the same way to a dataset repo
(:func:`hub_target`, :func:`reach_hub`, :func:`upload`)."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
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
    later = f"Nothing was written or registered; the folder would be {folder}."
    target = hub_target(repo, environ, later)
    reach_hub(target, environ,
              offline=f"{later} Unset HF_HUB_OFFLINE, or publish without --push.",
              unreachable=f"{later} Publish without --push now and upload the folder later "
                          f"(`hf upload {target.repo_id} FOLDER`), or publish again when online.")
    return target


def hub_target(repo: str, environ: Mapping[str, str], kept: str) -> HubTarget:
    """``--push hf:ORG/REPO`` checked without the network: the syntax and a token (HF_TOKEN or
    HUGGING_FACE_HUB_TOKEN), the endpoint resolved (HF_ENDPOINT, else huggingface.co).
    ``kept`` says what became of the folder; every refusal starts its advice with it."""
    repo_id = repo.removeprefix("hf:").removeprefix("hf-hub:")
    if not repo.startswith(("hf:", "hf-hub:")) or \
            not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id):
        raise PublishError(f"--push '{repo}' must look like hf:ORG/REPO.", kept)
    token = environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        raise PublishError("--push needs a Hugging Face token in HF_TOKEN.",
                           f"{kept} Set HF_TOKEN (a write token) and publish again, or publish "
                           "without --push.")
    return HubTarget(repo_id, (environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/"),
                     token)


def reach_hub(target: HubTarget, environ: Mapping[str, str], *, offline: str,
              unreachable: str) -> None:
    """Refuse at once under HF_HUB_OFFLINE (advice ``offline``), or when the endpoint takes no
    TCP connection within 5 s (advice ``unreachable``); opens and closes one socket."""
    if environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PublishError("--push cannot reach the Hugging Face Hub: HF_HUB_OFFLINE is set.",
                           offline)
    url = urlparse(target.endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError as err:
        raise PublishError(f"--push cannot reach the Hugging Face Hub at {target.endpoint} "
                           f"({err}).", unreachable) from None


def push(folder: Path, target: HubTarget) -> str:
    """Upload the prepared ``folder`` as it is to the Hub repo of ``target``; any HTTP or
    connection error becomes a PublishError saying the folder is ready and where.

    Not timm's ``push_to_hf_hub``: it re-serialises the model into a temporary folder (with
    ``safe_serialization="both"`` by default also a pickled ``pytorch_model.bin``), writes its
    own ``config.json`` without our section (source, suite, the weights' SHA-256) and its own
    generic README when the repo has none; it cannot upload a prepared folder. So the folder
    timm's ``save_for_hf`` wrote (and our card) goes up with huggingface_hub's ``upload_folder``,
    tagged as a timm library upload, as timm's helper does."""
    repo_id = upload(folder, target, files=[CONFIG, WEIGHTS, "README.md"],
                     library=("timm", timm.__version__), unsent="; nothing was registered",
                     retry="publish again (without --push to only register it)")
    return f"hf-hub:{repo_id}"


def upload(folder: Path, target: HubTarget, *, files: list[str], library: tuple[str, str],
           repo_type: str | None = None, unsent: str = "", retry: str = "publish again") -> str:
    """Create ``target``'s repo (of ``repo_type``: None is huggingface_hub's default, a model)
    if needed and upload the ``files`` (patterns) of the prepared ``folder`` as they are, with
    ``library`` (name, version) in the user agent; returns the repo id. Any HTTP or connection
    error becomes a PublishError saying the folder is ready, where, and the ``hf upload`` line
    (``unsent``: what else was not done; ``retry``: the other way out)."""
    api = HfApi(endpoint=target.endpoint, token=target.token, library_name=library[0],
                library_version=library[1])
    try:
        repo_id = api.create_repo(target.repo_id, repo_type=repo_type, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(folder),
                          allow_patterns=files, commit_message="Publish with transfer-bench")
    except Exception as err:  # HfHubHTTPError, and the HTTP library's transport errors
        kind = f" --repo-type {repo_type}" if repo_type else ""
        raise PublishError(f"--push to {target.repo_id} at {target.endpoint} failed "
                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]}){unsent}.",
                           f"The folder is ready to upload: {folder}. Upload it with `hf upload "
                           f"{target.repo_id} {folder}{kind}`, or {retry}.") from None
    return repo_id
