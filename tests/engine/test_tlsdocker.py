"""windflow.engine.tlsdocker against the real Docker engine behind real mutual TLS (socat
from devtools.tlsproxy.start_tls_docker_proxy; the `tls_proxy` fixture of
tests/conftest.py). No mocks, no database."""

import os
import stat

import pytest

from devtools import free_port
from tests.base import tls_client_material
from windflow.engine import tlsdocker
from windflow.engine.errors import KeyFormatError
from windflow.engine.tlsdocker import TLSEndpoint, check_tls_target, validate_tls_material


@pytest.fixture
def proxy(tls_proxy):
    return tls_proxy


@pytest.fixture
def foreign(tmp_path):
    """(CA, client certificate, client key) of another CA: foreign to `proxy`."""
    return tuple(tls_client_material(tmp_path).values())


def _endpoint(proxy, *, ca=None, cert=None, key=None, port=None):
    return TLSEndpoint(
        proxy.host,
        port or proxy.port,
        ca or proxy.ca_pem,
        cert or proxy.client_cert_pem,
        key or proxy.client_key_pem,
    )


def _by_name(results):
    return {check.name: check for check in results}


def test_it_checks_a_healthy_engine_over_mutual_tls(proxy):
    results, facts = check_tls_target(_endpoint(proxy))
    assert [c.name for c in results] == ["tcp reachable", "tls", "docker engine", "disk", "memory"]
    assert all(c.ok for c in results), results
    assert facts is not None and facts.docker_version
    assert facts.docker_version in _by_name(results)["docker engine"].detail


def test_it_refuses_a_client_certificate_of_another_ca(proxy, foreign):
    endpoint = _endpoint(proxy, cert=foreign[1], key=foreign[2])
    results, facts = check_tls_target(endpoint)
    assert [c.name for c in results] == ["tcp reachable", "tls"]
    tls = results[-1]
    assert not tls.ok and tls.code == "AuthenticationFailed"
    assert "refused the client certificate" in tls.hint
    assert facts is None


def test_it_fails_tls_when_the_server_is_not_signed_by_the_ca(proxy, foreign):
    results, facts = check_tls_target(_endpoint(proxy, ca=foreign[0]))
    tls = _by_name(results)["tls"]
    assert not tls.ok and tls.code == "ServerCertificateUntrusted"
    assert "not signed by this CA" in tls.detail
    assert "not signed by this CA" in tls.hint
    assert facts is None


def test_it_fails_fast_on_a_closed_port(proxy):
    results, facts = check_tls_target(_endpoint(proxy, port=free_port()))
    assert [c.name for c in results] == ["tcp reachable"]
    assert not results[0].ok and results[0].code == "Unreachable"
    assert facts is None


def test_it_rejects_garbage_and_mismatched_material_without_echoing_it(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good = tuple(tls_client_material(tmp_path / "a").values())
    foreign = tuple(tls_client_material(tmp_path / "b").values())
    validate_tls_material(*good)
    cases = {
        "The CA certificate is not a PEM certificate": ("garbage-CA-xyz", *good[1:]),
        "The client certificate is not a PEM certificate": (good[0], "garbage", good[2]),
        "The client key is not a PEM private key": (*good[:2], "-----BEGIN PRIVATE KEY-----x"),
        "The client key does not match the client certificate": (
            *good[:2],
            foreign[2],
        ),
    }
    for message, material in cases.items():
        with pytest.raises(KeyFormatError) as raised:
            validate_tls_material(*material)
        text = f"{raised.value} {raised.value.hint}"
        assert message in text
        assert "garbage" not in text and "PRIVATE KEY" not in text
        body = foreign[2].splitlines()[1]
        assert body not in text


def test_it_keeps_private_pem_files_only_while_the_client_lives(proxy):
    client = tlsdocker.docker_client_tls(_endpoint(proxy))
    directory = client.tls_dir
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for name in os.listdir(directory):
        assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
    assert client.ping()
    client.close()
    assert not os.path.exists(directory)


def test_it_uses_the_pinned_ca_even_with_requests_ca_bundle_set(proxy, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    results, _ = check_tls_target(_endpoint(proxy))
    assert all(c.ok for c in results), results
