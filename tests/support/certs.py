"""Test certificates, made with the openssl command line into a temporary directory.

Certs(dir) makes, once per directory:
  ca        a test CA (P-256)
  server    signed by ca, SAN DNS:localhost and IP:127.0.0.1
  client    signed by ca, a client certificate
  wrongname signed by ca, SAN DNS:other.example only (a host name mismatch for localhost)
  expired   signed by ca, SAN localhost/127.0.0.1, valid 2020-01-01 to 2020-01-02
  other_ca  another CA, and other_server signed by it (an unknown issuer)
Each name has .crt and .key; path(name, "crt") gives the file.
"""
import os
import subprocess
import tempfile


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Certs:
    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="corral-certs-")
        self._make()

    def path(self, name, kind="crt"):
        return os.path.join(self.dir, f"{name}.{kind}")

    def _key_and_csr(self, name, cn):
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.dir)

    def _ca(self, name):
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "30",
             "-subj", f"/CN=corral test {name}", cwd=self.dir)

    def _leaf(self, name, san, ca="ca"):
        self._key_and_csr(name, name)
        with open(os.path.join(self.dir, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "30", "-extfile", f"{name}.ext",
             cwd=self.dir)

    def _expired(self, name, san):
        # `openssl x509 -req` cannot backdate; `openssl ca` takes explicit dates.
        self._key_and_csr(name, name)
        db = os.path.join(self.dir, "ca-db")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("1000\n")
        conf = os.path.join(self.dir, "ca.cnf")
        with open(conf, "w") as f:
            f.write(f"""[ca]
default_ca = test
[test]
dir = {db}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
subjectAltName = {san}
""")
        _run("ca", "-batch", "-config", conf, "-cert", "ca.crt", "-keyfile", "ca.key",
             "-in", f"{name}.csr", "-out", f"{name}.crt", "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=self.dir)

    def _make(self):
        if os.path.exists(self.path("other_server")):
            return
        self._ca("ca")
        self._leaf("server", "DNS:localhost,IP:127.0.0.1")
        self._leaf("client", "DNS:client")
        self._leaf("wrongname", "DNS:other.example")
        self._expired("expired", "DNS:localhost,IP:127.0.0.1")
        self._ca("other_ca")
        self._leaf("other_server", "DNS:localhost,IP:127.0.0.1", ca="other_ca")
