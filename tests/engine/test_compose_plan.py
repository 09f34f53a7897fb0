"""windflow.engine.compose.plan: waves, normalised services, config hashes, labels.
Pure Python: no database, no Docker."""

import copy

import pytest

from windflow.engine.compose import ComposeError
from windflow.engine.compose.plan import (
    BuildSpec,
    ProjectFile,
    build_plan,
    compose_labels,
    parse_duration,
    parse_memory,
    waves,
)


def stack(**services):
    return {
        "services": {name: {"image": "nginx:1.27", **config} for name, config in services.items()}
    }


def test_it_orders_a_chain_in_one_wave_per_link():
    plan = build_plan(stack(web={"depends_on": ["api"]}, api={"depends_on": ["db"]}, db={}), "shop")
    assert plan.order == [["db"], ["api"], ["web"]]


def test_it_orders_a_diamond_with_the_middle_in_parallel():
    plan = build_plan(
        stack(
            web={"depends_on": ["api", "worker"]},
            api={"depends_on": ["db"]},
            worker={"depends_on": ["db"]},
            db={},
        ),
        "shop",
    )
    assert plan.order == [["db"], ["api", "worker"], ["web"]]


def test_it_starts_independent_services_in_one_wave():
    plan = build_plan(stack(a={}, b={}, c={}), "shop")
    assert plan.order == [["a", "b", "c"]]


def test_it_names_a_cycle():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(web={"depends_on": ["api"]}, api={"depends_on": ["web"]}, db={}), "shop")
    assert "web → api → web" in caught.value.message
    assert caught.value.code == "compose-dependency-cycle"
    assert caught.value.path == "services.web.depends_on"


def test_it_names_a_self_dependency_and_a_cycle_behind_a_service():
    with pytest.raises(ComposeError, match="web → web"):
        waves({"web": {"web": "service_started"}})
    with pytest.raises(ComposeError, match="b → c → b"):
        waves({"a": {"b": "service_started"}, "b": {"c": "x"}, "c": {"b": "x"}})


def test_it_refuses_an_unknown_dependency_naming_it():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(web={"depends_on": {"cache": {"condition": "service_healthy"}}}), "p")
    assert '"cache"' in caught.value.message
    assert caught.value.path == "services.web.depends_on"
    assert caught.value.code == "compose-unknown-service"
    assert "Services of this file: web" in caught.value.hint


def test_it_skips_an_optional_unknown_dependency():
    plan = build_plan(stack(web={"depends_on": {"cache": {"required": False}}}), "p")
    assert plan.service("web").depends_on == {}


def test_it_keeps_each_dependency_condition():
    plan = build_plan(
        stack(
            web={
                "depends_on": {
                    "db": {"condition": "service_healthy", "restart": True},
                    "migrate": {"condition": "service_completed_successfully"},
                    "cache": None,
                }
            },
            db={},
            migrate={"depends_on": ["db"]},
            cache={},
        ),
        "shop",
    )
    assert plan.service("web").depends_on == {
        "db": "service_healthy",
        "migrate": "service_completed_successfully",
        "cache": "service_started",
    }
    assert plan.service("migrate").depends_on == {"db": "service_started"}
    assert plan.order == [["db", "cache"], ["migrate"], ["web"]]


def test_it_adds_implicit_dependencies_of_links_and_network_mode():
    plan = build_plan(
        stack(web={"links": ["db"]}, sidecar={"network_mode": "service:web"}, db={}),
        "p",
    )
    assert plan.order == [["db"], ["web"], ["sidecar"]]
    assert plan.service("sidecar").networks == {}


def test_it_refuses_what_the_driver_would_not_apply_and_says_what_to_do():
    with pytest.raises(ComposeError) as refused:
        build_plan(
            stack(
                web={"secrets": ["token"], "profiles": ["debug"], "links": ["db:database"]},
                db={"hostname": "db", "stop_grace_period": "3s", "tty": True},
            ),
            "p",
        )
    problems = {p.path: p for p in refused.value.problems}
    assert set(problems) == {
        "services.web.secrets[0]",
        "services.web.profiles",
        "services.web.links",
    }
    # Compose secrets are supported now: an undeclared one is what is wrong.
    assert problems["services.web.secrets[0]"].code == "compose-undeclared-secret"
    assert "secrets: {token: {file: ./token}}" in problems["services.web.secrets[0]"].hint
    assert problems["services.web.profiles"].code == "compose-unsupported"
    assert problems["services.web.links"].code == "compose-unsupported"


def test_it_normalises_ports_short_and_long():
    plan = build_plan(
        stack(
            web={
                "ports": [
                    80,
                    "8080:80",
                    "127.0.0.1:5432:5432/tcp",
                    "[::1]:53:53/udp",
                    "9000-9001:90-91",
                    {"target": 443, "published": "8443", "host_ip": "192.0.2.1", "mode": "host"},
                    {"target": 8000},
                ]
            }
        ),
        "p",
    )
    assert plan.service("web").ports == [
        {"host_ip": None, "published": None, "target": 80, "protocol": "tcp"},
        {"host_ip": None, "published": 8080, "target": 80, "protocol": "tcp"},
        {"host_ip": "127.0.0.1", "published": 5432, "target": 5432, "protocol": "tcp"},
        {"host_ip": "::1", "published": 53, "target": 53, "protocol": "udp"},
        {"host_ip": None, "published": 9000, "target": 90, "protocol": "tcp"},
        {"host_ip": None, "published": 9001, "target": 91, "protocol": "tcp"},
        {"host_ip": "192.0.2.1", "published": 8443, "target": 443, "protocol": "tcp"},
        {"host_ip": None, "published": None, "target": 8000, "protocol": "tcp"},
    ]


def test_it_refuses_a_bad_port_with_its_place():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(web={"ports": ["80", "http:80"]}), "p")
    assert caught.value.path == "services.web.ports[1]"


def test_it_normalises_volumes_and_maps_named_ones_to_docker_names():
    document = stack(
        db={
            "volumes": [
                "data:/var/lib/postgresql/data",
                "./conf:/etc/app:ro",
                "/srv/logs:/logs:rw,z",
                "/scratch",
                {"type": "tmpfs", "target": "/run/cache", "tmpfs": {"size": 1000}},
                {"type": "bind", "source": "/etc/ssl", "target": "/ssl", "read_only": True},
                {"type": "volume", "source": "shared", "target": "/shared"},
            ]
        }
    )
    document["volumes"] = {"data": {}, "shared": {"external": True, "name": "team-shared"}}
    plan = build_plan(document, "shop")
    assert plan.service("db").volumes == [
        {
            "type": "volume",
            "source": "shop_data",
            "target": "/var/lib/postgresql/data",
            "read_only": False,
        },
        {"type": "bind", "source": "/srv/logs", "target": "/logs", "read_only": False, "mode": "z"},
        {"type": "volume", "source": None, "target": "/scratch", "read_only": False},
        {
            "type": "tmpfs",
            "source": None,
            "target": "/run/cache",
            "read_only": False,
            "tmpfs": {"size": 1000},
        },
        {"type": "bind", "source": "/etc/ssl", "target": "/ssl", "read_only": True},
        {"type": "volume", "source": "team-shared", "target": "/shared", "read_only": False},
    ]
    # The relative bind is a file of the project, served from the revision's folder.
    assert plan.service("db").files == (ProjectFile("conf", "/etc/app", True, kind="bind"),)
    volumes = {v.key: v for v in plan.volumes}
    assert volumes["data"].name == "shop_data" and not volumes["data"].external
    assert volumes["data"].labels["com.docker.compose.volume"] == "data"
    assert volumes["shared"].name == "team-shared" and volumes["shared"].external


def test_it_refuses_an_undeclared_named_volume():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(db={"volumes": ["data:/var/lib/data"]}), "p")
    assert '"data" is not declared' in caught.value.message
    assert caught.value.path == "services.db.volumes[0]"
    assert caught.value.code == "compose-undeclared-volume"


def test_it_normalises_durations_to_seconds():
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("10s") == 10.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h") == 3600.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration(5) == 5.0
    assert parse_duration("10") == 10.0  # a bare number is seconds
    for bad in ("ten seconds", "10x", "", "s", "1m30"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_it_normalises_the_healthcheck():
    plan = build_plan(
        stack(
            web={
                "healthcheck": {
                    "test": "curl -f http://localhost/",
                    "interval": "1m30s",
                    "timeout": "500ms",
                    "start_period": "10s",
                    "retries": 3,
                }
            },
            db={"healthcheck": {"disable": True}},
            api={"healthcheck": {"test": ["CMD", "true"], "interval": "2s"}},
        ),
        "p",
    )
    assert plan.service("web").healthcheck == {
        "test": ["CMD-SHELL", "curl -f http://localhost/"],
        "interval": 90.0,
        "timeout": 0.5,
        "start_period": 10.0,
        "retries": 3,
    }
    assert plan.service("db").healthcheck == {"test": ["NONE"]}
    assert plan.service("api").healthcheck == {"test": ["CMD", "true"], "interval": 2.0}


def test_it_refuses_a_bad_duration_with_its_place():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(web={"healthcheck": {"interval": "soon"}}), "p")
    assert caught.value.path == "services.web.healthcheck.interval"


def test_it_normalises_memory_and_cpus():
    assert parse_memory("512M") == 512 * 1024**2
    assert parse_memory("1g") == 1024**3
    assert parse_memory("1.5GB") == 1536 * 1024**2
    assert parse_memory("100k") == 102400
    assert parse_memory(1048576) == 1048576
    plan = build_plan(
        stack(
            web={
                "deploy": {
                    "resources": {
                        "limits": {"memory": "512M", "cpus": "0.5"},
                        "reservations": {"memory": "128m"},
                    }
                }
            },
            old={"mem_limit": "1g", "cpus": 2},
        ),
        "p",
    )
    web, old = plan.service("web"), plan.service("old")
    assert web.limits == {"memory": 512 * 1024**2, "cpus": 0.5}
    assert web.reservations == {"memory": 128 * 1024**2}
    assert (web.memory_limit, web.cpu_limit) == (512 * 1024**2, 0.5)
    assert old.limits == {"memory": 1024**3, "cpus": 2.0}


def test_it_refuses_conflicting_legacy_and_deploy_limits():
    with pytest.raises(ComposeError) as caught:
        build_plan(
            stack(web={"mem_limit": "1g", "deploy": {"resources": {"limits": {"memory": "2g"}}}}),
            "p",
        )
    assert caught.value.code == "compose-conflicting-values"


def test_it_normalises_environment_labels_commands_and_replicas():
    plan = build_plan(
        stack(
            web={
                "environment": ["A=1", "B=x=y", "UNSET"],
                "labels": ["role=front"],
                "command": "gunicorn -b '0.0.0.0:8000' app:wsgi",
                "entrypoint": ["/bin/sh", "-c"],
                "deploy": {"replicas": 3, "restart_policy": {"condition": "on-failure"}},
                "user": 1000,
                "working_dir": "/app",
            },
            db={"environment": {"DEBUG": False, "N": 1, "EMPTY": None}, "restart": "always"},
        ),
        "p",
    )
    web, db = plan.service("web"), plan.service("db")
    assert web.environment == {"A": "1", "B": "x=y"}
    assert web.labels == {"role": "front"}
    assert web.command == ["gunicorn", "-b", "0.0.0.0:8000", "app:wsgi"]
    assert web.entrypoint == ["/bin/sh", "-c"]
    assert (web.replicas, web.restart, web.user, web.working_dir) == (
        3,
        "on-failure",
        "1000",
        "/app",
    )
    assert db.environment == {"DEBUG": "false", "N": "1"}
    assert (db.replicas, db.restart, db.command) == (1, "always", None)


def test_it_lists_each_image_once():
    plan = build_plan(stack(a={}, b={}, c={"image": "redis:7"}), "p")
    assert plan.images == ["nginx:1.27", "redis:7"]


def test_it_puts_services_without_networks_on_the_default_network():
    document = stack(
        web={},
        db={"networks": ["back"]},
        api={"networks": {"back": {"aliases": ["backend"]}, "default": None}},
    )
    document["networks"] = {"back": {}, "outside": {"external": True, "name": "proxy"}}
    plan = build_plan(document, "shop")
    assert plan.service("web").networks == {"shop_default": {"aliases": []}}
    assert plan.service("db").networks == {"shop_back": {"aliases": []}}
    assert plan.service("api").networks == {
        "shop_back": {"aliases": ["backend"]},
        "shop_default": {"aliases": []},
    }
    networks = {n.key: n for n in plan.networks}
    assert networks["default"].name == "shop_default"
    assert networks["default"].labels["com.docker.compose.network"] == "default"
    assert networks["outside"].external and networks["outside"].name == "proxy"
    assert not networks["back"].external


def test_it_creates_no_default_network_when_no_service_needs_it():
    document = stack(db={"networks": ["back"]})
    document["networks"] = {"back": {}}
    assert [n.name for n in build_plan(document, "shop").networks] == ["shop_back"]


def test_it_refuses_an_undeclared_network():
    with pytest.raises(ComposeError) as caught:
        build_plan(stack(web={"networks": ["front"]}), "p")
    assert caught.value.code == "compose-undeclared-network"
    assert caught.value.path == "services.web.networks.front"


def test_it_hashes_the_same_config_the_same_whatever_the_key_order():
    one = stack(
        web={"environment": {"A": "1", "B": "2"}, "ports": ["80:80"], "labels": {"x": "1"}},
        db={},
    )
    two = {
        "services": {
            "db": {"image": "nginx:1.27"},
            "web": {
                "labels": {"x": "1"},
                "ports": ["80:80"],
                "environment": ["B=2", "A=1"],
                "image": "nginx:1.27",
            },
        }
    }
    assert build_plan(one, "p").hashes == build_plan(two, "p").hashes
    assert len(build_plan(one, "p").service("web").config_hash) == 64


def test_it_changes_only_the_edited_service_hash():
    before = stack(web={"environment": {"A": "1"}}, api={}, db={})
    after = copy.deepcopy(before)
    after["services"]["web"]["environment"]["A"] = "2"
    old, new = build_plan(before, "p").hashes, build_plan(after, "p").hashes
    assert old["web"] != new["web"]
    assert {k: v for k, v in old.items() if k != "web"} == {
        k: v for k, v in new.items() if k != "web"
    }


def test_it_changes_the_hash_for_keys_it_does_not_model_but_not_for_replicas():
    base = build_plan(stack(web={}), "p").hashes["web"]
    assert build_plan(stack(web={"privileged": True}), "p").hashes["web"] != base
    assert build_plan(stack(web={"deploy": {"replicas": 4}}), "p").hashes["web"] == base
    assert build_plan(stack(web={"x-note": "ignored"}), "p").hashes["web"] == base


def test_it_builds_compose_compatible_labels():
    assert compose_labels("shop", "web", 2, "abc") == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.config-hash": "abc",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project.working_dir": "/",
        "io.windflow.managed": "true",
    }
    labels = compose_labels("shop", "web", 1, "abc", working_dir="/srv/shop")
    assert labels["com.docker.compose.project.working_dir"] == "/srv/shop"


# --- project files and builds (issue 13) ---------------------------------------------------


def test_it_plans_a_build_with_its_context_args_target_and_labels():
    plan = build_plan(
        stack(
            api={
                "build": {
                    "context": "./services/api/",
                    "dockerfile": "docker/Dockerfile.prod",
                    "args": {"VERSION": "1.2", "EMPTY": None},
                    "target": "runtime",
                    "labels": ["team=shop"],
                },
                "pull_policy": "build",
            },
            web={"build": "."},
            db={"image": "postgres:16"},
        ),
        "p",
    )
    api = plan.service("api")
    assert api.build == BuildSpec(
        context="services/api",
        dockerfile="docker/Dockerfile.prod",
        args={"VERSION": "1.2"},
        target="runtime",
        labels={"team": "shop"},
    )
    assert api.pull_policy == "build"
    assert plan.service("web").build == BuildSpec(context=".")
    assert [spec.name for spec in plan.builds] == ["api", "web"]
    assert plan.images == ["postgres:16"]  # built images are not pulled


def test_a_service_without_build_or_files_keeps_the_hash_it_had_before():
    plain = build_plan(stack(web={}), "p").service("web")
    assert "build" not in plain.hashed_config() and "files" not in plain.hashed_config()
    built = build_plan(stack(web={"build": "."}), "p").service("web")
    other = build_plan(stack(web={"build": {"context": ".", "args": {"A": "1"}}}), "p")
    assert built.config_hash != other.service("web").config_hash


def test_relative_binds_configs_and_secrets_become_project_files():
    document = {
        "services": {
            "web": {
                "image": "nginx",
                "volumes": [
                    "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro",
                    "static/site:/srv",
                    "/var/log:/logs",
                    "data:/data",
                ],
                "configs": ["app", {"source": "app", "target": "/etc/app.ini"}],
                "secrets": ["db_password", {"source": "api_key", "target": "key"}],
            }
        },
        "volumes": {"data": {}},
        "configs": {"app": {"file": "./config/app.ini"}},
        "secrets": {"db_password": {"environment": "DB_PASSWORD"}, "api_key": {"file": "key.txt"}},
    }
    web = build_plan(document, "p").service("web")
    assert web.files == (
        ProjectFile("nginx/nginx.conf", "/etc/nginx/nginx.conf", True, kind="bind"),
        ProjectFile("static/site", "/srv", False, kind="bind"),
        ProjectFile("config/app.ini", "/app", True, kind="config", name="app"),
        ProjectFile("config/app.ini", "/etc/app.ini", True, kind="config", name="app"),
        ProjectFile(
            "", "/run/secrets/db_password", True, kind="secret", secret="DB_PASSWORD",
            name="db_password",
        ),
        ProjectFile("key.txt", "/run/secrets/key", True, kind="secret", name="api_key"),
    )  # fmt: skip
    # The host path and the named volume stay volumes; the project files do not.
    assert [v["target"] for v in web.volumes] == ["/logs", "/data"]
    assert web.files[4].stored_as == "db_password"


@pytest.mark.parametrize(
    "volume", ["../secrets:/s", "./a/../../b:/b", "~/.ssh:/root/.ssh"], ids=["up", "sneaky", "home"]
)
def test_a_bind_outside_the_project_stays_a_host_path_for_the_policy(volume):
    web = build_plan(stack(web={"volumes": [volume]}), "p").service("web")
    assert web.files == ()
    assert [v["type"] for v in web.volumes] == ["bind"]


def test_a_build_context_outside_the_project_is_refused_with_a_hint():
    with pytest.raises(ComposeError) as refused:
        build_plan(stack(web={"build": "../other"}), "p")
    assert refused.value.code == "compose-outside-project"
    assert refused.value.hint


def test_an_unknown_pull_policy_and_an_unsupported_build_key_are_refused():
    with pytest.raises(ComposeError) as refused:
        build_plan(
            stack(web={"pull_policy": "sometimes"}, api={"build": {"context": ".", "ssh": ["x"]}}),
            "p",
        )
    paths = {p.path for p in refused.value.problems}
    assert paths == {"services.web.pull_policy", "services.api.build.ssh"}


def test_the_image_a_build_names_is_not_pulled_for_the_services_that_run_it():
    plan = build_plan(
        stack(web={"build": ".", "image": "shop/web:dev"}, worker={"image": "shop/web:dev"}),
        "p",
    )
    assert plan.images == []
