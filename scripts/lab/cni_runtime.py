#!/usr/bin/env python3
"""Runs a CNI network configuration list exactly as a container runtime does (libcni's
AddNetworkList / DelNetworkList / CheckNetworkList), for the netns lab. Stdlib only.

  cni_runtime.py --conf-dir D --bin-dir B --cache-dir C COMMAND \\
      --container-id ID --netns PATH [--ifname eth0] [--args K8S_POD_NAMESPACE=..;K8S_POD_NAME=..]

The network is the first *.conf, *.conflist or *.json in D by name (a single-plugin file is
wrapped into a list). Like containerd (go-cni's WithLoNetwork), the loopback plugin runs first, as
a network of its own ("cni-loopback"), when B has it: a fresh netns has lo down. Every plugin is executed from B (CNI_PATH=B) with the CNI_* environment
and its configuration on stdin: the list's name and cniVersion injected, and prevResult = the
previous plugin's result (ADD), or the result cached after ADD (CHECK and DEL). ADD runs the
plugins in order and stops at the first error; DEL runs them in reverse order, all of them;
CHECK in order. The final result (ADD) or the failing plugin's error object is printed on stdout;
the exit status is the failing plugin's (0 on success).
"""
import glob
import json
import os
import subprocess
import sys


def load_network(conf_dir):
    files = sorted(f for ext in ("*.conf", "*.conflist", "*.json")
                   for f in glob.glob(os.path.join(conf_dir, ext)))
    if not files:
        sys.exit("cni_runtime: no network configuration in " + conf_dir)
    conf = json.load(open(files[0]))
    if "plugins" not in conf:
        plugin = {k: v for k, v in conf.items() if k not in ("cniVersion", "name")}
        conf = {"cniVersion": conf.get("cniVersion"), "name": conf.get("name"), "plugins": [plugin]}
    return conf


def run_plugin(bin_dir, plugin, net, command, env_args, prev):
    conf = dict(plugin)
    conf["name"] = net["name"]
    conf["cniVersion"] = net["cniVersion"]
    if prev is not None:
        conf["prevResult"] = prev
    env = dict(os.environ)
    env.update({"CNI_COMMAND": command, "CNI_PATH": bin_dir, **env_args})
    exe = os.path.join(bin_dir, plugin["type"])
    p = subprocess.run([exe], input=json.dumps(conf).encode(), env=env, capture_output=True)
    if p.stderr:
        sys.stderr.write("[%s %s] %s" % (plugin["type"], command, p.stderr.decode(errors="replace")))
    return p.returncode, p.stdout.decode(errors="replace")


def main():
    args = sys.argv[1:]
    opts = {"--ifname": "eth0", "--args": ""}
    command = None
    while args:
        a = args.pop(0)
        if a.startswith("--"):
            if not args:
                sys.exit("cni_runtime: %s needs a value" % a)
            opts[a] = args.pop(0)
        elif command is None:
            command = a
        else:
            sys.exit("cni_runtime: unexpected " + a)
    for need in ("--conf-dir", "--bin-dir", "--cache-dir", "--container-id"):
        if need not in opts:
            sys.exit("cni_runtime: %s is required" % need)
    if command not in ("ADD", "DEL", "CHECK"):
        sys.exit("cni_runtime: COMMAND is ADD, DEL or CHECK")
    net = load_network(opts["--conf-dir"])
    env_args = {"CNI_CONTAINERID": opts["--container-id"], "CNI_NETNS": opts.get("--netns", ""),
                "CNI_IFNAME": opts["--ifname"], "CNI_ARGS": opts["--args"]}
    os.makedirs(opts["--cache-dir"], exist_ok=True)
    cache = os.path.join(opts["--cache-dir"], "%s-%s-%s.json" % (net["name"], opts["--container-id"],
                                                                 opts["--ifname"]))
    cached = json.load(open(cache)) if os.path.exists(cache) else None
    lo = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
    has_lo = os.path.exists(os.path.join(opts["--bin-dir"], "loopback"))
    if has_lo and command in ("ADD", "CHECK"):
        rc, out = run_plugin(opts["--bin-dir"], lo["plugins"][0], lo, command, env_args,
                             None if command == "ADD" else {"cniVersion": "1.0.0"})
        if rc != 0:
            sys.stdout.write(out)
            sys.exit(rc)
    if command == "ADD":
        prev = None
        for plugin in net["plugins"]:
            rc, out = run_plugin(opts["--bin-dir"], plugin, net, "ADD", env_args, prev)
            if rc != 0:
                sys.stdout.write(out)
                sys.exit(rc)
            prev = json.loads(out)
        json.dump(prev, open(cache, "w"))
        sys.stdout.write(json.dumps(prev) + "\n")
    elif command == "CHECK":
        if cached is None:
            sys.exit("cni_runtime: no cached result for CHECK")
        for plugin in net["plugins"]:
            rc, out = run_plugin(opts["--bin-dir"], plugin, net, "CHECK", env_args, cached)
            if rc != 0:
                sys.stdout.write(out)
                sys.exit(rc)
    else:
        failed = 0
        for plugin in reversed(net["plugins"]):
            rc, out = run_plugin(opts["--bin-dir"], plugin, net, "DEL", env_args, cached)
            if rc != 0:
                sys.stdout.write(out)
                failed = failed or rc
        if os.path.exists(cache):
            os.remove(cache)
        if has_lo:
            rc, out = run_plugin(opts["--bin-dir"], lo["plugins"][0], lo, "DEL", env_args, None)
            if rc != 0:
                sys.stdout.write(out)
                failed = failed or rc
        sys.exit(failed)


if __name__ == "__main__":
    main()
