#!/usr/bin/env python3
"""A Kubernetes API server that only answers discovery, for `kubectl create --dry-run=client`.

kubectl maps every object's apiVersion/kind to a resource through discovery even when it only
prints, so `kubectl create --dry-run=client --validate=false -f -` needs a server. This one
serves the legacy discovery documents (/api, /apis, /api/v1, /apis/<group>/<version>) for the
kinds zmesh's manifests and docs use, with their real scope (namespaced or not), and answers
404 to everything else: a misspelt kind or group, or an object of a kind Kubernetes does not
have at that version, fails the dry run as it would against a real cluster.

Usage: fake_discovery.py   (binds 127.0.0.1 on a free port and prints the port on stdout)
"""
import http.server
import json
import sys

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]

# group -> version -> [(plural, kind, namespaced)]
RESOURCES = {
    "": {"v1": [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
        ("secrets", "Secret", True),
        ("configmaps", "ConfigMap", True),
        ("pods", "Pod", True),
        ("resourcequotas", "ResourceQuota", True),
    ]},
    "apps": {"v1": [
        ("daemonsets", "DaemonSet", True),
        ("deployments", "Deployment", True),
    ]},
    "rbac.authorization.k8s.io": {"v1": [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ]},
    "apiextensions.k8s.io": {"v1": [
        ("customresourcedefinitions", "CustomResourceDefinition", False),
    ]},
    "discovery.k8s.io": {"v1": [
        ("endpointslices", "EndpointSlice", True),
    ]},
    "security.istio.io": {v: [
        ("authorizationpolicies", "AuthorizationPolicy", True),
        ("peerauthentications", "PeerAuthentication", True),
        ("requestauthentications", "RequestAuthentication", True),
    ] for v in ("v1", "v1beta1")},
}


def resource_list(group, version):
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [{"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                       "kind": kind, "verbs": VERBS}
                      for plural, kind, namespaced in RESOURCES[group][version]],
    }


def group_list():
    groups = []
    for group, versions in RESOURCES.items():
        if not group:
            continue
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": vs, "preferredVersion": vs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.strip("/").split("/")
        body = None
        if path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        elif path == "/api/v1":
            body = resource_list("", "v1")
        elif path == "/apis":
            body = group_list()
        elif len(parts) == 3 and parts[0] == "apis" and parts[2] in RESOURCES.get(parts[1], {}):
            body = resource_list(parts[1], parts[2])
        elif path == "/version":
            body = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-zmesh-fake-discovery"}
        if body is None:
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "reason": "NotFound", "code": 404}).encode())
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # a dry run never writes: anything else is a bug in the test
        self.send_response(405)
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-discovery: " + (fmt % args) + "\n")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
