"""A search spread over pods: one Kubernetes Indexed Job whose workers share one optuna study.

Every pod runs `tradingsystem backtest search` on the same data (a volume mounted read-only at
`/data`) against the same journal file on a shared volume (`/study`, a ReadWriteMany claim), with
`--worker-index` set from the pod's completion index so that each samples from its own seed;
the study ends when `--trials` trials are finished in all, whichever pods ran them. A pure
builder: arguments in, a manifest out (`tradingsystem backtest search --kubernetes`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

DATA_DIR = "/data"
STUDY_DIR = "/study"
INDEX_ENV = "WORKER_INDEX"
INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def job_name(study_name: str) -> str:
    """A DNS-1123 label from the study's name (at most 63 characters with the suffix)."""
    name = re.sub(r"[^a-z0-9-]+", "-", study_name.lower()).strip("-") or "study"
    return f"{name[:50].rstrip('-')}-search"


def search_job(
    *,
    study_name: str,
    search_args: Sequence[str],
    data_files: Sequence[str],
    data_claim: str,
    study_claim: str,
    image: str,
    completions: int,
    parallelism: int,
    namespace: str | None = None,
    cpu: str = "1",
    memory: str = "1Gi",
) -> dict[str, Any]:
    """The Job: `search_args` are the search's own options, less data and storage, which the
    builder points at the volumes."""
    name = job_name(study_name)
    data = [f"{DATA_DIR}/{PurePosixPath(f).name}" for f in data_files]
    args = [
        "backtest",
        "search",
        *search_args,
        "--study-name",
        study_name,
        "--storage",
        f"{STUDY_DIR}/{name}.journal",
        "--worker-index",
        f"$({INDEX_ENV})",
        "--data",
        *data,
    ]
    labels = {
        "app.kubernetes.io/name": "tradingsystem",
        "app.kubernetes.io/component": "search",
        "trading.dev/study": name,
    }
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimitPerIndex": 1,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "search",
                            "image": image,
                            "command": ["tradingsystem"],
                            "args": args,
                            "env": [
                                {
                                    "name": INDEX_ENV,
                                    "valueFrom": {"fieldRef": {"fieldPath": INDEX_FIELD}},
                                }
                            ],
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"memory": memory},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": DATA_DIR, "readOnly": True},
                                {"name": "study", "mountPath": STUDY_DIR},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "data",
                            "persistentVolumeClaim": {"claimName": data_claim, "readOnly": True},
                        },
                        {"name": "study", "persistentVolumeClaim": {"claimName": study_claim}},
                    ],
                },
            },
        },
    }
