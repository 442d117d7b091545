#!/usr/bin/env python3
"""Structural checks of deploy/ and docs/install.md (driven by manifests_test.sh).

Reads the objects kubectl's dry run printed (JSON) for the default install, the install
without CRDs and the waypoint overlay, the install doc and the Dockerfile; checks what a
reviewer would check by eye (least-privilege RBAC, the DaemonSet's privileges, mounts, probes
and tokens, the CRDs' versions, ports that agree between objects, a doc that names only what
exists) and writes, for manifests_test.sh to check with the real tools:
  flags.tsv        BINARY|SUBCOMMANDS or -|FLAG|WHERE, every flag of a zmesh binary
                   the manifests pass or the doc shows
  doc-yaml/N.yaml  every YAML block of the doc, for a dry run
  (`check_deploy.py overlay DOC OUT_DIR` writes the doc's waypoint overlay to
  OUT_DIR/doc-overlay/<its dir>/ first, for manifests_test.sh to render)
  run/N.sh         every RUN of the Dockerfile, for shellcheck
  runtime-packages.txt  the packages the Dockerfile's runtime stage installs
  copies.tsv       STAGE <tab> BINARY for every binary copied from the build stage
Only the standard library: CI's python3 is Debian's.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print(f"FAIL: {msg}")


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def load_objects(path):
    """kubectl prints one JSON document per object, back to back."""
    text = open(path).read()
    dec = json.JSONDecoder()
    objs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        objs.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return objs


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    check(len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}")
    return hits[0] if hits else None


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def containers(spec, init=True):
    return (spec.get("initContainers", []) if init else []) + spec.get("containers", [])


def container(spec, name):
    hits = [c for c in containers(spec) if c["name"] == name]
    check(len(hits) == 1, f"expected one container {name}")
    return hits[0] if hits else {}


def arg_value(c, flag):
    for a in c.get("args", []):
        if a == flag:
            return ""
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def mounts_of(c):
    return {m["name"]: m for m in c.get("volumeMounts", [])}


def volumes_of(spec):
    return {v["name"]: v for v in spec.get("volumes", [])}


# ---------------------------------------------------------------- every object

def check_common(objs, label, namespace, installed_with=()):
    """`installed_with`: objects of the install these ones rely on (roles they bind)."""
    for o in objs:
        md = o["metadata"]
        what = f"{o['kind']} {md['name']} ({label})"
        check(md.get("labels", {}).get("app.kubernetes.io/part-of") == "zmesh",
              f"{what}: label app.kubernetes.io/part-of=zmesh missing")
        if o["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                         "CustomResourceDefinition"):
            check("namespace" not in md, f"{what}: cluster-scoped object with a namespace")
        else:
            check(md.get("namespace") == namespace,
                  f"{what}: namespace {md.get('namespace')!r}, want {namespace!r}")
        if o["kind"] in ("DaemonSet", "Deployment"):
            spec = pod_spec(o)
            for c in containers(spec):
                cw = f"{what} container {c['name']}"
                sc = c.get("securityContext", {})
                check(sc.get("privileged") is not True, f"{cw}: privileged")
                check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: root filesystem not read-only")
                check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: does not drop ALL")
                req = c.get("resources", {}).get("requests", {})
                check("cpu" in req and "memory" in req, f"{cw}: no cpu/memory requests")
                check(":" in c.get("image", ""), f"{cw}: image without a tag")
            seccomp = spec.get("securityContext", {}).get("seccompProfile", {}).get("type")
            check(seccomp == "RuntimeDefault", f"{what}: pod seccomp profile {seccomp!r}")
        for rule in o.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                check("*" not in rule.get(field, []), f"{what}: wildcard in {field}")
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            ref = o["roleRef"]["name"]
            check(ref not in ("cluster-admin", "admin", "edit"), f"{what}: bound to {ref}")
            role_kind = o["roleRef"]["kind"]
            check(any(r["kind"] == role_kind and r["metadata"]["name"] == ref
                      for r in list(objs) + list(installed_with)),
                  f"{what}: roleRef {role_kind} {ref} is not installed with it")
            for s in o.get("subjects", []):
                check(s["kind"] == "ServiceAccount", f"{what}: subject of kind {s['kind']}")
                check(any(x["kind"] == "ServiceAccount" and x["metadata"]["name"] == s["name"]
                          and x["metadata"].get("namespace") == s.get("namespace") for x in objs),
                      f"{what}: subject {s.get('namespace')}/{s['name']} is not installed with it")


def rule_set(role):
    """{(group, resource, verb, names)}: a role's rules flattened."""
    out = set()
    for r in role.get("rules", []):
        names = tuple(sorted(r.get("resourceNames", [])))
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    out.add((g, res, v, names))
    return out


def expect_rules(role, want, what):
    got = rule_set(role) if role else set()
    for extra in sorted(got - want):
        fail(f"{what}: grants more than it should: {extra}")
    for missing in sorted(want - got):
        fail(f"{what}: lacks {missing}")


WATCH = ("get", "list", "watch")
ISTIO = ("authorizationpolicies", "peerauthentications", "requestauthentications")


def watch_rules(group, resources):
    return {(group, r, v, ()) for r in resources for v in WATCH}


def check_rbac(objs):
    want_agent = (watch_rules("", ("namespaces", "pods", "services"))
                  | watch_rules("discovery.k8s.io", ("endpointslices",))
                  | watch_rules("security.istio.io", ISTIO)
                  | {("", "pods/status", "patch", ())})
    expect_rules(find(objs, "ClusterRole", "zmesh-agent"), want_agent, "ClusterRole zmesh-agent")
    # A waypoint's informers (common/kube/kube_source.h): read only, no EndpointSlices. Bound by
    # each waypoint's own overlay, never by the base install.
    want_waypoint = (watch_rules("", ("namespaces", "pods", "services"))
                     | watch_rules("security.istio.io", ISTIO))
    expect_rules(find(objs, "ClusterRole", "zmesh-waypoint"), want_waypoint,
                 "ClusterRole zmesh-waypoint")
    check(not [o for o in objs if o["kind"].endswith("Binding")
               and o["roleRef"]["name"] == "zmesh-waypoint"],
          "the base install binds ClusterRole zmesh-waypoint (each waypoint overlay does)")
    want_ca = {("authentication.k8s.io", "tokenreviews", "create", ()),
               ("", "pods", "list", ()), ("", "pods", "watch", ())}
    expect_rules(find(objs, "ClusterRole", "zmesh-ca"), want_ca, "ClusterRole zmesh-ca")
    want_ca_ns = {("", "secrets", "get", ("zmesh-ca-root",)),
                  ("", "secrets", "update", ("zmesh-ca-root",)),
                  ("", "secrets", "create", ())}
    expect_rules(find(objs, "Role", "zmesh-ca"), want_ca_ns, "Role zmesh-ca")
    for kind, name, sa in (("ClusterRoleBinding", "zmesh-agent", "zmesh-node"),
                           ("ClusterRoleBinding", "zmesh-ca", "zmesh-ca"),
                           ("RoleBinding", "zmesh-ca", "zmesh-ca")):
        b = find(objs, kind, name)
        if b:
            check([(s["name"], s.get("namespace")) for s in b["subjects"]]
                  == [(sa, "zmesh-system")], f"{kind} {name}: subjects are not just {sa}")
    sa = find(objs, "ServiceAccount", "zmesh-node")
    if sa:
        check(sa.get("automountServiceAccountToken") is False,
              "ServiceAccount zmesh-node: automounts a token (only the agent container may have one)")


# ---------------------------------------------------------------- zmesh-node

def source_default(src, path, pattern, what):
    m = re.search(pattern, open(os.path.join(src, path)).read(), flags=re.S)
    check(m is not None, f"{path}: cannot find {what} (update tests/deploy/check_deploy.py)")
    return m.group(1) if m else None


def check_probe(c, host, port, path, what):
    probe = c.get("readinessProbe", {}).get("httpGet", {})
    check((probe.get("host"), probe.get("port"), probe.get("path")) == (host, port, path),
          f"{what}: readiness probe {probe} is not http://{host}:{port}{path}")


def check_ready_file_probe(c, what):
    """An exec probe on the file the binary keeps while ready (--ready-file)."""
    ready = arg_value(c, "--ready-file")
    check(bool(ready), f"{what}: no --ready-file")
    cmd = c.get("readinessProbe", {}).get("exec", {}).get("command")
    check(cmd == ["test", "-f", ready], f"{what}: readiness probe {cmd} is not `test -f {ready}`")
    return ready


def check_node(objs, src):
    ds = find(objs, "DaemonSet", "zmesh-node")
    if not ds:
        return
    spec = pod_spec(ds)
    w = "DaemonSet zmesh-node"
    check(spec.get("hostNetwork") is True, f"{w}: not hostNetwork")
    check(spec.get("hostPID") is True, f"{w}: not hostPID (ztunnel's pid in zm_config is the host's)")
    check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet",
          f"{w}: dnsPolicy {spec.get('dnsPolicy')} cannot resolve cluster names with hostNetwork")
    check(spec.get("priorityClassName") == "system-node-critical", f"{w}: priority class")
    check(spec.get("tolerations") == [{"operator": "Exists"}], f"{w}: does not tolerate all taints")
    check(spec.get("serviceAccountName") == "zmesh-node", f"{w}: service account")
    check(spec.get("automountServiceAccountToken") is False, f"{w}: automounts an API token")
    grace = spec.get("terminationGracePeriodSeconds")
    check(grace is not None and 0 < grace <= 60, f"{w}: terminationGracePeriodSeconds {grace}")
    # Surge: the new pod's agent takes the node over and its ztunnel overlaps the old one
    # (ARCHITECTURE.md "Upgrades"), so a node never goes without a ready pair.
    check(ds["spec"].get("updateStrategy") == {"type": "RollingUpdate", "rollingUpdate":
                                               {"maxSurge": 1, "maxUnavailable": 0}},
          f"{w}: updateStrategy {ds['spec'].get('updateStrategy')}")
    names = [c["name"] for c in spec["containers"]]
    check(names == ["agent", "ztunnel"], f"{w}: containers {names}, want agent and ztunnel")
    agent, zt = container(spec, "agent"), container(spec, "ztunnel")
    check(agent.get("command") == ["zmesh-agent"], f"{w}: agent runs {agent.get('command')}")
    check(zt.get("command") == ["ztunnel"], f"{w}: ztunnel runs {zt.get('command')}")
    caps = {c["name"]: set(c.get("securityContext", {}).get("capabilities", {}).get("add", []))
            for c in containers(spec)}
    check(caps.get("agent") == {"BPF", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"},
          f"{w}: agent capabilities {sorted(caps.get('agent', []))}")
    check(caps.get("ztunnel") == {"NET_ADMIN", "SYS_ADMIN", "NET_RAW"},
          f"{w}: ztunnel capabilities {sorted(caps.get('ztunnel', []))}")
    for c in spec.get("initContainers", []):
        check(not caps.get(c["name"]), f"{w}: init container {c['name']} adds capabilities")

    # Readiness: each container's own file (both pods of a surge share the node's 127.0.0.1).
    for c in (agent, zt):
        flag = "--ready-file"
        check(f'"{flag}"' in open(os.path.join(src, f"{'agent' if c is agent else 'ztunnel'}/main.cc")).read(),
              f"{c['name']}: the binary has no {flag}")
        check_ready_file_probe(c, f"{w} container {c['name']}")
    drain = arg_value(zt, "--drain-seconds")
    check(drain is not None and grace is not None and 0 < int(drain) < grace,
          f"{w}: ztunnel --drain-seconds={drain} does not end within the grace period {grace}")

    for c in (agent, zt):
        env = {e["name"]: e for e in c.get("env", [])}
        check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
              == "spec.nodeName", f"{w} container {c['name']}: NODE_NAME not from spec.nodeName")
        check(arg_value(c, "--node") == "$(NODE_NAME)", f"{w} container {c['name']}: --node")

    vols = volumes_of(spec)

    def host_path_mounts(c):
        return {vols[n]["hostPath"]["path"]: m["mountPath"]
                for n, m in mounts_of(c).items() if "hostPath" in vols.get(n, {})}

    ah, zh = host_path_mounts(agent), host_path_mounts(zt)
    for p in ("/sys/fs/bpf", "/sys/fs/cgroup", "/proc", "/var/run/netns", "/opt/cni/bin",
              "/etc/cni/net.d", "/var/run/zmesh", "/var/lib/zmesh"):
        check(p in ah, f"{w}: the agent does not mount the host's {p}")
    check(not zh, f"{w}: ztunnel mounts host paths {sorted(zh)}, want none (DESIGN §1)")
    check(ah.get("/var/run/zmesh") == "/var/run/zmesh", f"{w}: the host's /var/run/zmesh is "
          f"at {ah.get('/var/run/zmesh')}, zmesh-cni's default is /var/run/zmesh/<node>/cni.sock")
    run_dir = arg_value(agent, "--node-run-dir")
    check(run_dir == "/var/run/zmesh/$(NODE_NAME)",
          f"{w}: the node lease --node-run-dir={run_dir} is not on the host's /var/run/zmesh/<node>")

    # Agent <-> ztunnel sockets and the readiness files: one emptyDir of the pod, at the same
    # path in both containers, so a ztunnel never reaches the other pod's agent in a surge.
    def empty_dir_mounts(c):
        return {n: m["mountPath"] for n, m in mounts_of(c).items() if "emptyDir" in vols.get(n, {})}

    shared = {n: p for n, p in empty_dir_mounts(agent).items() if empty_dir_mounts(zt).get(n) == p}
    check(len(shared) == 1, f"{w}: agent and ztunnel share no emptyDir at one path ({shared})")
    pod_dir = next(iter(shared.values()), "?")
    pairs = ((arg_value(agent, "--zds-socket"), arg_value(zt, "--zds-socket"), "ZDS"),
             (arg_value(agent, "--config-socket"),
              (arg_value(zt, "--config-address") or "").removeprefix("unix:"), "config stream"))
    for a, z, what in pairs:
        check(a is not None and a == z and a.startswith(pod_dir + "/"),
              f"{w}: {what} socket: agent {a}, ztunnel {z}, want one path under {pod_dir}")
    for c in (agent, zt):
        check((arg_value(c, "--ready-file") or "").startswith(pod_dir + "/"),
              f"{w}: {c['name']}'s --ready-file is not in the pod's own {pod_dir}")
    check(ah.get("/sys/fs/bpf") == "/sys/fs/bpf", f"{w}: bpffs not at /sys/fs/bpf (zmeshctl's default)")
    pin_root = arg_value(agent, "--pin-root") or "/sys/fs/bpf/zmesh"
    check(pin_root.startswith("/sys/fs/bpf/"), f"{w}: --pin-root {pin_root} is not on the host bpffs")
    for flag, host in (("--cgroup-root", "/sys/fs/cgroup"), ("--cni-bin-dir", "/opt/cni/bin"),
                       ("--cni-conf-dir", "/etc/cni/net.d")):
        check(arg_value(agent, flag) == ah.get(host),
              f"{w}: agent {flag}={arg_value(agent, flag)} but the host's {host} is at {ah.get(host)}")
    for p in ("/opt/cni/bin", "/etc/cni/net.d", "/sys/fs/bpf", "/sys/fs/cgroup", "/proc"):
        check(p not in zh, f"{w}: ztunnel mounts {p}")

    # Tokens: the API token for the agent only; the zmesh-ca token for ztunnel only.
    def projected_token(v):
        srcs = v.get("projected", {}).get("sources", [])
        return next((s["serviceAccountToken"] for s in srcs if "serviceAccountToken" in s), None)

    api = [n for n, v in vols.items() if projected_token(v) and not projected_token(v).get("audience")]
    ca_tok = [n for n, v in vols.items() if (projected_token(v) or {}).get("audience") == "zmesh-ca"]
    check(len(api) == 1 and len(ca_tok) == 1, f"{w}: want one API token volume and one zmesh-ca token volume")
    for n in api:
        check(mounts_of(agent).get(n, {}).get("mountPath")
              == "/var/run/secrets/kubernetes.io/serviceaccount", f"{w}: agent's API token path")
        check(n not in mounts_of(zt), f"{w}: ztunnel mounts the API token")
    for n in ca_tok:
        check(n not in mounts_of(agent), f"{w}: the agent mounts the zmesh-ca token")
        want = os.path.join(mounts_of(zt).get(n, {}).get("mountPath", "?"), projected_token(vols[n])["path"])
        check(arg_value(zt, "--ca-token-file") == want,
              f"{w}: ztunnel --ca-token-file={arg_value(zt, '--ca-token-file')}, token mounted at {want}")
    return zt


def check_ca(objs, zt):
    dep = find(objs, "Deployment", "zmesh-ca")
    svc = find(objs, "Service", "zmesh-ca")
    if not dep or not svc:
        return
    spec = pod_spec(dep)
    ca = container(spec, "zmesh-ca")
    w = "Deployment zmesh-ca"
    check(ca.get("command") == ["zmesh-ca"], f"{w}: runs {ca.get('command')}")
    check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{w}: may run as root")
    check(ca.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
          f"{w}: allows privilege escalation")
    check(not ca.get("securityContext", {}).get("capabilities", {}).get("add"), f"{w}: adds capabilities")
    check(dep["spec"]["template"]["metadata"]["labels"].get("zmesh.io/dataplane-mode") == "none",
          f"{w}: its pods could be enrolled (ztunnel needs the CA to start)")
    listen = arg_value(ca, "--listen") or ""
    lport = int(listen.rsplit(":", 1)[1]) if ":" in listen else None
    check(listen.startswith("0.0.0.0:") or listen.startswith("[::]:"),
          f"{w}: --listen={listen} is not reachable through its Service")
    ports = ca.get("ports", [])
    check([p["containerPort"] for p in ports] == [lport], f"{w}: containerPort is not --listen's port")
    check(ca.get("readinessProbe", {}).get("tcpSocket", {}).get("port") == lport,
          f"{w}: readiness probe not on {lport}")
    sp = svc["spec"]["ports"]
    check(len(sp) == 1 and sp[0]["port"] == 15012 and sp[0]["targetPort"] == lport,
          "Service zmesh-ca: not 15012 -> the CA's port (DESIGN §10)")
    check(svc["spec"]["selector"] == {"app": "zmesh-ca"}
          and dep["spec"]["template"]["metadata"]["labels"].get("app") == "zmesh-ca",
          "Service zmesh-ca does not select the zmesh-ca pods")
    if zt:
        addr = arg_value(zt, "--ca-address") or ""
        host, _, port = addr.rpartition(":")
        check(host == "zmesh-ca.zmesh-system.svc" and port == "15012",
              f"ztunnel --ca-address={addr} is not the zmesh-ca Service")
        names = [a.split("=", 1)[1] for a in ca.get("args", []) if a.startswith("--dns-name=")]
        check(host in names or (not names and host == "zmesh-ca.zmesh-system.svc"),
              f"zmesh-ca's serving certificate ({names or 'default'}) does not name {host}")
        secret = arg_value(ca, "--root-secret")
        vols = volumes_of(pod_spec(find(objs, "DaemonSet", "zmesh-node")))
        mounted = [(n, v["secret"]) for n, v in vols.items() if "secret" in v]
        check([s["secretName"] for _, s in mounted] == [secret],
              f"zmesh-node mounts secrets {[s['secretName'] for _, s in mounted]}, the CA keeps its root in {secret}")
        for n, s in mounted:
            check([(i["key"], i.get("path")) for i in s.get("items", [])] == [("tls.crt", "root-cert.pem")],
                  f"zmesh-node mounts more of {secret} than the root certificate")
            mp = mounts_of(container(pod_spec(find(objs, "DaemonSet", "zmesh-node")), "ztunnel")).get(n, {})
            check(arg_value(zt, "--ca-root-cert") == os.path.join(mp.get("mountPath", "?"), "root-cert.pem"),
                  f"ztunnel --ca-root-cert={arg_value(zt, '--ca-root-cert')} is not the mounted root")


def check_crds(objs, want_present):
    crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    if not want_present:
        check(not crds, "without-crds renders CRDs")
        return
    names = sorted(o["metadata"]["name"] for o in crds)
    check(names == sorted(f"{p}.security.istio.io" for p in ISTIO), f"CRDs {names}")
    for o in crds:
        w = f"CRD {o['metadata']['name']}"
        s = o["spec"]
        check(s["group"] == "security.istio.io" and s["scope"] == "Namespaced", f"{w}: group/scope")
        vs = {v["name"]: v for v in s["versions"]}
        check(set(vs) == {"v1", "v1beta1"}, f"{w}: versions {sorted(vs)}")
        check(vs.get("v1", {}).get("storage") is True and vs.get("v1", {}).get("served") is True,
              f"{w}: v1 is not the served storage version")
        check(vs.get("v1beta1", {}).get("storage") is False and vs.get("v1beta1", {}).get("served") is True,
              f"{w}: v1beta1 is not served (or is stored)")
        for v in vs.values():
            check("openAPIV3Schema" in v.get("schema", {}), f"{w} {v['name']}: no schema")


def check_waypoint(objs, namespace, full):
    dep = find(objs, "Deployment", "waypoint")
    svc = find(objs, "Service", "waypoint")
    # Cluster-scoped, so one per waypoint namespace: the overlay names it after the namespace.
    crb = find(objs, "ClusterRoleBinding", f"zmesh-waypoint-{namespace}")
    if not dep or not svc or not crb:
        return
    check(crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "zmesh-waypoint"},
          f"ClusterRoleBinding {crb['metadata']['name']}: roleRef {crb['roleRef']}")
    check(crb["subjects"] == [{"kind": "ServiceAccount", "name": "waypoint", "namespace": namespace}],
          f"ClusterRoleBinding {crb['metadata']['name']}: subjects {crb['subjects']}")
    check(any(o["kind"] == "ClusterRole" and o["metadata"]["name"] == "zmesh-waypoint" for o in full),
          "ClusterRole zmesh-waypoint is not in the base install")
    others = [f"{o['kind']} {o['metadata']['name']}" for o in objs
              if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding") and o is not crb]
    check(not others, f"the waypoint template grants more than the ClusterRole zmesh-waypoint: {others}")
    spec = pod_spec(dep)
    wp = container(spec, "waypoint")
    check(wp.get("command") == ["waypoint"], f"waypoint runs {wp.get('command')}")
    check(spec.get("serviceAccountName") == "waypoint", "waypoint's service account")
    check(dep["spec"]["template"]["metadata"]["labels"].get("zmesh.io/dataplane-mode") == "none",
          "waypoint pods could be captured by ztunnel")
    check(sorted(p["containerPort"] for p in wp.get("ports", [])) == [15008, 15020, 15021],
          "waypoint container ports are not 15008/15020/15021 (DESIGN §10)")
    check(sorted((p["port"], p["targetPort"]) for p in svc["spec"]["ports"])
          == [(15008, 15008), (15020, 15020), (15021, 15021)], "Service waypoint ports")
    check(svc["spec"]["selector"] == {"app": "waypoint"}, "Service waypoint selector")
    check_probe(wp, None, 15021, "/healthz/ready", "waypoint")
    # Cluster mode with the pod's own service account: its API token must be mounted.
    check(arg_value(wp, "--in-cluster") == "", "waypoint: not --in-cluster")
    for flag in ("--manifests", "--kubeconfig"):
        check(arg_value(wp, flag) is None, f"waypoint: {flag} in a cluster")
    sa = find(objs, "ServiceAccount", "waypoint")
    check(spec.get("automountServiceAccountToken") is not False
          and (sa or {}).get("automountServiceAccountToken") is not False,
          "waypoint: no API token is mounted (--in-cluster needs one)")
    env = {e["name"]: e for e in wp.get("env", [])}
    check(arg_value(wp, "--namespace") == "$(POD_NAMESPACE)"
          and env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
          == "metadata.namespace", "waypoint: --namespace is not the pod's namespace")
    vols = volumes_of(spec)
    mounts = mounts_of(wp)
    toks = {n: v["projected"]["sources"][0]["serviceAccountToken"] for n, v in vols.items()
            if "projected" in v}
    check([t.get("audience") for t in toks.values()] == ["zmesh-ca"], "waypoint: token audience")
    for n, t in toks.items():
        want = os.path.join(mounts.get(n, {}).get("mountPath", "?"), t["path"])
        check(arg_value(wp, "--ca-token-file") == want,
              f"waypoint --ca-token-file={arg_value(wp, '--ca-token-file')}, token mounted at {want}")
    roots = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == "zmesh-ca-root-cert"]
    check(len(roots) == 1, "waypoint: the mesh root is not the ConfigMap zmesh-ca-root-cert")
    check(not [n for n, v in vols.items() if "secret" in v],
          "waypoint mounts a Secret (the root's Secret holds its private key)")
    for n in roots:
        want = os.path.join(mounts.get(n, {}).get("mountPath", "?"), "root-cert.pem")
        check(arg_value(wp, "--ca-root-cert") == want,
              f"waypoint --ca-root-cert={arg_value(wp, '--ca-root-cert')}, root mounted at {want}")
    ca = find(full, "Deployment", "zmesh-ca")
    if ca:
        ca_c = container(pod_spec(ca), "zmesh-ca")
        names = [a.split("=", 1)[1] for a in ca_c.get("args", []) if a.startswith("--dns-name=")]
        host, _, port = (arg_value(wp, "--ca-address") or "").rpartition(":")
        check(port == "15012" and (host in names or (not names and host == "zmesh-ca.zmesh-system.svc")),
              f"waypoint --ca-address={arg_value(wp, '--ca-address')} is not the zmesh-ca Service "
              f"its serving certificate names ({names or 'default'})")


# ---------------------------------------------------------------- flags

def manifest_flags(objs, label, out):
    for o in objs:
        if o["kind"] not in ("DaemonSet", "Deployment"):
            continue
        for c in containers(pod_spec(o)):
            cmd = c.get("command", [])
            if not cmd or cmd[0] in ("sh", "bash"):
                continue
            binary = os.path.basename(cmd[0])
            for a in cmd[1:] + c.get("args", []):
                m = re.match(r"(--[a-z0-9][a-z0-9-]*)", a)
                if m:
                    out.add((binary, "", m.group(1), f"{label}: {o['kind']} {o['metadata']['name']} "
                             f"container {c['name']}"))


ZMESH_BINARIES = ("zmesh-agent", "ztunnel", "zmesh-ca", "zmeshctl", "waypoint")


def doc_blocks(doc):
    """[(lang, text)] of the fenced blocks."""
    return re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", doc, flags=re.S | re.M)


def doc_flags(doc, manifest_rows, out):
    for lang, text in doc_blocks(doc):
        if lang != "sh":
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            for seg in re.split(r"\$\(|;|&&|\|", line):
                words = seg.replace('"', " ").split()
                for i, word in enumerate(words):
                    if word not in ZMESH_BINARIES or (i > 0 and words[i - 1] == "-c"):
                        continue
                    subs = []
                    for x in words[i + 1:]:
                        if x.startswith("-"):
                            break
                        subs.append(x)
                    for x in words[i + 1:]:
                        m = re.match(r"(--[a-z0-9][a-z0-9-]*)", x)
                        if m:
                            out.add((word, " ".join(subs[:2]), m.group(1), "docs/install.md: " + line.strip()))
    # Flags the prose names with a value, e.g. `--default-policy=zero-trust`: the binaries whose
    # manifests pass that flag ("?" when none does).
    for m in re.finditer(r"`(--[a-z0-9-]+)=[^`]*`", doc):
        users = {b for b, _, f, _ in manifest_rows if f == m.group(1)} or {"?"}
        for b in users:
            out.add((b, "", m.group(1), "docs/install.md prose"))


# ---------------------------------------------------------------- the doc

def check_doc(doc, src, full, waypoint_ns_objs, outdir):
    for m in re.finditer(r"kubectl (?:apply|delete) -k ([^\s`]+)", doc):
        path = m.group(1).rstrip("/")
        if path.startswith("waypoint-"):
            continue  # the overlay the doc writes itself (checked below)
        check(os.path.isfile(os.path.join(src, path, "kustomization.yaml")),
              f"docs/install.md: `kubectl ... -k {path}`: no kustomization there")
    pods = {}
    for o in full + waypoint_ns_objs:
        if o["kind"] in ("DaemonSet", "Deployment"):
            pods[o["metadata"]["name"]] = o
    for m in re.finditer(r"(daemonset|deployment)/([a-z0-9-]+)", doc):
        kind = {"daemonset": "DaemonSet", "deployment": "Deployment"}[m.group(1)]
        check(any(o["kind"] == kind and o["metadata"]["name"] == m.group(2) for o in full),
              f"docs/install.md: {m.group(0)} is not in the manifests")
    all_containers = {c["name"] for o in pods.values() for c in containers(pod_spec(o))}
    for m in re.finditer(r" -c ([a-z0-9-]+)", doc):
        check(m.group(1) in all_containers, f"docs/install.md: container {m.group(1)} does not exist")
    for m in re.finditer(r"-l app=([a-z0-9-]+)", doc):
        check(any(o["spec"]["template"]["metadata"]["labels"].get("app") == m.group(1)
                  for o in pods.values()), f"docs/install.md: no pod has the label app={m.group(1)}")
    for m in re.finditer(r"secret (zmesh-[a-z-]+)", doc):
        check(any(f"--root-secret={m.group(1)}" in a for o in full if o["kind"] == "Deployment"
                  for c in containers(pod_spec(o)) for a in c.get("args", [])),
              f"docs/install.md: the Secret {m.group(1)} is not the CA's --root-secret")
    for m in re.finditer(r"configmap (zmesh-[a-z-]+)", doc):
        check(any(v.get("configMap", {}).get("name") == m.group(1) for o in waypoint_ns_objs
                  if o["kind"] == "Deployment" for v in pod_spec(o).get("volumes", [])),
              f"docs/install.md: the waypoint mounts no ConfigMap {m.group(1)}")
    # Ports and paths the prose gives.
    for m in re.finditer(r"(/var/run/zmesh-pod/[a-z-]+-ready)", doc):
        check(any(arg_value(c, "--ready-file") == m.group(1)
                  for o in full if o["kind"] == "DaemonSet" for c in containers(pod_spec(o))),
              f"docs/install.md: no container keeps the readiness file {m.group(1)}")
    for phrase in ("zmesh.io/dataplane-mode=ambient", "zmesh-agent uninstall", "maxSurge: 1",
                   "--default-policy=zero-trust"):
        check(phrase in doc, f"docs/install.md does not say {phrase!r}")
    # The YAML blocks: to a dry run; the waypoint overlay: where the doc writes it.
    os.makedirs(os.path.join(outdir, "doc-yaml"), exist_ok=True)
    n = 0
    for lang, text in doc_blocks(doc):
        if lang == "yaml" and "apiVersion:" in text:
            n += 1
            open(os.path.join(outdir, "doc-yaml", f"{n}.yaml"), "w").write(text)
    check(n >= 2, "docs/install.md: expected the policy examples as YAML blocks")
    # The waypoint overlay: extract_overlay() wrote it, manifests_test.sh rendered it.
    for m in re.finditer(r"kubectl apply -k (waypoint-\S+)", doc):
        check(os.path.isfile(os.path.join(outdir, "doc-overlay", m.group(1), "kustomization.yaml")),
              f"docs/install.md applies {m.group(1)} but does not write it")


# ---------------------------------------------------------------- the Dockerfile

def dockerfile_instructions(text):
    """[(INSTRUCTION, rest)] with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line + "\n"  # the shell reads the continuation as Docker does
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def check_dockerfile(path, src, full, waypoint_objs, outdir):
    rel = os.path.relpath(path, src)
    ins = dockerfile_instructions(open(path).read())
    stages, stage, build_targets = {}, None, set()
    copies = []
    os.makedirs(os.path.join(outdir, "run"), exist_ok=True)
    runtime_pkgs = set()
    nrun = 0
    known = {"FROM", "RUN", "COPY", "ADD", "ENTRYPOINT", "CMD", "USER", "WORKDIR", "ENV", "ARG",
             "LABEL", "EXPOSE", "VOLUME", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD"}
    for word, rest in ins:
        check(word in known, f"{rel}: unknown instruction {word}")
        if word == "COPY":
            for flag in re.findall(r"(?:^|\s)(--[a-z-]+)", rest.split("/", 1)[0]):
                check(flag in ("--from", "--chown", "--chmod", "--link"), f"{rel}: COPY {flag}")
        if word in ("ENTRYPOINT", "CMD"):
            check(rest.startswith("["), f"{rel}: {word} in shell form (signals would go to sh)")
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, flags=re.I)
            base, stage = m.group(1), (m.group(2) or f"#{len(stages)}")
            check(base in ("debian:bookworm", "debian:bookworm-slim") or base in stages,
                  f"{rel}: stage {stage} is FROM {base}, not Debian bookworm or an earlier stage")
            stages[stage] = base
        elif word == "RUN":
            nrun += 1
            open(os.path.join(outdir, "run", f"{nrun}.sh"), "w").write(
                f"#!/bin/sh\n# {rel}, stage {stage}, RUN #{nrun}\n{rest}\n")
            if "apt-get install" in rest:
                check("--no-install-recommends" in rest, f"{rel}: RUN #{nrun} installs recommends")
                check("rm -rf /var/lib/apt/lists" in rest, f"{rel}: RUN #{nrun} keeps the apt lists")
                if stages.get(stage) == "debian:bookworm-slim":
                    after = rest.split("apt-get install", 1)[1].split("&&", 1)[0]
                    runtime_pkgs |= {w for w in after.split() if not w.startswith("-") and w != "\\"}
            m = re.search(r"ninja -C \S+ ([^&\n]+)", rest)
            if m:
                build_targets |= set(m.group(1).split()) - {"\\"}
        elif word == "COPY":
            args = shlex.split(rest.replace("\\\n", " "))
            frm = next((a.split("=", 1)[1] for a in args if a.startswith("--from=")), None)
            paths = [a for a in args if not a.startswith("--")]
            if paths and paths[0].startswith("["):
                paths = json.loads(rest)
            srcs = paths[:-1]
            if frm is None:
                for s in srcs:
                    check(s == "." or os.path.exists(os.path.join(src, s)),
                          f"{rel}: COPY source {s} does not exist in the repository")
            else:
                check(frm in stages, f"{rel}: COPY --from={frm}: no such stage before {stage}")
                for s in srcs:
                    copies.append((stage, os.path.basename(s)))
    with open(os.path.join(outdir, "runtime-packages.txt"), "w") as f:
        f.write("\n".join(sorted(runtime_pkgs)) + "\n")
    with open(os.path.join(outdir, "copies.tsv"), "w") as f:
        for st, b in copies:
            f.write(f"{st}\t{b}\n")
    for st, b in copies:
        check(b in build_targets, f"{rel}: stage {st} copies {b}, which the build stage does not build")
    check(runtime_pkgs, f"{rel}: no runtime stage on debian:bookworm-slim installing libraries")
    # Every image a manifest names is a target that carries the binary the container runs.
    for o in full + waypoint_objs:
        if o["kind"] not in ("DaemonSet", "Deployment"):
            continue
        for c in containers(pod_spec(o)):
            image = c["image"].rsplit(":", 1)[0]
            target = image.rsplit("/", 1)[1]
            check(image.startswith("zmesh/"), f"{o['metadata']['name']}/{c['name']}: image {c['image']}")
            cmd = c.get("command", [""])[0]
            if cmd == "waypoint" and not os.path.exists(os.path.join(src, "waypoint", "main.cc")):
                print(f"note: no Dockerfile target for {image} yet: the waypoint binary does not exist")
                continue
            if cmd in ("sh", "bash"):
                continue
            check(target in stages, f"{o['metadata']['name']}/{c['name']}: image {image} has no "
                  f"target `{target}` in {rel}")
            check((target, cmd) in copies, f"{rel}: target {target} does not carry {cmd} "
                  f"({o['metadata']['name']}/{c['name']} runs it)")
    return stages


def extract_overlay(doc_path, out_dir):
    """Writes the doc's waypoint overlay (its kustomization.yaml and every other file the doc
    writes into the overlay's directory) to OUT_DIR/doc-overlay/<dir>/ and prints <dir> and its
    namespace, for manifests_test.sh to render before the checks."""
    doc = open(doc_path).read()
    m = re.search(r"mkdir -p (\S+)\ncat > \1/kustomization.yaml <<'EOF'\n(.*?)\nEOF\n", doc, flags=re.S)
    if not m:
        print("FAIL: docs/install.md: the waypoint overlay heredoc is missing")
        return 1
    d = os.path.join(out_dir, "doc-overlay", m.group(1))
    os.makedirs(d, exist_ok=True)
    for f in re.finditer(r"cat > " + re.escape(m.group(1)) + r"/([\w.-]+) <<'EOF'\n(.*?)\nEOF\n", doc,
                         flags=re.S):
        open(os.path.join(d, f.group(1)), "w").write(f.group(2) + "\n")
    ns = re.search(r"^namespace: (\S+)$", m.group(2), flags=re.M)
    print(m.group(1), ns.group(1) if ns else "")
    return 0


def check_libraries(bin_dir, out_dir):
    """The runtime stage installs the Debian package of every shared library the built binaries
    (those the Dockerfile copies) link directly. One dpkg-query for all of them: it is slow per call."""
    pkgs = set(open(os.path.join(out_dir, "runtime-packages.txt")).read().split())
    libs = {}  # path -> [(binary, soname)]
    for line in open(os.path.join(out_dir, "copies.tsv")):
        _, binary = line.rstrip("\n").split("\t")
        exe = os.path.join(bin_dir, binary)
        if not os.access(exe, os.X_OK):
            print(f"note: {binary} not built: its libraries are not checked")
            continue
        res = subprocess.run(["ldd", exe], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"note: ldd {exe}: {(res.stdout + res.stderr).strip()}: its libraries are not checked")
            continue
        # Only the libraries the binary names itself (DT_NEEDED): apt installs what those
        # packages depend on, so the transitive closure ldd prints is not the Dockerfile's job.
        dyn = subprocess.run(["objdump", "-p", exe], capture_output=True, text=True).stdout
        needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", dyn, flags=re.M))
        for m in re.finditer(r"^\s*(\S+) => (/\S+)", res.stdout, flags=re.M):
            if m.group(1) in needed:
                libs.setdefault(m.group(2), []).append((binary, m.group(1)))
    if not libs:
        return 0

    def candidates(path):
        real = os.path.realpath(path)
        out = []
        for p in (path, real):
            out += [p, p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p]
        return out

    every = sorted({c for p in libs for c in candidates(p)})
    res = subprocess.run(["dpkg-query", "-S"] + every, capture_output=True, text=True)
    owner = {}
    for line in res.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        owner.setdefault(path.strip(), pkg.split(":")[0].split(",")[0])
    bad = 0
    for path, users in sorted(libs.items()):
        pkg = next((owner[c] for c in candidates(path) if c in owner), None)
        if pkg is None or pkg == "libc6" or re.match(r"lib(asan|ubsan|clang-rt)", pkg):
            continue  # libc6 is in every image; sanitizer runtimes only in sanitizer builds
        if pkg not in pkgs:
            bad += 1
            print(f"FAIL: deploy/images/Dockerfile: the runtime stage lacks {pkg} "
                  f"({users[0][1]}, linked by {', '.join(sorted({b for b, _ in users}))})")
    if not bad:
        print(f"ok: the runtime stage installs every library the built binaries link ({len(libs)} libraries)")
    return 1 if bad else 0


def main():
    if sys.argv[1:2] == ["overlay"]:
        return extract_overlay(sys.argv[2], sys.argv[3])
    if sys.argv[1:2] == ["libraries"]:
        return check_libraries(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--full", required=True)
    ap.add_argument("--without-crds", required=True)
    ap.add_argument("--waypoint", required=True)
    ap.add_argument("--waypoint-namespace", required=True)
    a = ap.parse_args()
    src = a.source_dir
    full, without, wp = load_objects(a.full), load_objects(a.without_crds), load_objects(a.waypoint)
    check_common(full, "deploy/", "zmesh-system")
    check_common(without, "deploy/without-crds", "zmesh-system")
    check_common(wp, "deploy/waypoint", a.waypoint_namespace, installed_with=full)
    strip = lambda objs: sorted(json.dumps(o, sort_keys=True) for o in objs
                                if o["kind"] != "CustomResourceDefinition")
    check(strip(full) == strip(without), "deploy/without-crds differs from deploy/ by more than the CRDs")
    check_rbac(full)
    zt = check_node(full, src)
    check_ca(full, zt)
    check_crds(full, True)
    check_crds(without, False)
    check_waypoint(wp, a.waypoint_namespace, full)
    doc = open(os.path.join(src, "docs", "install.md")).read()
    check_doc(doc, src, full, wp, a.out_dir)
    stages = check_dockerfile(os.path.join(src, "deploy", "images", "Dockerfile"), src, full, wp, a.out_dir)
    for m in re.finditer(r"--target (\S+)", doc):
        check(m.group(1) in stages, f"docs/install.md: docker build --target {m.group(1)}: no such stage")
    flags = set()
    manifest_flags(full, "deploy/", flags)
    manifest_flags(wp, "deploy/waypoint", flags)
    doc_flags(doc, set(flags), flags)
    with open(os.path.join(a.out_dir, "flags.tsv"), "w") as f:
        for row in sorted(flags):
            check(row[0] != "?", f"docs/install.md names {row[2]}, of no known binary")
            f.write("|".join((row[0], row[1] or "-", row[2], row[3].replace("|", "/"))) + "\n")
    print(f"check_deploy: {len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
