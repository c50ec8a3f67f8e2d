#!/usr/bin/env python3
"""Checks Dockerfile, compose.yaml and deploy/docker/ on a machine without a Docker engine.

ctest runs it as `docker_files` with the parley binary it built and the source directory:

    tests/deploy/check_docker.py BUILD/parley SOURCE_DIR

What it checks (each a pass/fail line, exit status 1 on any failure):
- every file the Dockerfile COPYs from the build context exists and is not in .dockerignore;
- both stages are debian:12-slim, the build stage runs scripts/install-deps.sh (as `make run`);
- the runtime stage installs a Debian package for every shared library `ldd parley` names;
- the runtime stage runs as a non-root user, has a HEALTHCHECK, a VOLUME for the database, EXPOSE;
- deploy/docker/config.ini starts the real binary, and the health-check script says healthy
  while it runs and unhealthy once it stopped;
- compose.yaml parses, runs nginx with deploy/nginx/parley.conf in parley's network namespace,
  and the arguments it gives parley start the real binary with the hosts it names allowed;
- compose's profile `cluster` is self-contained (redis, nginx-cluster, parley-a, parley-b name
  only each other): Redis 7 with appendonly and appendfsync always on a volume, nginx with
  deploy/nginx/cluster.conf, whose upstream lists exactly the nodes' ports; the nodes in its
  network namespace with distinct ports, admin ports, node ids and volumes, in cluster mode
  pointing at the redis service; and, once the binary has [cluster] options, each node's
  arguments start it against a real redis-server (Debian's, on a loopback port) until /readyz
  answers 200.
What it cannot check is that the image builds and runs: that needs a Docker engine.
"""

import fnmatch
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

binary, source = sys.argv[1], sys.argv[2]
results = []


def check(ok, what, detail=""):
    results.append(ok)
    print(("ok:   " if ok else "FAIL: ") + what + ("" if ok or not detail else f"\n      {detail}"))


def read(path):
    with open(os.path.join(source, path)) as f:
        return f.read()


# -- the Dockerfile -----------------------------------------------------------------------------

def instructions(text):
    """(keyword, arguments) per instruction, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if current.strip():
                keyword, _, args = current.strip().partition(" ")
                out.append((keyword.upper(), args.strip()))
            current = ""
    return out


dockerfile = instructions(read("Dockerfile"))
stages = []  # instructions per stage
for keyword, args in dockerfile:
    if keyword == "FROM":
        stages.append([])
    stages[-1].append((keyword, args))
check(len(stages) == 2, "the Dockerfile has two stages", f"found {len(stages)}")
build, runtime = stages[0], stages[-1]

check(re.fullmatch(r"debian:12-slim\s+AS\s+build", build[0][1], re.I) is not None,
      "the build stage is FROM debian:12-slim AS build", build[0][1])
check(runtime[0][1] == "debian:12-slim", "the runtime stage is FROM debian:12-slim", runtime[0][1])
check(any(k == "RUN" and "./scripts/install-deps.sh" in a for k, a in build),
      "the build stage installs its packages with scripts/install-deps.sh, as `make run` does")
check(any(k == "RUN" and "-DCMAKE_BUILD_TYPE=Release" in a for k, a in build),
      "the build stage builds Release")

ignored = [l.strip().rstrip("/") for l in read(".dockerignore").splitlines()
           if l.strip() and not l.startswith("#")]


def excluded(path):
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return [p for p in ignored if any(fnmatch.fnmatch(prefix, p) for prefix in prefixes)]


for keyword, args in dockerfile:
    if keyword != "COPY" or args.startswith("--from="):
        continue
    *sources, _destination = shlex.split(args)
    for src in sources:
        path = src.rstrip("/")
        check(os.path.exists(os.path.join(source, path)), f"COPY source {src} exists")
        hits = excluded(path)
        check(not hits, f"COPY source {src} is not excluded by .dockerignore", f"matched {hits}")

installed = []
for keyword, args in runtime:
    if keyword == "RUN" and "apt-get install" in args:
        after = args.split("--no-install-recommends", 1)[1]
        installed += after.split("&&", 1)[0].split()
check(bool(installed), "the runtime stage installs packages with apt-get", "no apt-get install found")


def package_of(path):
    real = os.path.realpath(path)
    candidates = {path, real}
    for p in list(candidates):  # merged /usr: dpkg knows one of /lib and /usr/lib
        if p.startswith("/usr/lib/"):
            candidates.add(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.add("/usr" + p)
    for p in candidates:
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    return None


# The tests' binary is built with ASan and UBSan; the image's Release build links neither.
sanitizer_runtimes = ("libasan.so", "libubsan.so", "liblsan.so", "libtsan.so")
ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
libraries = []
for line in ldd.splitlines():
    m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
    if m and m.group(m.lastindex).startswith("/"):
        name, path = m.group(1), m.group(m.lastindex)
        if not name.startswith(sanitizer_runtimes):
            libraries.append((name, path))
check(len(libraries) >= 5, "ldd lists the binary's shared libraries", ldd)
for name, path in libraries:
    package = package_of(path)
    check(package is not None and package in installed,
          f"{name} comes from a package the runtime stage installs ({package})",
          f"installed: {' '.join(installed)}")

users = [a for k, a in runtime if k == "USER"]
check(bool(users) and users[-1] not in ("root", "0"), "the runtime stage runs as a non-root user", users)
check(any(k == "HEALTHCHECK" and "parley-healthcheck" in a for k, a in runtime),
      "the runtime stage has a HEALTHCHECK running the health-check script")
check(("VOLUME", "/var/lib/parley") in runtime, "the database directory is a VOLUME")
check(("EXPOSE", "8080") in runtime, "the runtime stage exposes 8080")
container_config = read("deploy/docker/config.ini")
check('path="/var/lib/parley/parley.db"' in container_config,
      "deploy/docker/config.ini keeps the database in the VOLUME")


# -- the binary with the container's settings ---------------------------------------------------

def start_parley(args, workdir):
    """Starts parley with `args` on a free loopback port; returns (process, port or None, output)."""
    command = [binary] + args + ["--server.address=127.0.0.1", "--server.port=0",
                                 f"--server.web_root={source}/web",
                                 f"--store.path={workdir}/parley.db"]
    # Output goes to a file, so that a chatty server never blocks on a full pipe.
    log_path = os.path.join(workdir, "parley.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    output, deadline = "", time.time() + 30
    while time.time() < deadline:
        with open(log_path, errors="replace") as log:
            output = log.read()
        m = re.search(r"parley listening on 127\.0\.0\.1:(\d+)", output)
        if m:
            return proc, int(m.group(1)), output
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return proc, None, output


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get_status(port, host):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": host})
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


healthcheck = os.path.join(source, "deploy/docker/healthcheck.sh")
with tempfile.TemporaryDirectory() as work:
    proc, port, output = start_parley([f"--config={source}/deploy/docker/config.ini"], work)
    check(port is not None, "parley starts with deploy/docker/config.ini", output[-3000:])
    if port is not None:
        env = dict(os.environ, PARLEY_HEALTH_PORT=str(port))
        healthy = subprocess.run([healthcheck], env=env, capture_output=True, text=True)
        check(healthy.returncode == 0, "the health check passes while parley runs",
              healthy.stdout + healthy.stderr)
        stop(proc)
        unhealthy = subprocess.run([healthcheck], env=env, capture_output=True, text=True)
        check(unhealthy.returncode != 0 and "unhealthy" in unhealthy.stdout,
              "the health check fails once parley stopped", unhealthy.stdout + unhealthy.stderr)
    else:
        stop(proc)


# -- compose.yaml -------------------------------------------------------------------------------

try:
    import yaml
except ImportError:
    yaml = None
check(yaml is not None, "python3-yaml is installed (scripts/install-deploy-test-deps.sh)")
if yaml is not None:
    compose = yaml.safe_load(read("compose.yaml"))
    services = compose.get("services", {})
    single, cluster = {"parley", "nginx"}, {"redis", "nginx-cluster", "parley-a", "parley-b"}
    check(set(services) == single | cluster,
          "compose.yaml runs parley and nginx, and the cluster's redis, nginx-cluster, parley-a, parley-b",
          list(services))
    parley, nginx = services.get("parley", {}), services.get("nginx", {})
    check(parley.get("build") == ".", "compose builds parley from this Dockerfile")
    check(any(str(v).endswith(":/var/lib/parley") for v in parley.get("volumes", [])),
          "compose keeps the database on a volume")
    check(nginx.get("network_mode") == "service:parley",
          "nginx shares parley's network namespace (the shipped upstream 127.0.0.1:8080 holds)")
    mounts = [str(v).split(":") for v in nginx.get("volumes", [])]
    check(any(m[0] == "./deploy/nginx/parley.conf" for m in mounts),
          "nginx mounts the shipped deploy/nginx/parley.conf")
    check(not any("8080" in str(p) for p in parley.get("ports", [])),
          "compose does not publish Parley's own port past nginx")
    # The arguments compose gives parley, run for real: they must parse and mean what they say.
    args = [str(a) for a in parley.get("command", [])]
    with tempfile.TemporaryDirectory() as work:
        proc, port, output = start_parley([f"--config={source}/deploy/docker/config.ini"] + args, work)
        check(port is not None, "parley starts with compose's arguments", output[-3000:])
        if port is not None:
            check(get_status(port, "chat.example.com") == 200,
                  "compose's allowed_hosts lets chat.example.com in")
            check(get_status(port, "elsewhere.example") == 421,
                  "compose's allowed_hosts keeps other names out")
        stop(proc)


# -- compose.yaml: the cluster profile ----------------------------------------------------------

def option(args, name):
    """The value of the last `--name=value` in args, or None."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else None


def references(service):
    """The services this one needs: depends_on and a network_mode of service:NAME."""
    deps = service.get("depends_on", [])
    refs = set(deps if isinstance(deps, list) else deps.keys())
    mode = str(service.get("network_mode", ""))
    if mode.startswith("service:"):
        refs.add(mode[len("service:"):])
    return refs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    """Debian's redis-server on a free loopback port, as the compose service runs it; (process, port)."""
    port = free_port()
    log = open(os.path.join(workdir, "redis.log"), "wb")
    proc = subprocess.Popen(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--daemonize", "no", "--dir", workdir, "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"*1\r\n$4\r\nPING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            pass
        time.sleep(0.05)
    return proc, None


def wait_ready(output_path, timeout=15):
    """The admin port from the node's output, then /readyz until it answers 200; the last status."""
    deadline, status = time.time() + timeout, None
    while time.time() < deadline:
        with open(output_path, errors="replace") as f:
            m = re.search(r"parley admin listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            req = urllib.request.Request(f"http://127.0.0.1:{m.group(1)}/readyz",
                                         headers={"Host": "127.0.0.1"})
            try:
                status = urllib.request.urlopen(req, timeout=5).status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = None
            if status == 200:
                return status
        time.sleep(0.1)
    return status


if yaml is not None:
    for name in sorted(single):
        check(not services.get(name, {}).get("profiles"),
              f"{name} has no profile: a plain `docker compose up` runs the single node")
    for name in sorted(cluster):
        service = services.get(name, {})
        check(service.get("profiles") == ["cluster"], f"{name} is in the compose profile `cluster` only",
              service.get("profiles"))
        outside = references(service) - cluster
        check(not outside, f"{name} needs only cluster services (they start by name on their own)",
              sorted(outside))

    redis = services.get("redis", {})
    check(str(redis.get("image", "")).startswith("redis:7"), "the cluster's Redis is the redis:7 image",
          redis.get("image"))
    command = [str(c) for c in redis.get("command", [])]
    pairs = dict(zip(command[1::2], command[2::2])) if command[:1] == ["redis-server"] else {}
    check(pairs.get("--appendonly") == "yes" and pairs.get("--appendfsync") == "always",
          "Redis runs with appendonly yes and appendfsync always (Parley's strict durability)", command)
    check(any(str(v).endswith(":/data") for v in redis.get("volumes", [])),
          "Redis keeps its append-only file on a volume (/data)")
    check(bool(redis.get("healthcheck")), "Redis has a health check the nodes wait for")
    check(not redis.get("ports"), "compose does not publish Redis")

    front = services.get("nginx-cluster", {})
    mounts = [str(v).split(":") for v in front.get("volumes", [])]
    check(any(m[0] == "./deploy/nginx/cluster.conf" and m[1] == "/etc/nginx/conf.d/default.conf"
              for m in mounts),
          "nginx-cluster mounts the shipped deploy/nginx/cluster.conf over the image's default site")
    published = [str(p) for p in front.get("ports", [])]
    check("80:80" in published and "443:443" in published, "nginx-cluster publishes 80 and 443", published)

    cluster_conf = read("deploy/nginx/cluster.conf")
    upstream = re.search(r"upstream parley_nodes \{(.*?)\}", cluster_conf, re.S)
    upstream_ports = sorted(re.findall(r"^\s*server 127\.0\.0\.1:(\d+)", upstream.group(1), re.M)) \
        if upstream else []
    check(len(upstream_ports) >= 2, "cluster.conf's upstream parley_nodes lists two nodes or more",
          upstream_ports)

    nodes = {name: services.get(name, {}) for name in ("parley-a", "parley-b")}
    node_args = {name: [str(a) for a in node.get("command", [])] for name, node in nodes.items()}
    for name, node in nodes.items():
        args = node_args[name]
        check(node.get("network_mode") == "service:nginx-cluster",
              f"{name} shares nginx-cluster's network namespace (cluster.conf's 127.0.0.1 upstream holds)")
        check(option(args, "cluster.mode") == "redis", f"{name} runs in cluster mode redis")
        check(option(args, "cluster.redis") == "redis:6379", f"{name} reaches the redis service at redis:6379",
              option(args, "cluster.redis"))
        check(option(args, "server.trusted_proxies") == '["127.0.0.1"]',
              f"{name} trusts X-Forwarded-For from nginx (127.0.0.1) only")
        check(str(node.get("environment", {}).get("PARLEY_HEALTH_PORT")) == option(args, "server.port"),
              f"{name}'s health check asks its own port")
        check(any(str(v).endswith(":/var/lib/parley") for v in node.get("volumes", [])),
              f"{name} keeps its database on a volume")
        check("redis" in references(node), f"{name} waits for Redis")

    def distinct(what):
        values = [option(args, what) for args in node_args.values()]
        return None not in values and len(set(values)) == len(values), values

    ok, ports = distinct("server.port")
    check(ok and sorted(ports) == upstream_ports, "the nodes' ports are distinct and exactly cluster.conf's upstream",
          f"nodes {ports}, upstream {upstream_ports}")
    ok, values = distinct("admin.port")
    check(ok, "the nodes' admin ports are distinct (they share one network namespace)", values)
    ok, values = distinct("cluster.node_id")
    check(ok and all(values), "every node has its own node id", values)
    node_volumes = [str(v).split(":")[0] for node in nodes.values() for v in node.get("volumes", [])]
    check(len(set(node_volumes)) == len(node_volumes), "every node has its own volume", node_volumes)

    # The nodes' arguments, run for real against Debian's redis-server: they must parse, and the
    # node must get ready (it reached Redis). Only a binary with [cluster] options can.
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    if "cluster.mode" not in help_text:
        print("skip: this parley has no [cluster] options yet; the nodes' arguments are not run")
    else:
        check(shutil.which("redis-server") is not None or os.path.exists("/usr/bin/redis-server"),
              "redis-server is installed (scripts/install-cluster-test-deps.sh)")
        with tempfile.TemporaryDirectory() as work:
            redis_proc, redis_port = start_redis(work)
            check(redis_port is not None, "Debian's redis-server starts for the nodes",
                  open(os.path.join(work, "redis.log"), errors="replace").read()[-3000:])
            if redis_port is not None:
                for name, args in node_args.items():
                    replaced = ("--server.port=", "--admin.port=", "--cluster.redis=")
                    run_args = [a for a in args if not a.startswith(replaced)]
                    run_args += ["--admin.port=0", f"--cluster.redis=127.0.0.1:{redis_port}"]
                    node_dir = os.path.join(work, name)
                    os.mkdir(node_dir)
                    proc, port, output = start_parley(
                        [f"--config={source}/deploy/docker/config.ini"] + run_args, node_dir)
                    check(port is not None, f"{name} starts with compose's arguments", output[-3000:])
                    if port is not None:
                        check(get_status(port, "chat.example.com") == 200,
                              f"{name}'s allowed_hosts lets chat.example.com in")
                        status = wait_ready(os.path.join(node_dir, "parley.log"))
                        check(status == 200, f"{name} gets ready against Redis (/readyz 200)",
                              f"last /readyz status: {status}")
                    stop(proc)
            stop(redis_proc)

passed, failed = results.count(True), results.count(False)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
