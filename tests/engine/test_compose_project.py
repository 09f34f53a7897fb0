"""windflow.engine.compose.project: a project folder (several compose files, include,
extends, env_file, .env, files beside the compose file) into one merged compose text, with
the file and line of every value. Folders are written to tmp_path; no Docker."""

import os
import textwrap

import pytest

from windflow.engine.compose import ComposeError
from windflow.engine.compose.analyse import analyse
from windflow.engine.compose.lint import lint
from windflow.engine.compose.load import MAX_BYTES, load_compose
from windflow.engine.compose.project import (
    MAX_FILES,
    EnvFileError,
    load_project,
    parse_env_file,
)
from windflow.engine.compose.validate import validate


def write(root, files):
    """`files`: project-relative path -> text (dedented); a path ending in / is a folder."""
    for name, text in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def refusal(root, files=(), **kwargs):
    with pytest.raises(ComposeError) as caught:
        load_project(root, files, **kwargs)
    return caught.value


def problems(error):
    return [(p.code, p.file, p.line) for p in error.problems]


# --- files and defaults ---------------------------------------------------------------------


def test_it_reads_the_default_compose_file_and_its_override(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:1.27\n",
            "compose.override.yaml": "services:\n  web:\n    restart: always\n",
        },
    )
    project = load_project(tmp_path)
    assert project.compose_files == ["compose.yaml", "compose.override.yaml"]
    assert project.document == {
        "services": {"web": {"image": "nginx:1.27", "restart": "always"}},
        "x-windflow-project": {"compose_files": ["compose.yaml", "compose.override.yaml"]},
    }
    assert load_compose(project.compose_text) == project.document
    assert project.source_map["services.web.restart"] == ("compose.override.yaml", 3)
    assert project.source_map["services.web.image"] == ("compose.yaml", 3)


def test_it_falls_back_to_docker_compose_yml(tmp_path):
    write(tmp_path, {"docker-compose.yml": "services:\n  web:\n    image: nginx:1.27\n"})
    assert load_project(tmp_path).compose_files == ["docker-compose.yml"]


def test_named_files_are_merged_in_order_and_the_default_is_not_read(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:1\n",
            "deploy/base.yaml": "services:\n  web:\n    image: nginx:1.26\n",
            "deploy/prod.yaml": "services:\n  web:\n    image: nginx:1.27\n",
        },
    )
    project = load_project(tmp_path, ["deploy/base.yaml", "deploy/prod.yaml"])
    assert project.document["services"]["web"]["image"] == "nginx:1.27"
    assert project.compose_files == ["deploy/base.yaml", "deploy/prod.yaml"]


def test_it_refuses_a_folder_without_compose_file(tmp_path):
    error = refusal(tmp_path)
    assert error.code == "project-no-compose-file"
    assert "compose.yaml" in error.message and error.hint


def test_it_refuses_a_named_file_that_is_missing(tmp_path):
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n"})
    error = refusal(tmp_path, ["compose.yaml", "compose.prod.yaml"])
    assert error.code == "project-file-missing"
    assert "compose.prod.yaml is not in the project" in error.message


def test_it_refuses_a_named_file_outside_the_project(tmp_path):
    (tmp_path / "p").mkdir()
    write(tmp_path, {"other.yaml": "services:\n  web:\n    image: nginx:1.27\n"})
    error = refusal(tmp_path / "p", ["../other.yaml"])
    assert error.code == "project-path-outside" and "outside the project folder" in error.message


def test_a_yaml_error_names_its_file_and_line(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:1.27\n",
            "compose.override.yaml": "services:\n  web:\n    image: [\n",
        },
    )
    error = refusal(tmp_path)
    (problem,) = error.problems
    assert (problem.code, problem.file) == ("yaml-syntax", "compose.override.yaml")
    assert problem.line == 4


def test_it_refuses_a_compose_file_over_the_size_limit(tmp_path):
    write(tmp_path, {"compose.yaml": "services: {}\n" + "#" * MAX_BYTES})
    error = refusal(tmp_path)
    assert error.code == "project-file-too-large" and "compose.yaml" in error.message


# --- merge rules ------------------------------------------------------------------------------


MERGE_BASE = """\
services:
  web:
    image: shop/web:1
    command: ["serve", "--port", "80"]
    entrypoint: /entry.sh
    environment:
      A: "1"
      B: "2"
    labels: ["team=shop", "tier=front"]
    ports:
      - "8080:80"
      - "127.0.0.1:9000:9000"
    expose: ["80"]
    volumes:
      - data:/data
      - cache:/cache
    dns: 1.1.1.1
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
    depends_on: [db]
    networks: [front]
    logging:
      driver: json-file
      options: {max-size: 10m}
    deploy:
      resources: {limits: {memory: 256M}}
  db:
    image: postgres:16
networks:
  front: {}
volumes:
  data: {}
  cache: {}
"""

MERGE_OVERRIDE = """\
services:
  web:
    image: shop/web:2
    command: ["serve"]
    environment:
      - B=3
      - C
    labels:
      tier: back
    ports:
      - "8080:80"
      - "8443:443"
    expose: ["80", "81"]
    volumes:
      - other:/data
    dns: [8.8.8.8]
    healthcheck:
      test: ["CMD-SHELL", "curl -f localhost"]
    depends_on:
      cache:
        condition: service_healthy
    networks:
      back: {}
    logging:
      options: {max-file: "3"}
    deploy:
      resources: {limits: {cpus: "1"}}
  cache:
    image: redis:7
networks:
  back: {}
volumes:
  other: {}
"""


@pytest.fixture
def merged(tmp_path):
    write(tmp_path, {"compose.yaml": MERGE_BASE, "compose.override.yaml": MERGE_OVERRIDE})
    return load_project(tmp_path)


def test_scalars_are_replaced_by_the_later_file(merged):
    assert merged.document["services"]["web"]["image"] == "shop/web:2"
    assert merged.source_map["services.web.image"] == ("compose.override.yaml", 3)


def test_command_is_replaced_and_entrypoint_kept(merged):
    web = merged.document["services"]["web"]
    assert web["command"] == ["serve"]
    assert web["entrypoint"] == "/entry.sh"


def test_environment_and_labels_are_merged_by_key_in_either_syntax(merged):
    web = merged.document["services"]["web"]
    assert web["environment"] == {"A": "1", "B": "3", "C": None}
    assert web["labels"] == {"team": "shop", "tier": "back"}
    assert merged.source_map["services.web.environment.B"] == ("compose.override.yaml", 6)
    assert merged.source_map["services.web.environment.A"] == ("compose.yaml", 7)


def test_ports_are_merged_by_their_unique_key(merged):
    assert merged.document["services"]["web"]["ports"] == [
        "8080:80",
        "127.0.0.1:9000:9000",
        "8443:443",
    ]
    assert merged.source_map["services.web.ports[2]"] == ("compose.override.yaml", 12)


def test_volumes_are_merged_by_target(merged):
    assert merged.document["services"]["web"]["volumes"] == ["other:/data", "cache:/cache"]
    assert merged.source_map["services.web.volumes[0]"] == ("compose.override.yaml", 15)


def test_other_sequences_are_appended_without_duplicates(merged):
    web = merged.document["services"]["web"]
    assert web["expose"] == ["80", "81"]
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]  # a single string counts as a list of one


def test_healthcheck_test_is_replaced_and_its_other_keys_kept(merged):
    assert merged.document["services"]["web"]["healthcheck"] == {
        "test": ["CMD-SHELL", "curl -f localhost"],
        "interval": "5s",
    }


def test_depends_on_and_networks_are_merged_in_their_long_form(merged):
    web = merged.document["services"]["web"]
    assert web["depends_on"] == {
        "db": {"condition": "service_started"},
        "cache": {"condition": "service_healthy"},
    }
    assert web["networks"] == {"front": None, "back": {}}


def test_logging_options_of_the_same_driver_and_nested_mappings_are_merged(merged):
    web = merged.document["services"]["web"]
    assert web["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3"},
    }
    assert web["deploy"] == {"resources": {"limits": {"memory": "256M", "cpus": "1"}}}


def test_services_and_top_level_sections_are_merged_by_name(merged):
    assert list(merged.document["services"]) == ["web", "db", "cache"]
    assert list(merged.document["networks"]) == ["front", "back"]
    assert list(merged.document["volumes"]) == ["data", "cache", "other"]


def test_the_merged_text_reads_back_to_the_same_document(merged):
    assert load_compose(merged.compose_text) == merged.document


def test_a_logging_driver_change_replaces_the_options(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": "services:\n  w:\n    image: x:1\n"
            "    logging: {driver: syslog, options: {a: b}}\n",
            "b.yaml": "services:\n  w:\n    logging: {driver: json-file}\n",
        },
    )
    project = load_project(tmp_path, ["a.yaml", "b.yaml"])
    assert project.document["services"]["w"]["logging"] == {"driver": "json-file"}


def test_strings_that_look_like_other_values_stay_strings(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  w:
                    image: x:1
                    environment: {A: "0o17", B: "yes", C: "1e3", D: "", E: "22:22", F: "a\\nb"}
            """
        },
    )
    project = load_project(tmp_path)
    assert load_compose(project.compose_text) == project.document
    assert project.document["services"]["w"]["environment"]["A"] == "0o17"


# --- include ---------------------------------------------------------------------------------


def test_include_adds_the_services_of_another_file_with_its_paths_resolved(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                include:
                  - db/compose.yaml
                services:
                  web:
                    image: nginx:1.27
                    depends_on: [db]
            """,
            "db/compose.yaml": """\
                services:
                  db:
                    image: postgres:16
                    volumes: ["./init:/docker-entrypoint-initdb.d:ro"]
            """,
            "db/init/": "",
        },
    )
    project = load_project(tmp_path)
    assert "include" not in project.document
    db = project.document["services"]["db"]
    assert db["volumes"] == ["./db/init:/docker-entrypoint-initdb.d:ro"]
    assert project.source_map["services.db.volumes[0]"] == ("db/compose.yaml", 4)
    assert project.files == ["db/init"]
    assert project.compose_files == ["compose.yaml", "db/compose.yaml"]


def test_include_long_form_with_project_directory_and_env_file(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                include:
                  - path: [stack/a.yaml, stack/b.yaml]
                    project_directory: stack/files
                    env_file: stack/include.env
                services:
                  web:
                    image: nginx:1.27
            """,
            "stack/a.yaml": "services:\n  api:\n    image: api:${API_TAG}\n",
            "stack/b.yaml": "services:\n  api:\n    volumes: [./conf:/conf]\n",
            "stack/include.env": "API_TAG=7\n",
            "stack/files/conf/": "",
        },
    )
    project = load_project(tmp_path)
    assert project.document["services"]["api"] == {
        "image": "api:${API_TAG}",
        "volumes": ["./stack/files/conf:/conf"],
    }
    assert project.env_defaults == {"API_TAG": "7"}
    assert project.variables({})["API_TAG"] == "7"


def test_include_refuses_a_service_defined_twice(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include: [other.yaml]\nservices:\n  web:\n    image: nginx:1.27\n",
            "other.yaml": "services:\n  web:\n    image: httpd:2\n",
        },
    )
    error = refusal(tmp_path)
    assert problems(error) == [("project-include-conflict", "compose.yaml", 1)]
    assert "services.web from the included file other.yaml is also defined" in error.message


def test_include_refuses_a_cycle(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include: [a.yaml]\nservices:\n  web:\n    image: nginx:1.27\n",
            "a.yaml": "include: [b.yaml]\nservices:\n  a:\n    image: x:1\n",
            "b.yaml": "include: [a.yaml]\nservices:\n  b:\n    image: x:1\n",
        },
    )
    error = refusal(tmp_path)
    assert error.code == "project-include-cycle"
    assert "compose.yaml → a.yaml → b.yaml → a.yaml" in error.message
    assert (error.problems[0].file, error.problems[0].line) == ("b.yaml", 1)


def test_include_of_a_file_outside_the_project_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    write(
        tmp_path,
        {"p/compose.yaml": "include: [../x.yaml]\nservices: {}\n", "x.yaml": "services: {}\n"},
    )
    error = refusal(tmp_path / "p")
    assert error.code == "project-path-outside" and error.problems[0].file == "compose.yaml"


# --- extends ---------------------------------------------------------------------------------


def test_extends_a_service_of_the_same_file(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  base:
                    image: shop/app:1
                    environment: {A: "1"}
                    restart: always
                  worker:
                    extends: base
                    command: ["work"]
                    environment: {B: "2"}
            """
        },
    )
    worker = load_project(tmp_path).document["services"]["worker"]
    assert worker == {
        "image": "shop/app:1",
        "environment": {"A": "1", "B": "2"},
        "restart": "always",
        "command": ["work"],
    }


def test_extends_a_service_of_another_file_recursively_with_its_paths(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  web:
                    extends: {file: common/web.yaml, service: web}
                    ports: ["8080:80"]
            """,
            "common/web.yaml": """\
                services:
                  web:
                    extends: {file: base.yaml, service: nginx}
                    volumes: ["./site:/usr/share/nginx/html:ro"]
            """,
            "common/base.yaml": "services:\n  nginx:\n    image: nginx:1.27\n",
            "common/site/": "",
        },
    )
    project = load_project(tmp_path)
    assert project.document["services"]["web"] == {
        "image": "nginx:1.27",
        "volumes": ["./common/site:/usr/share/nginx/html:ro"],
        "ports": ["8080:80"],
    }
    assert project.source_map["services.web.image"] == ("common/base.yaml", 3)
    assert project.compose_files == ["compose.yaml", "common/web.yaml", "common/base.yaml"]


def test_extends_refuses_a_cycle(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  a:
                    extends: {file: other.yaml, service: b}
            """,
            "other.yaml": """\
                services:
                  b:
                    extends: {file: compose.yaml, service: a}
            """,
        },
    )
    error = refusal(tmp_path)
    assert error.code == "project-extends-cycle"
    assert "a (compose.yaml) → b (other.yaml) → a (compose.yaml)" in error.message
    assert (error.problems[0].file, error.problems[0].line) == ("other.yaml", 3)


def test_extends_refuses_a_service_that_extends_itself_and_an_unknown_service(tmp_path):
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    extends: a\n"})
    assert refusal(tmp_path).code == "project-extends-cycle"
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    extends: nope\n"})
    error = refusal(tmp_path)
    assert error.code == "project-extends-invalid" and "no service nope" in error.message


# --- env_file and .env -----------------------------------------------------------------------


def test_env_file_is_kept_project_relative_and_checked(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include: [api/compose.yaml]\n",
            "api/compose.yaml": """\
                services:
                  api:
                    image: api:1
                    env_file:
                      - api.env
                      - path: ./local.env
                        required: false
            """,
            "api/api.env": "A=1\n",
        },
    )
    project = load_project(tmp_path)
    assert project.document["services"]["api"]["env_file"] == [
        "./api/api.env",
        {"path": "./api/local.env", "required": False},
    ]
    assert project.files == ["api/api.env"]


def test_a_missing_env_file_is_refused_where_it_is_named(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  api:\n    image: api:1\n",
            "compose.override.yaml": "services:\n  api:\n    env_file: secrets.env\n",
        },
    )
    error = refusal(tmp_path)
    assert problems(error) == [("project-file-missing", "compose.override.yaml", 3)]
    assert "services.api.env_file: the env file ./secrets.env is not in the project" in (
        error.message
    )


def test_a_malformed_env_file_is_refused_at_its_line(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  api:\n    image: api:1\n    env_file: app.env\n",
            "app.env": "# settings\nA=1\nnot a variable\n",
        },
    )
    error = refusal(tmp_path)
    assert problems(error) == [("project-env-file-invalid", "app.env", 3)]
    assert "'not a variable' is not a variable name" in error.message


def test_the_project_env_gives_defaults_and_explicit_variables_win(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:${TAG}\n",
            ".env": "TAG=1.27\nPORT=8080\n",
        },
    )
    project = load_project(tmp_path, variables={"TAG": "1.26"})
    assert project.document["services"]["web"]["image"] == "nginx:${TAG}"  # not interpolated
    assert project.env_defaults == {"TAG": "1.27", "PORT": "8080"}
    assert project.variables({"TAG": "1.26"}) == {"TAG": "1.26", "PORT": "8080"}


def test_variables_in_paths_are_resolved_for_the_checks(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: x:1\n"
            "    volumes: ['${CONF:-./conf}:/conf']\n",
            "conf/": "",
        },
    )
    assert load_project(tmp_path).files == ["conf"]
    error = refusal(tmp_path, variables={"CONF": "./elsewhere"})
    assert error.code == "project-file-missing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB = two words \n", {"A": "1", "B": "two words"}),
        ("export A=1\n# comment\n\nB=x # note\n", {"A": "1", "B": "x"}),
        ("A='literal $B \\n'\n", {"A": "literal $B \\n"}),
        ('A="line\\nnext"\n', {"A": "line\nnext"}),
        ('A="two\nlines"\nB=2\n', {"A": "two\nlines", "B": "2"}),
        ('A=1\nB=${A}-x\nC="${A}${D:-d}"\n', {"A": "1", "B": "1-x", "C": "1d"}),
        ("A=\nB\n", {"A": "", "B": None}),
        ("A=a#b\n", {"A": "a#b"}),
    ],
)
def test_env_files_are_read_as_compose_reads_them(text, expected):
    assert parse_env_file(text) == expected


def test_an_env_file_with_an_unclosed_quote_is_refused_at_its_line():
    with pytest.raises(EnvFileError) as caught:
        parse_env_file('A=1\nB="open\nC=2\n')
    assert caught.value.line == 2 and "never closed" in str(caught.value)


# --- files beside the compose file -------------------------------------------------------------


def test_relative_binds_build_contexts_and_file_sources_are_listed(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  web:
                    build: {context: app, dockerfile: docker/Dockerfile.prod}
                    volumes:
                      - ./nginx.conf:/etc/nginx/nginx.conf:ro
                      - type: bind
                        source: static
                        target: /static
                      - /srv/uploads:/uploads
                      - data:/data
                    configs: [app]
                    secrets: [db]
                configs:
                  app: {file: ./config/app.toml}
                secrets:
                  db: {file: ./secrets/db.txt}
                volumes:
                  data: {}
            """,
            "app/docker/Dockerfile.prod": "FROM scratch\n",
            "nginx.conf": "events {}\n",
            "static/": "",
            "config/app.toml": "a = 1\n",
            "secrets/db.txt": "s3cret\n",
        },
    )
    project = load_project(tmp_path)
    assert project.files == ["app", "config/app.toml", "nginx.conf", "secrets/db.txt", "static"]
    web = project.document["services"]["web"]
    assert web["volumes"][1]["source"] == "./static"
    assert web["build"]["context"] == "./app"


MISSING_FILES = {
    "bind": (
        "volumes: [./nope.conf:/etc/x.conf]",
        "services.web.volumes[0]",
        "is not in the project",
    ),
    "long bind": (
        "volumes: [{type: bind, source: nope, target: /x}]",
        "services.web.volumes[0]",
        "is not in the project",
    ),
    "home": ("volumes: ['~/data:/data']", "services.web.volumes[0]", "is in a home directory"),
    "parent": ("volumes: [../data:/data]", "services.web.volumes[0]", "is outside the project"),
    "context": (
        "build: ./nope",
        "services.web.build",
        "build context ./nope is not in the project",
    ),
    "dockerfile": (
        "build: {context: ., dockerfile: Nope.Dockerfile}",
        "services.web.build.dockerfile",
        "Dockerfile ./Nope.Dockerfile is not in the project",
    ),
    "remote context": (
        "build: https://example.test/repo.git",
        "services.web.build",
        "remote build context",
    ),
    "env_file": ("env_file: [nope.env]", "services.web.env_file[0]", "env file ./nope.env is not"),
    "path without ./": ("volumes: [conf/x.conf:/x]", "services.web.volumes[0]", "is not in"),
}


@pytest.mark.parametrize("case", MISSING_FILES)
def test_each_file_the_compose_needs_must_be_in_the_project(tmp_path, case):
    line, path, message = MISSING_FILES[case]
    write(tmp_path, {"compose.yaml": f"services:\n  web:\n    image: x:1\n    {line}\n"})
    error = refusal(tmp_path)
    (problem,) = error.problems
    assert (problem.path, problem.file, problem.line) == (path, "compose.yaml", 4)
    assert message in problem.message and problem.hint


def test_the_refusal_of_a_path_outside_says_what_to_do(tmp_path):
    write(
        tmp_path,
        {"compose.yaml": "services:\n  web:\n    image: x:1\n    volumes: ['~/.ssh:/k']\n"},
    )
    error = refusal(tmp_path)
    assert error.code == "project-home-path"
    assert error.hint == "Put the file in the project folder, or use a named volume."


def test_a_path_leaving_the_project_from_a_subfolder_is_refused(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include: [sub/compose.yaml]\n",
            "sub/compose.yaml": "services:\n  w:\n    image: x:1\n    volumes: [../../etc:/etc2]\n",
        },
    )
    error = refusal(tmp_path)
    assert problems(error) == [("project-path-outside", "sub/compose.yaml", 4)]
    assert "outside the project folder" in error.message


def test_a_symbolic_link_escaping_the_project_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    project = tmp_path / "p"
    write(project, {"compose.yaml": "services:\n  w:\n    image: x:1\n    volumes: [./link:/x]\n"})
    os.symlink(outside / "passwd", project / "link")
    error = refusal(project)
    assert error.code == "project-path-outside"
    assert "symbolic link that points outside" in error.message


@pytest.mark.parametrize(
    ("line", "what"),
    [("volumes: [./site:/www]", "bind mount source"), ("build: ./site", "build context")],
)
def test_a_folder_holding_a_link_that_escapes_the_project_is_refused(tmp_path, line, what):
    project = tmp_path / "p"
    write(
        project,
        {
            "compose.yaml": f"services:\n  w:\n    image: x:1\n    {line}\n",
            "site/Dockerfile": "FROM scratch\n",
            "site/css/": "",
        },
    )
    os.symlink("/etc", project / "site" / "css" / "etc")
    os.symlink("../Dockerfile", project / "site" / "css" / "fine")
    (problem,) = refusal(project).problems
    assert problem.code == "project-path-outside" and problem.line == 4
    assert f"the {what} ./site holds site/css/etc, a symbolic link that points outside" in (
        problem.message
    )


def test_a_symbolic_link_inside_the_project_is_fine(tmp_path):
    write(tmp_path, {"compose.yaml": "services:\n  w:\n    image: x:1\n    volumes: [./link:/x]\n"})
    (tmp_path / "real.conf").write_text("x\n")
    os.symlink(tmp_path / "real.conf", tmp_path / "link")
    assert load_project(tmp_path).files == ["link"]


def test_every_problem_is_reported_at_once(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  web:
                    image: x:1
                    volumes: [./a:/a, ./b:/b]
                    env_file: c.env
            """
        },
    )
    assert [p.path for p in refusal(tmp_path).problems] == [
        "services.web.volumes[0]",
        "services.web.volumes[1]",
        "services.web.env_file",
    ]


# --- limits ------------------------------------------------------------------------------------


def test_it_stops_after_too_many_files(tmp_path):
    names = [f"f{i}.yaml" for i in range(MAX_FILES + 1)]
    files = {name: f"services:\n  s{i}:\n    image: x:1\n" for i, name in enumerate(names)}
    write(tmp_path, files)
    error = refusal(tmp_path, names)
    assert error.problems[-1].code == "project-too-many-files"


def test_it_refuses_include_nested_too_deep(tmp_path):
    files = {f"f{i}.yaml": f"include: [f{i + 1}.yaml]\nservices: {{}}\n" for i in range(12)}
    files["f12.yaml"] = "services: {}\n"
    write(tmp_path, files)
    assert refusal(tmp_path, ["f0.yaml"]).code == "project-too-deep"


# --- analyse() and validate() of a project ------------------------------------------------------


def test_findings_of_the_merged_file_carry_the_file_and_line_of_the_value(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  web:
                    image: nginx:1.27
                    restart: always
            """,
            "compose.override.yaml": """\
                services:
                  web:
                    image: nginx:${TAG}
                    privileged: true
                    ports: [{target: eighty}]
            """,
        },
    )
    project = load_project(tmp_path)
    analysis = analyse(project.compose_text, {}, project="shop", origin=project)
    found = {p.code: (p.file, p.line, p.path) for p in analysis.problems}
    assert found["variable-missing"] == ("compose.override.yaml", 3, "services.web.image")
    assert found["privileged"] == ("compose.override.yaml", 4, "services.web.privileged")
    assert found["compose-schema"] == (
        "compose.override.yaml",
        5,
        "services.web.ports[0].target",
    )
    assert found["no-limits"] == ("compose.yaml", 3, "services.web.deploy.resources.limits")
    assert analysis.problems[0].as_dict()["file"] == "compose.override.yaml"


def test_the_project_env_fills_in_variables_for_analyse(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:${TAG}\n",
            ".env": "TAG=1.27\n",
        },
    )
    project = load_project(tmp_path)
    assert analyse(project.compose_text, {}, project="shop", origin=project).ok
    assert not analyse(project.compose_text, {}, project="shop").ok
    explicit = analyse(project.compose_text, {"TAG": "1.26"}, project="shop", origin=project)
    assert explicit.plan.services[0].image == "nginx:1.26"


def test_an_inline_stack_keeps_its_findings_without_file(tmp_path):
    analysis = analyse("services:\n  web:\n    image: nginx\n", {}, project="shop")
    assert analysis.problems and all(p.file is None for p in analysis.problems)


PROJECT_DOC = {
    "services": {
        "web": {
            "build": {"context": ".", "dockerfile": "Dockerfile", "args": {"V": "1"}},
            "image": "shop/web:1",
            "pull_policy": "build",
            "env_file": ["./web.env", {"path": "./local.env", "required": False}],
            "secrets": ["db", {"source": "api_key", "target": "key"}],
            "configs": [{"source": "app", "target": "/etc/app.toml"}],
            "volumes": ["./nginx.conf:/etc/nginx/nginx.conf:ro"],
        },
        "api": {"build": "./api"},
    },
    "secrets": {"db": {"file": "./secrets/db.txt"}, "api_key": {"environment": "API_KEY"}},
    "configs": {"app": {"file": "./config/app.toml"}},
}


def test_validate_accepts_what_a_project_uses():
    assert validate(PROJECT_DOC, project_files=True) == []
    marked = {**PROJECT_DOC, "x-windflow-project": {"compose_files": ["compose.yaml"]}}
    assert validate(marked) == []


def test_a_merged_text_is_checked_as_a_project_wherever_it_is_checked_again(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    build: .\n    env_file: web.env\n",
            "Dockerfile": "FROM scratch\n",
            "web.env": "A=1\n",
        },
    )
    project = load_project(tmp_path)
    assert validate(load_compose(project.compose_text)) == []  # a revision, checked later
    again = analyse(project.compose_text, {}, project="shop")
    assert "services.web.build" not in {p.path for p in again.errors}
    inline = analyse("services:\n  web:\n    build: .\n", {}, project="shop")
    assert [(p.code, p.path) for p in inline.errors] == [
        ("compose-unsupported", "services.web.build")
    ]


def test_validate_refuses_what_needs_project_files_in_an_inline_stack():
    found = {p.path: p for p in validate(PROJECT_DOC)}
    assert sorted(found) == [
        "configs.app.file",
        "secrets.db.file",
        "services.api.build",
        "services.web.build",
        "services.web.env_file",
    ]
    assert "Git repository or an uploaded project folder" in found["services.web.build"].hint
    assert "needs the project's files" in found["secrets.db.file"].message


def test_a_secret_from_environment_is_fine_inline():
    document = {
        "services": {"web": {"image": "x:1", "secrets": ["k"]}},
        "secrets": {"k": {"environment": "API_KEY"}},
    }
    assert validate(document) == []


@pytest.mark.parametrize(
    ("section", "entry", "path", "message"),
    [
        ("secrets", {"external": True}, "secrets.x.external", "belongs to Docker Swarm"),
        ("configs", {"external": True}, "configs.x.external", "belongs to Docker Swarm"),
        ("configs", {"content": "a=1"}, "configs.x.content", "config from content:"),
        ("configs", {"environment": "A"}, "configs.x.environment", "config from environment:"),
        ("secrets", {"name": "n"}, "secrets.x", "say where the secret comes from"),
    ],
)
def test_validate_refuses_secret_and_config_sources_windflow_does_not_serve(
    section, entry, path, message
):
    document = {"services": {"web": {"image": "x:1"}}, section: {"x": entry}}
    (problem,) = validate(document, project_files=True)
    assert (problem.code, problem.path) == ("compose-unsupported", path)
    assert message in problem.message and "file:" in problem.hint


def test_validate_refuses_build_keys_windflow_does_not_apply():
    document = {"services": {"web": {"build": {"context": ".", "ssh": ["default"]}}}}
    (problem,) = validate(document, project_files=True)
    assert problem.path == "services.web.build.ssh"
    assert "build.ssh is not supported" in problem.message


def test_validate_checks_pull_policy():
    document = {"services": {"web": {"image": "x:1", "pull_policy": "build"}}}
    (problem,) = validate(document, project_files=True)
    assert (problem.code, problem.path) == ("service-no-build", "services.web.pull_policy")
    document["services"]["web"]["pull_policy"] = "daily"
    (problem,) = validate(document, project_files=True)
    assert problem.code == "compose-schema" and "must be one of" in problem.message
    for policy in ("always", "missing", "never", "if_not_present"):
        document["services"]["web"]["pull_policy"] = policy
        assert validate(document) == []


def test_lint_does_not_ask_to_pin_the_tag_of_a_built_image():
    rules = {p.code for p in lint({"services": {"web": {"build": ".", "image": "shop/web"}}})}
    assert "image-not-pinned" not in rules


@pytest.mark.parametrize("section", ["configs", "secrets"])
def test_a_config_or_secret_file_must_be_in_the_project(tmp_path, section):
    write(
        tmp_path,
        {
            "compose.yaml": f"""\
                services:
                  web:
                    image: x:1
                {section}:
                  x:
                    file: ./missing.txt
            """
        },
    )
    (problem,) = refusal(tmp_path).problems
    assert (problem.code, problem.path, problem.file, problem.line) == (
        "project-file-missing",
        f"{section}.x.file",
        "compose.yaml",
        6,
    )
    noun = section[:-1]
    assert f"the {noun} file ./missing.txt is not in the project" in problem.message


def test_relative_binds_of_a_project_are_not_host_paths_for_the_policy(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: x:1\n",
            "compose.override.yaml": """\
                services:
                  web:
                    volumes: [./conf:/conf, conf/x:/x, /srv/data:/data]
            """,
            "conf/x": "x\n",
        },
    )
    project = load_project(tmp_path)
    assert project.document["services"]["web"]["volumes"][:2] == ["./conf:/conf", "./conf/x:/x"]
    analysis = analyse(project.compose_text, {}, project="shop", origin=project)
    (feature,) = analysis.host_features  # the absolute host path only
    assert (feature.host_path, feature.file, feature.line) == (
        "/srv/data",
        "compose.override.yaml",
        3,
    )


def test_a_single_file_project_keeps_its_text_as_written(tmp_path):
    text = "# the shop\nservices:\n  web:\n    image: nginx:1.27  # pinned\n"
    write(tmp_path, {"compose.yaml": text})
    project = load_project(tmp_path)
    assert project.compose_text.startswith(text)
    assert load_compose(project.compose_text) == project.document
    assert project.document["x-windflow-project"] == {"compose_files": ["compose.yaml"]}


def test_a_file_whose_paths_are_rewritten_is_written_anew(tmp_path):
    compose = "# c\nservices:\n  web:\n    image: x:1\n    build: app\n"
    write(tmp_path, {"compose.yaml": compose, "app/Dockerfile": "FROM scratch\n"})
    project = load_project(tmp_path)
    assert not project.compose_text.startswith("# c")
    assert project.document["services"]["web"]["build"] == "./app"
    assert load_compose(project.compose_text) == project.document


# --- more refusals and corners ----------------------------------------------------------------


def test_an_include_env_file_that_is_missing_is_refused_at_the_include(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include:\n  - path: db.yaml\n    env_file: db.env\n",
            "db.yaml": "services:\n  db:\n    image: postgres:16\n",
        },
    )
    assert problems(refusal(tmp_path)) == [("project-file-missing", "compose.yaml", 2)]


def test_an_include_project_directory_outside_the_project_is_refused(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "include:\n  - path: db.yaml\n    project_directory: ..\n",
            "db.yaml": "services:\n  db:\n    image: postgres:16\n",
        },
    )
    error = refusal(tmp_path)
    assert error.code == "project-path-outside" and "project_directory .." in error.message


@pytest.mark.parametrize("order", [range(1, 2000), reversed(range(1, 2000))])
def test_extends_nested_too_deep_is_refused(tmp_path, order):
    lines = ["services:", "  s0:", "    image: x:1"]
    for index in order:
        lines += [f"  s{index}:", f"    extends: s{index - 1}"]
    write(tmp_path, {"compose.yaml": "\n".join(lines) + "\n"})
    error = refusal(tmp_path)
    assert error.code == "project-too-deep" and "extends is nested deeper than 8" in error.message


def test_a_malformed_project_env_is_refused_at_its_line(tmp_path):
    write(
        tmp_path,
        {"compose.yaml": "services:\n  w:\n    image: x:1\n", ".env": "A=1\n\n2B=x\n"},
    )
    assert problems(refusal(tmp_path)) == [("project-env-file-invalid", ".env", 3)]


def test_override_files_resolve_paths_against_the_first_file_folder(tmp_path):
    write(
        tmp_path,
        {
            "deploy/compose.yaml": "services:\n  w:\n    image: x:1\n",
            "overrides/prod.yaml": "services:\n  w:\n    volumes: [./conf:/conf]\n",
            "deploy/conf/": "",
        },
    )
    project = load_project(tmp_path, ["deploy/compose.yaml", "overrides/prod.yaml"])
    assert project.document["services"]["w"]["volumes"] == ["./deploy/conf:/conf"]


def test_a_raw_env_file_is_taken_as_it_is(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  w:
                    image: x:1
                    env_file: [{path: raw.env, format: raw}]
            """,
            "raw.env": '# note\nA="open ${X} # kept\nBARE\n',
        },
    )
    project = load_project(tmp_path, variables={"X": "x"})
    assert project.files == ["raw.env"]
    assert project.service_env("w") == {"A": '"open ${X} # kept'}


def test_a_raw_env_file_refuses_a_name_with_spaces_as_compose_does(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": "services:\n  w:\n    image: x:1\n"
            "    env_file: [{path: raw.env, format: raw}]\n",
            "raw.env": "not a KEY=VALUE line\n",
        },
    )
    error = refusal(tmp_path)
    assert error.code == "project-env-file-invalid"
    assert "'not a KEY' is not a variable name" in error.message


def test_an_env_file_over_the_size_limit_or_not_text_is_refused(tmp_path):
    write(tmp_path, {"compose.yaml": "services:\n  w:\n    image: x:1\n    env_file: big.env\n"})
    (tmp_path / "big.env").write_text("A=" + "x" * MAX_BYTES + "\n")
    assert refusal(tmp_path).code == "project-file-too-large"
    (tmp_path / "big.env").write_bytes(b"A=\xff\xfe\n")
    error = refusal(tmp_path)
    assert error.code == "yaml-encoding" and "big.env is not UTF-8 text" in error.message


def test_a_service_gets_the_values_of_its_env_files_in_order(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  api:
                    image: api:1
                    env_file: [base.env, {path: local.env, required: false}, prod.env]
                  web:
                    image: web:1
            """,
            "base.env": "A=1\nB=base\n",
            "prod.env": 'B=prod\nC="${B}-c"\n',
        },
    )
    project = load_project(tmp_path)
    assert project.service_env("api") == {"A": "1", "B": "prod", "C": "prod-c"}
    assert project.service_env("web") == {} and project.service_env("nope") == {}
    assert project.env_files["base.env"] == {"A": "1", "B": "base"}


MALFORMED = [
    "include: 5",
    "include: [{path: 5}]",
    "include: [{path: a.yaml, env_file: 7}]",
    "include: [{}]",
    "services: [a]",
    "services: {web: {extends: 5}}",
    "services: {web: {extends: {service: x, file: 5}}}",
    "services: {web: {volumes: [5, {type: bind, source: 5, target: /x}]}}",
    "services: {web: {build: {context: 5}}}",
    "services: {web: {env_file: [5, {path: 5}, {}]}}",
    "secrets: {x: {file: 5}}",
    "services: {web: {image: x, devices: 5, cap_add: 5, security_opt: 5, sysctls: 5}}",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_project_gets_findings_never_a_crash(tmp_path, text):
    write(tmp_path, {"compose.yaml": text + "\n", "a.yaml": "services: {}\n"})
    try:
        project = load_project(tmp_path)
    except ComposeError as refused:
        assert refused.problems
        return
    assert analyse(project.compose_text, {}, project="shop", origin=project).errors
