"""Loopback peers for packaging/check-platforms.sh: a DNS server, a TLS server and a closed port.

    python3 loopback.py DIR

Everything listens on 127.0.0.1 only. DNS answers A 127.0.0.1 for `*.ok.test`, NXDOMAIN for
every other name (and no AAAA). The TLS server presents a leaf for `tls.ok.test` signed by a CA
written to DIR/ca.pem, then answers any HTTP request with 404. Writes DIR/suite.toml (the flows)
and DIR/ready once listening; serves until killed.
"""

import pathlib
import socket
import ssl
import subprocess
import sys
import threading

DIR = pathlib.Path(sys.argv[1])


def certificates():
    """A CA and a leaf for tls.ok.test, made with the openssl CLI."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca_key, ca, key, csr, leaf = (DIR / n for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=amlprobe platform check CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=tls.ok.test")
    ext = DIR / "leaf.ext"
    ext.write_text("subjectAltName=DNS:tls.ok.test\nextendedKeyUsage=serverAuth\n", encoding="utf-8")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", leaf, "-days", "1", "-extfile", ext)
    return leaf, key


def dns(sock):
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 17:
            continue
        i, labels = 12, []
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace").lower())
            i += 1 + query[i]
        end = i + 5
        qtype = int.from_bytes(query[i + 1:i + 3], "big")
        name = ".".join(labels)
        found = name.endswith(".ok.test")
        answers = 1 if found and qtype == 1 else 0
        rcode = 0 if found else 3
        flags = bytes([0x81 | (query[2] & 0x01), 0x80 | rcode])
        reply = query[:2] + flags + b"\x00\x01" + answers.to_bytes(2, "big") + b"\x00\x00\x00\x00"
        reply += query[12:end]
        if answers:
            reply += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([127, 0, 0, 1])
        sock.sendto(reply, peer)


def tls(listener, context):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=tls_client, args=(conn, context), daemon=True).start()


def tls_client(conn, context):
    try:
        with context.wrap_socket(conn, server_side=True) as s:
            s.settimeout(5)
            s.recv(4096)
            s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass


def main():
    leaf, key = certificates()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    listener = socket.create_server(("127.0.0.1", 0))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf, key)
    # A port that was bound and released: nothing listens there, so connects are refused.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    tls_port = listener.getsockname()[1]
    flows = [
        ("tls", f'hosts = ["tls.ok.test"]\nports = [{tls_port}]\ntls_ports = [{tls_port}]'),
        ("refused", f'hosts = ["closed.ok.test"]\nports = [{closed_port}]'),
        ("nxdomain", 'hosts = ["missing.test"]'),
    ]
    text = '[suite]\nname = "t"\ntitle = "platform check"\n'
    for fid, body in flows:
        text += (f'\n[[flow]]\nid = "t.{fid}"\ntitle = "{fid}"\ndirection = "outbound"\n'
                 f'service_tag = "Test"\nrequired = true\nscenario = "test"\nsource = "test"\n{body}\n')
    (DIR / "suite.toml").write_text(text, encoding="utf-8")
    (DIR / "dns").write_text(f"127.0.0.1:{udp.getsockname()[1]}", encoding="utf-8")
    threading.Thread(target=dns, args=(udp,), daemon=True).start()
    threading.Thread(target=tls, args=(listener, context), daemon=True).start()
    (DIR / "ready").write_text("", encoding="utf-8")
    threading.Event().wait()


if __name__ == "__main__":
    main()
