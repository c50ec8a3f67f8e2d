#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/ (seed-*). Run it again after
changing a seed here; crash inputs found by fuzzing live next to them as crash-* and are kept."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# -- fuzz_codec: one client text frame each -----------------------------------------------------

codec = {
    "join": '{"type":"join","room":"lobby","ref":1}',
    "join-since": '{"type":"join","room":"lobby","since":41,"epoch":3,"ref":"j1"}',
    "send": '{"type":"send","room":"lobby","text":"hello \\u00e9 \\ud83d\\ude00","cid":"c-1","ref":2}',
    "send-empty": '{"type":"send","room":"lobby","text":""}',
    "history": '{"type":"history","room":"lobby","before":100,"limit":20}',
    "history-zero": '{"type":"history","room":"lobby","before":0,"limit":0}',
    "leave": '{"type":"leave","room":"lobby","ref":-5}',
    "who": '{"type":"who","room":"lobby","after":"bob","limit":1000}',
    "typing": '{"type":"typing","room":"a.b-c_d"}',
    "status": '{"type":"status","users":["alice","bob","x"],"ref":"s"}',
    "status-bad": '{"type":"status","users":["alice",3]}',
    "ping": '{"type":"ping","ref":18446744073709551615}',
    "crash_room": '{"type":"crash_room","room":"lobby"}',
    "unknown": '{"type":"nope"}',
    "no-type": '{"room":"lobby"}',
    "deep": '{"type":"ping","x":' + "[" * 9 + "]" * 9 + "}",
    "bad-json": '{"type":"ping",',
    "not-object": '["ping"]',
    "ref-object": '{"type":"ping","ref":{"a":1}}',
    "ref-long": '{"type":"ping","ref":"' + "r" * 65 + '"}',
    "dup-keys": '{"type":"ping","type":"join","room":"r","room":"s"}',
    "float": '{"type":"join","room":"lobby","since":1.5e3}',
    "bad-name": '{"type":"join","room":"no spaces allowed"}',
    "auth": '{"type":"auth","token":"eyJhbGciOiJIUzI1NiJ9.e30.sig","ref":1}',
    "refresh-empty": '{"type":"refresh","token":""}',
    "kick": '{"type":"kick","room":"lobby","user":"bob","reason":"spam","ref":3}',
    "ban-server": '{"type":"ban","user":"bob","duration":3600}',
    "ban-zero": '{"type":"ban","room":"lobby","user":"bob","duration":0}',
    "mute-no-room": '{"type":"mute","user":"bob","duration":60}',
    "unban": '{"type":"unban","room":"lobby","user":"bob"}',
    "unmute": '{"type":"unmute","room":"lobby","user":"b c"}',
    "delete": '{"type":"delete","room":"lobby","id":42,"reason":"off topic"}',
    "delete-no-id": '{"type":"delete","room":"lobby"}',
}
for name, frame in codec.items():
    write("fuzz_codec", name, frame)
write("fuzz_codec", "send-long", '{"type":"send","room":"r","text":"' + "x" * 4097 + '"}')


# -- fuzz_frame_parser: selector bytes, then the client's byte stream -------------------------------

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(first, payload=b"", masked=True, key=KEY):
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n <= 0xFFFF:
        head = bytes([first, bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def stream(*frames, limit=0x01, chunk=0x00):
    """limit byte: odd = the server's 64 KiB; chunk byte: reads of chunk+1 bytes."""
    return bytes([limit, chunk]) + b"".join(frames)


text = '{"type":"send","room":"lobby","text":"hi"}'
fp = {
    "text": stream(frame(0x81, text)),
    "text-chunk1": stream(frame(0x81, text), chunk=0),
    "text-126": stream(frame(0x81, "a" * 200), chunk=6),
    # The 8-byte length form (a frame over 64 KiB would exceed -max_len; the parser accepts the
    # long form for short payloads too).
    "text-127": stream(bytes([0x81, 0xFF]) + struct.pack(">Q", 3) + KEY
                       + bytes(b ^ KEY[i & 3] for i, b in enumerate(b"big")), chunk=255),
    "too-big-64k": stream(frame(0x01, "x" * 100), bytes([0x80, 0xFF]) + struct.pack(">Q", 65437) + KEY),
    "binary": stream(frame(0x82, b"\x00\x01\x02")),
    "fragmented": stream(frame(0x01, "hel"), frame(0x00, "lo "), frame(0x80, "world")),
    "fragmented-ping": stream(frame(0x01, "a"), frame(0x89, "p"), frame(0x80, "b"), chunk=2),
    "fragmented-binary": stream(frame(0x02, b"\xff"), frame(0x80, b"\xfe")),
    "ping": stream(frame(0x89, "keep")),
    "pong": stream(frame(0x8A, "")),
    "close": stream(frame(0x88, struct.pack(">H", 1000) + b"bye")),
    "close-empty": stream(frame(0x88, b"")),
    "close-1byte": stream(frame(0x88, b"\x03")),
    "close-bad-code": stream(frame(0x88, struct.pack(">H", 1005))),
    "close-bad-utf8": stream(frame(0x88, struct.pack(">H", 1000) + b"\xc0\xaf")),
    "close-then-text": stream(frame(0x88, struct.pack(">H", 4000)), frame(0x81, "late")),
    "unmasked": stream(frame(0x81, "hi", masked=False)),
    "rsv": stream(frame(0xC1, "hi")),
    "reserved-opcode": stream(frame(0x83, "")),
    "long-control": stream(frame(0x89, "p" * 126)),
    "fragmented-control": stream(frame(0x09, "p")),
    "continuation-first": stream(frame(0x80, "x")),
    "new-before-end": stream(frame(0x01, "a"), frame(0x81, "b")),
    "bad-utf8": stream(frame(0x81, b"\xed\xa0\x80")),
    "utf8-split": stream(frame(0x01, b"\xe2\x82"), frame(0x80, b"\xac")),
    "too-big-small-limit": stream(frame(0x01, "abcd"), frame(0x80, "efgh"), limit=0x0E),
    "top-bit-length": stream(bytes([0x81, 0xFF]) + b"\x80" + b"\x00" * 7 + KEY),
    "huge-length": stream(bytes([0x81, 0xFF]) + b"\x00\x00\x00\x01\x00\x00\x00\x00" + KEY),
    "partial-header": stream(frame(0x81, "complete"), bytes([0x81, 0xFE, 0x01])),
    "many": stream(*[frame(0x81, "m%d" % i) for i in range(20)], frame(0x89, ""), chunk=9),
}
for name, data in fp.items():
    write("fuzz_frame_parser", name, data)


# -- fuzz_http_request: raw requests ------------------------------------------------------------------

upgrade = (
    "GET /ws?name=alice HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8080\r\n\r\n"
)
http = {
    "get-root": "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "get-js": "GET /app.js?v=3#top HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "head-css": "HEAD /style.css HTTP/1.0\r\n\r\n",
    "get-subdir": "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "get-dir-noslash": "GET /img HTTP/1.1\r\nHost: x\r\n\r\n",
    "get-encoded": "GET /img/%6c%6Fgo.svg HTTP/1.1\r\nHost: x\r\n\r\n",
    "healthz": "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "upgrade": upgrade,
    "upgrade-bad-key": upgrade.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR=="),
    "upgrade-version-8": upgrade.replace("Version: 13", "Version: 8"),
    "upgrade-evil-origin": upgrade.replace("Origin: http://localhost:8080", "Origin: http://evil.example"),
    "upgrade-ipv6": upgrade.replace("localhost:8080", "[::1]:8080"),
    "upgrade-null-origin": upgrade.replace("http://localhost:8080\r\n\r\n", "null\r\n\r\n"),
    "upgrade-no-origin": upgrade.replace("Origin: http://localhost:8080\r\n", ""),
    "post-ws": "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "traversal": "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "traversal-encoded": "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "traversal-sibling": "GET /../web-secret/key.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    "symlink-escape": "GET /escape/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "backslash": "GET /..%5c..%5cetc HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul": "GET /index.html%00.js HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-escape": "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "double-slash": "GET //etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form": "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk": "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "pipelined": "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /app.js HTTP/1.1\r\nHost: x\r\n\r\n",
    "big-header": "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + "p" * 9000 + "\r\n\r\n",
    "raw-target": "/sub/../../outside/passwd",
}
for name, req in http.items():
    write("fuzz_http_request", name, req)


# -- fuzz_jwt: tokens as clients offer them ----------------------------------------------------------

import base64
import hashlib
import hmac
import json


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header, claims, secret=b"fuzzing-secret-that-is-long-enough-for-hs256"):
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing + "." + b64url(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


good = {"sub": "alice", "exp": 1800000000, "iss": "parley", "aud": "chat", "roles": ["moderator"],
        "rooms": ["team-a"], "name": "Alice"}
jwt = {
    "valid": hs256({"alg": "HS256", "typ": "JWT"}, good),
    "expired": hs256({"alg": "HS256"}, dict(good, exp=1600000000)),
    "aud-array": hs256({"alg": "HS256"}, dict(good, aud=["x", "chat"])),
    "alg-none": b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(good).encode()) + ".",
    "alg-rs256": hs256({"alg": "RS256"}, good),
    "wrong-types": hs256({"alg": "HS256"}, dict(good, exp="soon", roles=7)),
    "other-secret": hs256({"alg": "HS256"}, good, b"another-secret-that-is-long-enough-too!!"),
    "two-parts": "eyJhbGciOiJIUzI1NiJ9.e30",
    "padding": "eyJhbGciOiJIUzI1NiJ9==.e30.e30",
}
for name, token in jwt.items():
    write("fuzz_jwt", name, token)


# -- fuzz_config: the shipped config.ini and small variants ------------------------------------------

with open(os.path.join(HERE, "..", "..", "config.ini"), "rb") as f:
    write("fuzz_config", "config.ini", f.read())
cfg = {
    "minimal": "[server]\nport=9000\n",
    "lists": '[server]\nallowed_origins=["https://a.example", "http://b:1"]\naddress="::"\n',
    "durations": "[presence]\ngrace=1h\ndiff_interval=5ms\ncount_interval=1min\n[store]\ncommit_window=250us\n",
    "whole-doubles": "[connection]\nrate_per_second=3\nrate_burst=7\n[supervisor]\nbackoff_factor=2\n",
    "zero-interval": "[presence]\ndiff_interval=0s\n",
    "zero-page": "[presence]\npage_size=0\n",
    "bad-sync": '[store]\nsynchronous="sometimes"\n',
    "wrong-types": '[server]\nport="eighty"\nio_threads=-1\n[connection]\nidle_timeout=10\n',
    "atoms": "[scheduler]\npolicy='stealing'\nmax-threads=4\n",
    "map": "[server]\nextra={a=1, b=\"x\", c=[1,2]}\n",
    "uri": "[server]\nuri=<http://example.com/x?y=1>\n",
    "comments": "; a comment\n[testing] ; trailing\nfault_injection=true ; on\n",
    "unterminated": '[server\naddress="0.0.0.0\n',
    "nested-lists": "[x]\ny=[[[[1]]],[2,[3]]]\n",
    "big-numbers": "[server]\nport=99999999999999999999\n[rooms]\nidle_retire=99999999999h\n",
}
for name, text in cfg.items():
    write("fuzz_config", name, text)
