"""Every provider module, the most specific first: a Gitea delivery also carries GitHub's
and Gogs' headers for compatibility, so Gitea is asked before GitHub."""

from . import bitbucket, gitea, github, gitlab

MODULES = (gitea, gitlab, bitbucket, github)
BY_NAME = {module.NAME: module for module in MODULES}
