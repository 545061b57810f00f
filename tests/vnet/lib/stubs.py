#!/usr/bin/env python3
"""Tiny protocol stubs for what Debian has no small daemon for, all in one asyncio process.

Usage: stubs.py LISTENERS.json   (a list of {"kind", "address", "port"})

kinds:
  smb       answers an SMB2 NEGOTIATE like Azure Files (dialect 3.0.2)
  udp       replies to any datagram (the tundra / NTP front ends)
  servfail  a DNS server that answers SERVFAIL to everything (a broken upstream zone)
  silent    accepts TCP connections and never says a word (SMB port behind a broken middlebox)
  notsmb    accepts TCP connections and answers with an HTTP error (a middlebox on 445)
"""
import asyncio
import json
import os
import struct
import sys
import uuid


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
    servers = []
    for entry in listeners:
        kind, address, port = entry["kind"], entry["address"], int(entry["port"])
        if kind in ("udp", "servfail"):
            await loop.create_datagram_endpoint(lambda k=kind: Udp(k), local_addr=(address, port))
        else:
            servers.append(await asyncio.start_server(
                lambda r, w, k=kind: handle_tcp(k, r, w), address, port, reuse_address=True))
    print(f"stubs: {len(listeners)} listeners up (pid {os.getpid()})", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
