import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment
from apps.secrets.models import SecretRef
from apps.stacks import services
from apps.stacks.models import Stack, StackRevision
from tests.base import COMPOSE, member
from windflow.errors import Conflict, Forbidden, ServiceError

BOMB = "\n".join(
    [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]",
    ]
)


def test_it_creates_a_stack_with_revision_one_and_an_audit_event(make_stack, owner):
    stack = make_stack(message="first", variables={"EXTRA": "1"})
    revision = stack.latest_revision
    assert revision.number == 1 and revision.message == "first"
    assert revision.variables == {"EXTRA": "1"} and revision.author == owner
    assert stack.created_by == owner
    assert AuditEvent.objects.filter(action="stack.create", object_id=str(stack.pk)).exists()


def test_it_uses_the_environment_variables_under_the_stack_ones(staging):
    analysis = services.check_compose(COMPOSE, environment=staging, project="shop")
    assert analysis.ok and analysis.services == ["web"]
    overridden = services.check_compose(
        "services:\n  web:\n    image: nginx:${TAG}\n",
        variables={"TAG": "1.27"},
        environment=staging,
        project="shop",
    )
    assert overridden.ok, overridden.problems


def test_it_refuses_a_duplicate_or_badly_named_stack(make_stack):
    make_stack()
    with pytest.raises(Conflict) as duplicate:
        make_stack()
    assert duplicate.value.field == "name" and "already exists" in duplicate.value.message
    for bad in ("Shop", "-shop", "a b", "add", ""):
        with pytest.raises(ServiceError) as error:
            make_stack(name=bad)
        assert error.value.field == "name"


def test_it_needs_a_developer(make_stack, viewer, acme):
    with pytest.raises(Forbidden):
        make_stack(actor=member(viewer, acme))
    assert not Stack.objects.exists()


def test_it_refuses_a_server_that_does_not_serve_the_environment(
    make_stack, local_target, production
):
    local_target.environments.set([production])
    with pytest.raises(ServiceError) as error:
        make_stack()
    assert error.value.field == "target" and "does not serve staging" in error.value.message


def test_it_refuses_a_missing_secret(make_stack, staging, production):
    compose = (
        "services:\n  db:\n    image: postgres:16\n    environment:\n      P: ${DB_PASSWORD}\n"
    )
    with pytest.raises(services.ComposeInvalid) as error:
        make_stack(compose=compose, secrets=["DB_PASSWORD"])
    assert error.value.field == "secrets"
    assert "DB_PASSWORD does not exist for staging" in error.value.message
    # A secret of another environment does not count; one of this environment does.
    SecretRef.objects.create(
        name="DB_PASSWORD", scope="environment", environment=production, backend="local"
    )
    with pytest.raises(services.ComposeInvalid):
        make_stack(compose=compose, secrets=["DB_PASSWORD"])
    SecretRef.objects.create(
        name="DB_PASSWORD", scope="environment", environment=staging, backend="local"
    )
    stack = make_stack(compose=compose, secrets=["DB_PASSWORD"])
    assert stack.latest_revision.secrets == ["DB_PASSWORD"]


def test_it_refuses_an_unknown_variable_and_says_how_to_provide_it(make_stack):
    compose = "services:\n  web:\n    image: nginx:1.27\n    environment:\n      A: ${NOPE}\n"
    with pytest.raises(services.ComposeInvalid) as error:
        make_stack(compose=compose)
    assert error.value.field == "compose"
    message = error.value.message
    assert "NOPE" in message and "line 5" in message
    assert "variables" in message and "secret" in message


def test_it_refuses_an_alias_bomb_clearly(make_stack):
    with pytest.raises(services.ComposeInvalid) as error:
        make_stack(compose=BOMB)
    assert "billion laughs" in error.value.message
    assert not Stack.objects.exists()


def test_it_refuses_malformed_yaml_with_its_line(make_stack):
    with pytest.raises(services.ComposeInvalid) as error:
        make_stack(compose="services:\n  web:\n   image: [\n")
    assert error.value.field == "compose"
    assert "Invalid YAML" in error.value.message and "line 4" in error.value.message


def test_it_refuses_build_with_what_to_do_instead(make_stack):
    with pytest.raises(services.ComposeInvalid) as error:
        make_stack(compose="services:\n  web:\n    build: .\n")
    assert "build is not supported" in error.value.message
    assert "Line 3" in error.value.message and "image" in error.value.message


def test_it_revises_with_the_next_number_and_refuses_no_changes(make_stack, membership):
    stack = make_stack()
    with pytest.raises(Conflict) as error:
        services.revise_stack(membership, stack, compose=COMPOSE.replace("\n", "\r\n"))
    assert error.value.code == "no_changes"
    revision = services.revise_stack(
        membership, stack, compose=COMPOSE, variables={"X": "1"}, message="add X"
    )
    assert revision.number == 2 and stack.latest_revision == revision
    assert AuditEvent.objects.filter(action="stack.revise").count() == 1


def test_it_keeps_revisions_immutable(make_stack):
    revision = make_stack().latest_revision
    revision.compose = "services: {}"
    with pytest.raises(ValidationError):
        revision.save()
    with pytest.raises(ValidationError):
        revision.delete()
    assert StackRevision.objects.get(pk=revision.pk).compose == COMPOSE


def test_it_updates_settings_with_an_audit_of_before_and_after(make_stack, membership):
    stack = make_stack()
    services.update_stack(membership, stack, health_timeout=300, description=" shop ")
    stack.refresh_from_db()
    assert stack.health_timeout == 300 and stack.description == "shop"
    event = AuditEvent.objects.get(action="stack.update")
    assert event.changes["health_timeout"] == [120, 300]
    with pytest.raises(ServiceError) as error:
        services.update_stack(membership, stack, grace_period=9999)
    assert error.value.field == "grace_period"


def test_it_refuses_moving_a_deployed_stack_to_another_server(make_stack, membership):
    from apps.targets import services as targets

    stack = make_stack()
    other = targets.create_target(membership, name="web-2", kind="local")
    stack.current_revision = stack.latest_revision
    stack.save()
    with pytest.raises(Conflict) as error:
        services.update_stack(membership, stack, target=other)
    assert "remove it from web-1 first" in error.value.message


def test_it_refuses_an_environment_where_the_latest_revision_would_not_work(
    make_stack, membership, production
):
    stack = make_stack()  # GREETING comes from staging's variables
    with pytest.raises(ServiceError) as error:
        services.update_stack(membership, stack, environment=production)
    assert error.value.field == "environment" and "GREETING" in error.value.message


def test_it_deletes_only_what_is_not_deployed_nor_deploying(
    make_stack, membership, developer, operator, acme
):
    stack = make_stack()
    with pytest.raises(Forbidden):
        services.delete_stack(member(developer, acme), stack)
    stack.current_revision = stack.latest_revision
    stack.save()
    with pytest.raises(Conflict) as deployed:
        services.delete_stack(membership, stack)
    assert "Remove it from the server first" in deployed.value.message
    stack.current_revision = None
    stack.save()
    Deployment.objects.create(
        stack=stack,
        number=1,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
        status="queued",
    )
    with pytest.raises(Conflict) as active:
        services.delete_stack(membership, stack)
    assert active.value.code == "deployment_active"
    Deployment.objects.update(status="failed")
    services.delete_stack(member(operator, acme), stack)
    assert not Stack.objects.exists() and not StackRevision.objects.exists()
    assert AuditEvent.objects.filter(action="stack.delete").exists()


def test_it_diffs_two_revisions(make_stack, membership, secret):
    stack = make_stack(variables={"A": "1", "B": "2"})
    new = services.revise_stack(
        membership,
        stack,
        compose=COMPOSE.replace("nginx:1.27", "nginx:1.28"),
        variables={"A": "1", "B": "3", "C": "4"},
        secrets=["DB_PASSWORD"],
    )
    diff = services.diff_revisions(stack.revisions.get(number=1), new)
    kinds = {(line["kind"], line["text"].strip()) for line in diff["lines"]}
    assert ("remove", "-    image: nginx:1.27") in kinds
    assert ("add", "+    image: nginx:1.28") in kinds
    assert diff["variables"] == {"added": {"C": "4"}, "removed": {}, "changed": {"B": ["2", "3"]}}
    assert diff["secrets"] == {"added": ["DB_PASSWORD"], "removed": []}
    first = services.diff_revisions(None, stack.revisions.get(number=1))
    assert all(line["kind"] in ("header", "hunk", "add") for line in first["lines"])


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ("nope", "must be a list"),
        ([{"registry": "ghcr.io", "username": "bot"}], "exactly: registry, username, secret"),
        ([{"registry": "not a host!", "username": "bot", "secret": "T"}], "not a registry"),
        ([{"registry": "ghcr.io", "username": "bot", "secret": "NOPE"}], "no secret NOPE"),
    ],
)
def test_it_refuses_bad_registry_credentials(make_stack, membership, credentials, message):
    stack = make_stack()
    with pytest.raises(ServiceError) as error:
        services.update_stack(membership, stack, registry_credentials=credentials)
    assert error.value.field == "registry_credentials"
    assert message in error.value.message
    stack.refresh_from_db()
    assert stack.registry_credentials == []


def test_it_reads_registry_logins_one_per_line():
    text = "# private registries\nghcr.io bot GHCR_TOKEN\n\n10.0.0.5:5000 ci REG_PW\n"
    credentials = services.parse_registry_credentials(text)
    assert credentials == [
        {"registry": "ghcr.io", "username": "bot", "secret": "GHCR_TOKEN"},
        {"registry": "10.0.0.5:5000", "username": "ci", "secret": "REG_PW"},
    ]
    assert services.format_registry_credentials(credentials).splitlines()[0] == (
        "ghcr.io bot GHCR_TOKEN"
    )
    with pytest.raises(ServiceError, match="Line 2"):
        services.parse_registry_credentials("ghcr.io bot T\nghcr.io only-two\n")


def test_it_lets_only_operators_choose_the_secrets_a_stack_reads(
    make_stack, secret, developer, operator, acme
):
    stack = make_stack()
    latest = stack.latest_revision
    with pytest.raises(Forbidden):
        services.revise_stack(
            member(developer, acme),
            stack,
            compose=latest.compose,
            variables=latest.variables,
            secrets=["DB_PASSWORD"],
        )
    revision = services.revise_stack(
        member(operator, acme),
        stack,
        compose=latest.compose,
        variables=latest.variables,
        secrets=["DB_PASSWORD"],
    )
    # A developer edits on, keeping the secrets already chosen.
    edited = services.revise_stack(
        member(developer, acme),
        stack,
        compose=revision.compose + "\n# tuned\n",
        variables=revision.variables,
        secrets=["DB_PASSWORD"],
    )
    assert edited.number == 3
