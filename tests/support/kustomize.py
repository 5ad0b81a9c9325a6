"""Renders the kustomizations under k8s/ the way ``kustomize build`` does, for the subset
of kustomize those files use: ``resources`` (files and directories), ``components``,
``namespace`` and ``images`` (newName, newTag, digest).

No kustomize binary exists on the build machines, so the tests render with this and check
the result. Anything else in a kustomization (patches, generators, replacements, ...) is
refused rather than ignored: a manifest change that relies on it fails here until this
renderer learns it, instead of passing on a rendering that kustomize would not produce.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_KEYS = frozenset(
    {"apiVersion", "kind", "resources", "components", "namespace", "images"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "APIService",
    }
)

Manifest = dict[str, Any]


class KustomizeError(ValueError):
    """A kustomization this renderer cannot render exactly."""


def documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of a manifest file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization(root: Path) -> Manifest:
    path = root / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{root} has no kustomization.yaml")
    found: Manifest = yaml.safe_load(path.read_text())
    unknown = set(found) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    return found


def build(root: Path) -> list[Manifest]:
    """The objects ``kustomize build root`` would print, in resource order."""
    return _build(root.resolve(), expect_component=False)


def _build(root: Path, *, expect_component: bool) -> list[Manifest]:
    kustomization = _kustomization(root)
    is_component = kustomization.get("kind") == "Component"
    if is_component != expect_component:
        raise KustomizeError(f"{root}: kind {kustomization.get('kind')!r} used in the wrong place")
    objects: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = (root / entry).resolve()
        if target.is_dir():
            objects.extend(_build(target, expect_component=False))
        else:
            objects.extend(copy.deepcopy(documents(target)))
    for entry in kustomization.get("components", []):
        objects.extend(_build((root / entry).resolve(), expect_component=True))
    _check_unique(root, objects)
    if "namespace" in kustomization:
        _set_namespace(objects, kustomization["namespace"])
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    return objects


def _check_unique(root: Path, objects: list[Manifest]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"{root}: {key} is defined twice")
        seen.add(key)


def _set_namespace(objects: list[Manifest], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED_KINDS:
            obj["metadata"]["namespace"] = namespace


def _containers(obj: Manifest) -> list[Manifest]:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    found: list[Manifest] = pod.get("containers", []) + pod.get("initContainers", [])
    return found


def _set_image(objects: list[Manifest], rule: Manifest) -> None:
    name = rule["name"]
    for obj in objects:
        for container in _containers(obj):
            image: str = container["image"]
            base, tag, digest = _split_image(image)
            if base != name:
                continue
            base = rule.get("newName", base)
            if "digest" in rule:
                container["image"] = f"{base}@{rule['digest']}"
            elif "newTag" in rule:
                container["image"] = f"{base}:{rule['newTag']}"
            else:
                suffix = f"@{digest}" if digest else (f":{tag}" if tag else "")
                container["image"] = base + suffix


def _split_image(image: str) -> tuple[str, str, str]:
    """``name``, ``tag`` and ``digest`` of an image reference (a port is not a tag)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def roots(k8s: Path) -> list[Path]:
    """What gets applied to a cluster: every overlay and every platform piece."""
    found = sorted(p.parent for p in k8s.glob("overlays/*/kustomization.yaml"))
    found += sorted(p.parent for p in k8s.glob("platform/*/kustomization.yaml"))
    return found
