#!/usr/bin/env python3
"""A minimal Chat Completions upstream on 127.0.0.1 for running the Open Responses compliance
suite by hand against the proxy (not used by the tests):

    python3 scripts/openresponses-mock.py 18481 &
    codex-convert-proxy --config CONFIG   # one backend: {"url": "http://127.0.0.1:18481/v1", "model": "m", ...}
    ../shared/openresponses/run.sh --base-url http://127.0.0.1:PORT/v1 --api-key x --model m

A request with tools whose last message is the user's gets a call of the first tool (its
properties filled in); anything else a short text. Streams and JSON, chunked or sized bodies."""
import json, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline(); break
                raw += self.rfile.read(size); self.rfile.readline()
        else:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        req = json.loads(raw)
        msgs = req.get("messages", []); tools = req.get("tools") or []
        call = None
        if tools and msgs and msgs[-1].get("role") == "user":
            f = tools[0]["function"]; props = (f.get("parameters") or {}).get("properties", {})
            call = {"id": "call_1", "type": "function", "function": {"name": f["name"], "arguments": json.dumps({k: "San Francisco, CA" for k in props})}}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if req.get("stream"):
            self.send_response(200); self.send_header("content-type", "text/event-stream"); self.send_header("transfer-encoding", "chunked"); self.end_headers()
            def send(obj):
                d = ("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(d), d)); self.wfile.flush()
            if call:
                send({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [dict(index=0, **call)]}}]})
                send({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            else:
                for w in ["Hello", " there", "."]:
                    send({"id": "c", "choices": [{"index": 0, "delta": {"content": w}}]})
                send({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            send({"id": "c", "choices": [], "usage": usage}); send("[DONE]")
            self.wfile.write(b"0\r\n\r\n"); self.wfile.flush()
        else:
            msg = {"role": "assistant", "content": None if call else "Hello there."}
            if call: msg["tool_calls"] = [call]
            body = json.dumps({"id": "c", "object": "chat.completion", "created": int(time.time()), "model": req.get("model"), "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if call else "stop"}], "usage": usage}).encode()
            self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
