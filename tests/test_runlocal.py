"""`make run`'s environment for the processes it starts (devtools.runlocal)."""

from devtools import runlocal


def test_it_points_every_link_at_the_port_it_serves(monkeypatch):
    monkeypatch.setenv("PORT", "8090")
    monkeypatch.delenv("WINDFLOW_PUBLIC_URL", raising=False)
    env = runlocal.build_env()
    assert env["WINDFLOW_PUBLIC_URL"] == "http://localhost:8090"


def test_it_keeps_a_public_url_the_developer_set(monkeypatch):
    monkeypatch.setenv("PORT", "8090")
    monkeypatch.setenv("WINDFLOW_PUBLIC_URL", "https://windflow.example.test")
    assert runlocal.build_env()["WINDFLOW_PUBLIC_URL"] == "https://windflow.example.test"


def test_it_serves_port_8000_by_default(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("WINDFLOW_PUBLIC_URL", raising=False)
    env = runlocal.build_env()
    assert (env["PORT"], env["WINDFLOW_PUBLIC_URL"]) == ("8000", "http://localhost:8000")
