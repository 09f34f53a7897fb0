"""Git sources (windflow.engine.sources.git) against real git servers on loopback
(devtools.gitserver: git daemon, git http-backend with a token check, and an sshd serving
the repositories to a deploy key). No mocks."""

import base64
import os
import socket
import stat

import pytest

from devtools.gitserver import Link
from windflow.engine import ssh
from windflow.engine.sources import git
from windflow.engine.sources.cache import Cache
from windflow.engine.sources.errors import GitError

LOCAL = {"allow_private": True, "allow_insecure": True}  # loopback, plain http and git://
TOKEN = "glpat-Secret-Token-4242"
COMPOSE = "services:\n  web:\n    image: 127.0.0.1:5000/web:1\n"


@pytest.fixture
def repo(git_server):
    """A public repository: main (two commits), an annotated tag v1 on the first."""
    repo = git_server.repo()
    repo.first = repo.commit({"compose.yaml": COMPOSE, "app/config.txt": "one\n"}, "first")
    repo.second = repo.commit({"app/config.txt": "two\n"}, "second")
    repo.tag("v1", repo.first)
    return repo


@pytest.fixture
def private_repo(git_server):
    repo = git_server.repo(token=TOKEN)
    repo.first = repo.commit({"compose.yaml": COMPOSE}, "first")
    return repo


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def fails(code, call, *args, **kwargs) -> GitError:
    with pytest.raises(GitError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert caught.value.hint
    return caught.value


def assert_no_secret(error: GitError, *secrets):
    text = " ".join([error.message, error.hint, str(error), repr(error.as_dict())])
    for secret in secrets:
        assert secret not in text


# ------------------------------------------------------------------------------ resolving


def test_it_resolves_a_branch_a_tag_head_and_commits(repo, cache):
    branch = git.resolve_ref(repo.git_url, "main", **LOCAL)
    assert (branch.sha, branch.kind, branch.name) == (repo.second, "branch", "refs/heads/main")
    tag = git.resolve_ref(repo.git_url, "v1", **LOCAL)  # annotated: peeled to its commit
    assert (tag.sha, tag.kind, tag.name) == (repo.first, "tag", "refs/tags/v1")
    head = git.resolve_ref(repo.git_url, "", **LOCAL)
    assert (head.sha, head.name) == (repo.second, "refs/heads/main")
    assert git.ls_remote(repo.git_url, repo.first, **LOCAL) == repo.first
    assert git.ls_remote(repo.git_url, repo.second[:10], **LOCAL) == repo.second  # a tip
    assert git.ls_remote(repo.git_url, repo.first[:9], **LOCAL) == repo.first  # v1's tip


def test_it_looks_a_short_sha_up_in_the_history(git_server, cache):
    repo = git_server.repo()
    old = repo.commit({"a": "1"})
    repo.commit({"a": "2"})
    fails("commit_not_found", git.ls_remote, repo.git_url, old[:9], **LOCAL)  # no cache
    assert git.ls_remote(repo.git_url, old[:9], cache=cache, **LOCAL) == old
    fails("commit_not_found", git.ls_remote, repo.git_url, "abcdef12", cache=cache, **LOCAL)


def test_it_says_when_a_branch_does_not_exist(repo):
    error = fails("ref_not_found", git.ls_remote, repo.git_url, "release", **LOCAL)
    assert "'release'" in error.message


@pytest.mark.parametrize("ref", ["-upload-pack=touch", "main..dev", "a b", "x:y", "refs/heads/"])
def test_it_refuses_ref_names_git_would_not_take(repo, ref):
    fails("ref_not_found", git.ls_remote, repo.git_url, ref, **LOCAL)


def test_it_says_when_the_repository_is_unreachable(git_server):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    error = fails(
        "repo_unreachable", git.ls_remote, f"git://127.0.0.1:{port}/x.git", "main", **LOCAL
    )
    assert "127.0.0.1" in error.message
    fails(
        "repo_unreachable",
        git.ls_remote,
        f"http://127.0.0.1:{git_server.http_port}/nope.git",
        "main",
        **LOCAL,
    )


def test_it_gives_up_on_a_server_that_never_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/x.git"
        error = fails("repo_unreachable", git.ls_remote, url, "main", timeout=1, **LOCAL)
        assert "did not finish within 1 s" in error.message
    finally:
        listener.close()


# -------------------------------------------------------------------------------- fetching


def test_it_fetches_a_commit_into_a_read_only_tree(repo, cache):
    tree = git.fetch(repo.git_url, "main", cache=cache, **LOCAL)
    assert (tree / "app" / "config.txt").read_text() == "two\n"
    assert (tree / "compose.yaml").read_text() == COMPOSE
    assert not os.stat(tree / "compose.yaml").st_mode & 0o222
    assert not (tree / ".git").exists()
    older = git.fetch(repo.git_url, repo.first, cache=cache, **LOCAL)  # not a tip: by SHA
    assert (older / "app" / "config.txt").read_text() == "one\n"
    assert git.fetch(repo.git_url, "v1", cache=cache, **LOCAL) == older


def test_it_exports_every_file_of_the_commit_whatever_gitattributes_say(git_server, cache):
    repo = git_server.repo()
    files = {".gitattributes": "tests/ export-ignore\nv.txt export-subst\n", "tests/t.py": "x"}
    sha = repo.commit({**files, "v.txt": "$Format:%H$"})
    tree = git.fetch(repo.git_url, sha, cache=cache, **LOCAL)
    assert (tree / "tests" / "t.py").read_text() == "x"
    assert (tree / "v.txt").read_text() == "$Format:%H$"


def test_it_reuses_a_fetched_commit_without_asking_the_server(private_repo, git_server, cache):
    auth = git.GitAuth.with_token(TOKEN)
    tree = git.fetch(private_repo.http_url, private_repo.first, auth, cache=cache, **LOCAL)
    served = len(git_server.requests)
    assert git.fetch(private_repo.http_url, private_repo.first, auth, cache=cache, **LOCAL) == tree
    assert len(git_server.requests) == served


def test_it_never_serves_a_cached_tree_to_other_credentials(private_repo, cache):
    auth = git.GitAuth.with_token(TOKEN)
    git.fetch(private_repo.http_url, private_repo.first, auth, cache=cache, **LOCAL)
    error = fails(
        "auth_failed", git.fetch, private_repo.http_url, private_repo.first, cache=cache, **LOCAL
    )
    assert private_repo.first[:12] in error.message
    wrong = git.GitAuth.with_token("not-the-token")
    fails(
        "auth_failed",
        git.fetch,
        private_repo.http_url,
        private_repo.first,
        wrong,
        cache=cache,
        **LOCAL,
    )


def test_it_says_when_a_commit_does_not_exist(repo, cache):
    error = fails("commit_not_found", git.fetch, repo.git_url, "f" * 40, cache=cache, **LOCAL)
    assert "f" * 40 in error.message


def test_it_refuses_a_commit_with_a_link_outside_the_tree(git_server, cache):
    repo = git_server.repo()
    sha = repo.commit({"compose.yaml": COMPOSE, "passwd": Link("../../../../etc/passwd")})
    error = fails("repo_unsafe", git.fetch, repo.git_url, sha, cache=cache, **LOCAL)
    assert "passwd" in error.message
    assert cache.get(f"git-tree-{git._repo_key(repo.git_url, git.NO_AUTH)}-{sha}") is None


def test_it_stops_a_fetch_over_the_limit(git_server, cache):
    repo = git_server.repo()
    repo.commit({"big.bin": os.urandom(200_000)})
    error = fails(
        "fetch_too_large", git.fetch, repo.git_url, "main", cache=cache, max_bytes=50_000, **LOCAL
    )
    assert repo.git_url in error.message
    mirror = cache.path(f"git-mirror-{git._repo_key(repo.git_url, git.NO_AUTH)}")
    assert not any(mirror.iterdir())  # emptied: nothing half-fetched stays


# ------------------------------------------------------------------------------ force-push


def test_it_tells_a_fast_forward_from_a_force_push(repo, cache):
    assert git.is_ancestor(repo.git_url, repo.first, repo.second, cache=cache, **LOCAL)
    rewritten = repo.rewrite({"app/config.txt": "rewritten\n"})
    assert not git.is_ancestor(repo.git_url, repo.second, rewritten, cache=cache, **LOCAL)
    assert git.is_ancestor(repo.git_url, repo.first, rewritten, cache=cache, **LOCAL)


def test_it_finds_an_ancestor_deeper_than_the_first_fetch(git_server, cache):
    repo = git_server.repo()
    first = repo.commit({"n": "0"})
    for n in range(1, 80):
        repo.commit({"n": str(n)})
    tip = repo.head()
    git.fetch(repo.git_url, tip, cache=cache, **LOCAL)  # a shallow mirror: depth 1
    assert git.is_ancestor(repo.git_url, first, tip, cache=cache, **LOCAL)
    assert not git.is_ancestor(repo.git_url, tip, first, cache=cache, **LOCAL)


# ------------------------------------------------------------------------------- HTTP token


def test_it_fetches_over_http_with_the_right_token(private_repo, git_server, cache):
    auth = git.GitAuth.with_token(TOKEN)
    before = len(git_server.requests)
    assert git.ls_remote(private_repo.http_url, "main", auth, **LOCAL) == private_repo.first
    tree = git.fetch(private_repo.http_url, "main", auth, cache=cache, **LOCAL)
    assert (tree / "compose.yaml").read_text() == COMPOSE
    served = git_server.requests[before:]
    sent = {header for _method, _path, header in served if header}
    assert sent == {"Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()}
    assert all(TOKEN not in path for _method, path, _header in served)


def test_it_says_auth_failed_for_a_wrong_or_missing_token_without_showing_it(private_repo):
    wrong = git.GitAuth.with_token("glpat-Wrong-Token-0000")
    error = fails("auth_failed", git.ls_remote, private_repo.http_url, "main", wrong, **LOCAL)
    assert_no_secret(
        error,
        "glpat-Wrong-Token-0000",
        base64.b64encode(b"x-access-token:glpat-Wrong-Token-0000").decode(),
    )
    fails("auth_failed", git.ls_remote, private_repo.http_url, "main", **LOCAL)


def test_it_scrubs_tokens_from_what_git_says():
    header = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    said = f"fatal: https://u:{TOKEN}@h/r Authorization: Basic {header} and {TOKEN}"
    clean = git.scrub(said, git.GitAuth.with_token(TOKEN).secrets())
    assert TOKEN not in clean and header not in clean


# ------------------------------------------------------------------------------------- SSH


@pytest.fixture(scope="module")
def deploy_key(git_sshd):
    private_pem, public_line = ssh.generate_ed25519_keypair()
    git_sshd.authorize("root", public_line)
    return private_pem


def test_it_fetches_over_ssh_with_the_deploy_key_and_pins_the_host_key(
    repo, git_sshd, deploy_key, cache
):
    url = repo.ssh_url(git_sshd)
    remote = git.resolve_ref(url, "main", git.GitAuth.with_deploy_key(deploy_key), **LOCAL)
    assert remote.sha == repo.second
    assert git_sshd.host_public_key in remote.known_hosts  # learned on first use
    pinned = git.GitAuth.with_deploy_key(deploy_key, remote.known_hosts)
    tree = git.fetch(url, "main", pinned, cache=cache, **LOCAL)
    assert (tree / "app" / "config.txt").read_text() == "two\n"
    assert (
        git.resolve_ref(url, "main", pinned, **LOCAL).known_hosts.strip()
        == remote.known_hosts.strip()
    )


def test_it_says_auth_failed_for_a_wrong_deploy_key(repo, git_sshd, deploy_key):
    other_pem, _public = ssh.generate_ed25519_keypair()
    error = fails(
        "auth_failed",
        git.ls_remote,
        repo.ssh_url(git_sshd),
        "main",
        git.GitAuth.with_deploy_key(other_pem),
        **LOCAL,
    )
    assert_no_secret(error, *[line for line in other_pem.splitlines() if len(line) > 8])


def test_it_refuses_a_host_key_other_than_the_pinned_one(repo, git_sshd, deploy_key):
    _pem, other_public = ssh.generate_ed25519_keypair()
    wrong_pin = f"[{git_sshd.host}]:{git_sshd.port} {other_public}"
    auth = git.GitAuth.with_deploy_key(deploy_key, wrong_pin)
    fails("host_key_changed", git.ls_remote, repo.ssh_url(git_sshd), "main", auth, **LOCAL)


def test_it_removes_the_deploy_key_file_after_use(
    repo, git_sshd, deploy_key, tmp_path, monkeypatch
):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    git.ls_remote(repo.ssh_url(git_sshd), "main", git.GitAuth.with_deploy_key(deploy_key), **LOCAL)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("windflow-git-")]


# --------------------------------------------------------------------------------- URL guard


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "/srv/repo.git",
        "./repo",
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "-oProxyCommand=touch /tmp/pwned",
        "ssh://-oProxyCommand=x/repo",
        "https://user:token@github.com/acme/shop.git",
        "https://token@github.com/acme/shop.git",
        "ftp://example.com/repo.git",
        "https://github.com",
        "https://exa mple.com/r.git",
    ],
)
def test_it_refuses_urls_that_are_not_remote_repositories(url):
    error = fails("url_refused", git.check_url, url, allow_private=True, allow_insecure=True)
    assert "token@" not in error.message  # a URL with credentials is not echoed


def test_it_refuses_unencrypted_urls_unless_allowed(repo):
    fails("url_refused", git.check_url, repo.http_url, allow_private=True)
    fails("url_refused", git.check_url, repo.git_url, allow_private=True)
    assert (
        git.check_url(repo.http_url, allow_private=True, allow_insecure=True).port
        == repo.server.http_port
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/r.git",
        "ssh://git@10.1.2.3/r.git",
        "git@localhost:r.git",
        "https://[::1]/r.git",
        "https://169.254.169.254/r.git",
    ],
)
def test_it_refuses_private_and_local_addresses_unless_allowed(url):
    error = fails("url_refused", git.check_url, url)
    assert "private or local" in error.message
    assert git.check_url(url, allow_private=True).host


def test_it_accepts_the_usual_url_shapes():
    parsed = git.check_url("git@github.com:acme/shop.git", allow_private=True)
    assert (parsed.scheme, parsed.host, parsed.path) == ("ssh", "github.com", "acme/shop.git")
    parsed = git.check_url("ssh://git@gitlab.example:2222/acme/shop.git", allow_private=True)
    assert (parsed.host, parsed.port) == ("gitlab.example", 2222)
    assert git.check_url("https://github.com/acme/shop", allow_private=True).scheme == "https"


def test_it_refuses_a_token_on_an_ssh_url_and_a_key_on_https(repo, git_sshd):
    fails(
        "url_refused",
        git.ls_remote,
        repo.ssh_url(git_sshd),
        "main",
        git.GitAuth.with_token(TOKEN),
        **LOCAL,
    )
    fails(
        "url_refused",
        git.ls_remote,
        repo.http_url,
        "main",
        git.GitAuth.with_deploy_key("k"),
        **LOCAL,
    )


def test_it_writes_the_deploy_key_owner_only(tmp_path):
    parsed = git.check_url("git@example.com:a/b.git", allow_private=True)
    key = "PRIVATE-KEY-MATERIAL"
    with git._session(parsed, git.GitAuth.with_deploy_key(key), None) as session:
        home = session.known_hosts.parent
        assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(home / "deploy_key").st_mode) == 0o600
        assert (home / "deploy_key").read_text().strip() == key
        assert key not in " ".join(f"{k}={v}" for k, v in session.env.items())
    assert not home.exists()


def test_it_pins_the_checked_address_and_follows_no_redirect_for_public_hosts():
    parsed = git.check_url("https://git.example.com/a/b.git", allow_private=True)
    with git._session(parsed, git.NO_AUTH, ["203.0.113.7"]) as session:
        config = {
            session.env[f"GIT_CONFIG_KEY_{i}"]: session.env[f"GIT_CONFIG_VALUE_{i}"]
            for i in range(int(session.env["GIT_CONFIG_COUNT"]))
        }
    assert config["http.curloptResolve"] == "git.example.com:443:203.0.113.7"
    assert config["http.followRedirects"] == "false"
    assert config["credential.helper"] == ""
    assert session.env["GIT_TERMINAL_PROMPT"] == "0"
