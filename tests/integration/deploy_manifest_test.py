#!/usr/bin/python3
"""deploy/ and vagrant/ against the built agent: every flag that the
manifests and the Vagrant VMs' unit pass is one nodemesh-agent defines, the
DaemonSet has what the agent needs of its node (privileges, host namespaces,
host volumes at the paths its flags name, probes on its admin address), the
cleanup Job names the same node resources, the Containerfile copies binaries
the build makes with the Debian packages of the libraries they link, and the
Vagrant shell scripts parse. No root needed.

    deploy_manifest_test.py SOURCE_DIR BUILD_DIR AGENT_BINARY CTL_BINARY

Run with Debian's /usr/bin/python3 (python3-yaml). Prints every problem,
naming the file and the flag or field, and exits 1 if there was one.
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import yaml

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def agent_flags(agent):
    """{flag name: (gflags type, default)} of every flag the binary defines
    (its own, glog's and gflags'), from --helpxml (which exits 1 by design)."""
    run = subprocess.run([agent, "--helpxml"], capture_output=True, text=True)
    try:
        root = ET.fromstring(run.stdout)
    except ET.ParseError as e:
        sys.exit(f"{agent} --helpxml printed no flag list ({e}): "
                 f"{run.stderr.strip()[:300]}")
    return {f.findtext("name"): (f.findtext("type"), f.findtext("default"))
            for f in root.iter("flag")}


def parse_flags(where, argv, defined, env=None):
    """{name: value} of the --flags in argv, each checked against the flags
    the agent defines; `env`: the variables $(VAR) may reference."""
    out = {}
    for arg in argv:
        if not arg.startswith("--"):
            problem(where, f"'{arg}' is not a --flag (the agent takes no "
                    "positional arguments)")
            continue
        name, eq, value = arg[2:].partition("=")
        kind = defined.get(name, (None,))[0]
        if kind is None and name.startswith("no") and not eq and \
                defined.get(name[2:], (None,))[0] == "bool":
            name, value, kind = name[2:], "false", "bool"
        if kind is None:
            problem(where, f"--{name} is not a flag of the built nodemesh-agent")
        if name in out:
            problem(where, f"--{name} is given twice")
        if kind == "bool":
            value = value if eq else "true"
            if value.lower() not in ("true", "false", "1", "0", "yes", "no",
                                     "t", "f", "y", "n"):
                problem(where, f"--{name}={value}: not a bool")
        elif kind in ("int32", "int64", "uint32", "uint64") and \
                not re.fullmatch(r"-?\d+", value):
            problem(where, f"--{name}={value}: not an integer ({kind})")
        if env is not None:
            for var in re.findall(r"\$\((\w+)\)", value):
                if var not in env:
                    problem(where, f"--{name}={value}: $({var}) is not in the "
                            "container's env")
        out[name] = value
    return out


def load_yaml(path):
    with open(path) as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            sys.exit(f"{path}: not YAML: {e}")


def by_kind(where, docs, *kinds):
    found = {d.get("kind"): d for d in docs}
    for k in kinds:
        if k not in found:
            problem(where, f"no {k}")
    return found


def under(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def field_env(container):
    """{name: fieldPath} of the container's env from the downward API."""
    return {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            for e in container.get("env", [])}


# Path flags and what must back them: a hostPath at the same path as on the
# host (the agent hands these paths to host-side clients, and they must
# outlive the pod), or a Secret / ConfigMap volume.
HOST_PATHS = {"bpf_pin_dir": "/sys/fs/bpf", "cgroup_root": "/sys/fs/cgroup",
              "agent_cgroup": "/sys/fs/cgroup", "state_dir": None,
              "admin_socket": None}
SECRET_PATHS = ("ca_bundle", "signing_cert", "signing_key",
                "api_credentials_file")


def check_paths(where, flags, pod, container, pins_made_here):
    """Each path flag lies under a volume mount of the right kind;
    `pins_made_here`: the agent may mount the bpffs it pins to."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = container.get("volumeMounts", [])

    def mount_of(path):
        best = None
        for m in mounts:
            if under(path, m["mountPath"]) and \
                    (best is None or len(m["mountPath"]) > len(best["mountPath"])):
                best = m
        return best, volumes.get(best["name"], {}) if best else {}

    for name, host_root in HOST_PATHS.items():
        if name not in flags:
            continue
        m, v = mount_of(flags[name])
        if m is None or "hostPath" not in v:
            problem(where, f"--{name}={flags[name]} is on no hostPath volume")
            continue
        if v["hostPath"]["path"] != m["mountPath"]:
            problem(where, f"volume {m['name']}: hostPath {v['hostPath']['path']} "
                    f"is mounted at {m['mountPath']}, not at the same path")
        if host_root and v["hostPath"]["path"] != host_root:
            problem(where, f"--{name}={flags[name]}: expected on the host's "
                    f"{host_root}, not {v['hostPath']['path']}")
    if pins_made_here and "bpf_pin_dir" in flags:
        m, _ = mount_of(flags["bpf_pin_dir"])
        if m and m.get("mountPropagation") != "Bidirectional":
            problem(where, f"volume {m['name']} (bpffs) needs mountPropagation: "
                    "Bidirectional (a bpffs the agent mounts must reach the host)")
    for name in SECRET_PATHS:
        if name in flags:
            m, v = mount_of(flags[name])
            if m is None or "secret" not in v:
                problem(where, f"--{name}={flags[name]} is on no Secret volume")
    if "config_dir" in flags:
        m, v = mount_of(flags["config_dir"])
        if m is None or not ({"configMap", "hostPath"} & v.keys()):
            problem(where, f"--config_dir={flags['config_dir']} is on no "
                    "ConfigMap or hostPath volume")


def check_probe(where, probe_name, probe, want_path, admin, ports):
    get = (probe or {}).get("httpGet")
    if not get:
        problem(where, f"{probe_name}: no httpGet probe")
        return
    host, _, port = admin.rpartition(":")
    port_value = get.get("port")
    if isinstance(port_value, str) and not port_value.isdigit():
        port_value = ports.get(port_value, port_value)
    if str(port_value) != port:
        problem(where, f"{probe_name}: port {get.get('port')}, but "
                f"--admin_address={admin}")
    if get.get("path") != want_path:
        problem(where, f"{probe_name}: path {get.get('path')}, expected {want_path}")
    # The kubelet probes the pod IP (the node's, with hostNetwork) unless
    # told a host: an admin address on loopback needs host 127.0.0.1.
    if host not in ("0.0.0.0", "[::]", "", "$(NODE_IP)") and \
            get.get("host") != host:
        problem(where, f"{probe_name}: host {get.get('host')!r} does not reach "
                f"--admin_address={admin}")


def check_daemonset(path, defined):
    docs = load_yaml(path)
    kinds = by_kind(path, docs, "Namespace", "ServiceAccount", "ConfigMap",
                    "DaemonSet")
    ns = kinds.get("Namespace", {}).get("metadata", {}).get("name")
    for d in docs:
        if d.get("kind") != "Namespace" and d["metadata"].get("namespace") != ns:
            problem(path, f"{d['kind']} {d['metadata'].get('name')} is not in "
                    f"namespace {ns}")
    ds = kinds.get("DaemonSet")
    if not ds:
        return None
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    where = f"{path}: DaemonSet {ds['metadata']['name']}"
    for field in ("hostNetwork", "hostPID"):
        if pod.get(field) is not True:
            problem(where, f"{field} is not true")
    sa = kinds.get("ServiceAccount", {}).get("metadata", {}).get("name")
    if pod.get("serviceAccountName") != sa:
        problem(where, f"serviceAccountName {pod.get('serviceAccountName')} is "
                f"not the ServiceAccount {sa}")
    labels = spec["template"]["metadata"].get("labels", {})
    if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
        problem(where, "selector does not match the pod template's labels")
    strategy = spec.get("updateStrategy", {})
    if strategy.get("type") != "RollingUpdate" or \
            strategy.get("rollingUpdate", {}).get("maxUnavailable") != 1:
        problem(where, "updateStrategy is not RollingUpdate with maxUnavailable 1")

    c = pod["containers"][0]
    if c.get("securityContext", {}).get("privileged") is not True:
        problem(where, f"container {c['name']} is not privileged")
    env = field_env(c)
    for var, field in (("NODE_NAME", "spec.nodeName"),
                       ("NODE_IP", "status.hostIP")):
        if env.get(var) != field:
            problem(where, f"env {var} is not from {field}")
    flags = parse_flags(where, c.get("command", [])[1:] + c.get("args", []),
                        defined, env)
    for name, value in (("node_name", "$(NODE_NAME)"),
                        ("node_address", "$(NODE_IP)")):
        if flags.get(name) != value:
            problem(where, f"--{name} is {flags.get(name)!r}, expected {value}")
    for name in ("cgroup_root", "agent_cgroup"):
        if name not in flags:
            problem(where, f"--{name} must be given: /proc/mounts in the "
                    "container lists more than one cgroup2 mount")
    check_paths(where, flags, pod, c, pins_made_here=True)

    if ".svc" in flags.get("etcd_endpoints", "") and \
            pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        problem(where, "--etcd_endpoints names a Service: with hostNetwork "
                "that needs dnsPolicy: ClusterFirstWithHostNet")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    admin = flags.get("admin_address", defined["admin_address"][1])
    check_probe(where, "readinessProbe", c.get("readinessProbe"), "/ready",
                admin, ports)
    check_probe(where, "livenessProbe", c.get("livenessProbe"), "/healthz",
                admin, ports)
    if "tunnel" in ports and str(ports["tunnel"]) != flags.get("tunnel_port"):
        problem(where, f"port tunnel {ports['tunnel']} is not --tunnel_port="
                f"{flags.get('tunnel_port')}")
    drain = int(flags.get("drain_seconds", defined["drain_seconds"][1]))
    if pod.get("terminationGracePeriodSeconds", 30) <= drain:
        problem(where, f"terminationGracePeriodSeconds "
                f"{pod.get('terminationGracePeriodSeconds', 30)} does not exceed "
                f"--drain_seconds={drain}: the kubelet would cut the drain short")
    return {"flags": flags, "image": c.get("image"), "namespace": ns}


# What --cleanup must find where the DaemonSet's agent left it.
NODE_RESOURCE_FLAGS = ("node_name", "etcd_endpoints", "etcd_prefix",
                       "state_dir", "bpf_pin_dir", "cgroup_root",
                       "agent_cgroup", "admin_socket")


def check_cleanup(path, defined, agent):
    docs = load_yaml(path)
    job = by_kind(path, docs, "Job").get("Job")
    if not job or agent is None:
        return
    where = f"{path}: Job"
    if job["metadata"].get("namespace") != agent["namespace"]:
        problem(where, f"namespace is not {agent['namespace']}")
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if c.get("image") != agent["image"]:
        problem(where, f"image {c.get('image')} is not the DaemonSet's "
                f"{agent['image']}")
    if c.get("securityContext", {}).get("privileged") is not True:
        problem(where, "container is not privileged")
    flags = parse_flags(where, c.get("command", [])[1:] + c.get("args", []),
                        defined, field_env(c))
    if flags.get("cleanup") != "true":
        problem(where, "no --cleanup")
    for name in NODE_RESOURCE_FLAGS:
        if flags.get(name) != agent["flags"].get(name):
            problem(where, f"--{name}={flags.get(name)}, but the DaemonSet "
                    f"passes {agent['flags'].get(name)}")
    check_paths(where, flags, pod, c, pins_made_here=False)


def check_etcd(path, agent):
    docs = load_yaml(path)
    kinds = by_kind(path, docs, "Service", "StatefulSet")
    svc = kinds.get("Service")
    endpoint = (agent or {}).get("flags", {}).get("etcd_endpoints", "")
    m = re.fullmatch(r"http://([\w-]+)\.([\w-]+)\.svc(?:\.[\w.]+)?:(\d+)",
                     endpoint.split(",")[0])
    if svc and m:
        name, ns, port = m.groups()
        if (svc["metadata"]["name"], svc["metadata"].get("namespace")) != (name, ns):
            problem(path, f"Service {svc['metadata'].get('namespace')}/"
                    f"{svc['metadata']['name']} is not the --etcd_endpoints "
                    f"one, {ns}/{name}")
        if int(port) not in [p["port"] for p in svc["spec"]["ports"]]:
            problem(path, f"Service has no port {port} (--etcd_endpoints)")


def check_unit(path, defined):
    """The Vagrant VMs' systemd unit: ExecStart's flags."""
    text = open(path).read().replace("\\\n", " ")
    m = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
    if not m:
        problem(path, "no ExecStart")
        return
    if os.path.basename(m.group(1)) != "nodemesh-agent":
        problem(path, f"ExecStart runs {m.group(1)}, not nodemesh-agent")
    parse_flags(path, m.group(2).split(), defined)


def containerfile_runtime_packages(text):
    """Packages the last stage installs with apt-get."""
    last = text.split("\nFROM ")[-1]
    m = re.search(r"apt-get install ([^&]*)", last.replace("\\\n", " "))
    return {w for w in m.group(1).split() if not w.startswith("-")} if m else set()


def linked_packages(binary):
    """{soname: Debian package} of the libraries the binary links directly."""
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                        subprocess.run(["readelf", "-d", binary],
                                       capture_output=True, text=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)",
                            subprocess.run(["ldd", binary], capture_output=True,
                                           text=True).stdout, re.M))
    out = {}
    for soname in needed:
        path = os.path.realpath(paths.get(soname, soname))
        run = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if run.returncode != 0:  # /lib vs /usr/lib: try the merged-/usr twin
            alt = path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/") \
                else "/usr" + path
            run = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        out[soname] = run.stdout.split(":")[0] if run.returncode == 0 else None
    return out


# Every Debian image has these; the Containerfile need not list them.
ESSENTIAL = {"libc6", "libgcc-s1"}


def check_containerfile(path, source_dir, build_dir, binaries):
    text = open(path).read()
    # The builder must copy every directory the top-level CMakeLists.txt reads.
    cmake = open(os.path.join(source_dir, "CMakeLists.txt")).read()
    needed = set(re.findall(r"add_subdirectory\((\w+)\)", cmake)) | \
        set(re.findall(r"\$\{CMAKE_SOURCE_DIR\}/(\w+)", cmake))
    copied = set(re.findall(r"^COPY (\w+)/", text, re.M))
    for d in sorted(needed - copied):
        problem(path, f"the builder does not COPY {d}/, which CMakeLists.txt reads")

    products = {os.path.relpath(b, build_dir): b for b in binaries}
    copies = re.findall(r"^COPY --from=\w+ /src/build/(\S+) (\S+)", text, re.M)
    for rel in products:
        if rel not in [r for r, _ in copies]:
            problem(path, f"does not copy build/{rel} into the image")
    for rel, dest in copies:
        if rel not in products:
            problem(path, f"copies build/{rel}, which the build does not make "
                    f"(it makes {', '.join(sorted(products))})")
    m = re.search(r'^ENTRYPOINT \["([^"]+)"', text, re.M)
    agent_name = os.path.basename(binaries[0])
    if not m or os.path.basename(m.group(1)) != agent_name or \
            agent_name not in [os.path.basename(d) for _, d in copies]:
        problem(path, f"ENTRYPOINT is not the copied {agent_name}")

    # The runtime packages, where the libraries' packages can be named: a
    # release build on Debian 12 (the image's base).
    with open("/etc/os-release") as f:
        debian12 = 'VERSION_ID="12"' in f.read()
    packages = containerfile_runtime_packages(text)
    for binary in binaries:
        linked = linked_packages(binary)
        if not debian12 or any("asan" in s or "ubsan" in s for s in linked):
            print(f"note: {binary}: not a release build on Debian 12; its "
                  "libraries are not checked against the Containerfile")
            continue
        for soname, pkg in sorted(linked.items()):
            if pkg is None:
                problem(path, f"{os.path.basename(binary)} links {soname}, "
                        "which no Debian package provides")
            elif pkg not in packages and pkg not in ESSENTIAL:
                problem(path, f"{os.path.basename(binary)} links {soname}: the "
                        f"runtime stage must install {pkg}")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    source_dir, build_dir, agent, ctl = sys.argv[1:]
    defined = agent_flags(agent)
    deploy = os.path.join(source_dir, "deploy")
    daemonset = check_daemonset(os.path.join(deploy, "nodemesh-agent.yaml"),
                                defined)
    check_cleanup(os.path.join(deploy, "nodemesh-cleanup.yaml"), defined,
                  daemonset)
    check_etcd(os.path.join(deploy, "etcd.yaml"), daemonset)
    check_containerfile(os.path.join(deploy, "Containerfile"), source_dir,
                        build_dir, [agent, ctl])
    check_unit(os.path.join(source_dir, "vagrant", "nodemesh-agent.service"),
               defined)
    for script in ("provision.sh", "make-secrets.sh"):
        run = subprocess.run(["bash", "-n",
                              os.path.join(source_dir, "vagrant", script)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            problem(f"vagrant/{script}", run.stderr.strip())

    for p in problems:
        print(p)
    if problems:
        print(f"deploy_manifest_test: {len(problems)} problem(s)")
        return 1
    print("deploy_manifest_test: deploy/ and vagrant/ agree with the built "
          f"agent ({len(defined)} flags defined)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
