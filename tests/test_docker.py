"""Static checks of the container and cluster files in docker/.

No Docker engine, GPU or network is used: the compose file, the Ray cluster
launcher config and the KubeRay manifest are parsed and checked against each
other, the Dockerfile against pyproject.toml, and docker/entrypoint.sh is run
with bash on temporary files (and a fake nvidia-smi and ray). scripts/test-docker
runs the images and the compose stack for real (not part of this suite).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hwtest import parts

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
POSTGRES_DOCKERFILE = DOCKER / "postgres" / "Dockerfile"
COMPOSE_CPU = DOCKER / "compose.cpu.yaml"
TEST_DOCKER = ROOT / "scripts" / "test-docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
RAY_CLUSTER = DOCKER / "ray-cluster.yaml"
KUBERAY = DOCKER / "kuberay-raycluster.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
CLUSTER_DOC = ROOT / "docs" / "cluster.md"

SERVICES = {"postgres", "ray-head", "ray-worker", "dashboard", "launch"}
APP_SERVICES = SERVICES - {"postgres"}
# Who gets the database settings and password: the dashboard, the launcher and
# the Ray head (where a job's driver runs). Never the Ray workers.
DATABASE_SERVICES = {"ray-head", "dashboard", "launch"}
RAY_SERVICES = {"ray-head", "ray-worker", "launch"}
# Local-only, git-ignored files a developer creates next to the templates: they
# hold the real secrets, so they are neither scanned nor allowed in git.
LOCAL_ONLY = (DOCKER / ".env", DOCKER / "secrets")
# What the example files may contain instead of a secret.
PLACEHOLDERS = {"change-me"}


class ComposeLoader(yaml.SafeLoader):
    """Safe YAML plus Compose's own tags: !reset (drop the base file's value) and !override
    (replace it instead of merging), read as the plain value they tag."""


def _tagged_value(loader: yaml.SafeLoader, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(_tag, _tagged_value)


def load_yaml(path: Path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)  # noqa: S506


def load_kuberay() -> tuple[dict, list[dict]]:
    """The RayCluster and the other documents of the KubeRay manifest."""
    docs = [d for d in yaml.safe_load_all(KUBERAY.read_text(encoding="utf-8")) if d]
    clusters = [d for d in docs if d["kind"] == "RayCluster"]
    assert len(clusters) == 1, "the KubeRay manifest must hold exactly one RayCluster"
    return clusters[0], [d for d in docs if d["kind"] != "RayCluster"]


COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_default(value: str) -> str:
    """A compose value with each ${VAR:-default} replaced by its default (what runs when the
    variable is unset); a ${VAR} without a default is left as is."""
    return COMPOSE_VAR.sub(lambda m: m.group(0) if m.group(2) is None else m.group(2), value)


@pytest.fixture(scope="module")
def compose() -> dict:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    return parse_dockerfile(DOCKERFILE)


def parse_dockerfile(path: Path) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    return lines


def instructions(dockerfile: list[str], keyword: str) -> list[tuple[int, str]]:
    return [
        (i, line[len(keyword) :].strip())
        for i, line in enumerate(dockerfile)
        if line.split(None, 1)[0].upper() == keyword
    ]


def stages(dockerfile: list[str]) -> list[tuple[str, str, list[str]]]:
    """(name, FROM image, instructions) per build stage; unnamed stages are named by index."""
    out: list[tuple[str, str, list[str]]] = []
    for line in dockerfile:
        words = line.split()
        if words[0].upper() == "FROM":
            ref = [w for w in words[1:] if not w.startswith("--")]
            name = ref[2].lower() if len(ref) >= 3 and ref[1].upper() == "AS" else str(len(out))
            out.append((name, ref[0], []))
        elif out:
            out[-1][2].append(line)
    return out


def base_images(dockerfile: list[str]) -> list[str]:
    """The images a Dockerfile builds FROM (not its own stages), with the ARG defaults declared
    before the first FROM filled in: what a build without --build-arg uses."""
    global_args: dict[str, str] = {}
    for line in dockerfile:
        if line.split()[0].upper() == "FROM":
            break
        if line.split()[0].upper() == "ARG" and "=" in line:
            name, value = line.split(None, 1)[1].split("=", 1)
            global_args[name.strip()] = value.strip().strip('"')
    names = {name for name, _, _ in stages(dockerfile)}
    refs = []
    for _, ref, _ in stages(dockerfile):
        ref = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), ref)
        if ref.lower() not in names:
            refs.append(ref)
    return refs


def dockerfile_args(dockerfile: list[str]) -> dict[str, str]:
    args = {}
    for _, arg in instructions(dockerfile, "ARG"):
        if "=" in arg:
            name, value = arg.split("=", 1)
            args[name] = value.strip().strip('"')
    return args


def pinned_version(pyproject: dict, package: str) -> str:
    """The version the tests ran on: pyproject gives torch and torchvision as ranges, and
    scripts/constraints.txt (what scripts/setup installs) pins the one tested, inside them."""
    constraints = (ROOT / "scripts" / "constraints.txt").read_text().splitlines()
    for line in constraints:
        match = re.fullmatch(rf"{re.escape(package)}\s*==\s*([\w.+-]+)", line.strip())
        if match:
            version = match.group(1)
            spec = next(r for r in pyproject["project"]["dependencies"]
                        if re.match(rf"{re.escape(package)}\s*[<>=!~]", r))
            assert Version(version) in SpecifierSet(spec[len(package):]), (spec, version)
            return version
    raise AssertionError(f"scripts/constraints.txt does not pin {package}==...")


def image_is_pinned(ref: str) -> bool:
    """True for name:tag (tag not latest) or name@sha256:digest references; a compose
    ${VAR:-default} counts by its default."""
    ref = compose_default(ref)
    if "@sha256:" in ref:
        return True
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return False
    test = check.get("test")
    return bool(test) and test != ["NONE"]


def healthy_dependencies(service: dict) -> list[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):  # short syntax: no condition
        return []
    return [
        name for name, spec in depends.items() if (spec or {}).get("condition") == "service_healthy"
    ]


def hwsearch_image(services: dict) -> str:
    images = {compose_default(services[name]["image"]) for name in APP_SERVICES}
    assert len(images) == 1, f"hwsearch services use different images: {images}"
    return images.pop()


def kuberay_pods(manifest: dict) -> dict[str, dict]:
    """Pod specs by group: "head" and each worker group's name."""
    spec = manifest["spec"]
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods.update({g["groupName"]: g["template"]["spec"] for g in spec["workerGroupSpecs"]})
    return pods


def kuberay_containers(manifest: dict) -> list[dict]:
    spec = manifest["spec"]
    pods = [spec["headGroupSpec"]["template"]["spec"]]
    pods += [group["template"]["spec"] for group in spec["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["containers"]]


# --------------------------------------------------------------------------
# docker/compose.yaml
# --------------------------------------------------------------------------


def test_compose_has_the_services(services):
    assert SERVICES <= set(services), f"missing services: {SERVICES - set(services)}"


def test_every_service_is_healthchecked_or_waits_for_a_healthy_one(services):
    for name, service in services.items():
        if has_healthcheck(service):
            continue
        guards = [dep for dep in healthy_dependencies(service) if has_healthcheck(services[dep])]
        assert guards, (
            f"service {name} has no healthcheck and no depends_on with "
            "condition: service_healthy on a service that has one"
        )


def test_healthchecks_probe_the_right_thing(services):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ray status" in " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "raylet" in " ".join(services["ray-worker"]["healthcheck"]["test"])
    assert "8080" in " ".join(services["dashboard"]["healthcheck"]["test"])


def test_dependencies_wait_for_health(services):
    assert "ray-head" in healthy_dependencies(services["ray-worker"])
    assert "postgres" in healthy_dependencies(services["dashboard"])
    assert {"postgres", "ray-head"} <= set(healthy_dependencies(services["launch"]))


def test_ray_workers_reserve_a_gpu_each_and_scale(services, compose):
    worker = services["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    gpu = [d for d in devices if "gpu" in d.get("capabilities", [])]
    assert gpu, "ray-worker reserves no device with capabilities: [gpu]"
    assert gpu[0].get("driver") == "nvidia"
    count = gpu[0].get("count")
    command = " ".join(worker["command"])
    assert "--num-gpus=1" in command, "each worker must advertise exactly one GPU to Ray"
    if count == "all":
        # Docker gives every replica of `count: 1` GPU 0, so the workers reserve
        # all GPUs and the entrypoint claims a distinct one per container.
        env = worker["environment"]
        assert env.get("HWSEARCH_CLAIM_GPU") == "1"
        lock_dir = env["HWSEARCH_GPU_LOCK_DIR"]
        named_volumes = set(compose.get("volumes") or {})
        mounts = [v.split(":") for v in worker["volumes"]]
        assert any(src in named_volumes and dst == lock_dir for src, dst, *_ in mounts), (
            "the GPU lock directory must be a named volume shared by all workers"
        )
    else:
        assert count == 1, f"unexpected GPU count {count!r}"
    # --scale ray-worker=N needs neither a fixed name nor a fixed host port.
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_launch_is_a_tools_profile_service_submitting_ray_jobs(services):
    launch = services["launch"]
    assert "tools" in launch.get("profiles", [])
    assert launch["command"][:2] == ["hwsearch", "launch"]
    # The driver must run inside the Ray cluster: the launch container submits
    # `hwsearch-entrypoint hwsearch launch ...` as a Ray job to the head's job
    # server, and the driver builds its storage URL there: the job's entrypoint
    # (what `ray job list` shows) holds no password.
    assert launch["entrypoint"] == ["ray", "job", "submit", "--", "hwsearch-entrypoint"]
    assert launch["environment"]["RAY_API_SERVER_ADDRESS"] == "http://ray-head:8265"


def test_published_ports_are_loopback_only(services):
    published: dict[str, set[int]] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host_ip, target = port.get("host_ip"), port["target"]
            else:
                parts = compose_default(str(port)).split(":")
                assert len(parts) == 3, f"{name}: port {port!r} does not name a host IP"
                host_ip, target = parts[0], parts[2].split("/")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
            published.setdefault(name, set()).add(int(target))
    assert 8265 in published.get("ray-head", set()), "Ray dashboard (8265) is not published"
    assert 8080 in published.get("dashboard", set()), "optuna-dashboard (8080) is not published"
    assert "postgres" not in published, "PostgreSQL must not be published on the host"


def test_postgres_is_pinned_with_a_named_volume_and_secret(services, compose):
    pg = services["postgres"]
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", compose_default(pg["image"])), pg["image"]
    sources = [v.split(":")[0] for v in pg["volumes"]]
    assert any(src in (compose.get("volumes") or {}) for src in sources)
    env = pg["environment"]
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "postgres_password" in pg["secrets"]


def secret_file(compose: dict, name: str) -> Path:
    return (DOCKER / compose_default(compose["secrets"][name]["file"])).resolve()


def test_storage_url_is_built_from_the_secret_not_written(services, compose):
    secret = secret_file(compose, "postgres_password")
    assert secret.is_relative_to((DOCKER / "secrets").resolve()), secret
    for name in APP_SERVICES:
        env = services[name].get("environment") or {}
        assert "HWSEARCH_STORAGE" not in env, f"{name} writes the storage URL in compose"
    for name in DATABASE_SERVICES:
        service = services[name]
        env = service.get("environment") or {}
        assert "postgres_password" in service.get("secrets", []), name
        assert env.get("POSTGRES_PASSWORD_FILE") == "/run/secrets/postgres_password", name
        assert env.get("POSTGRES_HOST") == "postgres", name


def test_ray_workers_get_no_database_credentials(services):
    """The README's promise: workers get parameters, not the database."""
    worker = services["ray-worker"]
    assert "postgres_password" not in worker.get("secrets", [])
    env = worker.get("environment") or {}
    assert not [k for k in env if k.startswith(("POSTGRES_", "HWSEARCH_STORAGE", "PG"))], env


def test_ray_runs_with_token_auth_from_a_secret(services, compose):
    token = secret_file(compose, "ray_token")
    assert token.is_relative_to((DOCKER / "secrets").resolve()), token
    for name in RAY_SERVICES:
        service = services[name]
        env = service.get("environment") or {}
        assert env.get("RAY_AUTH_MODE") == "token", f"{name} runs Ray without token auth"
        assert env.get("RAY_AUTH_TOKEN_PATH") == "/run/secrets/ray_token", name
        assert "RAY_AUTH_TOKEN" not in env, f"{name} writes the token in compose"
        assert "ray_token" in service.get("secrets", []), name
    # The head's health probe needs no token beyond what the container has:
    # `ray status` reads the token file, gcs_healthz is public.
    probe = " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "/api/gcs_healthz" in probe and "/api/version" not in probe
    assert "ray_token" not in services["dashboard"].get("secrets", [])


def test_cpu_override_only_switches_the_gpus_off(services):
    """docker/compose.cpu.yaml (scripts/test-docker runs the stack with it) stays small: it
    touches the workers' GPU settings and nothing else."""
    override = load_yaml(COMPOSE_CPU)
    assert set(override) == {"services"} and set(override["services"]) == {"ray-worker"}
    worker = override["services"]["ray-worker"]
    assert set(worker) == {"deploy", "environment", "command"}
    assert worker["environment"] == {"HWSEARCH_CLAIM_GPU": "0"}
    text = COMPOSE_CPU.read_text(encoding="utf-8")
    assert "deploy: !reset" in text and "command: !override" in text
    command = [compose_default(c) for c in worker["command"]]
    base = services["ray-worker"]["command"]
    # The same `ray start` as compose.yaml's, with no GPU.
    assert command[:4] == base[:4] and "--num-gpus=0" in command
    assert [c for c in command if not c.startswith(("--num-gpus", "--num-cpus"))] == [
        c for c in base if not c.startswith(("--num-gpus", "--num-cpus"))
    ]


def test_compose_builds_the_image_it_runs(services):
    for name in APP_SERVICES:
        build = services[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


# --------------------------------------------------------------------------
# Images: pinned, and the same one in compose, `ray up` and KubeRay
# --------------------------------------------------------------------------


def test_every_image_is_pinned(services, dockerfile):
    refs = [(f"compose:{name}", s["image"]) for name, s in services.items()]
    assert len(refs) == len(services), "every service names its image"
    refs.append(("ray-cluster", load_yaml(RAY_CLUSTER)["docker"]["image"]))
    refs += [("kuberay", c["image"]) for c in kuberay_containers(load_kuberay()[0])]
    refs += [("Dockerfile FROM", ref) for ref in base_images(dockerfile)]
    refs += [
        ("postgres Dockerfile FROM", r) for r in base_images(parse_dockerfile(POSTGRES_DOCKERFILE))
    ]
    assert len(refs) >= len(services) + 4
    for where, ref in refs:
        assert image_is_pinned(ref), f"{where}: image {ref!r} has no pinned tag"
    for path in DOCKER.rglob("*"):
        if path.is_file() and not is_local_only(path):
            assert ":latest" not in path.read_text(encoding="utf-8"), f"{path} uses :latest"


def test_image_pin_check_rejects_unpinned_refs():
    for bad in ("postgres", "postgres:latest", "ghcr.io/o/i", "localhost:5000/img", "img:${TAG}"):
        assert not image_is_pinned(bad), bad
    for good in ("postgres:16.9-bookworm", "localhost:5000/img:1.0", "img@sha256:" + "a" * 64):
        assert image_is_pinned(good), good


def test_one_image_everywhere_tagged_with_the_project_version(services, pyproject):
    image = hwsearch_image(services)
    assert image.endswith(":" + pyproject["project"]["version"]), image
    assert load_yaml(RAY_CLUSTER)["docker"]["image"] == image
    for container in kuberay_containers(load_kuberay()[0]):
        assert container["image"] == image, container["name"]


# --------------------------------------------------------------------------
# docker/Dockerfile and .dockerignore
# --------------------------------------------------------------------------


def test_dockerfile_torch_versions_match_pyproject(dockerfile, pyproject):
    # Each stage repeats the ARG (an ARG lives in one stage): every default is the pin.
    for name, package in (("TORCH_VERSION", "torch"), ("TORCHVISION_VERSION", "torchvision")):
        values = {
            arg.split("=", 1)[1].strip('"')
            for _, arg in instructions(dockerfile, "ARG")
            if arg.startswith(name + "=")
        }
        assert values == {pinned_version(pyproject, package)}, (name, values)


def test_dockerfile_ray_version_matches_kuberay(dockerfile):
    manifest = load_kuberay()[0]
    assert dockerfile_args(dockerfile)["RAY_VERSION"] == manifest["spec"]["rayVersion"]


def test_dockerfile_takes_its_base_image_as_a_build_arg(dockerfile):
    """One file for the public python image and a locally built base (scripts/test-docker):
    the first stage is FROM ${BASE_IMAGE}, every other stage builds on a stage of its own."""
    assert dockerfile[0].startswith("ARG BASE_IMAGE=python:3.11"), dockerfile[0]
    built = stages(dockerfile)
    assert built[0][:2] == ("base", "${BASE_IMAGE}")
    names = {name for name, _, _ in built}
    assert all(ref.lower() in names for _, ref, _ in built[1:]), [b[:2] for b in built]
    postgres = parse_dockerfile(POSTGRES_DOCKERFILE)
    assert postgres[0].startswith("ARG BASE_IMAGE=") and stages(postgres)[0][1] == "${BASE_IMAGE}"


def test_dockerfile_layers_keep_torch_cached(dockerfile):
    """torch is installed in a stage that sees no file of the repository but docker/wheels/;
    the image then takes that venv, the dependencies read from pyproject.toml alone, and last
    the project's wheel. The whole build context enters only the throwaway wheel stage."""
    built = {name: lines for name, _, lines in stages(dockerfile)}
    torch_stage = built["torch"]
    torch_runs = [i for i, line in enumerate(torch_stage) if "torch==${TORCH_VERSION}" in line]
    assert torch_runs and "torchvision==${TORCHVISION_VERSION}" in torch_stage[torch_runs[0]]
    torch_copies = [line.split()[1:-1] for line in torch_stage if line.startswith("COPY")]
    assert torch_copies == [["docker/wheels/"]], torch_copies
    assert "COPY . /src" in built["wheel"]

    final = stages(dockerfile)[-1][2]

    def first(predicate) -> int:
        found = [i for i, line in enumerate(final) if predicate(line)]
        assert found, "missing step in the final stage"
        return found[0]

    venv = first(lambda line: line.startswith("COPY --from=torch /opt/venv"))
    pyproject = first(lambda line: line.startswith("COPY") and "pyproject.toml" in line)
    deps = first(lambda line: line.startswith("RUN") and "pyproject-deps.py" in line)
    wheel = first(lambda line: line.startswith("COPY --from=wheel"))
    install = first(lambda line: line.startswith("RUN") and "pip install --no-deps" in line)
    assert venv < pyproject < deps < wheel < install
    assert "--exclude torch,torchvision" in final[deps]
    assert not [line for line in final if re.match(r"COPY\s+\.\s", line)], "context in image"


def test_dockerfile_runs_as_non_root_with_entrypoint(dockerfile):
    users = instructions(dockerfile, "USER")
    assert users, "no USER instruction"
    user = users[-1][1].split(":")[0]
    assert user not in {"root", "0"}, user
    args = dockerfile_args(dockerfile)
    if user.startswith("${"):
        assert args[user.strip("${}")] != "0"
    env = " ".join(line for _, line in instructions(dockerfile, "ENV"))
    # Ray's cluster launcher mounts files at the HOME it reads from the image.
    assert "HOME=/home/" in env
    entrypoint = json.loads(instructions(dockerfile, "ENTRYPOINT")[-1][1])
    assert entrypoint == ["/usr/local/bin/hwsearch-entrypoint"]
    assert any("docker/entrypoint.sh" in src for _, src in instructions(dockerfile, "COPY"))


def read_dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax: Go filepath.Match plus `**` for any depth."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether `path` (relative to the build context) is left out of the context:
    it or one of its parent folders matches the last matching pattern."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = dockerignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_state_out(dockerfile):
    patterns = read_dockerignore()
    must_ignore = [
        ".venv",
        ".git",
        "search/__pycache__",
        "optuna.db",
        "runs/study.db",
        "dist/x.whl",
        "run.artifacts",
        "artifacts",
        "docker/secrets/postgres_password",
        "docker/.env",
    ]
    for path in must_ignore:
        assert dockerignored(path, patterns), f".dockerignore lets {path} into the image"
    for _, src in instructions(dockerfile, "COPY"):
        for source in src.split()[:-1]:
            if source != "." and not source.startswith("--"):
                assert not dockerignored(source, patterns), f"COPY {source} is dockerignored"
    for needed in (
        "pyproject.toml",
        "hwsearch/cli.py",
        "docker/entrypoint.sh",
        "docker/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
    ):
        assert not dockerignored(needed, patterns), needed


# --------------------------------------------------------------------------
# No plaintext secrets
# --------------------------------------------------------------------------

PLACEHOLDER_VALUE = re.compile(r"^(\$\{?\w+[^}]*\}?|<[^>]*>|\*+|\.\.\.|change-me)$")
SECRET_PATTERNS = [
    # scheme://user:password@host
    re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?P<value>[^\s/@'\"]+)@", re.IGNORECASE),
    # password=..., PGPASSWORD=..., POSTGRES_PASSWORD: ... (not *_FILE)
    re.compile(r"\b(?:PG)?PASSWORD\s*=\s*(?P<value>[^\s&;'\"]+)", re.IGNORECASE),
    re.compile(r"\bPOSTGRES_PASSWORD\s*[:=]\s*(?P<value>[^\s#]+)"),
    re.compile(r"\bHWSEARCH_STORAGE\s*[:=]\s*[\"']?(?P<value>[a-z+]+://[^\s\"']+)", re.IGNORECASE),
    # Ray's auth token written as a value (RAY_AUTH_TOKEN_PATH names a file: fine)
    re.compile(r"\bRAY_AUTH_TOKEN\s*[:=]\s*[\"']?(?P<value>[^\s#\"']+)"),
    re.compile(r"\bname:\s*RAY_AUTH_TOKEN\s+value:\s*(?P<value>\S+)"),
]


def find_secrets(text: str) -> list[str]:
    hits = []
    for pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group("value").strip("\"'")
            if not PLACEHOLDER_VALUE.match(value):
                hits.append(match.group(0))
    return hits


def is_local_only(path: Path) -> bool:
    """Real secrets, and wheels a build put in docker/wheels/ (git-ignored, binary)."""
    return path.suffix == ".whl" or any(path == p or p in path.parents for p in LOCAL_ONLY)


def scanned_files() -> list[Path]:
    files = [p for p in DOCKER.rglob("*") if p.is_file() and not is_local_only(p)]
    files += [DOCKERIGNORE, TEST_DOCKER] + ([CLUSTER_DOC] if CLUSTER_DOC.exists() else [])
    return files


def test_secret_scan_catches_plaintext():
    bad = [
        "HWSEARCH_STORAGE: postgresql+psycopg://hwsearch:hunter2@postgres:5432/hwsearch",
        "      POSTGRES_PASSWORD: hunter2",
        "export PGPASSWORD=hunter2",
        "dsn = 'host=db password=hunter2'",
        "RAY_AUTH_TOKEN=6f1c0ffee",
        "      RAY_AUTH_TOKEN: 6f1c0ffee",
    ]
    for text in bad:
        assert find_secrets(text), text
    good = [
        "POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password",
        "postgresql+psycopg://user:<password>@host:5432/db",
        "postgresql+psycopg://hwsearch:${POSTGRES_PASSWORD}@postgres:5432/hwsearch",
        "http://127.0.0.1:8265",
        "RAY_AUTH_TOKEN_PATH: /run/secrets/ray_token",
    ]
    for text in good:
        assert not find_secrets(text), text


def test_no_plaintext_secret_in_docker_files():
    files = scanned_files()
    assert COMPOSE in files and DOCKERFILE in files and ENTRYPOINT in files
    for path in files:
        hits = find_secrets(path.read_text(encoding="utf-8"))
        assert not hits, f"{path.relative_to(ROOT)} holds a plaintext secret: {hits}"


def test_example_files_hold_only_placeholders():
    examples = [p for p in (DOCKER / "secrets.example").iterdir() if p.is_file()]
    assert examples, "docker/secrets.example/ is empty"
    for path in examples:
        assert path.read_text(encoding="utf-8").strip() in PLACEHOLDERS, path
    compose = load_yaml(COMPOSE)
    for secret in compose["secrets"].values():
        example = DOCKER / "secrets.example" / Path(compose_default(secret["file"])).name
        assert example.is_file(), f"no template {example} for the secret {secret['file']}"
    for line in (DOCKER / ".env.example").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            if re.search(r"PASSWORD|SECRET|TOKEN|STORAGE", key, re.IGNORECASE):
                assert value.strip() in PLACEHOLDERS, f".env.example sets {key}"


def test_local_secret_files_are_gitignored():
    ignores = (DOCKER / ".gitignore").read_text(encoding="utf-8").split()
    assert "/secrets/" in ignores and "/.env" in ignores
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        parts.missing("a git checkout", f"{ROOT} is not one (or git is not installed)")
    for path in ("docker/secrets/postgres_password", "docker/secrets/ray_token", "docker/.env"):
        result = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True, check=False
        )
        assert result.returncode == 0, f"{path} is not git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", "docker/secrets", "docker/.env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not tracked.strip(), f"secrets are tracked by git: {tracked}"


# --------------------------------------------------------------------------
# Beyond one box: Ray cluster launcher and KubeRay
# --------------------------------------------------------------------------


def test_ray_cluster_config_is_valid_and_uses_gpu_workers():
    config = load_yaml(RAY_CLUSTER)
    import importlib.util

    import jsonschema  # Ray's own dependency

    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    schema_path = Path(spec.submodule_search_locations[0]) / "autoscaler" / "ray-schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    jsonschema.validate(config, schema)

    node_types = config["available_node_types"]
    assert config["head_node_type"] in node_types
    workers = {k: v for k, v in node_types.items() if k != config["head_node_type"]}
    gpu_types = [
        v
        for v in workers.values()
        if re.match(r"(g\d|p\d)", v["node_config"]["InstanceType"])
        or v["resources"].get("GPU", 0) > 0
    ]
    assert gpu_types, "no GPU worker node type"
    assert any("--gpus" in opt for opt in config["docker"].get("worker_run_options", []))


def ray_start_commands(config: dict) -> list[tuple[str, str]]:
    return [
        (role, command)
        for role in ("head", "worker")
        for command in config[f"{role}_start_ray_commands"]
        if "ray start" in command
    ]


def test_ray_cluster_runs_token_auth_and_keeps_the_storage_url_on_the_head():
    config = load_yaml(RAY_CLUSTER)
    mounts = config["file_mounts"]
    starts = ray_start_commands(config)
    assert {role for role, _ in starts} == {"head", "worker"}
    for role, command in starts:
        # hwsearch-entrypoint never hands a storage URL to `ray start`.
        assert "hwsearch-entrypoint ray start" in command
        assert re.search(r"\bRAY_AUTH_MODE=token\b", command), f"{role}: no token auth"
        token = re.search(r"\bRAY_AUTH_TOKEN_PATH=\$HOME/(\S+)", command)
        assert token, f"{role}: the token does not come from a file"
        token_dir = "~/" + token.group(1).rsplit("/", 1)[0]
        assert token_dir in mounts, f"{token_dir} is not synced by file_mounts"
        assert not Path(mounts[token_dir]).expanduser().is_relative_to(ROOT)
        assert not re.search(r"\b(HWSEARCH_STORAGE|RAY_AUTH_TOKEN)=", command), command
        storage = re.search(r"\bHWSEARCH_STORAGE_FILE=\$HOME/(\S+)", command)
        if role == "worker":
            assert not storage and "POSTGRES" not in command, "workers get no database"
        else:
            # The head knows the file's path; the file itself is uploaded to the head alone
            # (`ray rsync-up`), never through file_mounts, which reach every node.
            assert storage, "the head's job drivers don't know where the storage URL is"
            storage_dir = "~/" + storage.group(1).rsplit("/", 1)[0]
            assert storage_dir not in mounts
    assert list(mounts) == [token_dir], "file_mounts reach every node: only Ray's token"


def kuberay_secret_mounts(pod: dict, container: dict) -> dict[str, str]:
    """Secret name -> mount path, for the Secret volumes a container mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {
        volumes[m["name"]]["secret"]["secretName"]: m["mountPath"]
        for m in container.get("volumeMounts", [])
        if "secret" in volumes.get(m["name"], {})
    }


def test_kuberay_cluster_has_gpu_workers_token_auth_and_the_storage_on_the_head_only():
    manifest, _ = load_kuberay()
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = manifest["spec"]
    gpu_groups = [
        group
        for group in spec["workerGroupSpecs"]
        if any(
            str(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")) == "1"
            for c in group["template"]["spec"]["containers"]
        )
    ]
    assert gpu_groups, "no worker group with nvidia.com/gpu: 1 limits"
    for group, pod in kuberay_pods(manifest).items():
        for container in pod["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            where = f"{group}/{container['name']}"
            # No URL in any environment: Ray hands its environment to every process.
            assert "HWSEARCH_STORAGE" not in env, where
            assert "RAY_AUTH_TOKEN" not in env, where
            assert env["RAY_AUTH_MODE"]["value"] == "token", where
            secrets = kuberay_secret_mounts(pod, container)
            token_path = env["RAY_AUTH_TOKEN_PATH"]["value"]
            assert token_path.startswith(secrets["hwsearch-ray-token"] + "/"), where
            if group == "head":
                url_path = env["HWSEARCH_STORAGE_FILE"]["value"]
                assert url_path.startswith(secrets["hwsearch-storage"] + "/"), where
            else:
                assert "hwsearch-storage" not in secrets and "HWSEARCH_STORAGE_FILE" not in env
                volumes = pod.get("volumes", [])
                assert not [v for v in volumes if "hwsearch-storage" in json.dumps(v)], where
    # The autoscaler sidecar talks to the GCS too.
    autoscaler = spec["autoscalerOptions"]
    env = {e["name"]: e.get("value") for e in autoscaler["env"]}
    assert env["RAY_AUTH_MODE"] == "token"
    head = kuberay_pods(manifest)["head"]
    mounted = {m["name"]: m["mountPath"] for m in autoscaler["volumeMounts"]}
    token_volume = next(
        v for v in head["volumes"] if v.get("secret", {}).get("secretName") == "hwsearch-ray-token"
    )
    assert env["RAY_AUTH_TOKEN_PATH"].startswith(mounted[token_volume["name"]] + "/")


def test_kuberay_head_is_fenced_by_a_network_policy():
    manifest, others = load_kuberay()
    policies = [d for d in others if d["kind"] == "NetworkPolicy"]
    assert len(policies) == 1, "no NetworkPolicy for the KubeRay head"
    spec = policies[0]["spec"]
    name = manifest["metadata"]["name"]
    assert spec["podSelector"]["matchLabels"] == {
        "ray.io/cluster": name,
        "ray.io/node-type": "head",
    }
    assert spec["policyTypes"] == ["Ingress"]
    rules = spec["ingress"]
    own_pods = {"podSelector": {"matchLabels": {"ray.io/cluster": name}}}
    assert any(own_pods in rule["from"] for rule in rules), "the cluster's pods can't reach it"
    for rule in rules:
        assert rule.get("from"), "a rule without sources admits everyone"
        for peer in rule["from"]:
            # Anything beyond this cluster's pods is held to named ports.
            if peer != own_pods:
                assert rule.get("ports"), f"{peer} reaches every port of the head"
                assert "ipBlock" not in peer


# --------------------------------------------------------------------------
# docker/pyproject-deps.py and docker/entrypoint.sh, run for real
# --------------------------------------------------------------------------


def test_pyproject_deps_lists_dependencies_and_extras(pyproject):
    result = subprocess.run(
        [sys.executable, str(DOCKER / "pyproject-deps.py"), "pyproject.toml", "--extras", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    project = pyproject["project"]
    assert lines == project["dependencies"] + project["optional-dependencies"]["dev"]
    torch_spec = next(line for line in lines if line.startswith("torch") and "vision" not in line)
    assert Version(pinned_version(pyproject, "torch")) in SpecifierSet(torch_spec[len("torch"):])


def entrypoint_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.pathsep.join([str(tmp_path / "bin"), str(Path(sys.executable).parent)])
        + os.pathsep
        + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
    }
    env.update(extra)
    return env


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


needs_bash = pytest.mark.skipif(shutil.which("bash") is None,
                                reason=parts.reason("bash", "not on PATH"))


@needs_bash
def test_entrypoint_builds_a_quoted_storage_url_from_the_secret(tmp_path):
    password = tmp_path / "postgres_password"
    password.write_text("p@ss:w/rd%\n", encoding="utf-8")
    env = entrypoint_env(
        tmp_path,
        POSTGRES_HOST="postgres",
        POSTGRES_USER="hwsearch",
        POSTGRES_DB="hwsearch",
        POSTGRES_PASSWORD_FILE=str(password),
    )
    result = run_entrypoint(env, "printenv", "HWSEARCH_STORAGE")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "postgresql+psycopg://hwsearch:p%40ss%3Aw%2Frd%25@postgres:5432/hwsearch"
    )


@needs_bash
def test_entrypoint_storage_precedence_and_missing_secret(tmp_path):
    url_file = tmp_path / "storage_url"
    url_file.write_text("sqlite:///from-file.db\n", encoding="utf-8")
    env = entrypoint_env(tmp_path, HWSEARCH_STORAGE_FILE=str(url_file), POSTGRES_HOST="db")
    result = run_entrypoint(env, "printenv", "HWSEARCH_STORAGE")
    assert result.stdout.strip() == "sqlite:///from-file.db", result.stderr

    env["HWSEARCH_STORAGE"] = "sqlite:///explicit.db"
    assert run_entrypoint(env, "printenv", "HWSEARCH_STORAGE").stdout.strip() == (
        "sqlite:///explicit.db"
    )

    env = entrypoint_env(
        tmp_path, POSTGRES_HOST="db", POSTGRES_PASSWORD_FILE=str(tmp_path / "missing")
    )
    result = run_entrypoint(env, "true")
    assert result.returncode != 0 and "password file" in result.stderr

    # No PostgreSQL configured: the command runs without a storage URL.
    result = run_entrypoint(entrypoint_env(tmp_path), "printenv", "HWSEARCH_STORAGE")
    assert result.returncode == 1 and result.stdout == ""


@needs_bash
def test_entrypoint_never_gives_ray_start_the_storage_url(tmp_path):
    """Ray hands its environment to every process it starts: `ray start` gets no URL, neither
    one built from the secret nor one set by the caller. Other commands still get it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_ray = bin_dir / "ray"
    fake_ray.write_text('#!/bin/sh\necho "storage=${HWSEARCH_STORAGE:-none}"\n', encoding="utf-8")
    fake_ray.chmod(0o755)
    password = tmp_path / "postgres_password"
    password.write_text("hunter2\n", encoding="utf-8")
    env = entrypoint_env(tmp_path, POSTGRES_HOST="postgres", POSTGRES_PASSWORD_FILE=str(password))
    for ray in ("ray", str(fake_ray)):
        result = run_entrypoint(env, ray, "start", "--head")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "storage=none", (ray, result.stdout)
    result = run_entrypoint({**env, "HWSEARCH_STORAGE": "sqlite:///x.db"}, "ray", "start")
    assert result.stdout.strip() == "storage=none"
    assert "not passing HWSEARCH_STORAGE" in result.stderr
    # A job's driver, run under the entrypoint, does get it; so does `ray` for anything else.
    result = run_entrypoint(env, "ray", "job")
    assert (
        result.stdout.strip()
        == "storage=postgresql+psycopg://hwsearch:hunter2@postgres:5432/hwsearch"
    )


@needs_bash
@pytest.mark.skipif(shutil.which("flock") is None,
                    reason=parts.reason("flock (util-linux)", "not on PATH"))
def test_entrypoint_claims_a_distinct_gpu_per_worker(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_smi = bin_dir / "nvidia-smi"
    fake_smi.write_text("#!/bin/sh\nprintf '0, GPU-aaaa\\n1, GPU-bbbb\\n'\n", encoding="utf-8")
    fake_smi.chmod(0o755)
    env = entrypoint_env(
        tmp_path, HWSEARCH_CLAIM_GPU="1", HWSEARCH_GPU_LOCK_DIR=str(tmp_path / "locks")
    )
    holders = []
    try:
        for expected in ("0", "1"):
            holder = subprocess.Popen(
                ["bash", str(ENTRYPOINT), "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES"; sleep 3600'],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            holders.append(holder)
            assert holder.stdout.readline().strip() == expected
        result = run_entrypoint(env, "true")
        assert result.returncode != 0, "a third worker got a GPU on a two-GPU host"
        assert "already claimed" in result.stderr
    finally:
        for holder in holders:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
            holder.stdout.close()
    # The locks die with the workers: GPU 0 is free again.
    result = run_entrypoint(env, "printenv", "CUDA_VISIBLE_DEVICES")
    assert result.stdout.strip() == "0", result.stderr


@needs_bash
def test_entrypoint_without_nvidia_smi_refuses_to_claim(tmp_path):
    env = entrypoint_env(tmp_path, HWSEARCH_CLAIM_GPU="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + "/usr/bin:/bin"
    if shutil.which("nvidia-smi", path=env["PATH"]):
        pytest.skip("this machine has a real nvidia-smi")
    result = run_entrypoint(env, "true")
    assert result.returncode != 0 and "nvidia-smi" in result.stderr


def test_cluster_doc_gives_the_commands():
    text = CLUSTER_DOC.read_text(encoding="utf-8")
    assert re.search(r"^#+ Running on a cluster\s*$", text, re.MULTILINE)
    for command in (
        "docker/secrets/postgres_password",
        "docker/secrets/ray_token",
        "docker compose -f docker/compose.yaml up -d --scale ray-worker=",
        "docker compose -f docker/compose.yaml run --rm launch",
        "-f docker/compose.cpu.yaml",
        "hwsearch launch --ray-address",
        "127.0.0.1:8080",
        "ssh -N -L",
        "ray up -y docker/ray-cluster.yaml",
        "ray rsync-up docker/ray-cluster.yaml ~/.hwsearch/secrets/storage_url",
        "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=",
        "kubectl create secret generic hwsearch-storage",
        "kubectl create secret generic hwsearch-ray-token",
        "kubectl apply -f docker/kuberay-raycluster.yaml",
        "scripts/test-docker",
    ):
        assert command in text, f"docs/cluster.md lacks {command!r}"
    assert "only statically" in text.lower()
    # Every job a doc submits runs its driver under hwsearch-entrypoint, which builds the URL.
    submitted = re.findall(r"ray job submit [^\n]*\\\n\s*(\S+)", text)
    assert len(submitted) >= 2 and set(submitted) == {"hwsearch-entrypoint"}, submitted
    # The Secrets the doc creates are the ones the manifest mounts.
    manifest, _ = load_kuberay()
    mounted = {
        v["secret"]["secretName"]
        for pod in kuberay_pods(manifest).values()
        for v in pod.get("volumes", [])
        if "secret" in v
    }
    assert mounted == {"hwsearch-storage", "hwsearch-ray-token"}
    created = set(re.findall(r"kubectl create secret generic (\S+)", text))
    assert created == mounted
