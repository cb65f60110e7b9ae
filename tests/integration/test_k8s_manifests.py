"""Every manifest under k8s/, as `kubectl kustomize` builds it, is what the API server would
accept: KubeRay kinds against KubeRay's CRD schemas (k8s/schemas/kuberay, with unknown fields
refused as `kubectl apply --validate=strict` would), core kinds against Kubernetes 1.32's own
schemas (kubernetes-validate). The policy's serveConfigV2 is the Serve config builder's."""

from __future__ import annotations

import copy
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bubblescope.actors.phone_nodes import ADB_PORT_LABEL, PHONES_LABEL
from bubblescope.cluster.k8s_render import MANIFEST, POLICY_SPEC, render
from bubblescope.serve.vllm_app import load_vllm_spec, serve_config_dict
from tests.support.system_programs import require_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BUILDS = ["base", "overlays/dev", "overlays/prod"]
KUBERNETES = "1.32"
CRDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
        "RayService": "ray.io_rayservices.yaml"}


@cache
def built(folder: str) -> tuple[dict, ...]:
    kubectl = require_binary("kubectl", "install kubectl 1.32 (it bundles kustomize)")
    result = subprocess.run([str(kubectl), "kustomize", "--load-restrictor",
                             "LoadRestrictionsNone", str(K8S / folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


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
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # the API server's, not the CRD's
    return schema


def validate(obj: dict) -> None:
    if obj["apiVersion"].startswith("ray.io/"):
        jsonschema.validate(obj, crd_schema(obj["kind"]))
    else:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("folder", BUILDS)
def test_every_object_validates(folder: str) -> None:
    objects = built(folder)
    kinds = {obj["kind"] for obj in objects}
    assert {"RayCluster", "RayJob", "RayService", "NetworkPolicy", "ConfigMap", "Service"} <= kinds
    for obj in objects:
        validate(obj)
    images = [c["image"] for obj in objects for c in containers(obj)]
    assert images and all(i.startswith(("ghcr.io/bubblescope/bubblescope:", "prom/")) for i in images)


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


def test_a_broken_raycluster_is_refused() -> None:
    cluster = copy.deepcopy(next(o for o in built("base") if o["kind"] == "RayCluster"))
    cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        validate(cluster)
    typo = copy.deepcopy(next(o for o in built("base") if o["kind"] == "RayCluster"))
    typo["spec"]["headGroupSpec"]["rayStartParam"] = {}  # a misspelt key the server would drop
    with pytest.raises(jsonschema.ValidationError, match="rayStartParam"):
        validate(typo)
    service = next(o for o in built("base") if o["kind"] == "Service")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({**service, "spec": {**service["spec"], "type": 7}})


def test_the_phone_nodes_carry_the_labels_the_coordinator_looks_for() -> None:
    cluster = next(o for o in built("base") if o["kind"] == "RayCluster")
    phones = next(g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "phones")
    labels = dict(pair.split("=") for pair in phones["rayStartParams"]["labels"].split(","))
    assert labels[PHONES_LABEL] == "true" and labels[ADB_PORT_LABEL].isdigit()
    assert cluster["spec"]["authOptions"]["mode"] == "token"


def test_the_rayservice_is_the_serve_config_builders() -> None:
    assert MANIFEST.read_text() == render(), \
        "k8s/base/rayservice-policy.yaml is stale: python -m bubblescope.cluster.k8s_render"
    service = next(o for o in built("base") if o["kind"] == "RayService")
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == \
        serve_config_dict(load_vllm_spec(POLICY_SPEC))
