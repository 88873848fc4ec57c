"""Checks Kubernetes manifests offline, without a cluster: each document goes through the Kubernetes Python client's
API models and back, so a misspelled or misplaced field (dropped on the way) or a missing required one fails; and
a wsrun Job's shard count is the same in its three places.

    python3 -m venv /tmp/k8s && /tmp/k8s/bin/pip install kubernetes pyyaml
    /tmp/k8s/bin/python deploy/check-manifests.py deploy/wsrun-job.yaml deploy/wsrun-reports.yaml
"""
import json
import sys

import yaml
from kubernetes import client

MODELS = {"Job": "V1Job", "PersistentVolumeClaim": "V1PersistentVolumeClaim", "Pod": "V1Pod"}


def without_unset(value):
    """A document as the models give it back: without the fields they leave unset."""
    if isinstance(value, dict):
        return {key: without_unset(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_unset(item) for item in value]
    return value


def problems(doc):
    api = client.ApiClient()
    try:
        model = api.deserialize(json.dumps(doc), MODELS[doc["kind"]], "application/json")
    except (KeyError, ValueError) as e:
        return [f"not a valid {doc.get('kind')}: {e}"]
    back = without_unset(api.sanitize_for_serialization(model))
    if back != doc:
        shown = (json.dumps(doc, indent=1), json.dumps(back, indent=1))
        return ["fields unknown to the API were dropped:\n%s\nbecame\n%s" % shown]
    if doc["kind"] == "Job":
        spec = doc["spec"]
        for container in spec["template"]["spec"]["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            if "WSRUN_SHARD_COUNT" in env:
                counts = (spec.get("completions"), spec.get("parallelism"), int(env["WSRUN_SHARD_COUNT"]))
                if len(set(counts)) != 1:
                    return [f"completions, parallelism and WSRUN_SHARD_COUNT differ: {counts}"]
    return []


failed = False
for path in sys.argv[1:]:
    with open(path) as file:
        for doc in yaml.safe_load_all(file):
            found = problems(doc)
            failed |= bool(found)
            print(f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}: {'; '.join(found) or 'ok'}")
sys.exit(1 if failed else 0)
