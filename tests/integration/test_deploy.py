"""Packaging: the image recipe, compose file and Kubernetes manifests.

No Docker engine runs here, so the Dockerfile's stages are scripts
(deploy/image/) that this test runs directly: build.sh installs into a staging
root, and the installed binary and container helpers are exercised for real.
The Dockerfile itself is parsed for the instructions a production image needs,
and each kustomize overlay is rendered with kubectl and checked as objects.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests
import yaml

from conftest import BIN, ROOT, free_port, run_cli

IMAGE = os.path.join(ROOT, "deploy", "image")
K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAYS = ["single-node", "production"]
DATA_DIR = "/var/lib/listend"
# Packages every debian:bookworm-slim image already has (libc, libm, libgcc_s).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1"}


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def package_list(name):
    return [l.strip() for l in read("deploy", "image", name).splitlines() if l.strip() and not l.strip().startswith("#")]


def bootstrap_pkgs():
    body = re.search(r"^PKGS=\((.*?)^\)", read("scripts", "bootstrap.sh"), re.S | re.M).group(1)
    return {w for line in body.splitlines() for w in line.split("#")[0].split()}


# --- Dockerfile ---------------------------------------------------------------

def dockerfile_stages():
    """[(from, [(INSTRUCTION, args)])], continuation lines joined, ARGs resolved."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
            continue
        if instr == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            stages.append((image, []))
        stages[-1][1].append((instr, rest))
    return stages


def final(instr):
    return [rest for i, rest in dockerfile_stages()[-1][1] if i == instr]


def image_uid():
    user = final("USER")[-1]
    return int(user.split(":")[0])


def test_dockerfile_is_multistage_bookworm_slim():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    assert all(img == "debian:bookworm-slim" for img, _ in stages)
    build_runs = " ; ".join(r for i, r in stages[0][1] if i == "RUN")
    assert "deploy/image/build.sh deps" in build_runs and "deploy/image/build.sh build" in build_runs
    assert any("runtime-setup.sh" in r for r in final("RUN"))
    # The runtime stage takes only the staged install from the build stage.
    assert any(r.startswith("--from=") for r in final("COPY"))


def test_dockerfile_runtime_instructions():
    assert image_uid() != 0, "USER must be non-root"
    assert re.search(rf"\bLISTEND_DATA={DATA_DIR}\b", " ".join(final("ENV")))
    assert any(DATA_DIR in v for v in final("VOLUME"))
    assert any(re.search(r"\b7100\b", e) for e in final("EXPOSE"))
    assert final("STOPSIGNAL") == ["SIGTERM"]
    hc = final("HEALTHCHECK")
    assert hc and "CMD" in hc[0] and "listend-healthcheck" in hc[0]
    assert "listend-entrypoint" in final("ENTRYPOINT")[0]
    assert "serve" in final("CMD")[0]
    # The uid the image runs as is the one runtime-setup.sh creates and owns the data dir with.
    assert f'uid="${{LISTEND_UID:-{image_uid()}}}"' in read("deploy", "image", "runtime-setup.sh")


def test_dockerfile_copies_exist_and_are_not_dockerignored():
    ignored = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
    for _, instrs in dockerfile_stages():
        for instr, rest in instrs:
            if instr != "COPY" or rest.startswith("--from"):
                continue
            for src in rest.split()[:-1]:
                if src == ".":
                    continue
                assert os.path.exists(os.path.join(ROOT, src)), src
                assert not any(src == p or src.startswith(p.rstrip("/") + "/") for p in ignored), src
    # What build.sh installs must be in the build context too.
    for path in ["src", "CMakeLists.txt", "docs/deploy.md", "deploy/image"]:
        assert path not in ignored


# --- package lists ------------------------------------------------------------

def test_package_names_exist_in_apt():
    names = set(package_list("runtime-packages.txt")) | set(package_list("build-packages.txt"))
    # Installed ones are known to dpkg even where apt's lists were cleaned; ask apt for the rest.
    q = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\\n", *sorted(names)], capture_output=True, text=True)
    missing = names - set(q.stdout.split())
    for name in sorted(missing):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True)
        assert r.returncode == 0 and f"Package: {name}" in r.stdout, f"no Debian package {name}"


def test_build_packages_match_bootstrap():
    build, pkgs = set(package_list("build-packages.txt")), bootstrap_pkgs()
    assert build <= pkgs, f"not in scripts/bootstrap.sh: {build - pkgs}"
    dev = {p for p in pkgs if p.endswith("-dev") and not p.startswith("libclang")}
    assert dev <= build, f"-dev packages missing from build-packages.txt: {dev - build}"


# --- the build script and what it installs ------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Runs deploy/image/build.sh build into a staging root; returns its bin dir.
    Reuses the build dir CI just built LISTEND_BIN in (incremental: seconds)."""
    build_dir = os.path.dirname(BIN)
    cache = os.path.join(build_dir, "CMakeCache.txt")
    if not (os.path.exists(cache) and f"CMAKE_HOME_DIRECTORY:INTERNAL={ROOT}\n" in open(cache).read()):
        build_dir = os.path.join(ROOT, "build-deploy-test")
    dest = tmp_path_factory.mktemp("destdir")
    env = dict(os.environ, LD_BUILD_DIR=build_dir, DESTDIR=str(dest), PREFIX="/usr/local", JOBS="2")
    r = subprocess.run([os.path.join(IMAGE, "build.sh"), "build"], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return dest / "usr" / "local" / "bin"


def test_installed_binary_runs(installed):
    listend = installed / "listend"
    h = subprocess.run([listend, "--help"], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0 and "serve" in h.stdout
    v = subprocess.run([listend, "--version"], capture_output=True, text=True, timeout=30)
    version = re.search(r"project\(listend VERSION ([\d.]+)", read("CMakeLists.txt")).group(1)
    assert v.returncode == 0 and v.stdout.strip() == f"listend {version}"
    assert (installed.parent / "share" / "doc" / "listend" / "deploy.md").exists()


def test_runtime_packages_provide_every_linked_library(installed):
    listend = str(installed / "listend")
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", listend], capture_output=True,
                                                          text=True, check=True).stdout)
    assert needed
    allowed = set(package_list("runtime-packages.txt")) | BASE_IMAGE_PACKAGES
    for soname in needed:
        owners = subprocess.run(["dpkg", "-S", soname], capture_output=True, text=True).stdout
        pkgs = {line.split(":")[0] for line in owners.splitlines() if line.rstrip().endswith("/" + soname)}
        assert pkgs, f"no package ships {soname}"
        assert pkgs & allowed, f"{soname} comes from {pkgs}: add it to deploy/image/runtime-packages.txt"
    # The default English model the server loads comes from a runtime package.
    model = subprocess.run(["dpkg", "-S", "/usr/share/pocketsphinx/model/en-us"], capture_output=True, text=True)
    assert model.stdout.split(":")[0] in allowed


def serve_help(installed):
    r = subprocess.run([installed / "listend-entrypoint", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_entrypoint_defaults_to_serve_and_passes_commands(installed, tmp_path):
    # Flags alone go to `serve`; another command runs as given.
    assert "usage: listend serve" in serve_help(installed)
    r = subprocess.run([installed / "listend-entrypoint", "keys", "init", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "issuer.pub").exists()


def test_container_start_health_and_sigterm(installed, tmp_path):
    """What `docker run` + HEALTHCHECK + `docker stop` do, minus the container."""
    # Public keys only, in trusted/ as the compose file and manifests mount them.
    operator = tmp_path / "operator"
    run_cli("keys", "init", data=operator)
    data = tmp_path / "data"
    (data / "trusted").mkdir(parents=True)
    shutil.copy(operator / "issuer.pub", data / "trusted" / "issuer-1.pub")
    port = free_port()
    env = dict(os.environ, LISTEND_DATA=str(data), API_SERVER_PORT=str(port), LISTEND_HOST="127.0.0.1",
               LISTEND_WORKERS="1", LISTEND_HTTP_THREADS="1")
    env.pop("LISTEND_TLS_CERT", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([installed / "listend-entrypoint"], env=env, stdout=log, stderr=subprocess.STDOUT)
    health = [str(installed / "listend-healthcheck")]
    try:
        deadline = time.time() + 60
        while subprocess.run(health, env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.time() < deadline, "healthcheck never passed"
            time.sleep(0.2)
        # A key issued on the operator machine is accepted by the server holding only the public key.
        key = run_cli("keys", "issue", "--name", "deploy", data=operator).stdout.strip()
        with open("/usr/share/pocketsphinx/test/data/goforward.raw", "rb") as f:
            r = requests.post(f"http://127.0.0.1:{port}/v1/listen?encoding=linear16&sample_rate=16000",
                              headers={"Authorization": f"Token {key}"}, files={"audio": f}, timeout=60)
        assert r.status_code == 200, r.text
        # https against a plain listener must fail: the scheme switch is real.
        assert subprocess.run(health, env=dict(env, LISTEND_HEALTH_SCHEME="https"),
                              capture_output=True).returncode != 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        assert subprocess.run(health, env=env, capture_output=True).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_configured_env_and_flags_exist_in_serve(installed):
    """Every server variable the compose file and manifests set is one `serve` reads."""
    known = set(re.findall(r"\b(?:LISTEND|API_SERVER)_[A-Z_]+\b", serve_help(installed)))
    used = set()
    for compose in (("docker-compose.yml",), ("deploy", "compose", "tls.yml")):
        for s in yaml.safe_load(read(*compose))["services"].values():
            used |= {k for k in s.get("environment", {}) if k.startswith(("LISTEND_", "API_SERVER_"))}
    for overlay in OVERLAYS:
        for obj in render(overlay):
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("listend-config"):
                used |= set(obj["data"])
    assert used and used <= known, f"not options of listend serve: {used - known}"


# --- docker-compose -------------------------------------------------------------

def mount_target(volume):
    """'${VAR:-./dir}:/path:ro' -> '/path' (compose short syntax, variables allowed)."""
    return re.sub(r"\$\{[^}]*\}", "X", volume).split(":")[1]


def test_compose_two_replicas_redis_and_tls():
    c = yaml.safe_load(read("docker-compose.yml"))
    svc = c["services"]
    listends = [s for s in svc.values() if s.get("build")]
    assert len(listends) >= 2
    redis = svc["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]
    host_ports = set()
    for s in listends:
        assert s["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert s["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "listend-healthcheck" in " ".join(s["healthcheck"]["test"])
        assert duration_s(s["stop_grace_period"]) > duration_s(s["environment"]["LISTEND_DRAIN_TIMEOUT"])
        mounts = {mount_target(v): v for v in s["volumes"]}
        assert DATA_DIR in mounts and mounts[f"{DATA_DIR}/trusted"].endswith(":ro")
        host_ports |= {p.split(":")[0] for p in s["ports"]}
        assert all(p.endswith(":7100") for p in s["ports"])
    assert len(host_ports) == len(listends)
    # Each replica its own data volume (SQLite), the same public keys.
    assert len({next(v for v in s["volumes"] if v.endswith(DATA_DIR)) for s in listends}) == len(listends)
    assert len({next(v for v in s["volumes"] if "/trusted" in v) for s in listends}) == 1

    tls = yaml.safe_load(read("deploy", "compose", "tls.yml"))["services"]
    for name, s in svc.items():
        if s.get("build"):
            t = tls[name]
            mount = mount_target(t["volumes"][0])
            for k in ("LISTEND_TLS_CERT", "LISTEND_TLS_KEY"):
                assert t["environment"][k].startswith(mount + "/")


# --- Kubernetes -------------------------------------------------------------------

_rendered = {}


def render(overlay):
    if overlay not in _rendered:
        if not shutil.which("kubectl"):
            pytest.skip("kubectl (with kustomize) is not installed")
        r = subprocess.run(["kubectl", "kustomize", os.path.join(K8S, "overlays", overlay)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        _rendered[overlay] = [d for d in yaml.safe_load_all(r.stdout) if d]
    return _rendered[overlay]


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def duration_s(text):
    m = re.fullmatch(r"(\d+)([smhd]?)", str(text).strip())
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def quantity(text, unit):
    units = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    m = re.fullmatch(r"([\d.]+)(m|Ki|Mi|Gi|)", str(text))
    return float(m.group(1)) * units[m.group(2)] / units[unit]


def listend_pod(objs):
    dep = one(objs, "Deployment", "listend")
    spec = dep["spec"]["template"]["spec"]
    ctr = next(c for c in spec["containers"] if c["name"] == "listend")
    config = one(objs, "ConfigMap", next(e["configMapRef"]["name"] for e in ctr["envFrom"]))["data"]
    return dep, spec, ctr, config


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_deployment(overlay):
    objs = render(overlay)
    dep, spec, ctr, config = listend_pod(objs)
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    port = next(p for p in ctr["ports"] if p["containerPort"] == 7100)
    assert config["API_SERVER_PORT"] == "7100" and config["LISTEND_DATA"] == DATA_DIR

    probes = {k: ctr[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/health"
    assert probes["livenessProbe"]["path"] == "/livez"
    assert probes["startupProbe"]["path"] == "/health"
    assert all(p["port"] in (port["name"], 7100) for p in probes.values())
    tls = "LISTEND_TLS_CERT" in config
    assert all(p.get("scheme", "HTTP") == ("HTTPS" if tls else "HTTP") for p in probes.values())
    sp = ctr["startupProbe"]
    assert sp["periodSeconds"] * sp["failureThreshold"] >= 60, "startup probe must allow model loading"

    # Annotation-driven Prometheus scrapes plain HTTP unless told https: with listend's own TLS the
    # annotations must name the plain-HTTP metrics port (the HPA's asr_active_requests comes from there).
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    scrape = int(ann["prometheus.io/port"])
    metrics_port = int(config.get("LISTEND_METRICS_PORT", "0"))
    assert scrape == (metrics_port or 7100) and ann["prometheus.io/path"] == "/metrics"
    assert ann.get("prometheus.io/scheme", "http") == ("https" if tls and not metrics_port else "http")
    assert any(p["containerPort"] == scrape for p in ctr["ports"])

    # SIGKILL only after the preStop sleep and the server's whole drain.
    pre_stop = ctr["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = duration_s(config.get("LISTEND_DRAIN_TIMEOUT", "30s"))
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + drain

    # Sizing rule (docs/deploy.md): one batch decoder per requested core, ~150 Mi each;
    # the limit also holds a ~115 Mi decoder per live stream (default 32 would not fit).
    res = ctr["resources"]
    workers, streams = int(config["LISTEND_WORKERS"]), int(config["LISTEND_MAX_STREAMS"])
    assert quantity(res["requests"]["cpu"], "") == workers
    assert quantity(res["requests"]["memory"], "Mi") >= 150 * workers
    assert quantity(res["limits"]["memory"], "Mi") >= 115 * (workers + streams)
    assert quantity(res["limits"]["memory"], "Mi") >= 2 * quantity(res["requests"]["memory"], "Mi")

    sc, csc = spec["securityContext"], ctr["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == image_uid() != 0
    assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"]["drop"] == ["ALL"]

    # Issuer public keys: a generated ConfigMap mounted as a directory under the data dir.
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    keys = volumes[mounts[f"{DATA_DIR}/trusted"]["name"]]["configMap"]["name"]
    assert mounts[f"{DATA_DIR}/trusted"]["readOnly"] is True and "subPath" not in mounts[f"{DATA_DIR}/trusted"]
    assert any(n.endswith(".pub") for n in one(objs, "ConfigMap", keys)["data"])
    assert DATA_DIR in mounts

    svc = one(objs, "Service", "listend")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert any(p["port"] == 7100 and p["targetPort"] in (port["name"], 7100) for p in svc["spec"]["ports"])
    # Secrets are created out of band, never rendered from the repository.
    assert not [o for o in objs if o["kind"] == "Secret"]


def test_k8s_single_node():
    objs = render("single-node")
    dep, spec, ctr, config = listend_pod(objs)
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    data = next(m for m in ctr["volumeMounts"] if m["mountPath"] == DATA_DIR)
    vol = next(v for v in spec["volumes"] if v["name"] == data["name"])
    assert set(vol) == {"name", "persistentVolumeClaim"}
    one(objs, "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"])
    assert not any("redis" in o["metadata"]["name"] for o in objs)
    assert "REDIS_URL" not in config and not any(e["name"] == "REDIS_URL" for e in ctr.get("env", []))


def test_k8s_production():
    objs = render("production")
    dep, spec, ctr, config = listend_pod(objs)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] >= 2

    redis_url = next(e for e in ctr["env"] if e["name"] == "REDIS_URL")["valueFrom"]["secretKeyRef"]
    assert redis_url["name"] and redis_url["key"]
    redis = one(objs, "Deployment", "listend-redis")
    rc = redis["spec"]["template"]["spec"]["containers"][0]
    assert "--appendonly" in rc["args"] and rc["args"][rc["args"].index("--appendonly") + 1] == "yes"
    assert any(e["valueFrom"]["secretKeyRef"]["name"] == redis_url["name"] for e in rc["env"])
    assert one(objs, "Service", "listend-redis")["spec"]["ports"][0]["port"] == 6379

    # TLS files come from a Secret mounted where the config points.
    tls_mount = next(m for m in ctr["volumeMounts"] if config["LISTEND_TLS_CERT"].startswith(m["mountPath"] + "/"))
    assert config["LISTEND_TLS_KEY"].startswith(tls_mount["mountPath"] + "/")
    tls_vol = next(v for v in spec["volumes"] if v["name"] == tls_mount["name"])
    assert tls_vol["secret"]["secretName"]

    hpa = one(objs, "HorizontalPodAutoscaler", "listend")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "listend"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    metrics = hpa["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    assert any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "asr_active_requests" for m in metrics)

    pdb = one(objs, "PodDisruptionBudget", "listend")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "maxUnavailable" in pdb["spec"] or pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]

    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
