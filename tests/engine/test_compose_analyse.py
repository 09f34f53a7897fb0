"""windflow.engine.compose.analyse: one pass from compose text to a plan or to every
finding at once. Pure Python: no database, no Docker."""

from windflow.engine.compose.analyse import analyse

EVERY_KIND = """\
services:
  web:
    build: .
    image: shop/web:${TAG}
    secrets: [db_password]
    volumes: [cache:/cache]
    environment:
      DB_HOST: ${DB_HOST}
"""


def errors(analysis):
    return [(p.code, p.path) for p in analysis.errors]


def test_it_reports_every_kind_of_error_at_once():
    analysis = analyse(EVERY_KIND, {}, project="shop")
    assert errors(analysis) == [
        ("compose-unsupported", "services.web.build"),
        ("variable-missing", "services.web.image"),
        ("compose-undeclared-secret", "services.web.secrets[0]"),
        ("compose-undeclared-volume", "services.web.volumes[0]"),
        ("variable-missing", "services.web.environment.DB_HOST"),
    ]
    assert analysis.missing == ("DB_HOST", "TAG")
    assert analysis.plan is None
    lines = {p.path: p.line for p in analysis.errors}
    assert lines["services.web.secrets[0]"] == 5 and lines["services.web.volumes[0]"] == 6


def test_a_value_that_could_not_be_interpolated_is_left_to_its_own_error():
    text = 'services:\n  web:\n    image: "${IMAGE}"\n    ports: ["${PORT}:80"]\n'
    analysis = analyse(text, {}, project="shop")
    assert errors(analysis) == [
        ("variable-missing", "services.web.image"),
        ("variable-missing", "services.web.ports[0]"),
    ]
    fixed = analyse(text, {"IMAGE": "nginx:1.27", "PORT": "8080"}, project="shop")
    assert fixed.ok and fixed.services == ["web"]


def test_a_file_of_the_wrong_shape_still_gets_its_unsupported_keys():
    text = "services:\n  web:\n    image: nginx:1.27\n    ports: 12\n    profiles: [x]\n"
    analysis = analyse(text, {}, project="shop")
    assert errors(analysis) == [
        ("compose-schema", "services.web.ports"),
        ("compose-unsupported", "services.web.profiles"),
    ]
