"""Validate Kubernetes resources offline, as an API server would accept them.

Custom resources are checked against their CustomResourceDefinition's structural schema
(`spec.versions[].schema.openAPIV3Schema`), packaged unchanged in obsgen/schemas/kubernetes/ (see its
PROVENANCE.md and NOTICE). jsonschema does not know the OpenAPI extensions a server applies, so each schema
is first rewritten the way the server reads it:
- `x-kubernetes-int-or-string`: an integer or a string;
- `nullable: true`: null is allowed as well;
- `x-kubernetes-preserve-unknown-fields`: unknown fields are kept there;
- every other object: unknown fields are an error. A server prunes them silently, so the object it stores
  would differ from the file (drift for every GitOps sync); `kubectl --validate=strict` rejects them;
- `x-kubernetes-list-type: set|map`: duplicate items (or items with the same map keys) are refused;
- `pattern`: RE2 syntax, where an inline `(?i)` holds to the end of its group (Python needs it scoped);
- `format`: `byte` (base64) and `date-time` (RFC 3339), the ones these CRDs use that a server checks.
CEL rules (`x-kubernetes-validations`) are not evaluated.

AlertmanagerConfig's child routes are `preserve-unknown-fields` in the CRD (the type is recursive); the
Operator reads them as routes, so they are validated against the route schema with unknown fields allowed.

The built-in kinds obsgen writes (ConfigMap, kustomize's Kustomization) are checked for the fields obsgen
sets, and every resource's metadata for Kubernetes' name, namespace, label and annotation rules.
Pure: reads only the packaged CRDs, each parsed once per process. jsonschema and yaml are imported on use.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import functools
import re
from importlib import resources
from typing import Any, Iterator

# (apiVersion, kind) -> the packaged CRD file that defines it
CRDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): "monitoring.coreos.com_alertmanagerconfigs.yaml",
    ("grafana.integreatly.org/v1beta1", "GrafanaDashboard"): "grafana.integreatly.org_grafanadashboards.yaml",
    ("grafana.integreatly.org/v1beta1", "GrafanaFolder"): "grafana.integreatly.org_grafanafolders.yaml",
}
CONFIGMAP = ("v1", "ConfigMap")
KUSTOMIZATION = ("kustomize.config.k8s.io/v1beta1", "Kustomization")

MAX_CONFIGMAP_BYTES = 1024 * 1024  # corev1 MaxSecretSize, which ValidateConfigMap applies to data + binaryData
MAX_ANNOTATIONS_BYTES = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"{_DNS_LABEL}\Z")
DNS1123_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*\Z")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+\Z")
OBJECT_META = {
    "name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers",
    "managedFields", "selfLink",
}
CONFIGMAP_FIELDS = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}
KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "metadata", "resources", "components", "namespace", "namePrefix", "nameSuffix",
    "labels", "commonLabels", "commonAnnotations", "patches", "patchesStrategicMerge", "patchesJson6902",
    "images", "replicas", "configMapGenerator", "secretGenerator", "generatorOptions", "replacements",
    "openapi", "crds", "generators", "transformers", "validators", "buildMetadata", "sortOptions",
}


def validate(resource: dict[str, Any]) -> list[str]:
    """Problems of one resource, each `Kind/name: path: message`; [] when a server would accept it as is."""
    if not isinstance(resource, dict):
        return [f"?: is {type(resource).__name__}, not a Kubernetes object"]
    key = (resource.get("apiVersion"), resource.get("kind"))
    meta = resource.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    who = f"{key[1] or '?'}/{name if isinstance(name, str) and name else '?'}"
    if key in CRDS:
        problems = list(_schema_problems(resource, key))
    elif key == CONFIGMAP:
        problems = list(_configmap_problems(resource))
    elif key == KUSTOMIZATION:
        problems = list(_kustomization_problems(resource))
    else:
        return [f"{who}: apiVersion {key[0]!r} kind {key[1]!r} is not a kind obsgen validates"]
    problems += _metadata_problems(meta, name_required=key != KUSTOMIZATION)
    return [f"{who}: {problem}" for problem in sorted(problems)]


# --- metadata ----------------------------------------------------------------------------------------

def _metadata_problems(meta: Any, *, name_required: bool) -> list[str]:
    if meta is None and not name_required:
        return []
    if not isinstance(meta, dict):
        return ["metadata: must be an object"]
    problems = [f"metadata.{k}: unknown field" for k in sorted(set(meta) - OBJECT_META, key=str)]
    name, namespace = meta.get("name"), meta.get("namespace")
    if name is None:
        if name_required:
            problems.append("metadata.name: is required")
    else:
        problems += [f"metadata.name: {p}" for p in _dns(name, DNS1123_SUBDOMAIN, 253, "DNS-1123 subdomain")]
    if namespace is not None:
        problems += [f"metadata.namespace: {p}" for p in _dns(namespace, DNS1123_LABEL, 63, "DNS-1123 label")]
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            problems.append(f"metadata.{field}: must be a map of string to string")
            continue
        for k, v in values.items():
            where = f"metadata.{field}[{k!r}]"
            problems += [f"{where}: {p}" for p in _qualified_name(k, lower=field == "annotations")]
            if not isinstance(v, str):
                problems.append(f"{where}: value must be a string, not {type(v).__name__}")
            elif field == "labels":
                problems += [f"{where}: {p}" for p in _label_value(v)]
        if field == "annotations":
            size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in values.items())
            if size > MAX_ANNOTATIONS_BYTES:
                problems.append(f"metadata.annotations: total size {size} bytes is over {MAX_ANNOTATIONS_BYTES}")
    return problems


def _dns(value: Any, pattern: re.Pattern[str], limit: int, what: str) -> list[str]:
    if not isinstance(value, str):
        return [f"must be a string, not {type(value).__name__}"]
    problems = [f"{value!r} is {len(value)} characters, more than {limit}"] if len(value) > limit else []
    if not pattern.match(value):
        chars = "alphanumerics and '-'" if what.endswith("label") else "alphanumerics, '-' and '.'"
        problems.append(f"{value!r} is not a {what} (lower case {chars}, "
                        "starting and ending alphanumeric)")
    return problems


def _qualified_name(key: Any, *, lower: bool) -> list[str]:
    """Kubernetes' IsQualifiedName: an optional DNS-1123 subdomain prefix and '/', then a name <= 63."""
    if not isinstance(key, str):
        return [f"key must be a string, not {type(key).__name__}"]
    key = key.lower() if lower else key
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash:
        if not prefix or not DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253:
            problems.append(f"key prefix {prefix!r} must be a DNS-1123 subdomain of at most 253 characters")
    if len(name) > 63:
        problems.append(f"key name {name!r} is {len(name)} characters, more than 63")
    if not QUALIFIED_NAME.match(name):
        problems.append(f"key name {name!r} must be alphanumerics, '-', '_' or '.', "
                        "starting and ending alphanumeric")
    return problems


def _label_value(value: str) -> list[str]:
    problems = [f"value is {len(value)} characters, more than 63"] if len(value) > 63 else []
    if not LABEL_VALUE.match(value):
        problems.append(f"value {value!r} must be empty or alphanumerics, '-', '_' or '.', "
                        "starting and ending alphanumeric")
    return problems


# --- built-in kinds --------------------------------------------------------------------------------

def _configmap_problems(resource: dict[str, Any]) -> Iterator[str]:
    yield from (f"{k}: unknown field" for k in sorted(set(resource) - CONFIGMAP_FIELDS, key=str))
    size = 0
    for field in ("data", "binaryData"):
        values = resource.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            yield f"{field}: must be a map of string to string"
            continue
        for k, v in values.items():
            if not isinstance(k, str) or not CONFIGMAP_KEY.match(k) or len(k) > 253:
                yield f"{field}[{k!r}]: key must be at most 253 of alphanumerics, '-', '_' or '.'"
            if not isinstance(v, str):
                yield f"{field}[{k!r}]: value must be a string, not {type(v).__name__}"
                continue
            size += len(str(k).encode()) + len(v.encode() if field == "data" else _base64_len(v))
    if size > MAX_CONFIGMAP_BYTES:
        yield f"data: total size {size} bytes is over the {MAX_CONFIGMAP_BYTES}-byte limit of an object"
    if "immutable" in resource and not isinstance(resource["immutable"], bool):
        yield "immutable: must be a boolean"


def _base64_len(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode()


def _kustomization_problems(resource: dict[str, Any]) -> Iterator[str]:
    yield from (f"{k}: unknown field" for k in sorted(set(resource) - KUSTOMIZATION_FIELDS, key=str))
    items = resource.get("resources")
    if items is not None and not (isinstance(items, list) and all(isinstance(i, str) and i for i in items)):
        yield "resources: must be a list of non-empty strings (paths)"
    elif isinstance(items, list):
        yield from (f"resources[{i}]: {p!r} is listed twice" for i, p in enumerate(items) if p in items[:i])
    if "namespace" in resource:
        yield from (f"namespace: {p}" for p in _dns(resource["namespace"], DNS1123_LABEL, 63, "DNS-1123 label"))


# --- custom resources ------------------------------------------------------------------------------

def _schema_problems(resource: dict[str, Any], key: tuple[Any, Any]) -> Iterator[str]:
    version = str(key[0]).rpartition("/")[2]
    validators = _validators(CRDS[key])
    if version not in validators:
        yield f"apiVersion: version {version!r} is not served by the CRD"
        return
    body = {k: v for k, v in resource.items() if k != "metadata"}  # ObjectMeta is checked on its own
    for error in validators[version].iter_errors(body):
        yield from _messages(error)


def _messages(error: Any) -> Iterator[str]:
    path = _path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        for field in sorted(set(error.instance) - known, key=str):
            yield f"{_path([*error.absolute_path, field])}: unknown field"
        return
    if error.validator == "type":  # said without the value: it may be a credential given in the clear
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        message = f"is {_json_type(error.instance)}, must be {' or '.join(expected)}"
    else:
        message = error.message
    yield f"{path or '(root)'}: {message if len(message) <= 300 else message[:297] + '...'}"


def _json_type(value: Any) -> str:
    for python, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                         (list, "array"), (dict, "object"), (type(None), "null")):
        if isinstance(value, python):
            return name
    return type(value).__name__


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _load(filename: str) -> dict[str, Any]:
    import yaml

    class Loader(yaml.CSafeLoader):  # type: ignore[misc,name-defined]
        """YAML 1.1's `=` (the "value" type) is the plain string "=" to a YAML 1.2 reader such as a server."""

    Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
    text = resources.files("obsgen").joinpath("schemas", "kubernetes", filename).read_text(encoding="utf-8")
    return yaml.load(text, Loader=Loader)  # noqa: S506 -- a CSafeLoader subclass


@functools.cache
def _validators(filename: str) -> dict[str, Any]:
    """One validator per served version of the CRD in `filename`."""
    from jsonschema import Draft7Validator, FormatChecker
    from jsonschema.validators import extend

    checker = FormatChecker(formats=())
    checker.checks("byte", raises=(binascii.Error, ValueError))(_is_base64)
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    cls = extend(Draft7Validator, {"pattern": _pattern, "x-kubernetes-list-type": _list_type})
    out = {}
    for version in _load(filename)["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = structural(version["schema"]["openAPIV3Schema"])
        routes = schema.get("properties", {}).get("spec", {}).get("properties", {}).get("route")
        if filename.startswith("monitoring.coreos.com_alertmanagerconfigs") and routes:
            schema["definitions"] = {"route": structural(version["schema"]["openAPIV3Schema"]["properties"]
                                                         ["spec"]["properties"]["route"], preserve=True)}
            for node in (routes, schema["definitions"]["route"]):
                node["properties"]["routes"]["items"] = {"$ref": "#/definitions/route"}
        out[version["name"]] = cls(schema, format_checker=checker)
    return out


def _is_base64(value: Any) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


def _is_date_time(value: Any) -> bool:
    if isinstance(value, str):
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def structural(node: Any, *, preserve: bool = False) -> Any:
    """A JSON Schema that accepts what a server accepts for the structural schema `node`.

    `preserve` allows unknown fields in every object below (x-kubernetes-preserve-unknown-fields does so for
    the object it is on only; `preserve` serves the child routes, kept whole by the Operator).
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in ("description", "default", "x-kubernetes-validations", "example"):
            continue
        if k == "properties":
            out[k] = {name: structural(sub, preserve=preserve) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = structural(v, preserve=preserve)
        elif k in ("anyOf", "allOf", "oneOf"):
            out[k] = [structural(sub, preserve=preserve) for sub in v]
        else:
            out[k] = v
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    kept = preserve or node.get("x-kubernetes-preserve-unknown-fields")
    if node.get("type") == "object" and "additionalProperties" not in node and not kept:
        out["additionalProperties"] = False
    return out


@functools.cache
def go_regex(pattern: str) -> re.Pattern[str]:
    """RE2's `pattern` as a Python pattern: an inline flag group `(?i)` after the start of the pattern
    holds to the end of its enclosing group in RE2, so it becomes a scoped `(?i:...)` group ending there."""
    out, pending, i = [], [0], 0  # pending[-1]: scoped groups to close when the current group closes
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1 + (pattern[i + 1:i + 2] == "^")
            j += pattern[j:j + 1] == "]"
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i:j + 1])
            i = j + 1
            continue
        flags = re.match(r"\(\?([imsU-]+)\)", pattern[i:])
        if flags and i > 0:
            out.append(f"(?{flags.group(1)}:")
            pending[-1] += 1
            i += flags.end()
            continue
        if c == "(":
            pending.append(0)
        elif c == ")" and len(pending) > 1:
            out.append(")" * pending.pop())
        out.append(c)
        i += 1
    out.append(")" * pending[0])
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not go_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _list_type(validator: Any, list_type: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """set: items are unique; map: items are unique by `x-kubernetes-list-map-keys` (a server refuses both)."""
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "array") or list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", ())
    seen: list[Any] = []
    for index, item in enumerate(instance):
        ident = [item.get(k) for k in keys] if list_type == "map" and isinstance(item, dict) else item
        if ident in seen:
            what = ", ".join(f"{k}={v!r}" for k, v in zip(keys, ident)) if list_type == "map" else repr(item)
            yield ValidationError(f"item {index} duplicates an earlier item ({what})", path=[index])
        seen.append(ident)
