from django.core.files.uploadedfile import SimpleUploadedFile

from apps.deployments.models import Deployment
from apps.stacks import services
from apps.stacks.models import Stack
from tests.base import COMPOSE, client_for


def _editor_post(staging, local_target, **fields):
    data = {
        "name": "shop",
        "environment": staging.pk,
        "target": local_target.pk,
        "compose": COMPOSE,
        "variables": "EXTRA=1",
        "message": "first",
        "auto_rollback": "on",
        "health_timeout": "120",
        "grace_period": "10",
    }
    data.update(fields)
    return data


def test_it_creates_a_stack_from_the_editor(owner, developer, acme, staging, local_target):
    for user, name in ((owner, "shop"), (developer, "blog")):
        client = client_for(user, acme)
        page = client.get("/stacks/add/").content.decode()
        assert 'hx-post="/stacks/validate/"' in page and "input changed delay:400ms" in page
        response = client.post("/stacks/add/", _editor_post(staging, local_target, name=name))
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] == f"/stacks/{name}/"
        stack = Stack.objects.get(name=name)
        assert stack.latest_revision.variables == {"EXTRA": "1"}
        assert stack.created_by == user


def test_it_shows_compose_errors_on_the_field_with_their_line(owner, acme, staging, local_target):
    response = client_for(owner, acme).post(
        "/stacks/add/",
        _editor_post(staging, local_target, compose="services:\n  web:\n    build: .\n"),
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Line 3: services.web.build: build is not supported" in body
    assert not Stack.objects.exists()


def test_it_lists_every_missing_variable_on_the_form(owner, acme, staging, local_target):
    compose = (
        "services:\n  web:\n    image: nginx:1.27\n    environment:\n"
        "      A: ${ONE}\n      B: ${TWO}\n      C: ${THREE}\n      D: ${FOUR}\n      E: ${FIVE}\n"
    )
    response = client_for(owner, acme).post(
        "/stacks/add/", _editor_post(staging, local_target, compose=compose)
    )
    body = response.content.decode()
    assert response.status_code == 200
    for line, name in enumerate(("ONE", "TWO", "THREE", "FOUR", "FIVE"), start=5):
        assert f"variable &quot;{name}&quot; is not set, in services.web.environment" in body
        assert f"(line {line}) Add {name}=value" in body
    assert not Stack.objects.exists()


def test_it_takes_the_uploaded_file_over_the_textarea(owner, acme, staging, local_target):
    upload = SimpleUploadedFile("docker-compose.yml", b"services:\n  api:\n    image: redis:7\n")
    response = client_for(owner, acme).post(
        "/stacks/add/",
        _editor_post(staging, local_target, compose="not: [valid", compose_file=upload),
    )
    assert response.status_code == 302
    assert "redis:7" in Stack.objects.get(name="shop").latest_revision.compose


def test_it_refuses_an_upload_that_is_not_utf8(owner, acme, staging, local_target):
    upload = SimpleUploadedFile("docker-compose.yml", b"\xff\xfe\x00bad")
    response = client_for(owner, acme).post(
        "/stacks/add/", _editor_post(staging, local_target, compose_file=upload)
    )
    assert "not UTF-8" in response.content.decode()
    assert not Stack.objects.exists()


def test_it_reports_bad_variables_lines(owner, acme, staging, local_target):
    response = client_for(owner, acme).post(
        "/stacks/add/", _editor_post(staging, local_target, variables="1X=2\nno equals")
    )
    body = response.content.decode()
    assert "Line 1: “1X” is not a valid variable name" in body
    assert "Line 2: expected NAME=value." in body


def test_it_checks_the_file_live_with_rule_ids_and_lines(owner, acme, staging):
    client = client_for(owner, acme)
    compose = "services:\n  web:\n    image: nginx\n    privileged: true\n"
    response = client.post(
        "/stacks/validate/",
        {"compose": compose, "environment": staging.pk, "name": "shop"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'data-rule="privileged"' in body and 'data-goto-line="4"' in body
    assert 'data-rule="image-not-pinned"' in body and "web" in body
    clean = client.post(
        "/stacks/validate/",
        {"compose": COMPOSE, "environment": staging.pk},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "No errors" in clean or "No problems" in clean
    missing = client.post(
        "/stacks/validate/", {"compose": COMPOSE, "secrets": ["NOPE"]}
    ).content.decode()
    assert 'data-rule="variable-missing"' in missing and 'data-rule="secret-missing"' in missing


def test_it_notes_a_fixed_container_name_and_an_ignored_name_in_the_readers_language(
    owner, acme, staging
):
    compose = "name: shop\nservices:\n  web:\n    image: nginx:1.27\n    container_name: web\n"
    client = client_for(owner, acme)
    data = {"compose": compose, "environment": staging.pk, "name": "shop"}
    english = client.post("/stacks/validate/", data, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-rule="container-name"' in english and 'data-rule="project-name-ignored"' in english
    assert "services.web.container_name: a fixed container name stops a redeploy" in english
    assert "WindFlow ignores the project name of the file" in english
    assert "Remove container_name: WindFlow names each container" in english
    french = client.post(
        "/stacks/validate/", data, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "services.web.container_name : un nom de conteneur fixe empêche" in french
    assert "WindFlow ignore le nom de projet du fichier" in french
    assert "Retirez container_name: WindFlow nomme chaque conteneur" in french
    assert "Retirez name: le nom du stack est le nom du projet compose" in french


def test_it_shows_every_kind_of_error_at_once(owner, acme, staging):
    compose = "services:\n  web:\n    build: .\n    image: shop/web:1\n    secrets: [db]\n"
    body = (
        client_for(owner, acme)
        .post(
            "/stacks/validate/",
            {"compose": compose, "environment": staging.pk, "name": "shop"},
            HTTP_HX_REQUEST="true",
        )
        .content.decode()
    )
    assert 'data-rule="compose-unsupported"' in body
    assert "services.web.build: build is not supported" in body
    assert "services.web.secrets[0]: the secret &quot;db&quot; is not declared" in body


def test_it_refuses_viewers_the_editor_and_hides_the_buttons(make_stack, viewer, acme):
    make_stack()
    client = client_for(viewer, acme)
    page = client.get("/stacks/shop/").content.decode()
    assert "shop" in page and "/stacks/shop/edit/" not in page and "/delete/" not in page
    assert "/deployments/new/" not in page
    assert client.get("/stacks/add/").status_code == 403
    assert client.get("/stacks/shop/edit/").status_code == 403
    assert client.post("/stacks/validate/", {"compose": COMPOSE}).status_code == 403
    assert client.post("/stacks/shop/delete/").status_code == 403
    assert Stack.objects.count() == 1


def test_it_keeps_stacks_inside_their_organisation(make_stack, outsider, globex, acme):
    make_stack()
    other = client_for(outsider, globex)
    assert other.get("/stacks/shop/").status_code == 404
    assert other.get("/stacks/shop/revisions/1/").status_code == 404
    assert "shop" not in other.get("/stacks/").content.decode()
    assert client_for(outsider, acme).get("/stacks/shop/").status_code == 403


def test_it_lists_searches_and_filters_with_a_partial(make_stack, owner, acme, membership):
    stack = make_stack()
    make_stack(name="blog")
    Deployment.objects.create(
        stack=stack,
        number=1,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
        status="failed",
    )
    client = client_for(owner, acme)
    page = client.get("/stacks/").content.decode()
    assert "shop" in page and "blog" in page and 'data-status="failed"' in page
    partial = client.get("/stacks/?q=sho", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "shop" in partial and "blog" not in partial
    filtered = client.get("/stacks/?environment=nowhere").content.decode()
    assert "shop" in filtered  # an unknown filter value is ignored, never a 500


def test_it_shows_the_stack_page_with_deploy_and_deployments(make_stack, owner, acme):
    stack = make_stack()
    Deployment.objects.create(
        stack=stack,
        number=1,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
        status="succeeded",
    )
    page = client_for(owner, acme).get("/stacks/shop/").content.decode()
    assert 'action="/deployments/new/"' in page and 'name="revision" value="1"' in page
    assert 'data-status="succeeded"' in page
    assert f"/deployments/{stack.deployments.get().pk}/" in page


def test_it_saves_a_new_revision_from_the_prefilled_editor(make_stack, owner, acme):
    make_stack(variables={"EXTRA": "1"})
    client = client_for(owner, acme)
    page = client.get("/stacks/shop/edit/").content.decode()
    assert "nginx:1.27" in page and "EXTRA=1" in page
    same = client.post("/stacks/shop/edit/", {"compose": COMPOSE, "variables": "EXTRA=1"})
    assert "Nothing changed since revision 1" in same.content.decode()
    response = client.post(
        "/stacks/shop/edit/",
        {"compose": COMPOSE.replace("1.27", "1.28"), "variables": "EXTRA=1", "message": "bump"},
    )
    assert response.status_code == 302 and response["Location"] == "/stacks/shop/revisions/2/"


def test_it_shows_a_coloured_diff(make_stack, membership, owner, acme):
    stack = make_stack()
    services.revise_stack(membership, stack, compose=COMPOSE.replace("1.27", "1.28"))
    client = client_for(owner, acme)
    body = client.get("/stacks/shop/revisions/2/diff/").content.decode()
    assert 'data-kind="remove"' in body and "-    image: nginx:1.27" in body
    assert 'data-kind="add"' in body and "+    image: nginx:1.28" in body
    reverse = client.get("/stacks/shop/revisions/2/diff/?from=2&to=1").content.decode()
    assert "+    image: nginx:1.27" in reverse
    bad = client.get("/stacks/shop/revisions/2/diff/?from=9")
    assert bad.status_code == 400 and "shop has no revision 9" in bad.content.decode()
    junk = client.get("/stacks/shop/revisions/2/diff/?to=x")
    assert junk.status_code == 400 and "not a revision number" in junk.content.decode()


def test_it_shows_a_revision_and_offers_rollback_only_after_a_success(
    make_stack, membership, owner, acme
):
    stack = make_stack(variables={"EXTRA": "visible"})
    client = client_for(owner, acme)
    page = client.get("/stacks/shop/revisions/1/").content.decode()
    assert "EXTRA" in page and "visible" in page and "nginx:1.27" in page
    assert 'data-testid="rollback"' not in page
    refused = client.post("/stacks/shop/revisions/1/rollback/", follow=True)
    assert "never deployed successfully" in refused.content.decode()
    Deployment.objects.create(
        stack=stack,
        number=1,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
        status="succeeded",
    )
    services.revise_stack(membership, stack, compose=COMPOSE.replace("1.27", "1.28"))
    page = client.get("/stacks/shop/revisions/1/").content.decode()
    assert 'data-testid="rollback"' in page


def test_it_changes_settings_and_refuses_deleting_a_deployed_stack(make_stack, owner, acme):
    stack = make_stack()
    client = client_for(owner, acme)
    response = client.post(
        "/stacks/shop/settings/",
        {
            "description": "the shop",
            "environment": stack.environment.pk,
            "target": stack.target.pk,
            "auto_rollback": "",
            "health_timeout": "60",
            "grace_period": "5",
        },
    )
    assert response.status_code == 302
    stack.refresh_from_db()
    assert stack.health_timeout == 60 and not stack.auto_rollback
    stack.current_revision = stack.latest_revision
    stack.save()
    refused = client.post("/stacks/shop/delete/", follow=True)
    assert "Remove it from the server first" in refused.content.decode()
    stack.current_revision = None
    stack.save()
    assert client.post("/stacks/shop/delete/")["Location"] == "/stacks/"
    assert not Stack.objects.exists()


def test_it_renders_every_page_of_a_stack(make_stack, membership, owner, acme):
    stack = make_stack()
    services.revise_stack(membership, stack, compose=COMPOSE.replace("1.27", "1.28"))
    client = client_for(owner, acme)
    for url in (
        "/stacks/",
        "/stacks/add/",
        "/stacks/shop/",
        "/stacks/shop/edit/",
        "/stacks/shop/settings/",
        "/stacks/shop/delete/",
        "/stacks/shop/revisions/",
        "/stacks/shop/revisions/1/",
        "/stacks/shop/revisions/1/diff/",
        "/stacks/shop/revisions/2/diff/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get("/stacks/nope/").status_code == 404
    assert client.get("/stacks/shop/revisions/7/").status_code == 404
    live = client.post("/stacks/validate/?stack=shop", {"compose": COMPOSE}).content.decode()
    assert "GREETING" not in live  # the stack's environment provides it


def test_it_answers_the_live_check_fast(owner, acme, staging):
    import time

    client = client_for(owner, acme)
    compose = COMPOSE + "".join(
        f"  svc{i}:\n    image: redis:7\n    restart: always\n" for i in range(40)
    )
    client.post("/stacks/validate/", {"compose": compose, "environment": staging.pk})
    started = time.perf_counter()
    response = client.post("/stacks/validate/", {"compose": compose, "environment": staging.pk})
    assert response.status_code == 200
    # No image is looked up (nothing is pulled from a registry): a scaled bound, far under
    # what 40 lookups would take, not a measure of speed.
    assert time.perf_counter() - started < 5


def test_it_puts_a_refused_upload_into_the_editor(owner, acme, staging, local_target):
    upload = SimpleUploadedFile("compose.yml", b"services:\n  api:\n    build: ./api\n")
    response = client_for(owner, acme).post(
        "/stacks/add/", _editor_post(staging, local_target, compose="", compose_file=upload)
    )
    body = response.content.decode()
    assert "build: ./api" in body and "build is not supported" in body


def test_it_takes_registry_logins_in_the_settings_form(make_stack, secret, owner, acme):
    stack = make_stack()
    client = client_for(owner, acme)
    fields = {
        "description": "",
        "environment": stack.environment.pk,
        "target": stack.target.pk,
        "auto_rollback": "on",
        "health_timeout": "120",
        "grace_period": "10",
    }
    bad = client.post(
        "/stacks/shop/settings/", {**fields, "registry_credentials": "ghcr.io only-two"}
    )
    assert bad.status_code == 200
    assert "Line 1: write the registry, the user name and the secret" in bad.content.decode()
    missing = client.post(
        "/stacks/shop/settings/", {**fields, "registry_credentials": "ghcr.io bot NOPE"}
    )
    assert "There is no secret NOPE" in missing.content.decode()
    stack.refresh_from_db()
    assert stack.registry_credentials == []
    saved = client.post(
        "/stacks/shop/settings/", {**fields, "registry_credentials": "ghcr.io bot DB_PASSWORD"}
    )
    assert saved.status_code == 302
    stack.refresh_from_db()
    assert stack.registry_credentials == [
        {"registry": "ghcr.io", "username": "bot", "secret": "DB_PASSWORD"}
    ]
    page = client.get("/stacks/shop/settings/").content.decode()
    assert "ghcr.io bot DB_PASSWORD" in page
