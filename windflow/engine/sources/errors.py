"""Errors of the project sources: archives and Git. Each carries a stable ``code`` (what the
API, the pages and the CLI report), a message for people that names the offending entry, ref
or URL (never a token or a key) and a ``hint``."""

from __future__ import annotations

from ..errors import EngineError


class SourceError(EngineError):
    """Base of the source errors: ``code`` is one of the class's ``codes``."""

    codes: dict[str, str] = {}  # code -> default hint
    error_code = "source_error"

    def __init__(self, code: str, message: str, hint: str | None = None):
        if code not in self.codes:
            raise ValueError(f"unknown {type(self).__name__} code: {code!r}")
        super().__init__(message, self.codes[code] if hint is None else hint)
        self.error_code = code

    @property
    def code(self) -> str:
        return self.error_code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ArchiveError(SourceError):
    """An archive that WindFlow refuses to unpack (or a folder it refuses to pack)."""

    codes = {
        "archive_unsafe": (
            "Pack the project folder itself: no absolute paths, no '..', no links that point "
            "outside the folder, no hard links or device files."
        ),
        "archive_too_large": (
            "Leave build outputs and dependencies (node_modules, .venv, dist) out of the "
            "archive, with a .dockerignore or .gitignore, or raise the limit."
        ),
        "archive_invalid": "Upload a .tar.gz, .tgz, .tar or .zip file, not encrypted.",
    }


class GitError(SourceError):
    """A Git repository that cannot be used: ``code`` says why. Messages and hints never
    contain a token or a private key (git's output is scrubbed)."""

    codes = {
        "url_refused": (
            "Use an https:// URL, or ssh:// / git@host:path with a deploy key. Tokens go in "
            "the token field, never in the URL."
        ),
        "repo_unreachable": (
            "Check the URL, that the host answers from the WindFlow workers, and that the "
            "repository exists (a private repository reads as missing without credentials)."
        ),
        "auth_failed": (
            "Check the access token (not expired, with read access to the repository) or add "
            "the stack's deploy key (public part) to the repository's deploy keys."
        ),
        "host_key_changed": (
            "The Git server presented another SSH host key than the one pinned on first "
            "fetch. Check with the server's operator, then reset the pinned host key."
        ),
        "ref_not_found": "Check the branch or tag name: it does not exist in the repository.",
        "commit_not_found": (
            "Check the commit SHA: it is not in the repository (or no longer reachable after "
            "a force-push)."
        ),
        "repo_unsafe": (
            "The commit holds a link that points outside the repository (or a file WindFlow "
            "does not unpack): remove it, or deploy from a subfolder without it."
        ),
        "fetch_too_large": (
            "The repository is larger than the fetch limit: deploy from a smaller repository "
            "or a subfolder repository, or raise the limit."
        ),
    }
