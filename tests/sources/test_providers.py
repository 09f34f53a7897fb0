"""The provider API adapters (commit statuses, deploy keys): the providers themselves cannot
be reached from here, so each adapter is tried against a real HTTP server on 127.0.0.1 that
stands in for the provider's API host and answers with the recorded response shape
(fixtures/providers/<provider>.json); the request the adapter makes is checked against the
recorded request shape (method, path, auth header, JSON body)."""

import json
from pathlib import Path

import pytest

from apps.sources.providers import ProviderError, gitea, github, registry, repository_of
from tests.sources.standin import StandIn

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
ADAPTERS = registry.BY_NAME
TOKENS = {
    "github": "ghp_test",
    "gitlab": "glpat-test",
    "bitbucket": "bb-test",
    "gitea": "gitea-test",
}
SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvN5Xb4oOuwn1PR0B5uqdKkzW2N5yQpU9UG0hZ9ZJ0e windflow"


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.stop()


def recorded(provider: str, call: str) -> dict:
    return json.loads((FIXTURES / f"{provider}.json").read_text())[call]


def api(provider: str, stand_in: StandIn):
    return ADAPTERS[provider].API(TOKENS[provider], base_url=stand_in.url, timeout=5)


def same_request(made: dict, shape: dict) -> None:
    assert made["method"] == shape["method"]
    assert made["path"] == shape["path"]
    assert made["body"] == shape["body"]
    for name, value in shape["headers"].items():
        assert made["headers"].get(name) == value, (name, made["headers"])
    assert made["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_it_sets_a_commit_status_as_each_provider_records_it(stand_in, provider):
    shape = recorded(provider, "status")
    stand_in.status, stand_in.body = shape["response"]["status"], shape["response"]["body"]
    answer = api(provider, stand_in).set_commit_status(
        repository_of("git@example.com:acme/shop.git"),
        SHA,
        "success",
        context="windflow/staging",
        description="Deployed revision 3",
        url="https://acme.windflow.test/deployments/7/",
    )
    assert answer == shape["response"]["body"]
    (made,) = stand_in.requests
    same_request(made, shape["request"])


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_it_adds_a_read_only_deploy_key_as_each_provider_records_it(stand_in, provider):
    shape = recorded(provider, "key")
    stand_in.status, stand_in.body = shape["response"]["status"], shape["response"]["body"]
    answer = api(provider, stand_in).add_deploy_key(
        repository_of("https://example.com/acme/shop.git"), title="WindFlow shop", public_key=KEY
    )
    assert answer["id"] == shape["response"]["body"]["id"]
    (made,) = stand_in.requests
    same_request(made, shape["request"])


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "provider_auth_failed"),
        (403, "provider_auth_failed"),
        (404, "provider_not_found"),
        (422, "provider_refused"),
    ],
)
def test_it_says_why_the_provider_refused(stand_in, status, code):
    stand_in.status, stand_in.body = status, {"message": "Bad credentials"}
    with pytest.raises(ProviderError) as refused:
        api("github", stand_in).set_commit_status(
            repository_of("https://github.com/acme/shop"),
            SHA,
            "failure",
            context="c",
            description="d",
            url="u",
        )
    assert refused.value.code == code and refused.value.status == status


def test_it_says_when_the_provider_does_not_answer(stand_in):
    address = stand_in.url
    stand_in.stop()
    adapter = github.API("t", base_url=address, timeout=2)
    with pytest.raises(ProviderError) as unreachable:
        adapter.add_deploy_key(repository_of("https://github.com/a/b"), title="t", public_key=KEY)
    assert unreachable.value.code == "provider_unreachable"
    stand_in.server = type(
        "Stopped", (), {"shutdown": lambda s: None, "server_close": lambda s: None}
    )()


def test_it_refuses_an_unknown_state_before_calling():
    with pytest.raises(ValueError):
        gitea.API("t", base_url="http://127.0.0.1:9").set_commit_status(
            repository_of("https://x.test/a/b"),
            SHA,
            "exploded",
            context="c",
            description="d",
            url="u",
        )


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://github.com/acme/shop.git", "github.com", "acme/shop"),
        ("git@gitlab.com:group/sub/shop.git", "gitlab.com", "group/sub/shop"),
        ("ssh://git@bitbucket.org/acme/shop.git", "bitbucket.org", "acme/shop"),
        ("https://gitea.example.com:3000/acme/shop", "gitea.example.com", "acme/shop"),
    ],
)
def test_it_reads_where_a_repository_lives(url, host, path):
    repo = repository_of(url)
    assert (repo.host, repo.path) == (host, path)


@pytest.mark.parametrize("url", ["", "not a url", "https://github.com/", "git@host:"])
def test_it_refuses_what_is_not_a_repository_url(url):
    with pytest.raises(ProviderError):
        repository_of(url)
