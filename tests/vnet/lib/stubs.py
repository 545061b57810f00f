#!/usr/bin/env python3
"""Tiny protocol stubs for what Debian has no small daemon for, all in one asyncio process.

Usage: stubs.py LISTENERS.json   (a list of {"kind", "address", "port"})

kinds:
  smb       answers an SMB2 NEGOTIATE like Azure Files (dialect 3.0.2)
  udp       replies to any datagram (the tundra / NTP front ends)
  servfail  a DNS server that answers SERVFAIL to everything (a broken upstream zone)
  silent    accepts TCP connections and never says a word (SMB port behind a broken middlebox)
  notsmb    accepts TCP connections and answers with an HTTP error (a middlebox on 445)
  appfw_http, appfw_tls
            the app firewall's deny responder ([app_firewall]): the router DNATs denied names'
            HTTP and TLS ports here; entries carry "style" and its options (see appfw_* below)
  arm       the fake Azure Resource Manager of [arm] worlds, plain HTTP on 127.0.0.1 behind
            nginx's management.azure.com; "config" names the arm.json lib/armworld.py wrote
"""
import asyncio
import email.utils
import json
import os
import re
import socket
import ssl
import struct
import sys
import urllib.parse
import uuid

DEADLINE = 10  # seconds a peer gets to send its request or ClientHello (or its next request)


def smb2_negotiate_response(request: bytes) -> bytes:
    # Echo the request's MessageId; the header layout is MS-SMB2 2.2.1, the body 2.2.4.
    message_id = request[4 + 24:4 + 32] if len(request) >= 36 else b"\0" * 8
    header = b"\xfeSMB" + struct.pack("<HHIHHII", 64, 0, 0, 0, 1, 0x1, 0) + message_id
    header += b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 16
    body = struct.pack("<HHHH", 65, 1, 0x0302, 0) + uuid.uuid4().bytes
    body += struct.pack("<IIIIQQHHI", 0, 1 << 20, 1 << 20, 1 << 20, 0, 0, 128, 0, 0)
    body += b"\0"  # the variable part (an empty security buffer still takes a byte)
    payload = header + body
    return struct.pack(">I", len(payload)) + payload


async def handle_tcp(kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        if kind == "smb":
            head = await reader.readexactly(4)
            length = struct.unpack(">I", head)[0] & 0xFFFFFF
            request = head + await reader.readexactly(length)
            writer.write(smb2_negotiate_response(request))
            await writer.drain()
        elif kind == "notsmb":
            await reader.read(1024)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nServer: middlebox\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        elif kind == "silent":
            await asyncio.sleep(30)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


# ---------------------------------------------------------------- the app firewall's deny responder
# The router DNATs the HTTP and TLS ports of every name [app_firewall] denies to these listeners.
# What each style sends is documented in tests/vnet/README.md ([app_firewall]). Nothing a peer
# sends is written down except the host name it asked for (Host header or SNI), and only when it
# is a plain DNS name: no request line, path, header or body (they may carry tokens).

BLOCK_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Web Filter Violation</title></head>
<body>
<h1>Web Page Blocked</h1>
<p>The page you have requested has been blocked because the URL is banned.</p>
<p>URL: {host}</p>
<p>Contact your network administrator if you believe this page should not be blocked.</p>
</body>
</html>
"""
REASON = {200: "OK", 403: "Forbidden"}


def log(text: str):
    print(text, flush=True)


def plain_name(raw: str) -> str:
    """A host name fit for the log (port dropped), or '?'."""
    name = raw.strip().lower()
    if ":" in name:
        name = name.rsplit(":", 1)[0]
    return name if re.fullmatch(r"[a-z0-9.-]{1,253}", name) else "?"


async def read_http_request(reader: asyncio.StreamReader):
    """(method, version, lower-cased headers, target) of the next request, its body read and
    dropped; None when the peer closes or stays silent until the deadline."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if length.isdigit() and 0 < int(length) <= 1 << 20:
        try:
            await asyncio.wait_for(reader.readexactly(int(length)), DEADLINE)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            return None
    return parts[0], parts[2], headers, parts[1]


async def read_client_hello(reader: asyncio.StreamReader) -> bytes | None:
    """The first handshake message (the ClientHello), over as many records as it spans; None for
    anything that is not a TLS handshake."""
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[1:4], "big"):
        head = await asyncio.wait_for(reader.readexactly(5), DEADLINE)
        if head[0] != 0x16 or len(data) > 1 << 16:
            return None
        data += await asyncio.wait_for(reader.readexactly(int.from_bytes(head[3:5], "big")), DEADLINE)
    return data if data[0] == 1 else None


def sni_of(hello: bytes) -> str:
    """The server_name extension of a ClientHello handshake message, for the log, or '?'."""
    try:
        i = 4 + 2 + 32
        i += 1 + hello[i]                                   # session id
        i += 2 + int.from_bytes(hello[i:i + 2], "big")      # cipher suites
        i += 1 + hello[i]                                   # compression methods
        end = i + 2 + int.from_bytes(hello[i:i + 2], "big")
        i += 2
        while i + 4 <= end:
            kind, size = int.from_bytes(hello[i:i + 2], "big"), int.from_bytes(hello[i + 2:i + 4], "big")
            if kind == 0:   # server_name: list length, name type, name length, name
                n = int.from_bytes(hello[i + 7:i + 9], "big")
                return plain_name(hello[i + 9:i + 9 + n].decode("ascii", "replace"))
            i += 4 + size
    except IndexError:
        pass
    return "?"


def reset(writer: asyncio.StreamWriter):
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def azure_firewall_http(entry: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    """HTTP 470 with the deny text on every request, as Azure Firewall's Go-based proxy writes it:
    Go's net/http has no reason phrase for 470 and writes "status code 470"; Date, Content-Length
    and Content-Type come in that order; the connection stays open for further requests unless
    the client asks to close it (then `Connection: close`)."""
    body = entry["deny_text"].encode()
    while True:
        # The first request, then each next one on a kept-alive connection: DEADLINE each.
        request = await read_http_request(reader)
        if request is None:
            return
        method, version, headers, _ = request
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        lines = [f"{'HTTP/1.1' if version == 'HTTP/1.1' else 'HTTP/1.0'} 470 status code 470",
                 f"Date: {email.utils.formatdate(usegmt=True)}", f"Content-Length: {len(body)}",
                 "Content-Type: text/plain; charset=utf-8"] + ([] if keep else ["Connection: close"])
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body))
        await writer.drain()
        log(f"appfw azure_firewall: http {plain_name(headers.get('host', ''))} -> 470")
        if not keep:
            return


async def handle_appfw(entry: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    style, tls = entry["style"], entry["kind"] == "appfw_tls"
    try:
        if style == "block_page":
            # TLS (if any) is already terminated with the NVA's own certificate by the listener.
            request = await read_http_request(reader)
            if request is None:
                return
            host = plain_name(request[2].get("host", ""))
            status = int(entry["block_status"])
            body = BLOCK_PAGE.format(host=host).encode()
            head = (f"HTTP/1.1 {status} {REASON[status]}\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if request[0] == "HEAD" else body))
            await writer.drain()
            log(f"appfw block_page: {'https' if tls else 'http'} {host} -> {status} block page")
        elif tls:
            hello = await read_client_hello(reader)
            name = sni_of(hello) if hello else "(not TLS)"
            if style == "nva_reset" or entry.get("reset"):
                log(f"appfw {style}: tls {name} -> RST after the ClientHello")
                reset(writer)
            else:
                log(f"appfw {style}: tls {name} -> FIN after the ClientHello, no alert")
        elif style == "nva_reset":
            request = await read_http_request(reader)
            log(f"appfw nva_reset: http {plain_name(request[2].get('host', '')) if request else '?'} -> RST")
            reset(writer)
        else:
            await azure_firewall_http(entry, reader, writer)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


# ---------------------------------------------------------------- the fake ARM ([arm] worlds)
# Everything it answers was decided when the world was rendered (lib/armworld.py, arm.json); here
# only the routing, the checks ARM makes (token, api-version, permission) and the long-running
# operations' state. One `arm:` line per request: method, path and query (ARM ids, no secret),
# status and what it was; never a header.

def arm_type(segments):
    """The resource type of a lower-cased path's segments: `microsoft.network/networkinterfaces/
    effectivenetworksecuritygroups` for a NIC's action, `microsoft.resources/subscriptions` for
    the subscriptions list."""
    if "providers" not in segments:
        return "microsoft.resources/" + "/".join(segments[0::2])
    i = segments.index("providers")
    return "/".join([segments[i + 1]] + segments[i + 2::2])


def arm_error(status, code, message, note, headers=()):
    return status, {"error": {"code": code, "message": message}}, list(headers), note


def arm_answer(cfg, operations, method, target, headers):
    """(status, body, headers, note) for one request."""
    raw_path, _, query = target.partition("?")
    path = re.sub("/{2,}", "/", raw_path).rstrip("/").lower()
    params = urllib.parse.parse_qs(query)
    auth = headers.get("authorization")
    if auth is None:
        return arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", "no token")
    if auth != f"Bearer {cfg['token']}":
        return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", "wrong token")
    if method == "POST" and "content-length" not in headers:
        return arm_error(411, "LengthRequired", "A POST needs a Content-Length.", "no content-length")
    segments = path.strip("/").split("/")
    kind = arm_type(segments)
    api = params.get("api-version", [None])[0]
    if api is None:
        return arm_error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.", "bad api-version: none")
    known = max((k for k in cfg["api_versions"] if kind == k or kind.startswith(k + "/")), key=len, default=None)
    if known is None or api != cfg["api_versions"][known]:
        return arm_error(400, "InvalidApiVersionParameter", f"The api-version '{api}' is invalid.",
                         f"bad api-version: {api} for {kind} (this fake knows {cfg['api_versions'].get(known)})")
    if len(segments) > 1 and segments[1] not in [s.lower() for s in cfg["subscriptions"]]:
        return arm_error(403, "AuthorizationFailed",
                         f"The client does not have authorization to perform action over scope '/subscriptions/{segments[1]}' "
                         "or the scope is invalid.", "foreign subscription")
    if method == "GET" and path in operations:
        left = operations[path]
        if left > 0:
            operations[path] = left - 1
            return 202, None, [("Location", operations[path + "#location"]), ("Retry-After", "1")], "operation running"
        return 200, operations[path + "#result"], [], "operation done"
    action = f"{kind}/{'action' if method == 'POST' else 'read'}"
    action = next((f for f in cfg["forbidden"] if f.lower() == action), None)
    if action is not None:
        return arm_error(403, "AuthorizationFailed",
                         f"The client with object id '6c1f2e3d-4b5a-4978-8c6d-5e4f3a2b1c0d' does not have authorization "
                         f"to perform action '{action}' over scope '{raw_path}' or the scope is invalid. If access was "
                         "recently granted, please refresh your credentials.", f"forbidden: {action}")
    if method == "GET" and path in cfg["documents"]:
        return 200, cfg["documents"][path], [], ""
    if method == "GET" and path == "/subscriptions":
        # Two pages, the second behind a nextLink (subscriptions.json's SubscriptionListResult).
        subs = [{"id": f"/subscriptions/{s}", "authorizationSource": "RoleBased", "subscriptionId": s,
                 "tenantId": "72f988bf-0000-4000-8000-000000000000", "displayName": f"testbed-{s[:8]}",
                 "state": "Enabled"} for s in cfg["subscriptions"]]
        if "$skipToken" in params:
            return 200, {"value": subs[1:]}, [], "page 2"
        return 200, {"value": subs[:1], "nextLink": f"{cfg['origin']}/subscriptions?api-version={api}&%24skipToken=page2"}, [], "page 1"
    if method == "GET" and path in cfg["lists"]:
        return 200, {"value": cfg["lists"][path]}, [], ""
    if method == "POST" and path in cfg["actions"]:
        a = cfg["actions"][path]
        poll = re.sub("/{2,}", "/", urllib.parse.urlsplit(a["location"]).path).rstrip("/").lower()
        operations[poll] = a["polls"]
        operations[poll + "#location"] = a["location"]
        operations[poll + "#result"] = a["result"]
        return 202, None, [("Location", a["location"]), ("Retry-After", "1")], "accepted"
    if method == "GET" and any(path.startswith(p) for p in cfg["may_be_missing"]):
        return arm_error(404, "NotFound", "The resource record set was not found.", "no such record set")
    return arm_error(404, "ResourceNotFound", "The Resource was not found.", "unknown: the world holds no such resource")


async def handle_arm(cfg: dict, operations: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        request = await read_http_request(reader)
        if request is None:
            return
        method, _, headers, target = request
        status, body, extra, note = arm_answer(cfg, operations, method, target, headers)
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Accepted' if status == 202 else 'Error'}",
                "Content-Type: application/json; charset=utf-8", f"Content-Length: {len(payload)}",
                "Connection: close"] + [f"{k}: {v}" for k, v in extra]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        log(f"arm: {method} {target} -> {status}" + (f" {note}" if note else ""))
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


class Udp(asyncio.DatagramProtocol):
    def __init__(self, kind: str):
        self.kind = kind

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if self.kind == "servfail":
            if len(data) < 12:
                return
            # Same id and question, QR=1, RD/RA set, RCODE=2 (SERVFAIL), no answers.
            flags = 0x8000 | (data[2] & 0x01) << 8 | 0x0080 | 2
            self.transport.sendto(data[:2] + struct.pack(">H", flags) + data[4:6] + b"\0" * 6 + data[12:], addr)
        else:
            self.transport.sendto(b"testbed udp reply\n", addr)


async def main(path: str):
    with open(path) as f:
        listeners = json.load(f)
    loop = asyncio.get_running_loop()
    # A client refusing the block page's certificate is expected: one line, not a traceback.
    loop.set_exception_handler(lambda _loop, context: log(f"stubs: {context.get('message')}: {context.get('exception')!r}"))
    servers = []
    for entry in listeners:
        kind, address, port = entry["kind"], entry["address"], int(entry["port"])
        if kind in ("udp", "servfail"):
            await loop.create_datagram_endpoint(lambda k=kind: Udp(k), local_addr=(address, port))
        elif kind == "arm":
            with open(entry["config"]) as f:
                cfg = json.load(f)
            operations = {}
            servers.append(await asyncio.start_server(
                lambda r, w, c=cfg, o=operations: handle_arm(c, o, r, w), address, port, reuse_address=True))
        elif kind in ("appfw_http", "appfw_tls"):
            tls = None
            if kind == "appfw_tls" and entry["style"] == "block_page":
                tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                tls.load_cert_chain(entry["cert"], entry["key"])
            servers.append(await asyncio.start_server(
                lambda r, w, e=entry: handle_appfw(e, r, w), address, port, reuse_address=True,
                ssl=tls, ssl_handshake_timeout=DEADLINE if tls else None))
        else:
            servers.append(await asyncio.start_server(
                lambda r, w, k=kind: handle_tcp(k, r, w), address, port, reuse_address=True))
    print(f"stubs: {len(listeners)} listeners up (pid {os.getpid()})", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
