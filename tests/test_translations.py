"""French: every message marked for translation has French (makemessages finds nothing
untranslated or fuzzy), the compiled catalogue is the .po's, every page reads French with no
English msgid left; container states, times and notifications read in the reader's
language."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import translation

from tests.base import client_for
from tests.untranslated import (
    english_left,
    fail_with_a_diagnosis,
    html_texts,
    organization_pages,
)

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCES = ("apps", "windflow", "templates", "locale")


def _msgids(po_text: str) -> list[str]:
    """The msgids of a .po text (continuation lines joined), the header left out."""
    import ast

    msgids, current = [], None
    for line in po_text.splitlines():
        if line.startswith("msgid "):
            current = ast.literal_eval(line[6:])
        elif line.startswith('"') and current is not None:
            current += ast.literal_eval(line)
        else:
            if current:
                msgids.append(current)
            current = None
    if current:
        msgids.append(current)
    return msgids


def test_it_has_french_for_every_message_marked_for_translation(tmp_path):
    """makemessages over a copy of the code (the real .po is left alone): nothing is
    untranslated (empty msgstr) or fuzzy."""
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-obsolete"],
        cwd=tmp_path,
        env={**os.environ, "WINDFLOW_BOOTSTRAP": "skip"},
        check=True,
        capture_output=True,
        timeout=240,
    )
    extracted = tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    left = {}
    for kind in ("--untranslated", "--only-fuzzy"):
        found = subprocess.run(
            ["msgattrib", kind, "--no-obsolete", "--no-location", str(extracted)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        left[kind] = _msgids(found)
    assert left == {"--untranslated": [], "--only-fuzzy": []}, (
        "Give these French in locale/fr/LC_MESSAGES/django.po, then compilemessages"
    )


def test_it_serves_the_compiled_french_of_the_po(tmp_path):
    """django.mo is django.po compiled (compilemessages was not forgotten)."""
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(PO)], check=True)

    def catalogue(path):
        with path.open("rb") as handle:
            entries = gettext.GNUTranslations(handle)._catalog
        return {key: value for key, value in entries.items() if key != ""}

    assert catalogue(MO) == catalogue(compiled), "run manage.py compilemessages"


# --- pages --------------------------------------------------------------------------------


@pytest.fixture
def french_world(acme, owner, in_acme, docker_socket):
    from apps.accounts.models import Membership, User
    from tests.security.world import build_victim

    owner.language = "fr"
    owner.save(update_fields=["language"])
    # The personas' names are their roles' English labels ("Owner"): names that are no
    # English word, so that a label left in English is told from a person's name.
    User.objects.filter(memberships__organization=acme).update(full_name="Camille Dupont")
    victim = build_victim(acme, owner)
    fail_with_a_diagnosis(victim.deployment)
    return victim, Membership.objects.get(user=owner, organization=acme)


def test_it_shows_every_page_in_french_with_no_english_left(french_world, owner, acme):
    victim, membership = french_world
    client = client_for(owner, acme)
    english, broken, seen = {}, [], 0
    for path in organization_pages(victim, membership):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(path, **headers)
            if response.status_code >= 500:
                broken.append(f"{path}: {response.status_code}")
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            seen += 1
            if left := english_left(html_texts(response.content.decode())):
                english[path + (" (htmx)" if headers else "")] = left
    public = client_for(owner)
    anonymous = client_for()
    pages = [(public, "/"), (public, "/organizations/new/")]
    pages += [(anonymous, p) for p in ("/", "/accounts/login/", "/accounts/signup/")]
    for client_, path in pages:
        response = client_.get(path, HTTP_ACCEPT_LANGUAGE="fr")
        assert response.status_code == 200, path
        seen += 1
        if left := english_left(html_texts(response.content.decode())):
            english[f"public {path}"] = left
    assert not broken, broken
    assert seen > 30, seen  # the enumeration found the pages
    assert not english, english


def test_it_shows_the_diagnosis_of_a_failed_deployment_in_french(french_world, owner, acme):
    victim, _membership = french_world

    page = client_for(owner, acme).get(f"/deployments/{victim.deployment.pk}/").content.decode()

    assert "arrêté avec le code 3\u00a0: boom" in page
    assert "Le conteneur s\u2019est arrêté de lui-même" in page
    assert "exited with code" not in page


def test_it_shows_lint_findings_in_french(french_world, owner, acme):
    victim, _membership = french_world
    compose = (
        "services:\n  web:\n    image: nginx\n"
        "    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n"
    )

    panel = client_for(owner, acme).post(
        "/stacks/validate/",
        {"compose": compose, "environment": victim.environment.pk, "name": "lint-fr"},
        HTTP_HX_REQUEST="true",
    )

    text = panel.content.decode()
    assert panel.status_code == 200, text
    assert "services.web n\u2019a pas de healthcheck" in text
    assert "nginx n\u2019a pas de tag, ce qui veut dire :latest" in text
    assert "services.web.volumes[0] monte le socket Docker /var/run/docker.sock" in text
    assert "Pin a version tag" not in text
    assert english_left(html_texts(text)) == []


# --- states, times, notifications ----------------------------------------------------------


def test_it_shows_container_states_in_french():
    from django.template import Context, Template

    template = Template("{% load windflow %}{{ s|container_state }}")
    with translation.override("fr"):
        shown = {s: template.render(Context({"s": s})) for s in ("exited", "unhealthy", "zzz")}
    assert shown == {"exited": "arrêté", "unhealthy": "en échec de santé", "zzz": "zzz"}


def test_it_says_ago_in_both_languages(owner, acme, in_acme):
    from datetime import timedelta

    from django.utils import timezone

    from apps.notifications.models import Notification
    from apps.notifications.services import notify

    (notification,) = notify([owner], verb="test", text="hello")
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    client = client_for(owner, acme)

    def shown(language):
        page = client.get("/notifications/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        return " ".join(page.replace("\xa0", " ").split())

    assert "5 minutes ago" in shown("en")
    assert "il y a 5 minutes" in shown("fr")
    Notification.objects.filter(pk=notification.pk).update(created_at=timezone.now())
    assert "0 minutes" not in shown("en")
    assert "0 minute" not in shown("fr")
    assert ">now<" in shown("en").replace("> ", ">").replace(" <", "<")
    assert ">maintenant<" in shown("fr").replace("> ", ">").replace(" <", "<")


def test_it_writes_a_notification_in_its_recipients_language(owner, acme, in_acme):
    from apps.deployments import journal
    from apps.deployments import services as deployments
    from apps.notifications.models import Notification
    from tests.deploying import make_world

    owner.language = "fr"
    owner.save(update_fields=["language"])
    world = make_world(acme, owner)
    deployment = deployments.request_deployment(world.membership, world.stack)
    fail_with_a_diagnosis(deployment)

    journal.notify_outcome(deployment)

    text = Notification.objects.filter(recipient=owner).latest("pk").text
    assert text == f"shop n°{deployment.pk} : échec (arrêté avec le code 3\u00a0: boom)"
    assert connection.schema_name == acme.schema_name
