"""The corpus of real-shaped compose projects (INDEX.md): where each folder is, what it needs
and what its expected.json says, and the same summary of a plan drawn from `docker compose
config` (the reference implementation) and from WindFlow's plan, so that both are held to
one expected.json. Used by tests/corpus and benchmarks/bench_build_deploy.py."""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
NAMESPACE = "windflow-test"
SECRETS_DIR = "/run/secrets"
_PULL_ALIASES = {"if_not_present": "missing"}


@dataclass(frozen=True)
class CorpusProject:
    """One folder of the corpus and its expected.json."""

    name: str
    expected: dict = field(hash=False, compare=False)

    @property
    def folder(self) -> Path:
        return CORPUS / self.name

    @property
    def root(self) -> Path:
        """The compose project's root: the folder, or its subfolder (monorepo)."""
        return self.folder / self.expected.get("subfolder", "")

    @property
    def compose_files(self) -> list[str]:
        """The compose files in -f order; empty for compose's own default."""
        return list(self.expected.get("compose_files", []))

    @property
    def port_variables(self) -> list[str]:
        return ["WEB_PORT", *self.expected.get("ports", [])]

    def variables(self, registry: str, ports: dict[str, int] | None = None) -> dict[str, str]:
        """What the project needs to deploy: REGISTRY, a port per port variable (given, or
        a placeholder when nothing is published), and its own variables."""
        values = {"REGISTRY": registry}
        for name in self.port_variables:
            values[name] = str((ports or {}).get(name, 8080))
        values.update(self.expected.get("variables", {}))
        return values

    @property
    def secrets(self) -> dict[str, str]:
        """WindFlow secrets the project uses (name -> value)."""
        return dict(self.expected.get("secrets", {}))


def projects() -> list[CorpusProject]:
    return [
        CorpusProject(folder.name, json.loads((folder / "expected.json").read_text()))
        for folder in sorted(CORPUS.iterdir())
        if (folder / "expected.json").is_file()
    ]


def project(name: str) -> CorpusProject:
    folder = CORPUS / name
    return CorpusProject(name, json.loads((folder / "expected.json").read_text()))


def indexed_names() -> list[str]:
    """The project names of INDEX.md's table (first column)."""
    names = []
    for line in (CORPUS / "INDEX.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("Project", "") and set(cells[0]) != {"-"}:
            names.append(cells[0])
    return names


# --- one summary of a plan -----------------------------------------------------------------


def _image_name(image: str, registry: str) -> str:
    return image.removeprefix(f"{registry}/{NAMESPACE}/")


def summary_of_reference(config: dict, root: Path, registry: str) -> dict:
    """The summary of `docker compose config --format json` of the project at `root`."""
    services = config.get("services") or {}

    def relative(path: str) -> str:
        return Path(path).resolve().relative_to(root.resolve()).as_posix() or "."

    builds, files, env, depends, pulls, images = {}, set(), {}, {}, {}, set()
    for name, service in services.items():
        build = service.get("build")
        if build:
            args = {k: v for k, v in (build.get("args") or {}).items() if k != "REGISTRY"}
            builds[name] = {
                "context": relative(build["context"]),
                "dockerfile": build.get("dockerfile", "Dockerfile"),
                "target": build.get("target"),
                "args": args,
                "labels": build.get("labels") or {},
            }
        else:
            images.add(_image_name(service["image"], registry))
        for volume in service.get("volumes") or []:
            if volume["type"] == "bind":
                files.add(("bind", relative(volume["source"]), volume["target"]))
        for kind in ("configs", "secrets"):
            declared = config.get(kind) or {}
            for entry in service.get(kind) or []:
                top = declared[entry["source"]]
                source = relative(top["file"]) if top.get("file") else ""
                files.add((kind[:-1], source, _mount_target(kind, entry)))
        env[name] = {k: v for k, v in (service.get("environment") or {}).items()}
        depends[name] = {
            dep: value.get("condition", "service_started")
            for dep, value in (service.get("depends_on") or {}).items()
        }
        policy = service.get("pull_policy") or ("build" if build else "missing")
        pulls[name] = _PULL_ALIASES.get(policy, policy)
    return {
        "services": sorted(services),
        "builds": builds,
        "files": files,
        "images": images,
        "environment": env,
        "depends_on": depends,
        "pull_policy": pulls,
    }


def _mount_target(kind: str, entry: dict) -> str:
    target = entry.get("target") or (entry["source"] if kind == "secrets" else "")
    if kind == "secrets" and not target.startswith("/"):
        return posixpath.join(SECRETS_DIR, target)
    return target or f"/{entry['source']}"


def summary_of_plan(plan, registry: str) -> dict:
    """The same summary of a WindFlow plan (windflow.engine.compose.plan.Plan)."""
    builds = {}
    for spec in plan.services:
        if spec.build is not None:
            builds[spec.name] = {
                "context": spec.build.context,
                "dockerfile": spec.build.dockerfile,
                "target": spec.build.target,
                "args": {k: v for k, v in spec.build.args.items() if k != "REGISTRY"},
                "labels": dict(spec.build.labels),
            }
    return {
        "services": sorted(spec.name for spec in plan.services),
        "builds": builds,
        "files": {
            (item.kind, item.source, item.target) for spec in plan.services for item in spec.files
        },
        "images": {_image_name(image, registry) for image in plan.images},
        "environment": {spec.name: dict(spec.environment) for spec in plan.services},
        "depends_on": {spec.name: dict(spec.depends_on) for spec in plan.services},
        "pull_policy": {spec.name: spec.pull_policy for spec in plan.services},
    }


def mismatches(found: dict, expected: dict) -> list[str]:
    """What `found` (a summary) gets wrong against expected.json: services and images
    exactly, mounted files exactly, builds field by field as given, environment /
    depends_on / pull_policy for the services and keys given."""
    wrong = []

    def differ(what: str, got, want) -> None:
        if got != want:
            wrong.append(f"{what}: got {got!r}, expected {want!r}")

    differ("services", found["services"], sorted(expected["services"]))
    differ("images", found["images"], set(expected.get("images", [])))
    differ("files", found["files"], {tuple(item) for item in expected.get("files", [])})
    differ("built services", sorted(found["builds"]), sorted(expected.get("builds", {})))
    for service, build in expected.get("builds", {}).items():
        got = found["builds"].get(service, {})
        want = {"target": None, "args": {}, "labels": {}, **build}
        for key, value in want.items():
            differ(f"{service} build {key}", got.get(key), value)
    for section in ("environment", "depends_on", "pull_policy"):
        for service, value in expected.get(section, {}).items():
            got = found[section].get(service)
            if isinstance(value, dict):
                got = {k: (got or {}).get(k) for k in value}
            differ(f"{service} {section}", got, value)
    return wrong


# --- the reference implementation ------------------------------------------------------------


def compose_command(corpus_project: CorpusProject, project_name: str) -> list[str]:
    files = [arg for name in corpus_project.compose_files for arg in ("-f", name)]
    return ["docker", "compose", "-p", project_name, *files]


def compose_environment(values: dict[str, str]) -> dict[str, str]:
    """A clean environment for `docker compose`: only what the project is given (no
    variable of the caller's shell leaks into the interpolation)."""
    keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["DOCKER_BUILDKIT"] = "0"  # the classic builder, as WindFlow's
    env.update(values)
    return env


def reference_config(
    corpus_project: CorpusProject, values: dict[str, str], project_name: str
) -> dict:
    """`docker compose config --format json` of the project with `values`."""
    result = subprocess.run(
        [*compose_command(corpus_project, project_name), "config", "--format", "json"],
        cwd=corpus_project.root,
        env=compose_environment(values),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"docker compose config refused {corpus_project.name}:\n{result.stderr}"
        )
    return json.loads(result.stdout)
