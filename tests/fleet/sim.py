#!/usr/bin/env python3
"""A fleet of N simulated routers against a real nginx origin and a real
mosquitto broker, all in network namespaces this script makes and removes.

Each device is a network namespace with its own store, runtime dir and
cgroup parent, running its own `berth apply --serve --mqtt` that polls the
signed manifest from nginx. One more namespace holds the servers; a hub
namespace holds the bridge they all hang on. Nothing touches the host's own
interfaces, routes or cgroups beyond what is made here and removed at the
end, even on failure.

Scenarios (each timed, with origin requests and broker messages counted):
  boot      first boot: every device fetches v1, pulls the image, reports v1
  doorbell  v2 published, `apply 2` on berth/all/cmd: every device reports v2
  rollback  v3 whose container fails its health check: every device rolls
            back to v2 and reports why
  replay    the old v1 published again: refused by every device
  forged    a v4 signed by an unknown key: refused by every device
  origin    nginx down, v5 published meanwhile: devices keep running, then
            converge on v5 by polling when nginx is back
  broker    mosquitto down, v6 published: devices converge by polling, and
            their status catches up when the broker is back
  junk      garbage and a retained `apply` on cmd topics: ignored (logged
            once), no request to the origin
  lastwill  one agent killed with SIGKILL: the broker says `offline` (its Last
            Will); restarted, it is `online` again and its containers were
            never touched
  idle      unchanged polls: every manifest request answered 304; agents'
            idle CPU and memory

Usage: sim.py BERTH ROOTFS_TAR_GZ N OUT.md [--interval SECS]
Exit 0 when every scenario converged on every device.
"""

import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "bsim"
SRV_IP = "10.77.0.2"
BROKER = f"mqtt://{SRV_IP}"
ORIGIN = f"http://{SRV_IP}"


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def ns(name, *args, **kw):
    return sh(*enter(name), *args, **kw)


def enter(name):
    # nsenter, not `ip netns exec`: that one remounts /sys for the
    # namespace, and berth would find no cgroup filesystem under it.
    return ["nsenter", f"--net=/run/netns/{name}"]


class Observer:
    """mosquitto_sub on berth/#: every message with the time it came."""

    def __init__(self):
        self.messages = []  # (time, topic, payload)
        self.lock = threading.Lock()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", f"{PREFIX}-srv", "mosquitto_sub", "-h", SRV_IP,
             "-v", "-t", "berth/#", "-q", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            with self.lock:
                self.messages.append((time.time(), topic, payload))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def since(self, t0):
        with self.lock:
            return [m for m in self.messages if m[0] >= t0]

    def latest_status(self):
        """device -> (time, status dict) of its newest status message."""
        out = {}
        with self.lock:
            for t, topic, payload in self.messages:
                parts = topic.split("/")
                if len(parts) == 3 and parts[2] == "status":
                    try:
                        out[parts[1]] = (t, json.loads(payload))
                    except ValueError:
                        pass
        return out


class Fleet:
    def __init__(self, berth, rootfs, n, interval):
        self.berth = os.path.abspath(berth)
        self.rootfs = os.path.abspath(rootfs)
        self.n = n
        self.interval = interval
        self.dir = tempfile.mkdtemp(prefix="berth-fleet-sim.")
        self.origin = os.path.join(self.dir, "origin")
        self.devices = [f"d{i:02d}" for i in range(1, n + 1)]
        self.procs = {}
        self.nginx = None
        self.mosquitto = None
        self.observer = Observer()
        self.results = []
        self.idle = None

    # --- the world -------------------------------------------------------
    def setup(self):
        os.makedirs(self.origin)
        hub, srv = f"{PREFIX}-hub", f"{PREFIX}-srv"
        for name in [hub, srv] + [f"{PREFIX}-{d}" for d in self.devices]:
            sh("ip", "netns", "add", name)
            ns(name, "ip", "link", "set", "lo", "up")
        ns(hub, "ip", "link", "add", "br0", "type", "bridge")
        ns(hub, "ip", "link", "set", "br0", "up")
        plug = [("srv", srv, SRV_IP)] + [
            (d, f"{PREFIX}-{d}", f"10.77.1.{i}") for i, d in enumerate(self.devices, 1)]
        for short, name, ip in plug:
            # Both ends are made straight inside their namespaces.
            sh("ip", "link", "add", f"v{short}", "netns", hub, "type", "veth",
               "peer", "name", "eth0", "netns", name)
            ns(hub, "ip", "link", "set", f"v{short}", "master", "br0", "up")
            ns(name, "ip", "addr", "add", f"{ip}/16", "dev", "eth0")
            ns(name, "ip", "link", "set", "eth0", "up")
        # Keys: the fleet's, and one nobody trusts.
        b = self.berth
        sh(b, "key", "generate", f"{self.dir}/fleet", "--no-passphrase")
        sh(b, "key", "generate", f"{self.dir}/forged", "--no-passphrase")
        os.makedirs(f"{self.dir}/keys")
        shutil.copy(f"{self.dir}/fleet.pub", f"{self.dir}/keys/")
        shutil.copy(self.rootfs, f"{self.origin}/busybox.tar.gz")
        with open(self.rootfs, "rb") as f:
            self.image_sha = hashlib.sha256(f.read()).hexdigest()
        self.start_nginx()
        self.start_mosquitto()

    def start_nginx(self):
        conf = f"{self.dir}/nginx.conf"
        with open(conf, "w") as f:
            f.write(f"""daemon off;
user root;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    log_format sim '$msec $remote_addr "$request" $status $body_bytes_sent';
    access_log {self.dir}/access.log sim;
    client_body_temp_path {self.dir}/nginx-body;
    default_type application/octet-stream;
    server {{
        listen {SRV_IP}:80;
        root {self.origin};
    }}
}}
""")
        self.nginx = subprocess.Popen(
            ["ip", "netns", "exec", f"{PREFIX}-srv", "nginx", "-c", conf, "-p", self.dir],
            stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/nginx.out", "a"))
        self.wait_port(80, "nginx")

    def stop_nginx(self):
        self.nginx.terminate()
        self.nginx.wait()

    def start_mosquitto(self):
        conf = f"{self.dir}/mosquitto.conf"
        with open(conf, "w") as f:
            # No persistence: after a restart, the statuses are back only
            # because the devices publish them again.
            f.write(f"listener 1883 {SRV_IP}\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000\n")
        self.mosquitto = subprocess.Popen(
            ["ip", "netns", "exec", f"{PREFIX}-srv", "mosquitto", "-c", conf],
            stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/mosquitto.out", "a"))
        self.wait_port(1883, "mosquitto")
        self.observer.start()

    def stop_mosquitto(self):
        self.observer.stop()
        self.mosquitto.terminate()
        self.mosquitto.wait()

    def wait_port(self, port, what):
        for _ in range(100):
            r = ns(f"{PREFIX}-srv", "sh", "-c",
                   f"ss -ltn | grep -q '{SRV_IP}:{port} '", check=False)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not listen on {SRV_IP}:{port}")

    def teardown(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        empty = f"{self.dir}/empty.yaml"
        with open(empty, "w") as f:
            f.write("version: 1\ncontainers: {}\n")
        for d in self.devices:
            ns(f"{PREFIX}-{d}", *self.device_args(d), "apply", empty, check=False)
            for ctrl in os.listdir("/sys/fs/cgroup"):
                cg = f"/sys/fs/cgroup/{ctrl}/{PREFIX}-{d}"
                if os.path.isdir(cg):
                    for c in os.listdir(cg):
                        if os.path.isdir(f"{cg}/{c}"):
                            try_rmdir(f"{cg}/{c}")
                    try_rmdir(cg)
        self.observer.stop()
        for p in (self.nginx, self.mosquitto):
            if p and p.poll() is None:
                p.terminate()
                p.wait()
        names = sh("ip", "netns", "list").stdout.split()
        for name in names:
            if name.startswith(f"{PREFIX}-"):
                sh("ip", "netns", "del", name, check=False)
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"kept {self.dir}")

    # --- devices ---------------------------------------------------------
    def device_args(self, d):
        root = f"{self.dir}/dev/{d}"
        return [self.berth, "--root", f"{root}/store", "--runtime-dir", f"{root}/run",
                "--cgroup-parent", f"{PREFIX}-{d}", "--keys", f"{self.dir}/keys",
                "--device-id", d, "--group", "odd" if int(d[1:]) % 2 else "even"]

    def start_devices(self, which=None):
        for d in which or self.devices:
            os.makedirs(f"{self.dir}/dev/{d}", exist_ok=True)
            log = open(f"{self.dir}/dev/{d}/serve.log", "a")
            self.procs[d] = subprocess.Popen(
                [*enter(f"{PREFIX}-{d}"), *self.device_args(d), "apply",
                 "--serve", "--interval", str(self.interval), "--backoff-max",
                 f"{self.interval}s", "--mqtt", BROKER, "--mqtt-keepalive", "10",
                 f"{ORIGIN}/m.yaml"],
                stdout=log, stderr=log)

    def check_alive(self):
        dead = [d for d, p in self.procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"berth exited on {dead}; see {self.dir}/dev/*/serve.log")

    # --- manifests -------------------------------------------------------
    def manifest(self, release, healthy=True):
        check = "/bin/true" if healthy else "/bin/false"
        return f"""version: 1
images:
  busybox:
    url: {ORIGIN}/busybox.tar.gz
    sha256: {self.image_sha}
containers:
  app:
    image: busybox
    command: [/bin/sh, -c, "exec sleep 1000000"]
    env: {{ RELEASE: "{release}" }}
    restart: always
    health:
      exec: [{check}]
      interval: 2s
      timeout: 2s
      retries: 1
"""

    def sign(self, version, text, key="fleet"):
        path = f"{self.dir}/m-{version}-{key}.yaml"
        with open(path, "w") as f:
            f.write(text)
        sh(self.berth, "sign", "--key", f"{self.dir}/{key}.key", "--version", str(version), path)
        return path

    def publish(self, path):
        # The signature first: a device that fetches between the two renames
        # refuses the old text under the new signature and fetches again
        # when the text changes; the other order could keep it on the old.
        for src, dst in ((f"{path}.minisig", "m.yaml.minisig"), (path, "m.yaml")):
            tmp = f"{self.origin}/.{dst}.tmp"
            shutil.copy(src, tmp)
            os.rename(tmp, f"{self.origin}/{dst}")

    def ring(self, message, topic="berth/all/cmd", retain=False):
        ns(f"{PREFIX}-srv", "mosquitto_pub", "-h", SRV_IP, "-q", "1", "-t", topic,
           "-m", message, *(["-r"] if retain else []))

    # --- measuring -------------------------------------------------------
    def requests_since(self, t0):
        try:
            with open(f"{self.dir}/access.log") as f:
                lines = [l.split() for l in f]
        except FileNotFoundError:
            return []
        return [l for l in lines if l and float(l[0]) >= t0]

    def converge(self, name, t0, done, deadline, note=""):
        """Wait until every device's newest status satisfies `done`; record
        each device's time as that of its first status that did."""
        reached = {}
        end = time.time() + deadline
        while time.time() < end:
            self.check_alive()
            with self.observer.lock:
                msgs = [m for m in self.observer.messages if m[0] >= t0]
            for t, topic, payload in msgs:
                parts = topic.split("/")
                if len(parts) != 3 or parts[2] != "status" or parts[1] in reached:
                    continue
                try:
                    st = json.loads(payload)
                except ValueError:
                    continue
                if done(st):
                    reached[parts[1]] = t - t0
            if len(reached) == self.n:
                break
            time.sleep(0.2)
        self.record(name, t0, reached, note)
        missing = sorted(set(self.devices) - set(reached))
        if missing:
            latest = self.observer.latest_status()
            detail = {d: latest.get(d, (0, None))[1] for d in missing[:3]}
            raise RuntimeError(f"{name}: {len(missing)} device(s) did not converge within "
                               f"{deadline} s: {missing[:10]}; their last status: "
                               f"{json.dumps(detail)[:1500]}")

    def record(self, name, t0, reached, note, of=None):
        times = sorted(reached.values())
        reqs = self.requests_since(t0)
        self.results.append({
            "scenario": name,
            "devices": f"{len(reached)}/{of or self.n}",
            "median_s": statistics.median(times) if times else None,
            "max_s": max(times) if times else None,
            "requests": len(reqs),
            "not_modified": sum(1 for r in reqs if r[-2] == "304"),
            "messages": len(self.observer.since(t0)),
            "note": note,
        })
        r = self.results[-1]
        print(f"fleet-sim: {name}: {r['devices']} devices, median {fmt(r['median_s'])} s, "
              f"max {fmt(r['max_s'])} s, {r['requests']} origin requests "
              f"({r['not_modified']} 304), {r['messages']} broker messages", flush=True)

    # --- scenarios -------------------------------------------------------
    def run(self):
        def at(version, result="applied"):
            return lambda s: (s.get("manifest", {}).get("version") == version
                              and s.get("last_apply", {}).get("result") == result
                              and any(c["name"] == "app" and c["state"] == "running"
                                      and c.get("health") == "healthy"
                                      for c in s.get("containers", [])))
        slack = 3 * self.interval + 30 + self.n

        v1 = self.sign(1, self.manifest(1))
        self.publish(v1)
        t0 = time.time()
        self.start_devices()
        self.converge("boot", t0, at(1), slack + 60, "first boot: fetch, verify, pull, start")

        self.publish(self.sign(2, self.manifest(2)))
        t0 = time.time()
        self.ring("apply 2")
        self.converge("doorbell", t0, at(2), slack, "v2 published, `apply 2` on all/cmd")

        self.publish(self.sign(3, self.manifest(3, healthy=False)))
        t0 = time.time()
        self.ring("apply 3")
        self.converge(
            "rollback", t0,
            lambda s: (s.get("last_apply", {}).get("result") in ("rolled back", "refused")
                       and s.get("manifest", {}).get("version") == 2
                       and "unhealthy" in s.get("last_apply", {}).get("reason", "")),
            slack + 30, "v3 fails its check: back to v2, with the reason")
        self.operator_view(version=2, result="rolled back")

        self.publish(v1)
        t0 = time.time()
        self.ring("apply")
        self.converge("replay", t0,
                      lambda s: "replayed" in s.get("error", "")
                      and s.get("manifest", {}).get("version") == 2,
                      slack, "v1 again: refused as a replay")

        self.publish(self.sign(4, self.manifest(4), key="forged"))
        t0 = time.time()
        self.ring("apply")
        self.converge("forged", t0,
                      lambda s: "unknown key" in s.get("error", "")
                      and s.get("manifest", {}).get("version") == 2,
                      slack, "v4 signed by an unknown key: refused")

        pids_before = self.app_pids()
        self.stop_nginx()
        t_down = time.time()
        self.publish(self.sign(5, self.manifest(5)))
        time.sleep(2 * self.interval)
        self.check_alive()
        still = self.app_pids()
        if still != pids_before:
            raise RuntimeError(f"origin down: containers changed: {pids_before} -> {still}")
        t0 = time.time()
        self.start_nginx()
        self.converge("origin", t0, at(5), slack,
                      f"nginx down {time.time() - t_down:.0f} s, v5 published meanwhile")

        self.stop_mosquitto()
        t_down = time.time()
        self.publish(self.sign(6, self.manifest(6)))
        self.wait_on_disk(6, slack)
        polled = time.time() - t_down
        t0 = time.time()
        self.start_mosquitto()
        self.converge("broker", t0, at(6), slack,
                      f"mosquitto down; v6 applied by polling in {polled:.1f} s; status after")

        self.junk()
        self.lastwill()

        t0 = time.time()
        cpu0 = {d: cpu_ticks(p.pid) for d, p in self.procs.items()}
        window = max(3 * self.interval, 20)
        time.sleep(window)
        self.check_alive()
        reqs = [r for r in self.requests_since(t0) if "/m.yaml " in " ".join(r)]
        if not reqs or any(r[-2] != "304" for r in reqs):
            bad = [r for r in reqs if r[-2] != "304"][:5]
            raise RuntimeError(f"idle: {len(reqs)} manifest requests, not all 304: {bad}")
        hz = os.sysconf("SC_CLK_TCK")
        cpu = [(cpu_ticks(p.pid) - cpu0[d]) / hz / window * 100 for d, p in self.procs.items()]
        mem = [memory(p.pid) for p in self.procs.values()]
        self.idle = {"window": window, "cpu": cpu, "rss": [m[0] for m in mem],
                     "private": [m[1] for m in mem]}
        self.record("idle", t0, {d: 0.0 for d in self.devices},
                    f"{window} s unchanged: {len(reqs)} manifest requests, all 304")

    def operator_view(self, version, result):
        """`berth fleet status --json` sees every device at `version` with
        `result`, and its table says so in the summary."""
        r = ns(f"{PREFIX}-srv", self.berth, "fleet", "status", "--mqtt", BROKER, "--json")
        doc = json.loads(r.stdout)
        s = doc["summary"]
        counts = {c["value"]: c["devices"] for c in s["versions"]}
        results = {c["value"]: c["devices"] for c in s["results"]}
        if s["devices"] != self.n or counts.get(str(version)) != self.n \
                or results.get(result) != self.n or s["online"] != self.n:
            raise RuntimeError(f"fleet status: {json.dumps(s)}")
        table = ns(f"{PREFIX}-srv", self.berth, "fleet", "status", "--mqtt", BROKER).stdout
        want = f"{self.n} device(s), {self.n} online; {self.n} on {version}; last apply: {self.n} {result}"
        if want not in table:
            raise RuntimeError(f"fleet status table lacks `{want}`:\n{table[-600:]}")
        print(f"fleet-sim: fleet status: {want}", flush=True)

    def junk(self):
        # Let every device's next poll pass first, so none is due in the window.
        rang = lambda: sum("doorbell: applying" in l for d in self.devices for l in self.log(d))
        before = rang()
        t0 = time.time()
        self.ring("rm -rf /")
        self.ring("\x1b[2J" + "A" * 3000)
        time.sleep(2)
        self.check_alive()
        if rang() != before:
            raise RuntimeError("junk: a garbage or retained message rang the doorbell")
        logged = [d for d in self.devices if any("ignored on" in l for l in self.log(d))]
        if len(logged) != self.n:
            raise RuntimeError(f"junk: not logged by {sorted(set(self.devices) - set(logged))}")
        self.record("junk", t0, {d: 0.0 for d in self.devices},
                    "garbage on all/cmd: ignored and logged")

    def log(self, d):
        with open(f"{self.dir}/dev/{d}/serve.log", errors="replace") as f:
            return f.read().splitlines()

    def presence(self, d, t0, want, secs, what):
        end = t0 + secs
        while time.time() < end:
            for t, topic, payload in self.observer.since(t0):
                if topic == f"berth/{d}/presence" and payload == want:
                    return t - t0
            time.sleep(0.2)
        raise RuntimeError(f"lastwill: no `{want}` for {d} within {secs} s of {what}")

    def lastwill(self):
        d, link = self.devices[0], ["ip", "link", "set", "eth0"]
        # Power cut: no FIN, so the broker waits 1.5 keepalives (10 s).
        t0 = time.time()
        ns(f"{PREFIX}-{d}", *link, "down")
        cut = self.presence(d, t0, "offline", 40, "its link going down")
        t1 = time.time()
        ns(f"{PREFIX}-{d}", *link, "up")
        back = self.presence(d, t1, "online", 60, "its link coming back")
        # A crash: the kernel closes the socket, the broker says it at once.
        before = self.app_pids()[d]
        t2 = time.time()
        self.procs[d].kill()
        self.procs[d].wait()
        crash = self.presence(d, t2, "offline", 40, "SIGKILL")
        # A retained `apply` waits for it: at its connect it must not ring.
        self.ring("apply", topic=f"berth/{d}/cmd", retain=True)
        t3 = time.time()
        self.start_devices([d])
        online = self.presence(d, t3, "online", 30, "its restart")
        time.sleep(self.interval)
        self.ring("", topic=f"berth/{d}/cmd", retain=True)  # clears it
        restart_log = "\n".join(self.log(d))
        tail = restart_log[restart_log.rfind("fleet broker"):]
        if "doorbell: applying" in tail or "retained message" not in tail:
            raise RuntimeError(f"lastwill: a retained `apply` at connect rang the doorbell:\n{tail}")
        after = self.app_pids()[d]
        if after != before:
            raise RuntimeError(f"lastwill: the restart touched {d}'s containers: {before} -> {after}")
        self.record("lastwill", t0, {d: cut},
                    f"link cut: `offline` (Last Will) after {cut:.1f} s, `online` {back:.1f} s "
                    f"after it is back; SIGKILL: `offline` after {crash:.1f} s; restarted: "
                    f"`online` after {online:.1f} s, containers untouched", of=1)

    def app_pids(self):
        out = {}
        for d in self.devices:
            r = ns(f"{PREFIX}-{d}", *self.device_args(d), "status", "--json", check=False)
            try:
                rows = json.loads(r.stdout)["containers"]
                out[d] = [(c["name"], c["pid"]) for c in rows]
            except (ValueError, KeyError):
                out[d] = r.stderr[-200:]
        return out

    def wait_on_disk(self, version, deadline):
        """Every device's last apply (STORE/history) is `version`."""
        end = time.time() + deadline
        while time.time() < end:
            self.check_alive()
            done = 0
            for d in self.devices:
                try:
                    with open(f"{self.dir}/dev/{d}/store/history/last-apply.json") as f:
                        a = json.load(f)
                    if a["revision"].get("version") == version and a["outcome"] == "applied":
                        done += 1
                except (OSError, ValueError, KeyError):
                    pass
            if done == self.n:
                return
            time.sleep(0.5)
        raise RuntimeError(f"broker down: not every device applied v{version} by polling")

    def report(self, out):
        lines = [
            "## Fleet simulation",
            "",
            f"`make bench-fleet` ({time.strftime('%Y-%m-%d')}, kernel {os.uname().release}, "
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}): {self.n} simulated "
            f"devices, each a network namespace running its own `berth apply --serve "
            f"--interval {self.interval} --mqtt`, on one bridge with a real nginx (origin, "
            "ETag) and a real mosquitto (broker), both in a namespace of their own. Times "
            "are from the scenario's start to each device's first status message that "
            "shows the goal, as an observer subscribed to `berth/#` saw it; requests are "
            "nginx's access log; messages are those the observer received.",
            "",
            "| scenario | devices | median (s) | max (s) | origin requests (304) | broker messages | what |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.results:
            lines.append(f"| {r['scenario']} | {r['devices']} | {fmt(r['median_s'])} | "
                         f"{fmt(r['max_s'])} | {r['requests']} ({r['not_modified']}) | "
                         f"{r['messages']} | {r['note']} |")
        if self.idle:
            i = self.idle
            lines += [
                "",
                f"Per agent while idle ({i['window']} s of unchanged polls; `berth apply "
                "--serve` with its broker thread, not its containers' monitors): CPU "
                f"median {statistics.median(i['cpu']):.3f}% (max {max(i['cpu']):.3f}%; "
                "/proc counts in 10 ms ticks, so 0 is under one tick in the window), "
                f"RSS median {int(statistics.median(i['rss'])) // 1024} KiB (max "
                f"{max(i['rss']) // 1024} KiB), private memory median "
                f"{int(statistics.median(i['private'])) // 1024} KiB.",
            ]
        text = "\n".join(lines) + "\n"
        with open(out, "w") as f:
            f.write(text)
        print(text)


def try_rmdir(path):
    try:
        os.rmdir(path)
    except OSError as e:
        print(f"fleet-sim: could not remove {path}: {e}", file=sys.stderr)


def fmt(x):
    return "-" if x is None else f"{x:.1f}"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def memory(pid):
    """(RSS, private) in bytes."""
    rss = private = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Rss":
                rss = int(v.split()[0]) * 1024
            elif k in ("Private_Clean", "Private_Dirty"):
                private += int(v.split()[0]) * 1024
    return rss, private


def main():
    args = sys.argv[1:]
    interval = 10
    if "--interval" in args:
        i = args.index("--interval")
        interval = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 4:
        sys.exit(__doc__)
    berth, rootfs, n, out = args[0], args[1], int(args[2]), args[3]
    if os.geteuid() != 0:
        sys.exit("fleet-sim: needs root (network namespaces, containers)")
    fleet = Fleet(berth, rootfs, n, interval)
    try:
        fleet.setup()
        fleet.run()
        fleet.report(out)
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        print(f"fleet-sim: FAILED: {e}", file=sys.stderr)
        for d in fleet.devices[:3]:
            try:
                with open(f"{fleet.dir}/dev/{d}/serve.log") as f:
                    print(f"--- {d} serve.log (tail)\n{f.read()[-2000:]}", file=sys.stderr)
            except OSError:
                pass
        fleet.teardown()
        sys.exit(1)
    fleet.teardown()


if __name__ == "__main__":
    main()
