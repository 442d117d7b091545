#!/usr/bin/env python3
"""A tiny kubectl for the netns lab's fake API server (tests/testutil/fake_kube_apiserver_main.cc).

Stdlib only. Server and token from --server/--token or KUBE_URL/KUBE_TOKEN. Talks the real API:
POST to create, merge PATCH to label/annotate, DELETE, GET; plus the fake's /fake/<knob>.

  kubectl.py apply-lab STATE [POD...]      the lab's namespaces (labels as in the lab db) and pods
                                           (all, or the ones named) as API objects: nodeName
                                           PREFIX-<node>, uid, serviceAccount, labels, annotations
                                           (zmesh.io/netns), status podIP, phase Running
  kubectl.py create JSON                   POST one object (JSON text)
  kubectl.py label namespace|pod NAME|NS/NAME KEY=VALUE|KEY-
  kubectl.py annotation pod NS/NAME KEY    print the annotation's value (nothing when absent)
  kubectl.py get namespace|pod NAME|NS/NAME
  kubectl.py delete pod NS/NAME
  kubectl.py fake KNOB                     compact, expire-watches, break-watches, end-watches, bookmarks
"""
import json
import os
import sys
import urllib.error
import urllib.request


def die(msg):
    sys.stderr.write("kubectl.py: %s\n" % msg)
    sys.exit(1)


class Api:
    def __init__(self, server, token):
        self.server = server.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            die("%s %s: HTTP %d: %s" % (method, path, e.code, e.read().decode(errors="replace")))
        except urllib.error.URLError as e:
            die("%s %s: %s" % (method, path, e.reason))


def path_of(kind, name):
    if kind in ("namespace", "ns", "namespaces"):
        return "/api/v1/namespaces/" + name
    if kind in ("pod", "pods"):
        if "/" not in name:
            die("pods are named NAMESPACE/NAME")
        ns, n = name.split("/", 1)
        return "/api/v1/namespaces/%s/pods/%s" % (ns, n)
    die("unknown kind " + kind)


def collection_of(obj):
    kind = obj.get("kind")
    if kind == "Namespace":
        return "/api/v1/namespaces"
    ns = obj.get("metadata", {}).get("namespace", "default")
    if kind in ("Pod", "Service"):
        return "/api/v1/namespaces/%s/%ss" % (ns, kind.lower())
    if kind in ("AuthorizationPolicy", "PeerAuthentication"):
        return "/apis/security.istio.io/v1/namespaces/%s/%ss" % (ns, kind.lower())
    die("cannot create a " + str(kind))


def kv_file(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out


def read(path):
    return open(path).read().strip()


def lab_objects(state, only):
    prefix = os.path.basename(state.rstrip("/"))
    db = os.path.join(state, "db")
    objs = []
    for ns in [l.strip() for l in open(os.path.join(db, "ns.order")) if l.strip()]:
        labels = {"kubernetes.io/metadata.name": ns}
        if read(os.path.join(db, "ns", ns)) == "ambient":
            labels["zmesh.io/dataplane-mode"] = "ambient"
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": labels}})
    for pod in [l.strip() for l in open(os.path.join(db, "pods.order")) if l.strip()]:
        if only and pod not in only:
            continue
        d = os.path.join(db, "pods", pod)
        sa = read(os.path.join(d, "sa")) if os.path.exists(os.path.join(d, "sa")) else "default"
        ip = read(os.path.join(d, "ip"))
        objs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": read(os.path.join(d, "ns")),
                         "uid": read(os.path.join(d, "uid")),
                         "labels": kv_file(os.path.join(d, "labels")),
                         "annotations": kv_file(os.path.join(d, "annotations"))},
            "spec": {"nodeName": prefix + "-" + read(os.path.join(d, "node")),
                     "serviceAccountName": sa,
                     "containers": [{"name": "main", "image": "zmesh.io/lab-placeholder:latest"}]},
            "status": {"phase": "Running", "hostIP": read(os.path.join(d, "node_ip")),
                       "podIP": ip, "podIPs": [{"ip": ip}]},
        })
    return objs


def main(argv):
    server = os.environ.get("KUBE_URL", "")
    token = os.environ.get("KUBE_TOKEN", "")
    while argv and argv[0].startswith("--"):
        if argv[0] == "--server" and len(argv) > 1:
            server = argv[1]
        elif argv[0] == "--token" and len(argv) > 1:
            token = argv[1]
        else:
            die("unknown option " + argv[0])
        argv = argv[2:]
    if not argv:
        die("usage: see the header of " + __file__)
    if not server:
        die("no server (--server or KUBE_URL)")
    api = Api(server, token)
    cmd, args = argv[0], argv[1:]
    if cmd == "apply-lab" and args:
        for obj in lab_objects(args[0], set(args[1:])):
            api.call("POST", collection_of(obj), obj)
    elif cmd == "create" and len(args) == 1:
        obj = json.loads(args[0])
        api.call("POST", collection_of(obj), obj)
    elif cmd == "label" and len(args) == 3:
        k, eq, v = args[2].partition("=")
        if not eq:
            if not k.endswith("-"):
                die("KEY=VALUE or KEY-")
            k, v = k[:-1], None
        api.call("PATCH", path_of(args[0], args[1]), {"metadata": {"labels": {k: v}}},
                 "application/merge-patch+json")
    elif cmd == "annotation" and len(args) == 3:
        obj = api.call("GET", path_of(args[0], args[1]))
        v = obj.get("metadata", {}).get("annotations", {}).get(args[2])
        if v is not None:
            print(v)
    elif cmd == "get" and len(args) == 2:
        print(json.dumps(api.call("GET", path_of(args[0], args[1]))))
    elif cmd == "delete" and len(args) == 2:
        api.call("DELETE", path_of(args[0], args[1]))
    elif cmd == "fake" and len(args) == 1:
        api.call("POST", "/fake/" + args[0], {})
    else:
        die("bad command: " + " ".join(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
