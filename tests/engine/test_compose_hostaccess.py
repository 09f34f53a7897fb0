"""windflow.engine.compose.hostaccess: every host-level feature is found, in every spelling an
attacker would try, and nothing is found in an ordinary stack. Pure Python: no database, no
Docker."""

import pytest

from windflow.engine.compose.analyse import analyse
from windflow.engine.compose.hostaccess import (
    FEATURES,
    host_features,
    normalise_host_path,
    outside_allow_list,
    valid_allow_list_entry,
)
from windflow.engine.compose.lint import lint
from windflow.engine.compose.load import load_compose_with_positions


def found(service: dict, *, extra: dict | None = None, project="shop") -> list[tuple[str, str]]:
    document = {"services": {"web": {"image": "nginx:1.27", **service}}, **(extra or {})}
    return [(f.feature, f.path) for f in host_features(document, project=project)]


def test_it_finds_nothing_in_an_ordinary_stack():
    document = {
        "services": {
            "web": {
                "image": "nginx:1.27",
                "volumes": [
                    "data:/data",
                    "./conf:/etc/nginx/conf.d:ro",
                    "conf/sub:/x",
                    {"type": "volume", "source": "data", "target": "/d"},
                    {"type": "tmpfs", "target": "/scratch"},
                    "/etc/localtime:/etc/localtime:ro",
                    "/anonymous",
                ],
                "security_opt": ["no-new-privileges:true", "no-new-privileges:false"],
                "network_mode": "bridge",
                "ipc": "shareable",
            },
            "sidecar": {
                "image": "busybox:1",
                "network_mode": "service:web",
                "pid": "container:shop-web-1",
                "ipc": "service:web",
            },
            "named": {"image": "busybox:1", "container_name": "my-box"},
            "joined": {"image": "busybox:1", "network_mode": "container:my-box"},
        },
        "volumes": {
            "data": {},
            "nfs": {"driver_opts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}},
        },
        "networks": {"front": {"external": True, "name": "proxy"}},
    }
    assert host_features(document, project="shop") == []
    assert FEATURES  # every key has a title


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({"privileged": True}, [("privileged", "services.web.privileged")]),
        # The driver applies bool(value): a string is privileged too.
        ({"privileged": "false"}, [("privileged", "services.web.privileged")]),
        ({"network_mode": "host"}, [("host_namespaces", "services.web.network_mode")]),
        ({"network_mode": " HOST "}, [("host_namespaces", "services.web.network_mode")]),
        ({"pid": "host"}, [("host_namespaces", "services.web.pid")]),
        ({"ipc": "host"}, [("host_namespaces", "services.web.ipc")]),
        ({"uts": "host"}, [("host_namespaces", "services.web.uts")]),
        ({"userns_mode": "host"}, [("host_namespaces", "services.web.userns_mode")]),
        ({"cgroup": "host"}, [("host_namespaces", "services.web.cgroup")]),
        # Another stack's (or the platform's) container is not ours to join.
        (
            {"network_mode": "container:windflow-redis"},
            [("host_namespaces", "services.web.network_mode")],
        ),
        ({"pid": "container:other-web-1"}, [("host_namespaces", "services.web.pid")]),
        ({"ipc": "container:shop-web-x"}, [("host_namespaces", "services.web.ipc")]),
        ({"network_mode": "service:nope"}, [("host_namespaces", "services.web.network_mode")]),
        ({"cap_add": ["SYS_ADMIN"]}, [("cap_add", "services.web.cap_add")]),
        ({"cap_add": ["NET_BIND_SERVICE"]}, [("cap_add", "services.web.cap_add")]),
        ({"devices": ["/dev/sda:/dev/sda"]}, [("devices", "services.web.devices")]),
        ({"sysctls": {"net.core.somaxconn": 1024}}, [("sysctls", "services.web.sysctls")]),
        ({"sysctls": ["kernel.shmmax=1"]}, [("sysctls", "services.web.sysctls")]),
        (
            {"security_opt": ["seccomp=unconfined"]},
            [("security_opt", "services.web.security_opt[0]")],
        ),
        (
            {"security_opt": ["no-new-privileges:false", "seccomp:unconfined"]},
            [("security_opt", "services.web.security_opt[1]")],
        ),
        (
            {"security_opt": ["apparmor=unconfined"]},
            [("security_opt", "services.web.security_opt[0]")],
        ),
        ({"security_opt": ["label=disable"]}, [("security_opt", "services.web.security_opt[0]")]),
        ({"security_opt": ["label:disable"]}, [("security_opt", "services.web.security_opt[0]")]),
        (
            {"security_opt": ["label=type:spc_t"]},
            [("security_opt", "services.web.security_opt[0]")],
        ),
        (
            {"security_opt": ["systempaths=unconfined"]},
            [("security_opt", "services.web.security_opt[0]")],
        ),
        (
            {"volumes_from": ["container:windflow-web"]},
            [("host_path", "services.web.volumes_from[0]")],
        ),
    ],
)
def test_it_finds_each_feature(service, expected):
    assert found(service) == expected


BIND_CASES = [
    # (volume entry, [(feature, host path, sensitive)])
    ("/:/host", [("host_path", "/", True), ("docker_socket", "/", True)]),
    ("/:/host:ro", [("host_path", "/", True), ("docker_socket", "/", True)]),
    ("//:/host", [("host_path", "/", True), ("docker_socket", "/", True)]),
    ("/var:/v", [("host_path", "/var", True), ("docker_socket", "/var", True)]),
    (
        "/var/run/docker.sock:/var/run/docker.sock",
        [("docker_socket", "/var/run/docker.sock", True)],
    ),
    ("/run/docker.sock:/d.sock", [("docker_socket", "/run/docker.sock", True)]),
    ("/var/run:/r", [("docker_socket", "/var/run", True)]),
    ("/run/:/r", [("docker_socket", "/run", True)]),
    ("/srv/../run/docker.sock:/d", [("docker_socket", "/run/docker.sock", True)]),
    ("/srv/app/docker.sock:/d", [("docker_socket", "/srv/app/docker.sock", True)]),
    (
        "/run/containerd/containerd.sock:/c",
        [("docker_socket", "/run/containerd/containerd.sock", True)],
    ),
    ("/etc:/e", [("host_path", "/etc", True)]),
    ("/etc/ssl/private:/certs", [("host_path", "/etc/ssl/private", True)]),
    ("/var/../etc:/e", [("host_path", "/etc", True)]),
    ("/var/lib/docker/:/d", [("host_path", "/var/lib/docker", True)]),
    ("/var/lib:/d", [("host_path", "/var/lib", True)]),
    ("/proc:/p", [("host_path", "/proc", True)]),
    ("/sys/fs/cgroup:/c", [("host_path", "/sys/fs/cgroup", True)]),
    ("/dev:/dev", [("host_path", "/dev", True)]),
    ("/boot:/b", [("host_path", "/boot", True)]),
    ("/root:/r", [("host_path", "/root", True)]),
    ("/home/alice:/h", [("host_path", "/home/alice", True)]),
    ("/srv/web/.ssh:/k", [("host_path", "/srv/web/.ssh", True)]),
    ("~/.ssh:/k", [("host_path", "~/.ssh", True)]),
    ("~:/k", [("host_path", "~", True)]),
    # A plain host directory: a finding an allow-list may lift.
    ("/srv/app:/app", [("host_path", "/srv/app", False)]),
    ("/srv/app/:/app", [("host_path", "/srv/app", False)]),
    ("//srv//app:/app", [("host_path", "/srv/app", False)]),
    # '..' is never trusted (a symlink under /srv would resolve elsewhere).
    ("/srv/app/../app:/app", [("host_path", "/srv/app", True)]),
    # Relative paths stay in the project's directory, unless '..' leaves it.
    ("../../etc:/e", [("host_path", "../../etc", True)]),
    ("./data/../../x:/e", [("host_path", "../x", True)]),
    # Harmless files only when read-only: written, they change the server.
    ("/etc/localtime:/etc/localtime", [("host_path", "/etc/localtime", True)]),
    (
        {"type": "bind", "source": "/", "target": "/host"},
        [("host_path", "/", True), ("docker_socket", "/", True)],
    ),
    (
        {"type": "bind", "source": "/var/run/docker.sock", "target": "/s", "read_only": True},
        [("docker_socket", "/var/run/docker.sock", True)],
    ),
    ({"type": "bind", "source": "/srv/x/", "target": "/x"}, [("host_path", "/srv/x", False)]),
]


@pytest.mark.parametrize(("volume", "expected"), BIND_CASES)
def test_it_finds_host_paths_in_every_spelling(volume, expected):
    document = {"services": {"web": {"image": "nginx:1.27", "volumes": [volume]}}}
    features = host_features(document)
    assert [(f.feature, f.host_path, f.sensitive) for f in features] == expected
    assert all(f.path == "services.web.volumes[0]" and f.service == "web" for f in features)


def test_it_sees_named_volumes_that_are_binds():
    extra = {
        "volumes": {
            "root": {
                "driver": "local",
                "driver_opts": {"type": "none", "o": "bind", "device": "/"},
            },
            "disk": {"driver_opts": {"type": "ext4", "device": "/dev/sda1"}},
            "app": {"driver_opts": {"type": "none", "o": "bind", "device": "/srv/app"}},
        }
    }
    document = {
        "services": {"web": {"image": "x:1", "volumes": ["root:/host", "disk:/d", "app:/app:ro"]}},
        **extra,
    }
    features = host_features(document)
    assert [(f.feature, f.path, f.host_path, f.sensitive) for f in features] == [
        ("host_path", "services.web.volumes[0]", "/", True),
        ("docker_socket", "services.web.volumes[0]", "/", True),
        ("host_path", "services.web.volumes[1]", "/dev/sda1", True),
        ("host_path", "services.web.volumes[2]", "/srv/app", False),
    ]
    assert "volume root" in features[0].detail


def test_it_sees_external_networks_that_are_the_host_network():
    for networks in (
        {"h": {"external": True, "name": "host"}},
        {"host": {"external": True}},
        {"h": {"external": {"name": "host"}}},
        {"h": {"driver": "host"}},
    ):
        assert found(
            {"networks": ["h" if "h" in networks else "host"]}, extra={"networks": networks}
        ) == [("host_namespaces", "services.web.networks." + ("h" if "h" in networks else "host"))]
    assert found({"networks": {"front": None}}, extra={"networks": {"front": {}}}) == []
    # A service without networks: joins "default", which may be declared as the host's.
    assert found({}, extra={"networks": {"default": {"external": True, "name": "host"}}}) == [
        ("host_namespaces", "services.web.networks.default")
    ]
    assert found({"network_mode": "none"}, extra={"networks": {"default": {"name": "host"}}}) == []
    # Not external, but named "host": the driver would reuse the host network.
    assert found({"networks": ["h"]}, extra={"networks": {"h": {"name": "HOST"}}}) == [
        ("host_namespaces", "services.web.networks.h")
    ]
    assert found({"networks": ["host"]}, extra={"networks": {"host": {}}}) == []


def test_it_tells_volumes_and_networks_the_stack_does_not_own():
    document = {
        "services": {
            "web": {
                "image": "x:1",
                "volumes": ["own:/a", "named:/b", "ext:/c", "legacy:/d"],
                "networks": ["mine", "proxy"],
            }
        },
        "volumes": {
            "own": {},
            "named": {"name": "other_data"},
            "ext": {"external": True},
            "legacy": {"external": {"name": "old"}},
        },
        "networks": {"mine": {}, "proxy": {"external": True, "name": "traefik"}},
    }
    assert [(f.feature, f.path, f.detail) for f in host_features(document)] == [
        (
            "foreign_resource",
            "services.web.networks.proxy",
            "services.web.networks: proxy is the network traefik, which this stack does not own",
        ),
        (
            "foreign_resource",
            "services.web.volumes[1]",
            "services.web.volumes[1] mounts the volume other_data, which this stack does not own",
        ),
        (
            "foreign_resource",
            "services.web.volumes[2]",
            "services.web.volumes[2] mounts the volume ext, which this stack does not own",
        ),
        (
            "foreign_resource",
            "services.web.volumes[3]",
            "services.web.volumes[3] mounts the volume old, which this stack does not own",
        ),
    ]
    assert "foreign_resource" not in FEATURES
    host_rules = ("privileged", "host-namespace", "docker-socket", "host-path")
    assert [p.rule for p in lint(document) if p.rule in host_rules] == []


def test_it_gives_lines_service_and_detail_for_people():
    text = (
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "    volumes:\n"
        "      - /var/../etc/:/x\n"
        "    privileged: true\n"
    )
    document, positions = load_compose_with_positions(text)
    privileged, path = host_features(document, positions=positions)
    assert (path.feature, path.service, path.line) == ("host_path", "web", 5)
    assert path.detail == "services.web.volumes[0] mounts the host path /var/../etc/ (that is /etc)"
    assert (privileged.feature, privileged.line) == ("privileged", 6)
    assert privileged.as_dict() == {
        "feature": "privileged",
        "service": "web",
        "path": "services.web.privileged",
        "line": 6,
        "detail": "services.web runs privileged",
    }


def test_it_judges_the_interpolated_file_in_analyse():
    text = "services:\n  web:\n    image: nginx:1.27\n    volumes:\n      - ${ROOT}:/host\n"
    analysis = analyse(text, {"ROOT": "/"}, project="shop")
    assert [(f.feature, f.line) for f in analysis.host_features] == [
        ("host_path", 5),
        ("docker_socket", 5),
    ]
    assert analyse(text, {"ROOT": "./data"}, project="shop").host_features == []


def test_it_lifts_only_ordinary_paths_with_an_allow_list():
    document = {
        "services": {
            "web": {
                "image": "x:1",
                "volumes": [
                    "/srv/app:/a",
                    "/srv/app/sub/:/b",
                    "/srv/application:/c",
                    "/srv/app/../app:/d",
                    "/etc:/e",
                    "/data:/f",
                ],
            }
        }
    }
    features = host_features(document)
    left = outside_allow_list(features, ["/srv/app/", "/etc", "relative", "/srv/x/../app"])
    assert [f.path for f in left] == [
        "services.web.volumes[2]",
        "services.web.volumes[3]",
        "services.web.volumes[4]",
        "services.web.volumes[5]",
    ]
    assert [f.path for f in outside_allow_list(features, ["/"])] == [f.path for f in features]


def test_it_says_why_an_allow_list_entry_is_refused():
    assert valid_allow_list_entry("/srv/app") is None
    assert valid_allow_list_entry("srv/app") == "not an absolute path"
    assert valid_allow_list_entry("") == "an empty path"
    assert valid_allow_list_entry("/srv/../etc") == "a path with '..'"
    assert "sensitive" in valid_allow_list_entry("/")
    assert "sensitive" in valid_allow_list_entry("/var/run/")
    assert "sensitive" in valid_allow_list_entry("/home/me")
    assert "control" in valid_allow_list_entry("/srv/a\nb")
    assert normalise_host_path("//srv/./app//") == "/srv/app"


def test_it_never_crashes_on_malformed_documents():
    for document in (
        None,
        [],
        {"services": []},
        {"services": {"a": None, "b": "x"}},
        {"services": {"a": {"volumes": {}, "networks": 3, "security_opt": [None, 3]}}},
        {"services": {"a": {"volumes": [None, 3, {"type": "bind"}, "a:b:c:d"]}}},
        {"services": {"a": {"volumes": ["v:/x"]}}, "volumes": {"v": {"driver_opts": []}}},
        {"services": {"a": {"networks": ["n"]}}, "networks": {"n": None}},
    ):
        host_features(document)


def test_lint_warns_from_the_same_findings():
    document = {
        "services": {
            "web": {
                "image": "nginx:1.27",
                "userns_mode": "host",
                "volumes": ["/:/host", "/srv/app:/app", "/run/docker.sock:/s"],
            }
        }
    }
    rules = [
        (p.rule, p.path)
        for p in lint(document)
        if p.rule in ("host-namespace", "docker-socket", "host-path")
    ]
    assert rules == [
        ("host-namespace", "services.web.userns_mode"),
        ("host-path", "services.web.volumes[0]"),
        ("docker-socket", "services.web.volumes[2]"),
    ]


def test_a_single_value_where_a_list_goes_is_still_scanned():
    document = {"services": {"w": {"image": "x", "devices": "/dev/kvm", "cap_add": 5}}}
    found = {f.feature: f.detail for f in host_features(document)}
    assert "/dev/kvm" in found["devices"] and "5" in found["cap_add"]
    assert host_features({"services": {"w": {"security_opt": 5, "sysctls": 5}}})
