"""The revision folders of a stack (windflow.engine.drivers.files): written directly and
over SFTP (the test sshd, on this machine), atomic, secrets 0400, pruned. No mocks."""

import os

import paramiko
import pytest

from windflow.engine import ssh
from windflow.engine.compose.plan import ProjectFile
from windflow.engine.drivers.files import FilesError, FileStore, LocalFiles, SFTPFiles

FILES = [
    ProjectFile("nginx/nginx.conf", "/etc/nginx/nginx.conf", True, kind="bind"),
    ProjectFile("static", "/srv", False, kind="bind"),
    ProjectFile("config/app.ini", "/app.ini", True, kind="config", name="app"),
    ProjectFile("", "/run/secrets/db", True, kind="secret", secret="DB_PASSWORD", name="db"),
    ProjectFile("keys/api.key", "/run/secrets/api", True, kind="secret", name="api"),
]


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for path, text in {
        "nginx/nginx.conf": "events {}\n",
        "static/index.html": "<h1>hi</h1>\n",
        "static/js/app.js": "go()\n",
        "config/app.ini": "a=1\n",
        "keys/api.key": "api-key-value\n",
        "unused.txt": "not copied\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "static" / "run.sh").write_text("#!/bin/sh\n")
    (root / "static" / "run.sh").chmod(0o755)
    return root


@pytest.fixture(params=["local", "sftp"])
def store(request, tmp_path):
    roots = {"files_root": str(tmp_path / "stacks"), "secrets_root": str(tmp_path / "secrets")}
    if request.param == "local":
        yield FileStore(LocalFiles(), stack="uid-1", **roots)
        return
    sshd, root_key = request.getfixturevalue("sshd"), request.getfixturevalue("root_key")
    endpoint = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint=sshd.host_key_fingerprint
    )
    with ssh.connect(endpoint) as session:
        sftp = paramiko.SFTPClient.from_transport(session.transport)
        yield FileStore(SFTPFiles(sftp), stack="uid-1", **roots)
        sftp.close()


def read(path):
    with open(path) as handle:
        return handle.read()


def tree(folder):
    return sorted(
        os.path.relpath(os.path.join(path, name), folder)
        for path, _dirs, files in os.walk(folder)
        for name in files
    )


def test_it_copies_only_the_files_the_revision_mounts_and_writes_secrets_0400(store, project):
    files_dir, secrets_dir = store.publish(1, project, FILES, {"DB_PASSWORD": "pw"})
    assert files_dir.endswith("/stacks/uid-1/1") and secrets_dir.endswith("/secrets/uid-1/1")
    assert tree(files_dir) == [
        "config/app.ini",
        "nginx/nginx.conf",
        "static/index.html",
        "static/js/app.js",
        "static/run.sh",
    ]
    assert os.stat(os.path.join(files_dir, "static/run.sh")).st_mode & 0o777 == 0o755
    assert tree(secrets_dir) == ["api", "db"]
    for name, value in (("db", "pw"), ("api", "api-key-value\n")):
        path = os.path.join(secrets_dir, name)
        assert read(path) == value
        assert os.stat(path).st_mode & 0o777 == 0o400
    assert os.stat(secrets_dir).st_mode & 0o777 == 0o700
    # Again (a redeploy): the files are kept as they are, the secrets written anew.
    (project / "nginx/nginx.conf").write_text("changed\n")
    store.publish(1, project, FILES, {"DB_PASSWORD": "rotated"})
    assert read(os.path.join(files_dir, "nginx/nginx.conf")) == "events {}\n"
    assert read(os.path.join(secrets_dir, "db")) == "rotated"
    assert sorted(os.listdir(os.path.dirname(secrets_dir))) == ["1"]  # no .old/.tmp left


def test_a_failed_copy_leaves_no_folder(store, project):
    missing = [*FILES, ProjectFile("absent.conf", "/x", True, kind="bind")]
    with pytest.raises(FilesError, match=r'"absent\.conf" is not in the project'):
        store.publish(2, project, missing, {"DB_PASSWORD": "pw"})
    with pytest.raises(FilesError, match="DB_PASSWORD"):
        store.publish(3, project, FILES, {})
    stacks = os.path.dirname(store.folders(2)[0])
    secrets = os.path.dirname(store.folders(3)[1])
    assert os.listdir(stacks) == ["3"]  # revision 3's files went in before its secrets failed
    assert os.listdir(secrets) == []
    store.discard(3)
    assert os.listdir(stacks) == []


def test_prune_keeps_the_newest_and_the_protected_revisions(store, project):
    for revision in range(1, 6):
        store.publish(revision, project, FILES, {"DB_PASSWORD": "pw"})
    assert store.revisions() == [5, 4, 3, 2, 1]
    stray = os.path.join(os.path.dirname(store.folders(6)[0]), ".tmp-6-lost")
    os.makedirs(os.path.join(stray, "conf"))  # a worker lost in the middle of a copy
    assert store.prune(keep=2, protect={1, 5}) == [3, 2]
    assert not os.path.exists(stray)
    assert store.revisions() == [5, 4, 1]
    assert sorted(os.listdir(os.path.dirname(store.folders(1)[1]))) == ["1", "4", "5"]


def test_a_revision_folder_missing_a_file_now_mounted_is_made_again(store, project):
    files_dir, _ = store.publish(1, project, FILES[:1], {})
    assert tree(files_dir) == ["nginx/nginx.conf"]
    # The same revision, deployed with other variables, mounts one more file.
    store.publish(1, project, FILES[:3], {"DB_PASSWORD": "pw"})
    assert "config/app.ini" in tree(files_dir)
    assert os.listdir(os.path.dirname(files_dir)) == ["1"]
