"""Every manifest under k8s/, as `kubectl kustomize` builds it, is what the API server would
accept: KubeRay kinds against KubeRay's CRD schemas (k8s/schemas/kuberay, the first version's
openAPIV3Schema, with unknown fields refused as `kubectl apply --validate=strict` would), core
kinds against Kubernetes 1.32's own schemas (kubernetes-validate). Beyond the schemas: token
auth on every Ray container, the phone nodes' labels as the coordinator reads them (and as the
operator accepts them), the job file and its credentials, the ConfigMaps made from deploy/, and
the policy's serveConfigV2 as `serve up`'s builder makes it for the job it was rendered from."""

from __future__ import annotations

import copy
import subprocess
import sys
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bubblescope.actors.phone_nodes import ADB_PORT_LABEL, PHONES_LABEL
from bubblescope.cluster.job import load_job
from bubblescope.cluster.k8s_render import MODELS_MOUNT, POLICY_JOB, SERVE_CONFIG, render
from bubblescope.jobspec import JobSpec
from bubblescope.serve.policy_app import IMPORT_PATH, deployment_options, policy_serve_config
from tests.support.system_programs import require_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BUILDS = ["base", "overlays/dev", "overlays/prod"]
KUBERNETES = "1.32"
IMAGE = "ghcr.io/bubblescope/bubblescope"
CRDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
        "RayService": "ray.io_rayservices.yaml"}
TOKEN = {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "ray-auth",
                                                                  "key": "auth_token"}}}
MODE = {"name": "RAY_AUTH_MODE", "value": "token"}


@cache
def built(folder: str) -> tuple[dict, ...]:
    kubectl = require_binary("kubectl", "install kubectl 1.32 (it bundles kustomize), e.g. "
                             "https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/")
    # plain `kubectl kustomize` (the default load restrictor), as `kubectl apply -k` builds
    result = subprocess.run([str(kubectl), "kustomize", str(K8S / folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def one(folder: str, kind: str, name: str | None = None) -> dict:
    found = [o for o in built(folder) if o["kind"] == kind
             and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{folder}: {len(found)} {kind} {name or ''}"
    return found[0]


def strict(schema: dict) -> dict:
    """The schema with unknown fields refused wherever the API server would prune them."""
    schema = copy.deepcopy(schema)
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node \
                    and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return schema


@cache
def crd_schema(kind: str) -> dict:
    crd = yaml.load((K8S / "schemas" / "kuberay" / CRDS[kind]).read_text(), Loader=yaml.CSafeLoader)
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1" and version["storage"], "the CRD's first version is not v1"
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # the API server's, not the CRD's
    return schema


def operator_refusals(cluster: dict) -> list[str]:
    """What KubeRay's operator refuses beyond the CRD schema, of the rules that bear on these
    manifests (ValidateRayClusterSpec in ray-operator/controllers/ray/utils/validation.go)."""
    found = []
    for name, group in groups(cluster):
        if "labels" in group.get("rayStartParams", {}):
            found.append(f"rayStartParams['labels'] is not supported for {name} group; please "
                         "use the top-level Labels field instead")
        if group.get("minReplicas", 0) > group.get("maxReplicas", 2**31):
            found.append(f"worker group {name} has minReplicas greater than maxReplicas")
    if cluster.get("authOptions", {}).get("mode") == "token" and \
            tuple(map(int, cluster.get("rayVersion", "0").split("."))) < (2, 52, 0):
        found.append("authOptions.mode is 'token' but minimum Ray version is 2.52.0")
    return found


def validate(obj: dict) -> None:
    if obj["apiVersion"].startswith("ray.io/"):
        assert obj["apiVersion"] == "ray.io/v1"
        jsonschema.validate(obj, crd_schema(obj["kind"]))
        spec = obj["spec"]
        cluster = spec if obj["kind"] == "RayCluster" else spec.get("rayClusterConfig")
        if cluster is not None:
            refusals = operator_refusals(cluster)
            if refusals:
                raise jsonschema.ValidationError("; ".join(refusals))
    else:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def containers(obj: dict) -> list[dict]:
    found, todo = [], [obj]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            found += node.get("containers", []) if isinstance(node.get("containers"), list) else []
            todo.extend(v for k, v in node.items() if k != "containers")
        elif isinstance(node, list):
            todo.extend(node)
    return found


def ray_clusters(folder: str) -> list[tuple[str, dict]]:
    """(where, spec) of each Ray cluster the build makes: the RayCluster's, the RayService's."""
    return [("RayCluster", one(folder, "RayCluster")["spec"]),
            ("RayService", one(folder, "RayService")["spec"]["rayClusterConfig"])]


def groups(cluster: dict) -> list[tuple[str, dict]]:
    return [("head", cluster["headGroupSpec"])] + \
        [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]


def ray_container(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]  # KubeRay's Ray container is the first


@pytest.mark.parametrize("folder", BUILDS)
def test_every_object_validates(folder: str) -> None:
    objects = built(folder)
    kinds = {obj["kind"] for obj in objects}
    assert {"RayCluster", "RayJob", "RayService", "NetworkPolicy", "ConfigMap", "Service",
            "Namespace", "ServiceAccount", "PersistentVolumeClaim"} <= kinds
    for obj in objects:
        validate(obj)
        assert obj["kind"] == "Namespace" or obj["metadata"]["namespace"] == "bubblescope"
    images = [c["image"] for obj in objects for c in containers(obj)]
    assert images and all(i.startswith((IMAGE + ":", "prom/")) for i in images), images


def test_a_broken_raycluster_is_refused() -> None:
    cluster = copy.deepcopy(one("base", "RayCluster"))
    cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        validate(cluster)
    typo = copy.deepcopy(one("base", "RayCluster"))
    typo["spec"]["headGroupSpec"]["rayStartParam"] = {}  # a misspelt key the server would drop
    with pytest.raises(jsonschema.ValidationError, match="rayStartParam"):
        validate(typo)
    unlabelled = copy.deepcopy(one("base", "RayCluster"))
    unlabelled["spec"]["workerGroupSpecs"][1]["labels"] = ["bubblescope.io/phones=true"]
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'object'"):
        validate(unlabelled)
    # the schema allows rayStartParams.labels; the operator does not
    old_style = copy.deepcopy(one("base", "RayCluster"))
    old_style["spec"]["workerGroupSpecs"][1]["rayStartParams"]["labels"] = "a=b"
    with pytest.raises(jsonschema.ValidationError, match="use the top-level Labels field"):
        validate(old_style)
    old_ray = copy.deepcopy(one("base", "RayService"))
    old_ray["spec"]["rayClusterConfig"]["rayVersion"] = "2.51.0"
    with pytest.raises(jsonschema.ValidationError, match="minimum Ray version is 2.52.0"):
        validate(old_ray)
    service = one("base", "Service")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({**service, "spec": {**service["spec"], "type": 7}})


def test_the_image_is_named_once() -> None:
    """Declared by the base's `images:`; an overlay may only pick another tag of it."""
    for path in K8S.rglob("*.yaml"):
        if "schemas" in path.parts:
            continue
        doc = yaml.safe_load(path.read_text())
        images = doc.get("images", []) if path.name == "kustomization.yaml" else []
        if path == K8S / "base" / "kustomization.yaml":
            assert images == [{"name": "bubblescope", "newName": IMAGE, "newTag": "latest"}]
        else:
            assert all(set(i) == {"name", "newTag"} and i["name"] == IMAGE for i in images)
            assert IMAGE not in yaml.safe_dump(doc).replace(f"name: {IMAGE}", ""), path
    tags = {c["image"] for c in containers(one("overlays/prod", "RayCluster"))}
    assert IMAGE + ":0.1.0" in tags


@pytest.mark.parametrize("folder", BUILDS)
def test_every_ray_container_carries_the_token(folder: str) -> None:
    for where, cluster in ray_clusters(folder):
        assert cluster["rayVersion"] == "2.60.0", where
        # the operator's copy of the token (it calls the dashboard): the same Secret
        assert cluster["authOptions"] == {"mode": "token", "secretName": "ray-auth"}, where
        for name, group in groups(cluster):
            env = ray_container(group)["env"]
            assert MODE in env and TOKEN in env, f"{where} {name}"
    submitter = one(folder, "RayJob")["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    assert MODE in submitter["env"] and TOKEN in submitter["env"]


@pytest.mark.parametrize("folder", BUILDS)
def test_the_dashboard_stays_inside_the_cluster(folder: str) -> None:
    for where, cluster in ray_clusters(folder):
        assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP", where
    policy = one(folder, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == {"matchLabels": {"ray.io/is-ray-node": "yes"}}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"from": [{"podSelector": {}}]}]  # this namespace's pods only
    assert one(folder, "Service", "prometheus")["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("folder", BUILDS)
def test_the_phone_nodes_carry_the_labels_the_coordinator_looks_for(folder: str) -> None:
    cluster = one(folder, "RayCluster")["spec"]
    phones = next(g for g in cluster["workerGroupSpecs"] if g["groupName"] == "phones")
    # the group's `labels`, which the operator passes as `ray start --labels=k=v,...`
    labels = phones["labels"]
    assert labels == {PHONES_LABEL: "true", ADB_PORT_LABEL: "5037"}
    worker = ray_container(phones)
    assert worker["securityContext"]["privileged"] is True
    # the pod's own adb server, started before `ray start`, on the port the label names
    assert worker["command"] == [f"adb -P {labels[ADB_PORT_LABEL]} start-server"]
    usb = next(v for v in phones["template"]["spec"]["volumes"] if v["name"] == "usb")
    assert usb["hostPath"]["path"] == "/dev/bus/usb"
    assert {"name": "usb", "mountPath": "/dev/bus/usb"} in worker["volumeMounts"]
    others = [g for g in cluster["workerGroupSpecs"] if g["groupName"] != "phones"]
    assert all("labels" not in g for g in others)
    gpu = next(g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert ray_container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("folder", BUILDS)
def test_the_rayjob_runs_the_job_file_with_credentials_from_the_environment(folder: str) -> None:
    job = one(folder, "RayJob")["spec"]
    assert job["entrypoint"] == "bubblescope audit /jobs/job.yaml --address auto"
    assert job["clusterSelector"] == {"ray.io/cluster": one(folder, "RayCluster")["metadata"]["name"]}
    head = one(folder, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "audit-job", "configMap": {"name": "audit-job"}} in head["volumes"]
    assert {"name": "audit-job", "mountPath": "/jobs", "readOnly": True} in \
        head["containers"][0]["volumeMounts"]
    data = yaml.safe_load(one(folder, "ConfigMap", "audit-job")["data"]["job.yaml"])
    assert JobSpec.model_validate(data).storage_path.startswith("s3://")
    content = yaml.safe_dump(data).lower()  # what the job says, its comments aside
    assert not any(word in content for word in ("secret", "access_key", "password", "token"))
    env = {e["name"]: e for e in head["containers"][0]["env"]}
    for name, key in (("AWS_ACCESS_KEY_ID", "access_key_id"),
                      ("AWS_SECRET_ACCESS_KEY", "secret_access_key")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "storage-credentials",
                                                          "key": key}


@pytest.mark.parametrize("folder", BUILDS)
def test_the_configmaps_are_deploys_files(folder: str) -> None:
    prometheus = one(folder, "ConfigMap", "prometheus-config")
    for name in ("prometheus.yml", "alerts.yml"):
        assert prometheus["data"][name] == (ROOT / "deploy" / "prometheus" / name).read_text()
    dashboards = one(folder, "ConfigMap", "grafana-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert files and sorted(dashboards["data"]) == [f.name for f in files]
    for file in files:
        assert dashboards["data"][file.name] == file.read_text()
    # used in place: deploy/kustomization.yaml generates them, k8s/base lists that folder
    assert "../../deploy" in yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())[
        "resources"]
    assert not list(K8S.rglob("prometheus.yml")) and not list(K8S.rglob("*.json"))


def test_the_committed_serve_config_is_a_fresh_render() -> None:
    assert SERVE_CONFIG.read_text() == render(), \
        "k8s/base/policy-serve-config.yaml is stale: bubblescope k8s render-serve (make k8s)"


def policy_job_config() -> dict:
    """What `serve up --job k8s/base/policy-job.yaml` deploys, straight from the builder."""
    job = load_job(POLICY_JOB, check_model_files=False)
    assert job.agent is not None
    return policy_serve_config(job.agent, list(job.personas.values()))


@pytest.mark.parametrize("folder", BUILDS)
def test_the_rayservice_serves_what_serve_up_deploys(folder: str) -> None:
    service = one(folder, "RayService", "policy")
    assert service["spec"]["serveConfigV2"] == SERVE_CONFIG.read_text()
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert config == policy_job_config()
    # the generator behind the replacement stays out of what is applied
    assert not [o for o in built(folder) if o["metadata"]["name"] == "policy-serve-config"]


def test_the_serve_config_is_one_serve_accepts() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load(SERVE_CONFIG.read_text())
    schema = ServeDeploySchema.model_validate(config)
    app = config["applications"][0]
    assert app["import_path"] == IMPORT_PATH and app["route_prefix"] == "/bubblescope-policy"
    assert schema.applications[0].deployments[0].num_replicas == 2
    job = load_job(POLICY_JOB, check_model_files=False)
    assert job.agent is not None
    assert app["deployments"] == [{"name": "PolicyServer", **deployment_options(job.agent)}]


@pytest.mark.parametrize("folder", BUILDS)
def test_the_policy_pods_hold_the_models_the_config_names(folder: str) -> None:
    spec = one(folder, "RayService", "policy")["spec"]["rayClusterConfig"]
    args = yaml.safe_load(one(folder, "RayService", "policy")["spec"]["serveConfigV2"])[
        "applications"][0]["args"]
    paths = [args["spec"]["base_model"], *args["spec"]["adapters"].values()]
    assert paths and all(Path(p).is_relative_to(MODELS_MOUNT) for p in paths)
    for group in spec["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        claim = next(v for v in pod["volumes"] if v["name"] == "models")
        assert claim["persistentVolumeClaim"]["claimName"] == \
            one(folder, "PersistentVolumeClaim", "policy-models")["metadata"]["name"]
        assert {"name": "models", "mountPath": str(MODELS_MOUNT), "readOnly": True} in \
            ray_container(group)["volumeMounts"]
        gpus = int(ray_container(group)["resources"]["limits"]["nvidia.com/gpu"])
        assert gpus == args["spec"]["deployment"]["gpus_per_replica"]


def test_the_render_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "serve.yaml"
    result = subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", "k8s",
                             "render-serve", "--out", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == SERVE_CONFIG.read_text()
