"""windflow.engine.compose.lint: each rule fires on a minimal example and not on its fix.
Pure Python: no database, no Docker."""

import copy
import re
from pathlib import Path

import pytest

from windflow.engine.compose.lint import RULES, lint
from windflow.engine.compose.rules import finding_ids
from windflow.engine.compose.validate import RULES as VALIDATION_RULES
from windflow.engine.compose.validate import validate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "stacks.md"

GOOD = {
    "image": "nginx:1.27",
    "restart": "unless-stopped",
    "healthcheck": {"test": ["CMD", "curl", "-f", "http://localhost/"], "interval": "10s"},
    "deploy": {"resources": {"limits": {"memory": "256M", "cpus": "0.5"}}},
}


def stack(**service):
    web = copy.deepcopy(GOOD)
    web.update(service)
    return {"services": {"web": web}}


def rules(document):
    return [(p.rule, p.path) for p in lint(document)]


def test_it_finds_nothing_in_a_clean_stack():
    clean = {
        "services": {
            "web": {
                **copy.deepcopy(GOOD),
                "ports": ["80:80", "127.0.0.1:5432:5432"],
                "volumes": ["data:/data", "/etc/localtime:/etc/localtime:ro", "/srv/web:/srv"],
                "environment": {"DB_PASSWORD": "${DB_PASSWORD}", "TOKEN_TTL": None},
            },
            "db": {
                "image": "postgres@sha256:" + "a" * 64,
                "restart": "always",
                "mem_limit": "1g",
                "cpus": 1,
                "healthcheck": {"test": "pg_isready"},
                "environment": ["POSTGRES_PASSWORD_FILE=/run/secrets/db", "API_KEY=${API_KEY}"],
            },
        },
        "volumes": {"data": {}},
    }
    assert validate(clean) == []
    assert lint(clean) == []


# (rule, bad service keys, fixed service keys, path of the finding)
CASES = [
    ("privileged", {"privileged": True}, {"privileged": False}, "services.web.privileged"),
    (
        "host-namespace",
        {"network_mode": "host"},
        {"network_mode": "bridge"},
        "services.web.network_mode",
    ),
    ("host-namespace", {"pid": "host"}, {}, "services.web.pid"),
    (
        "docker-socket",
        {"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]},
        {"volumes": ["data:/var/run"]},
        "services.web.volumes[0]",
    ),
    (
        "docker-socket",
        {"volumes": [{"type": "bind", "source": "/run/docker.sock", "target": "/d.sock"}]},
        {"volumes": [{"type": "volume", "source": "docker.sock", "target": "/d"}]},
        "services.web.volumes[0]",
    ),
    (
        "host-path",
        {"volumes": ["/:/host:ro"]},
        {"volumes": ["/srv/app:/host:ro"]},
        "services.web.volumes[0]",
    ),
    (
        "host-path",
        {"volumes": ["/etc/ssl/private:/certs"]},
        {"volumes": ["./certs:/certs"]},
        "services.web.volumes[0]",
    ),
    (
        "host-path",
        {"volumes": ["~/.ssh:/root/.ssh"]},
        {"volumes": ["ssh:/root/.ssh"]},
        "services.web.volumes[0]",
    ),
    (
        "host-path",
        {"volumes": [{"type": "bind", "source": "/var/lib/docker", "target": "/d"}]},
        {"volumes": [{"type": "bind", "source": "/var/lib/app", "target": "/d"}]},
        "services.web.volumes[0]",
    ),
    ("image-not-pinned", {"image": "nginx:latest"}, {"image": "nginx:1.27"}, "services.web.image"),
    (
        "image-not-pinned",
        {"image": "registry.local:5000/team/app"},
        {"image": "registry.local:5000/team/app:2.1"},
        "services.web.image",
    ),
    (
        "image-not-pinned",
        {"image": "nginx"},
        {"image": "nginx@sha256:" + "0" * 64},
        "services.web.image",
    ),
    ("no-healthcheck", {"healthcheck": None}, {}, "services.web.healthcheck"),
    ("no-healthcheck", {"healthcheck": {"disable": True}}, {}, "services.web.healthcheck"),
    (
        "no-limits",
        {"deploy": {}},
        {"deploy": {}, "mem_limit": "1g", "cpus": 0.5},
        "services.web.deploy.resources.limits",
    ),
    (
        "no-limits",
        {"deploy": {"resources": {"limits": {"memory": "1g"}}}},
        {},
        "services.web.deploy.resources.limits",
    ),
    (
        "secret-in-clear",
        {"environment": {"DB_PASSWORD": "hunter2"}},
        {"environment": {"DB_PASSWORD": "${DB_PASSWORD}"}},
        "services.web.environment.DB_PASSWORD",
    ),
    (
        "secret-in-clear",
        {"environment": ["STRIPE_API_KEY=sk_live_123"]},
        {"environment": ["STRIPE_API_KEY=${STRIPE_API_KEY:?set it}"]},
        "services.web.environment[0]",
    ),
    (
        "database-port-public",
        {"ports": ["5432:5432"]},
        {"ports": ["127.0.0.1:5432:5432"]},
        "services.web.ports[0]",
    ),
    (
        "database-port-public",
        {"ports": ["0.0.0.0:16379:6379/tcp"]},
        {"ports": ["[::1]:16379:6379"]},
        "services.web.ports[0]",
    ),
    (
        "database-port-public",
        {"ports": [{"target": 27017, "published": 27017}]},
        {"ports": [{"target": 27017, "published": 27017, "host_ip": "127.0.0.1"}]},
        "services.web.ports[0]",
    ),
    ("database-port-public", {"ports": [3306]}, {"ports": ["8080:80"]}, "services.web.ports[0]"),
    (
        "no-restart-policy",
        {"restart": None},
        {
            "restart": None,
            "deploy": {
                "restart_policy": {"condition": "on-failure"},
                "resources": {"limits": {"memory": "1g", "cpus": "1"}},
            },
        },
        "services.web.restart",
    ),
    ("container-name", {"container_name": "web"}, {}, "services.web.container_name"),
]


@pytest.mark.parametrize(("rule", "bad", "fixed", "path"), CASES)
def test_it_fires_each_rule_and_not_on_the_fix(rule, bad, fixed, path):
    bad_doc = stack(**bad)
    for key, value in bad.items():  # None means "without this key"
        if value is None:
            del bad_doc["services"]["web"][key]
    assert rules(bad_doc) == [(rule, path)]
    (problem,) = lint(bad_doc)
    meta = RULES[rule]
    assert (problem.severity, problem.hint) == (meta.severity, meta.hint)
    assert problem.severity in ("warning", "info")
    assert problem.message.startswith("services.web")

    fixed_doc = stack(**fixed)
    for key, value in fixed.items():
        if value is None:
            del fixed_doc["services"]["web"][key]
    assert lint(fixed_doc) == []


def test_it_never_repeats_a_secret_value():
    (problem,) = lint(stack(environment={"GITHUB_TOKEN": "ghp_verysecret"}))
    assert "ghp_verysecret" not in problem.message + problem.hint


def test_it_says_what_is_wrong_in_plain_words():
    problems = {p.rule: p.message for p in lint({"services": {"db": {"image": "postgres"}}})}
    assert problems == {
        "image-not-pinned": "services.db.image: postgres has no tag, so it means :latest",
        "no-healthcheck": "services.db has no healthcheck",
        "no-limits": "services.db has no memory or CPU limit",
        "no-restart-policy": "services.db has no restart policy",
    }
    (port,) = lint(stack(ports=["5432:5432"]))
    assert port.message == (
        "services.web.ports[0] publishes the PostgreSQL port 5432 on every network interface "
        "of the server"
    )


def test_it_does_not_crash_on_malformed_documents():
    for document in (
        None,
        [],
        {"services": []},
        {"services": {"a": None, "b": "x"}},
        {
            "services": {
                "a": {
                    "volumes": {},
                    "ports": [None, True],
                    "environment": 3,
                    "deploy": {"resources": {"limits": []}},
                }
            }
        },
    ):
        lint(document)


def test_it_notes_a_top_level_name_that_windflow_ignores():
    document = {"name": "myapp", **stack()}
    assert validate(document) == []
    (problem,) = lint(document)
    assert (problem.rule, problem.path, problem.severity) == (
        "project-name-ignored",
        "name",
        "warning",
    )
    assert "stack's name" in problem.message and "Remove name:" in problem.hint


def test_it_documents_every_rule():
    for rule in RULES.values():
        assert rule.title and rule.hint and rule.severity in ("warning", "info")


def test_every_finding_id_is_a_word_and_is_listed_in_the_docs():
    ids = finding_ids()
    assert set(RULES) | set(VALIDATION_RULES) <= set(ids)
    for rule in ids:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule), rule
    documented = re.findall(r"^\| `([a-z-]+)` \|", DOCS.read_text(), flags=re.MULTILINE)
    assert set(ids) <= set(documented)
