"""Project sources for the engine: pure Python (no Django), used by the sources app (the
worker), the build-context packer and the ``windflow`` CLI.

- ``archive``: safe unpack of uploaded .tar.gz/.tgz/.tar/.zip, deterministic pack, digest,
  manifest (``ArchiveError``: archive_unsafe, archive_too_large, archive_invalid).
- ``git``: ls-remote / resolve_ref, fetch of a commit into the cache, is_ancestor (force-push
  detection), URL guard, token and deploy-key auth (``GitError``: url_refused,
  repo_unreachable, auth_failed, host_key_changed, ref_not_found, commit_not_found,
  fetch_too_large, repo_unsafe).
- ``cache``: the worker's size-limited, LRU, multi-process cache of entries.
- ``ignore``: .gitignore / .dockerignore rules, ``project_files`` and ``context_files``.

Submodules are imported on demand (``from windflow.engine.sources import git``); this module
only re-exports the errors.
"""

from .errors import ArchiveError, GitError, SourceError

__all__ = ["ArchiveError", "GitError", "SourceError"]
