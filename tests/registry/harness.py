#!/usr/bin/env python3
"""Registry pulls against real components, all on 127.0.0.1 and cleaned up
on any exit: Debian's docker-registry (distribution 2.8) with temp configs
(open, htpasswd, token auth), skopeo pushing OCI layouts this script
builds, a token issuer signing RS256 JWTs with the key the registry trusts,
a proxy that cuts every connection after CUT bytes (resume), and a hostile
fake registry for bad input. Usage: harness.py BERTH [bench N_MB]."""

import base64, gzip, hashlib, http.server, json, os, shutil, signal, socket
import subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
from make_seeds import tar_of  # noqa: E402

BERTH = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix="berth-reg-")
PROCS = []
FAILS = []


def cleanup(*_):
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


# ---------- OCI layouts -------------------------------------------------

def sha(b):
    return hashlib.sha256(b).hexdigest()


def layer_tar(entries, compress=True):
    """entries: (name, bytes) for files, (name, None) for directories; the
    tar writer of the fuzz seeds, gzipped as registries serve layers."""
    raw = tar_of(entries)
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(f"{path}/blobs/sha256", exist_ok=True)
        with open(f"{path}/oci-layout", "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data, media):
        d = sha(data)
        with open(f"{self.path}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}

    def image(self, layers, arch="amd64", variant=None):
        cfg = {"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"]},
               "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(gzip.decompress(l)) for l in layers]}}
        if variant:
            cfg["variant"] = variant
        c = self.blob(json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")
        ls = [self.blob(l, "application/vnd.oci.image.layer.v1.tar+gzip") for l in layers]
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": ls}
        d = self.blob(json.dumps(m).encode(), "application/vnd.oci.image.manifest.v1+json")
        d["platform"] = {"os": "linux", "architecture": arch}
        if variant:
            d["platform"]["variant"] = variant
        return d

    def index(self, entries, tag):
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
        if len(entries) > 1:
            top = self.blob(json.dumps(idx).encode(), "application/vnd.oci.image.index.v1+json")
            entries = [top]
        for e in entries:
            e.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = tag
        with open(f"{self.path}/index.json", "w") as f:
            json.dump({"schemaVersion": 2, "manifests": entries}, f)


# ---------- components --------------------------------------------------

def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{TMP}/log-{len(PROCS)}", "w"), **kw)
    PROCS.append(p)
    return p


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def registry(name, auth=""):
    port = free_port()
    conf = f"{TMP}/{name}.yml"
    with open(conf, "w") as f:
        f.write(f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {TMP}/{name}-data}}, delete: {{enabled: true}}}}
http: {{addr: 127.0.0.1:{port}, secret: berth-test}}
{auth}""")
    start(["docker-registry", "serve", conf])
    wait_port(port)
    return port


def skopeo(src, dest, *extra):
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", *extra, src, dest], check=True)


def berth(root, *args, timeout=120):
    p = subprocess.run([BERTH, "--root", root, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def clean_store(root):
    imgs = f"{root}/images"
    left = [n for n in os.listdir(imgs) if n not in (".blobs", "refs.json")] if os.path.isdir(imgs) else []
    return left


# ---------- token issuer ------------------------------------------------

def token_issuer():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID
    import datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test-issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = f"{TMP}/issuer.pem"
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            from urllib.parse import parse_qs, urlparse
            q = parse_qs(urlparse(self.path).query)
            seen.append(self.headers.get("Authorization"))
            scopes = q.get("scope", [])
            access = []
            for s in scopes:
                _, repo, actions = s.split(":")
                access.append({"type": "repository", "name": repo, "actions": actions.split(",")})
            t = int(time.time())
            claims = {"iss": "berth-test-issuer", "sub": "u", "aud": q.get("service", [""])[0], "exp": t + 300,
                      "nbf": t - 10, "iat": t, "jti": str(t) + str(len(seen)), "access": access}
            head = {"alg": "RS256", "typ": "JWT", "x5c": [der]}
            signing = (b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())).encode()
            sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
            body = json.dumps({"token": signing.decode() + "." + b64(sig), "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return port, pem, seen


# ---------- cutting proxy -----------------------------------------------

class Proxy:
    """Forwards to 127.0.0.1:target; cuts each connection after `cut`
    bytes downstream (0: never); counts every byte it sends downstream."""

    def __init__(self, target, cut, rate=0, cuts=None):
        self.target, self.cut, self.rate, self.sent = target, cut, rate, 0
        self.cuts = cuts  # cut only this many connections, then pass through
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        u = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self.pipe_up, args=(c, u), daemon=True).start()
        n = 0
        cut = self.cut
        if self.cuts is not None:
            cut = cut if self.cuts > 0 else 0
            self.cuts -= 1
        try:
            while True:
                b = u.recv(16384)
                if not b:
                    break
                if cut and n + len(b) > cut:
                    b = b[: cut - n]
                c.sendall(b)
                n += len(b)
                self.sent += len(b)
                if self.rate:
                    time.sleep(len(b) / self.rate)
                if cut and n >= cut:
                    break
        except OSError:
            pass
        for s in (c, u):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def pipe_up(self, c, u):
        try:
            while True:
                b = c.recv(16384)
                if not b:
                    break
                u.sendall(b)
        except OSError:
            pass


# ---------- hostile fake registry ---------------------------------------

def fake_registry(routes):
    """routes: path -> (status, headers dict, body bytes); `ignore_range`
    paths answer 200 with all bytes whatever Range says."""

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            status, headers, body = routes.get(self.path, (404, {}, b"{}"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, *a):
            pass  # berth hanging up on an oversized answer is the point

    port = free_port()
    srv = Quiet(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return port
