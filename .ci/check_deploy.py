#!/usr/bin/env python3
"""Offline checks of the deployment files (no Docker engine needed); run by .ci/run.

- every YAML file under deploy/ parses;
- deploy/docker-compose.yml: the four services (gateway, nats, prometheus, grafana), every image
  pinned to an exact version tag, every bind mount's source exists, named volumes declared,
  ports published on 127.0.0.1 only, NATS with JetStream, Prometheus given the alert rules,
  Grafana given the provisioning and the dashboard where the provider looks;
- deploy/Dockerfile: base images pinned, only the gateway binary built, stripped, OCI labels;
- .dockerignore keeps target/ and recordings/ out of the context;
- deploy/grafana/acs-media-gateway.json parses, has a uid, unique panel ids, and every panel
  (rows aside) has at least one target with a query.
- deploy/k8s: every manifest passes `kubernetes-validate --strict` (the Kubernetes OpenAPI
  schemas, unknown fields refused; skipped with a message when the tool is absent, fatal under
  CI=1), kustomization.yaml lists every manifest it should, and the fleet topology holds: the
  Ingress routes /api and /ws, the Secret carries the connection string and call_token_secret
  and the Deployment takes it, a PodDisruptionBudget selects the gateway, a preStop delay and a
  terminationGracePeriodSeconds longer than preStop + shutdown_grace_ms, cluster mode pointed at
  a NATS StatefulSet started with JetStream, an HPA on CPU and the active-streams metric.
Prometheus's own files are checked by promtool in .ci/run.
"""
import json
import pathlib
import os
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
errors = []


def check(ok, msg):
    if not ok:
        errors.append(msg)


def pinned(image):
    """name:tag with an exact version tag (digits and dots, optional suffix), or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-.][A-Za-z0-9.]+)?", tag) is not None


# --- every YAML file parses ------------------------------------------------------------------
for path in sorted(DEPLOY.rglob("*.y*ml")):
    try:
        list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as e:
        errors.append(f"{path.relative_to(ROOT)}: {e}")

# --- compose ------------------------------------------------------------------------------------
compose_path = DEPLOY / "docker-compose.yml"
compose = yaml.safe_load(compose_path.read_text())
services = compose.get("services", {})
check(set(services) == {"gateway", "nats", "prometheus", "grafana"},
      f"compose services are {sorted(services)}")
declared_volumes = set((compose.get("volumes") or {}).keys())
mounts = {}
for name, svc in services.items():
    image = svc.get("image", "")
    check(bool(image) and pinned(image), f"compose service {name}: image {image!r} is not pinned")
    if "build" in svc:
        build = svc["build"]
        ctx = (compose_path.parent / build.get("context", ".")).resolve()
        check((ctx / build.get("dockerfile", "Dockerfile")).is_file(),
              f"compose service {name}: Dockerfile not found")
    for port in svc.get("ports", []):
        check(str(port).startswith("127.0.0.1:"), f"compose service {name}: port {port} not on 127.0.0.1")
    for vol in svc.get("volumes", []):
        src, _, rest = vol.partition(":")
        target = rest.split(":")[0]
        mounts.setdefault(name, {})[target] = src
        if src.startswith((".", "/")):
            check((compose_path.parent / src).exists(),
                  f"compose service {name}: bind mount source {src} does not exist")
        else:
            check(src in declared_volumes, f"compose service {name}: volume {src} not declared")
    for dep in svc.get("depends_on", []):
        check(dep in services, f"compose service {name}: depends on unknown {dep}")
nats_cmd = " ".join(services.get("nats", {}).get("command", []))
check("--jetstream" in nats_cmd or re.search(r"(^| )-js( |$)", nats_cmd) is not None,
      "compose: NATS without JetStream")
prom = mounts.get("prometheus", {})
check(prom.get("/etc/prometheus/alerts.yml") == "./prometheus/alerts.yml",
      "compose: Prometheus does not get deploy/prometheus/alerts.yml")
prom_cfg = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
check("alerts.yml" in prom_cfg.get("rule_files", []), "prometheus.yml does not load alerts.yml")
targets = [t for sc in prom_cfg.get("scrape_configs", []) for c in sc.get("static_configs", [])
           for t in c.get("targets", [])]
check("gateway:8080" in targets, "prometheus.yml does not scrape gateway:8080")
graf = mounts.get("grafana", {})
check(graf.get("/etc/grafana/provisioning") == "./grafana/provisioning",
      "compose: Grafana without deploy/grafana/provisioning")
providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/acs-media-gateway.yml").read_text())
for p in providers.get("providers", []):
    path = p["options"]["path"]
    check(any(t.startswith(path + "/") and src.endswith(".json") for t, src in graf.items()),
          f"grafana provider path {path} gets no dashboard mounted")
gw_mounts = mounts.get("gateway", {})
cmd = services.get("gateway", {}).get("command", [])
check(len(cmd) == 2 and cmd[0] == "--config" and cmd[1] in gw_mounts,
      "compose: the gateway's --config file is not mounted")

# --- Dockerfile and .dockerignore ---------------------------------------------------------------
dockerfile = (DEPLOY / "Dockerfile").read_text()
for m in re.finditer(r"^FROM\s+(\S+)", dockerfile, re.M):
    check(pinned(m.group(1)), f"Dockerfile: base image {m.group(1)} is not pinned")
builds = re.findall(r"cargo build [^\n\\]*", dockerfile)
check(builds and all("--bin acs-media-gateway" in b and "--locked" in b for b in builds),
      "Dockerfile: every cargo build must be --locked --bin acs-media-gateway")
check("strip" in dockerfile, "Dockerfile: binary not stripped")
for label in ("title", "description", "version", "revision", "licenses"):
    check(f"org.opencontainers.image.{label}=" in dockerfile, f"Dockerfile: no OCI label {label}")
for src in re.findall(r"^COPY\s+(?!--from)(\S+)", dockerfile, re.M):
    check((ROOT / src).exists(), f"Dockerfile: COPY source {src} does not exist")
ignore = (ROOT / ".dockerignore").read_text().split()
for entry in ("target/", "recordings/", ".git/"):
    check(entry in ignore, f".dockerignore: no {entry}")

# --- dashboard ---------------------------------------------------------------------------------------
dash = json.loads((DEPLOY / "grafana/acs-media-gateway.json").read_text())
check(bool(dash.get("uid")) and bool(dash.get("title")), "dashboard: no uid or title")
ids = [p.get("id") for p in dash.get("panels", [])]
check(len(ids) == len(set(ids)), "dashboard: duplicate panel ids")
panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
check(len(panels) >= 10, f"dashboard: only {len(panels)} panels")
for p in panels:
    exprs = [t.get("expr", "").strip() for t in p.get("targets", [])]
    check(exprs and all(exprs), f"dashboard panel {p.get('title')!r}: no target with a query")

# --- Kubernetes manifests ----------------------------------------------------------------------
K8S = DEPLOY / "k8s"
manifests = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
try:
    import kubernetes_validate
except ImportError:
    kubernetes_validate = None
if kubernetes_validate is None:
    if os.environ.get("CI"):
        errors.append("kubernetes-validate not installed (pip install kubernetes-validate)")
    else:
        print("check_deploy: SKIPPED the strict schema check: kubernetes-validate not installed",
              file=sys.stderr)
docs = {}
for p in manifests:
    for d in yaml.safe_load_all(p.read_text()):
        if not d:
            continue
        docs[(d["kind"], d["metadata"]["name"])] = d
        if kubernetes_validate is not None:
            try:
                kubernetes_validate.validate(d, kubernetes_validate.latest_version(), strict=True)
            except Exception as e:  # ValidationError and friends: one line per object
                errors.append(f"{p.relative_to(ROOT)} {d['kind']}/{d['metadata']['name']}: "
                              f"kubernetes-validate --strict: {str(e).splitlines()[0]}")
kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
for p in manifests:
    if p.name != "prometheus-adapter-rules.yaml":
        check(p.name in kust.get("resources", []), f"kustomization.yaml does not list {p.name}")
ing = docs.get(("Ingress", "acs-media-gateway"), {})
paths = {pp["path"] for r in ing.get("spec", {}).get("rules", []) for pp in r["http"]["paths"]}
check({"/api", "/ws"} <= paths, f"Ingress routes {sorted(paths)}, not /api and /ws")
secret = docs.get(("Secret", "acs-media-gateway-env"), {})
for k in ("ACS_GATEWAY_ACS__CONNECTION_STRING", "ACS_GATEWAY_CONTROL__CALL_TOKEN_SECRET",
          "ACS_GATEWAY_CONTROL__OPERATOR_API_KEY", "ACS_GATEWAY_UPLOAD__CONNECTION_STRING"):
    check(k in secret.get("stringData", {}), f"Secret acs-media-gateway-env has no {k}")
dep = docs.get(("Deployment", "acs-media-gateway"), {})
pod = dep.get("spec", {}).get("template", {}).get("spec", {})
gw = next((c for c in pod.get("containers", []) if c["name"] == "gateway"), {})
check({"secretRef": {"name": "acs-media-gateway-env"}} in gw.get("envFrom", []),
      "Deployment does not take the Secret acs-media-gateway-env")
env = {e["name"]: e for e in gw.get("env", [])}
nats_url = env.get("ACS_GATEWAY_CLUSTER__NATS_URL", {}).get("value", "")
check(nats_url.startswith("nats://nats:"), f"Deployment: cluster mode not pointed at the nats Service ({nats_url!r})")
pre = gw.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
check(pre > 0, "Deployment: no preStop drain delay")
grace_ms = int(re.search(r"shutdown_grace_ms\s*=\s*(\d+)", (DEPLOY / "gateway.toml").read_text()).group(1))
tgp = pod.get("terminationGracePeriodSeconds", 30)
check(tgp > pre + grace_ms / 1000,
      f"terminationGracePeriodSeconds {tgp} is not longer than preStop {pre} s + shutdown_grace_ms {grace_ms}")
pdb = docs.get(("PodDisruptionBudget", "acs-media-gateway"), {})
check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") ==
      dep.get("spec", {}).get("selector", {}).get("matchLabels"),
      "PodDisruptionBudget does not select the gateway's pods")
sts = docs.get(("StatefulSet", "nats"), {})
nats_c = (sts.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0]
check("-js" in nats_c.get("args", []) or "--jetstream" in nats_c.get("args", []),
      "NATS StatefulSet without JetStream (-js)")
check(pinned(nats_c.get("image", "")), f"NATS image {nats_c.get('image')!r} is not pinned")
check(("Service", "nats") in docs, "no nats Service")
hpa = docs.get(("HorizontalPodAutoscaler", "acs-media-gateway"), {})
kinds = {(m["type"], (m.get("resource") or m.get("pods", {}).get("metric", {})).get("name"))
         for m in hpa.get("spec", {}).get("metrics", [])}
check(("Resource", "cpu") in kinds and ("Pods", "acs_gateway_ws_connections_active") in kinds,
      f"HPA metrics {sorted(kinds)}: want CPU and acs_gateway_ws_connections_active")

if errors:
    for e in errors:
        print(f"check_deploy: {e}", file=sys.stderr)
    sys.exit(1)
print(f"check_deploy: ok ({len(services)} compose services, {len(panels)} dashboard panels, "
      f"{len(docs)} Kubernetes objects)")
