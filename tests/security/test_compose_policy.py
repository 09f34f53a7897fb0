"""Security suite, compose policy (issue 9, item 3): each host-level compose feature tried by
each role, on save (API and page, new stack and new revision, moves) and at deploy (a real
deployment through the queue and the runner on the test Docker engine), with per-environment
overrides and a shared engine.

The default policy lets owners and admins deploy host-level features; operators and
developers are refused; viewers cannot save a stack at all."""

import pytest
from django.db import connection

from apps.accounts.models import Membership
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments import policy
from apps.environments.models import Environment
from apps.stacks import services as stacks
from apps.stacks.models import Stack
from devtools import remove_compose_project
from tests.base import TEST_ENGINE, api_client, client_for, error_of, run_queued_jobs
from tests.deploying import project_containers
from windflow.engine.compose.hostaccess import FEATURES
from windflow.errors import ServiceError

ROLES = ("owner", "admin", "operator", "developer")
ALLOWED_BY_DEFAULT = {"owner", "admin"}

# One way to ask for each feature, as the 4th line of a one-service file.
FEATURE_LINES = {
    "privileged": "    privileged: true\n",
    "host_namespaces": "    network_mode: host\n",
    "host_path": "    volumes: ['/etc:/host-etc:ro']\n",
    "docker_socket": "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n",
    "cap_add": "    cap_add: [NET_ADMIN]\n",
    "devices": "    devices: ['/dev/null:/dev/wf-null']\n",
    "security_opt": "    security_opt: ['seccomp=unconfined']\n",
    "sysctls": "    sysctls: {net.ipv4.ip_forward: '1'}\n",
}
assert set(FEATURE_LINES) == set(FEATURES)

# The same features in the spellings an attacker would try instead.
SNEAKY = {
    "host_path": [
        "    volumes: ['/var/../etc/:/x']\n",
        "    volumes: ['//srv/../root:/x']\n",
        "    volumes: [{type: bind, source: /proc, target: /x}]\n",
        "    volumes: ['../../../../home:/x']\n",
        "    volumes: ['${ROOT}:/x']\n",
    ],
    "docker_socket": [
        "    volumes: ['/run/docker.sock:/s']\n",
        "    volumes: ['/var/run/:/r']\n",
        "    volumes: [{type: bind, source: /var/run/docker.sock, target: /s, read_only: true}]\n",
    ],
    "host_namespaces": [
        "    pid: host\n",
        "    ipc: host\n",
        "    userns_mode: host\n",
        "    network_mode: container:windflow-redis\n",
    ],
    "security_opt": ["    security_opt: ['apparmor:unconfined', 'no-new-privileges:false']\n"],
}


def compose(line: str, image: str = "nginx:1.27") -> str:
    return f"services:\n  web:\n    image: {image}\n{line}"


def member(key: str, acme) -> Membership:
    from tests.base import PERSONAS

    return Membership.objects.get(user__email=PERSONAS[key][0], organization=acme)


@pytest.fixture
def place(acme, owner, in_acme):
    """An unprotected environment (variables ROOT=/) and the acme server on the test engine."""
    from apps.targets import services as targets

    staging = Environment.objects.create(name="staging", slug="staging", variables={"ROOT": "/"})
    target = targets.create_target(member("owner", acme), name="web-1", kind="local")
    yield staging, target
    connection.set_schema_to_public()


def api_create(user, acme, name, text, environment="staging"):
    return api_client(user, acme).post(
        "/api/v1/stacks/",
        {"name": name, "environment": environment, "target": "web-1", "compose": text},
        format="json",
    )


def assert_refused_rule(message: str, feature: str, role: str, line: int = 4) -> None:
    assert f"compose policy ({feature}" in message, message
    assert "services.web" in message and f"Line {line}" in message, message
    assert "admins and owners" in message and f"your role is {role.title()}" in message, message


# --- On save ---------------------------------------------------------------------------------


@pytest.mark.parametrize("feature", FEATURES)
def test_it_refuses_each_feature_on_save_to_the_roles_below_the_rule(feature, acme, place, persona):
    staging, target = place
    text = compose(FEATURE_LINES[feature])
    for role in ROLES:
        response = api_create(persona(role), acme, f"api-{role}", text)
        if role in ALLOWED_BY_DEFAULT:
            assert response.status_code == 201, (role, response.content)
            continue
        assert response.status_code == 400, (role, response.content)
        error = error_of(response)
        assert error["code"] == "policy_refused"
        assert_refused_rule(error["fields"]["compose"][0], feature, role)
    viewer = api_create(persona("viewer"), acme, "api-viewer", text)
    assert viewer.status_code == 403
    for role in ROLES:
        page = client_for(persona(role), acme).post(
            "/stacks/add/",
            {
                "name": f"page-{role}",
                "environment": staging.pk,
                "target": target.pk,
                "compose": text,
                "health_timeout": "120",
                "grace_period": "10",
            },
        )
        if role in ALLOWED_BY_DEFAULT:
            assert page.status_code == 302, (role, page.content.decode()[-2000:])
            continue
        body = page.content.decode()
        assert page.status_code == 200 and "invalid-feedback" in body
        assert_refused_rule(body.replace("&#x27;", "'"), feature, role)
    assert client_for(persona("viewer"), acme).get("/stacks/add/").status_code == 403
    assert set(Stack.objects.values_list("name", flat=True)) == {
        "api-owner",
        "api-admin",
        "page-owner",
        "page-admin",
    }


@pytest.mark.parametrize(
    ("feature", "line"), [(f, line) for f, lines in SNEAKY.items() for line in lines]
)
def test_it_sees_through_other_spellings_on_save(feature, line, acme, place, persona):
    response = api_create(persona("developer"), acme, "sneaky", compose(line))
    assert response.status_code == 400, response.content
    message = error_of(response)["fields"]["compose"][0]
    assert f"compose policy ({feature}" in message, message
    assert api_create(persona("admin"), acme, "sneaky", compose(line)).status_code == 201


def test_it_refuses_a_new_revision_and_reports_the_rule_in_the_validation(acme, place, persona):
    staging, target = place
    stack = stacks.create_stack(
        member("developer", acme),
        name="shop",
        environment=staging,
        target=target,
        compose=compose(""),
    )
    added = compose(FEATURE_LINES["privileged"])
    client = api_client(persona("developer"), acme)
    refused = client.post(f"/api/v1/stacks/{stack.name}/revisions/", {"compose": added})
    assert refused.status_code == 400 and error_of(refused)["code"] == "policy_refused"
    assert stack.revisions.count() == 1
    check = client.post(f"/api/v1/stacks/{stack.name}/validate/", {"compose": added}).json()
    assert check["ok"] is False
    (problem,) = [p for p in check["problems"] if p["rule"] == "policy-refused"]
    assert (problem["path"], problem["line"]) == ("services.web.privileged", 4)
    page = client_for(persona("developer"), acme).post(
        f"/stacks/validate/?stack={stack.name}", {"compose": added}, HTTP_HX_REQUEST="true"
    )
    assert 'data-rule="policy-refused"' in page.content.decode()
    admin_check = api_client(persona("admin"), acme).post(
        f"/api/v1/stacks/{stack.name}/validate/", {"compose": added}
    )
    assert admin_check.json()["ok"] is True
    assert (
        api_client(persona("admin"), acme)
        .post(f"/api/v1/stacks/{stack.name}/revisions/", {"compose": added})
        .status_code
        == 201
    )


def test_it_follows_the_environment_override_and_the_allow_list(acme, place, persona):
    staging, _target = place
    production = Environment.objects.create(name="production", slug="production")
    admin = member("admin", acme)
    policy.set_overrides(admin, staging, {"cap_add": "developer"})
    policy.set_overrides(admin, production, {"privileged": "nobody"})
    policy.update_policy(admin, allowed_paths=["/srv/wf-policy"])
    developer, owner = persona("developer"), persona("owner")
    cap = compose(FEATURE_LINES["cap_add"])
    assert api_create(developer, acme, "cap-staging", cap).status_code == 201
    refused = api_create(developer, acme, "cap-prod", cap, environment="production")
    assert refused.status_code == 400
    assert "in production; your role is Developer" in error_of(refused)["fields"]["compose"][0]
    privileged = compose(FEATURE_LINES["privileged"])
    nobody = api_create(owner, acme, "priv-prod", privileged, environment="production")
    assert nobody.status_code == 400
    message = error_of(nobody)["fields"]["compose"][0]
    assert "environment rule) lets nobody deploy" in message and "Owner" in message
    assert api_create(owner, acme, "priv-staging", privileged).status_code == 201
    allowed = compose("    volumes: ['/srv/wf-policy/app/:/app']\n")
    assert api_create(developer, acme, "allowed-path", allowed).status_code == 201
    outside = compose("    volumes: ['/srv/wf-policy/../other:/app']\n")
    assert api_create(developer, acme, "outside-path", outside).status_code == 400
    # Moving a stack where its revision is refused names the rule on the environment field.
    moved = api_client(developer, acme).patch(
        "/api/v1/stacks/cap-staging/", {"environment": "production"}, format="json"
    )
    assert moved.status_code == 400, moved.content
    error = error_of(moved)
    assert error["code"] == "policy_refused" and "cap_add" in error["fields"]["environment"][0]
    assert Stack.objects.get(name="cap-staging").environment == staging


def test_it_refuses_every_feature_to_everyone_on_a_shared_engine(acme, globex, place, persona):
    from apps.tenants.models import LocalEngine

    policy.update_policy(
        member("owner", acme), rules={feature: "developer" for feature in FEATURES}
    )
    policy.update_policy(member("owner", acme), allowed_paths=["/srv/wf-policy"])
    LocalEngine.objects.get(name=TEST_ENGINE).organizations.add(globex)
    for feature, line in [
        *FEATURE_LINES.items(),
        ("host_path", "    volumes: ['/srv/wf-policy:/x']\n"),
    ]:
        response = api_create(persona("owner"), acme, "shared", compose(line))
        assert response.status_code == 400, (feature, response.content)
        message = error_of(response)["fields"]["compose"][0]
        assert "shared with other organisations" in message
        assert f"(compose policy: {feature})" in message
    # Volumes and networks the stack does not own may be another organisation's there.
    foreign = (
        "services:\n  web:\n    image: nginx:1.27\n    volumes: ['data:/data']\n"
        "    networks: [front]\nvolumes:\n  data: {name: globex-shop_data}\n"
        "networks:\n  front: {external: true, name: proxy}\n"
    )
    response = api_create(persona("owner"), acme, "shared", foreign)
    assert response.status_code == 400, response.content
    message = error_of(response)["fields"]["compose"][0]
    assert "front is the network proxy, which this stack does not own" in message
    assert "(compose policy: foreign_resource)" in message
    assert api_create(persona("owner"), acme, "shared", compose("")).status_code == 201
    LocalEngine.objects.get(name=TEST_ENGINE).organizations.remove(globex)
    assert api_create(persona("developer"), acme, "own-engine", foreign).status_code == 201


# --- At deploy ---------------------------------------------------------------------------------


def run_deployment(member_, stack, django_capture_on_commit_callbacks) -> Deployment:
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deployments.request_deployment(member_, stack)
    with django_capture_on_commit_callbacks(execute=True):
        assert "run_deployment" in run_queued_jobs()
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def projects():
    made = []
    yield made
    for project in made:
        remove_compose_project(project)


@pytest.mark.parametrize("feature", FEATURES)
def test_it_checks_each_feature_when_asked_and_again_at_deploy_for_the_requesters_role(
    feature, acme, place, image_registry, projects, django_capture_on_commit_callbacks
):
    """Saved by the owner; each role then asks for a deployment. Below the rule the request
    is refused at once. From the rule up it is queued; the policy then tightens before the
    worker starts it, and it fails with policy_refused before anything is pulled. Allowed,
    it goes on to the engine (here: an image that does not exist, so nothing with host
    access ever runs)."""
    staging, target = place
    missing = f"{image_registry.url}/windflow-test/policy-missing:1"
    stack = stacks.create_stack(
        member("owner", acme),
        name=f"wf-policy-{feature.replace('_', '-')}",
        environment=staging,
        target=target,
        compose=compose(FEATURE_LINES[feature], image=missing),
    )
    projects.append(stack.project)
    for role in ROLES:
        if role not in ALLOWED_BY_DEFAULT:
            with pytest.raises(ServiceError) as refused:
                deployments.request_deployment(member(role, acme), stack)
            assert refused.value.code == "policy_refused"
            assert f"compose policy ({feature}" in refused.value.message
            assert "Line 4" in refused.value.message
            assert f"your role is {role.title()}" in refused.value.message
            continue
        deployment = run_deployment(member(role, acme), stack, django_capture_on_commit_callbacks)
        assert deployment.status == DeploymentStatus.FAILED, (role, deployment.reason)
        assert deployment.diagnosis["code"] == "image_not_found", (role, deployment.diagnosis)

        with django_capture_on_commit_callbacks(execute=True):
            queued = deployments.request_deployment(member(role, acme), stack)
        policy.set_overrides(member("owner", acme), staging, {feature: "nobody"})
        with django_capture_on_commit_callbacks(execute=True):
            assert "run_deployment" in run_queued_jobs()
        queued.refresh_from_db()
        policy.set_overrides(member("owner", acme), staging, {})
        log = "\n".join(queued.lines.values_list("message", flat=True))
        assert queued.diagnosis["code"] == "policy_refused", (role, queued.diagnosis)
        assert f"compose policy ({feature}" in queued.reason and "line 4" in queued.reason
        assert not queued.services.exists()
        assert "pull" not in log.lower()
    assert project_containers(stack.project) == []
    assert Deployment.objects.filter(stack=stack).count() == 2 * len(ALLOWED_BY_DEFAULT)


def test_it_answers_a_refused_deploy_request_with_the_rule(acme, place, persona):
    staging, target = place
    stack = stacks.create_stack(
        member("owner", acme),
        name="wf-policy-api",
        environment=staging,
        target=target,
        compose=compose(FEATURE_LINES["privileged"]),
    )
    response = api_client(persona("developer"), acme).post(
        "/api/v1/deployments/", {"stack": stack.name}, format="json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "policy_refused"
    assert_refused_rule(error["message"], "privileged", "developer")
    assert not Deployment.objects.filter(stack=stack).exists()


def test_it_fails_a_deployment_when_the_policy_tightened_since_the_request(
    acme, place, test_images, projects, django_capture_on_commit_callbacks
):
    staging, target = place
    policy.update_policy(member("admin", acme), rules={"cap_add": "developer"})
    stack = stacks.create_stack(
        member("developer", acme),
        name="wf-policy-tightened",
        environment=staging,
        target=target,
        compose=compose(FEATURE_LINES["cap_add"], image=test_images["web:1"]),
    )
    projects.append(stack.project)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deployments.request_deployment(member("developer", acme), stack)
    policy.update_policy(member("admin", acme), rules={"cap_add": "admin"})
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_jobs()
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "policy_refused"
    assert "cap_add" in deployment.reason and "admins and owners" in deployment.reason
    assert project_containers(stack.project) == []
    assert not deployment.services.exists()
    # Asked again under the tighter rule: refused at once, nothing queued.
    with pytest.raises(ServiceError) as refused:
        deployments.request_deployment(member("developer", acme), stack)
    assert refused.value.code == "policy_refused"
    # Loosened again, the same revision deploys: the checks above are what stopped it.
    policy.update_policy(member("admin", acme), rules={"cap_add": "developer"})
    deployment = run_deployment(
        member("developer", acme), stack, django_capture_on_commit_callbacks
    )
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    (container,) = project_containers(stack.project)
    assert container.attrs["HostConfig"]["CapAdd"] == ["NET_ADMIN"]


def test_it_uses_the_role_the_requester_has_now(
    acme, place, image_registry, projects, django_capture_on_commit_callbacks
):
    staging, target = place
    missing = f"{image_registry.url}/windflow-test/policy-missing:1"
    stack = stacks.create_stack(
        member("admin", acme),
        name="wf-policy-demoted",
        environment=staging,
        target=target,
        compose=compose(FEATURE_LINES["sysctls"], image=missing),
    )
    projects.append(stack.project)
    admin = member("admin", acme)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deployments.request_deployment(admin, stack)
    Membership.objects.filter(pk=admin.pk).update(role="developer")  # demoted meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_jobs()
    deployment.refresh_from_db()
    assert deployment.diagnosis["code"] == "policy_refused"
    assert "your role is Developer" in deployment.reason


def test_it_restores_the_last_good_revision_with_the_role_of_who_deployed_it(
    acme, place, test_images, projects, django_capture_on_commit_callbacks
):
    """A developer's failing revision rolls back to the admin's revision with cap_add (the
    admin's role decides); once nobody may deploy cap_add, the rollback is refused too."""
    staging, target = place
    stack = stacks.create_stack(
        member("admin", acme),
        name="wf-policy-rollback",
        environment=staging,
        target=target,
        compose=compose(FEATURE_LINES["cap_add"], image=test_images["web:1"]),
        grace_period=2,
    )
    projects.append(stack.project)
    good = run_deployment(member("admin", acme), stack, django_capture_on_commit_callbacks)
    assert good.status == DeploymentStatus.SUCCEEDED, good.reason
    stacks.revise_stack(
        member("developer", acme), stack, compose=compose("", image=test_images["crash:1"])
    )
    stack.refresh_from_db()
    failed = run_deployment(member("developer", acme), stack, django_capture_on_commit_callbacks)
    assert failed.status == DeploymentStatus.ROLLED_BACK, failed.reason
    assert failed.rolled_back_to.number == 1
    policy.update_policy(member("owner", acme), rules={"cap_add": "nobody"})
    stacks.revise_stack(
        member("developer", acme),
        stack,
        compose=compose("", image=test_images["crash:1"]),
        variables={"ATTEMPT": "2"},
    )
    stack.refresh_from_db()
    refused = run_deployment(member("developer", acme), stack, django_capture_on_commit_callbacks)
    assert refused.status == DeploymentStatus.FAILED
    log = "\n".join(refused.lines.values_list("message", flat=True))
    assert "The rollback to revision 1 failed too: refused by the compose policy" in log
