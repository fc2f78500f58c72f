#!/usr/bin/env python3
"""An OpenAI-compatible server for assay's tests and benchmarks, with faults on demand.

It speaks the real wire format over HTTP/1.1 with keep-alive: POST /v1/chat/completions and
POST /v1/embeddings take and return the JSON bodies OpenAI's API does. Answers are
deterministic, so scores can be computed by hand:

- chat: if a message contains <<reply: TEXT>>, the answer is TEXT (and TEXT2 of a
  <<retry-reply: TEXT2>> when the conversation already holds an answer: a follow-up; with
  <<replies: A | B | C>> the k-th request of the same prompt gets the k-th, cycling); otherwise
  'Verdict: {"score": S, "supported": B, "reason": "stub"}' with S in 1..5 and B derived
  from a hash of the messages. Usage counts words.
- embeddings: a 26-dimensional vector of letter counts (a..z) per input.

Faults are set at run time through POST /admin/faults with a JSON object:
  latency_ms, jitter_ms   every answer waits latency + uniform(0, jitter)
  always: KIND            every request gets KIND
  script: [KIND, ...]     the next requests, in arrival order, get these
  fail_first: N, fail_kind: KIND   each distinct request body gets KIND for its first N tries
  rate: P, rate_kind: KIND         each request gets KIND with probability P (seeded)
KIND is a status ("429", "500", "503"; "429:S" sends Retry-After: S), "malformed" (200 with
broken JSON), "truncated" (a body shorter than its Content-Length, then close), "reset"
(connection dropped), "hang" (never answered). GET /admin/stats returns counters;
POST /admin/reset clears faults and counters.

usage: llm_server.py serve [--port N]        prints "PORT n" when listening
       llm_server.py ctl PORT PATH [JSON]    GET (or POST with JSON) an admin path, prints the answer
"""
import asyncio
import hashlib
import json
import random
import sys
import urllib.request


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.faults = {}
        self.random = random.Random(1)  # the rate faults, the same sequence after each reset
        self.asked = {}
        self.script = []
        self.tries = {}
        self.stats = {"requests": 0, "chat": 0, "embeddings": 0, "faults": {}, "auth": [], "max_concurrent": 0}
        self.concurrent = 0


STATE = State()


def words(text):
    return len(text.split())


def chat_answer(body):
    messages = body.get("messages") or []
    joined = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    is_followup = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
    start = joined.find("<<retry-reply:") if is_followup else -1
    if start >= 0:
        end = joined.find(">>", start)
        text = joined[start + 14:end if end >= 0 else len(joined)].strip()
    elif (start := joined.find("<<by-model:")) >= 0:
        # a panel: each model its own answer, "<<by-model: m1 => A ;; m2 => B>>"
        end = joined.find(">>", start)
        pairs = [p.split("=>", 1) for p in joined[start + 11:end if end >= 0 else len(joined)].split(";;")]
        text = next((a.strip() for m, a in pairs if m.strip() == body.get("model")), "no answer for this model")
    elif (start := joined.find("<<replies:")) >= 0:
        # a model that answers the same prompt differently: the k-th ask of this prompt
        # gets the k-th alternative (cycling)
        end = joined.find(">>", start)
        options = [o.strip() for o in joined[start + 10:end if end >= 0 else len(joined)].split("|")]
        key = hashlib.sha256(joined.encode()).hexdigest()
        k = STATE.asked.get(key, 0)
        STATE.asked[key] = k + 1
        text = options[k % len(options)]
    elif (start := joined.find("<<reply:")) >= 0:
        end = joined.find(">>", start)
        text = joined[start + 8:end if end >= 0 else len(joined)].strip()
    else:
        h = int(hashlib.sha256(joined.encode()).hexdigest(), 16)
        text = 'Verdict: {"score": %d, "supported": %s, "reason": "stub"}' % (
            1 + h % 5, "true" if (h >> 8) % 2 == 0 else "false")
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": words(joined), "completion_tokens": words(text),
                  "total_tokens": words(joined) + words(text)},
    }


def embedding_answer(body):
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    data = []
    for i, text in enumerate(inputs or []):
        vector = [0.0] * 26
        for ch in str(text).lower():
            if "a" <= ch <= "z":
                vector[ord(ch) - 97] += 1.0
        data.append({"object": "embedding", "index": i, "embedding": vector})
    n = sum(words(str(t)) for t in inputs or [])
    return {"object": "list", "data": data, "model": body.get("model", "test-model"),
            "usage": {"prompt_tokens": n, "total_tokens": n}}


def pick_fault(raw_body):
    if STATE.script:
        return STATE.script.pop(0)
    if STATE.faults.get("always"):
        return STATE.faults["always"]
    n = STATE.faults.get("fail_first", 0)
    if n:
        key = hashlib.sha256(raw_body).hexdigest()
        tries = STATE.tries.get(key, 0)
        STATE.tries[key] = tries + 1
        if tries < n:
            return STATE.faults.get("fail_kind", "503")
    rate = STATE.faults.get("rate", 0)
    if rate and STATE.random.random() < rate:
        return STATE.faults.get("rate_kind", "503")
    return None


async def send(writer, status, body, headers=None, reason="OK"):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Type: application/json",
             "Content-Length: %d" % len(payload)]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    await writer.drain()


async def handle(reader, writer):
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            if path.startswith("/admin/"):
                await admin(writer, method, path, raw)
                continue
            await api(writer, path, headers, raw)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def admin(writer, method, path, raw):
    if path == "/admin/stats":
        await send(writer, 200, STATE.stats)
    elif path == "/admin/reset":
        STATE.reset()
        await send(writer, 200, {"ok": True})
    elif path == "/admin/faults" and method == "POST":
        faults = json.loads(raw or b"{}")
        STATE.script = list(faults.pop("script", []))
        STATE.faults = faults
        STATE.tries = {}
        await send(writer, 200, {"ok": True})
    else:
        await send(writer, 404, {"error": "no such admin path"}, reason="Not Found")


async def api(writer, path, headers, raw):
    STATE.stats["requests"] += 1
    STATE.concurrent += 1
    STATE.stats["max_concurrent"] = max(STATE.stats["max_concurrent"], STATE.concurrent)
    try:
        auth = headers.get("authorization")
        if auth and auth not in STATE.stats["auth"]:
            STATE.stats["auth"].append(auth)
        latency = STATE.faults.get("latency_ms", 0) + random.uniform(0, STATE.faults.get("jitter_ms", 0))
        if latency:
            await asyncio.sleep(latency / 1000.0)
        fault = pick_fault(raw)
        if fault:
            STATE.stats["faults"][fault] = STATE.stats["faults"].get(fault, 0) + 1
            await inject(writer, fault)
            return
        if path.startswith("/big/"):  # a body of N bytes, for the memory caps on responses
            await send(writer, 200, b"x" * int(path[5:]))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            await send(writer, 400, {"error": {"message": "body is not JSON"}}, reason="Bad Request")
            return
        if path == "/v1/chat/completions":
            STATE.stats["chat"] += 1
            await send(writer, 200, chat_answer(body))
        elif path == "/v1/embeddings":
            STATE.stats["embeddings"] += 1
            await send(writer, 200, embedding_answer(body))
        else:
            await send(writer, 404, {"error": {"message": "unknown path " + path}}, reason="Not Found")
    finally:
        STATE.concurrent -= 1


async def inject(writer, fault):
    if fault == "hang":
        await asyncio.sleep(3600)
    elif fault == "reset":
        writer.transport.abort()
        raise ConnectionError("reset on purpose")
    elif fault == "malformed":
        await send(writer, 200, b'{"choices": [{"message": {"content": "unterminated')
    elif fault == "truncated":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"choices\":")
        await writer.drain()
        writer.transport.abort()
        raise ConnectionError("truncated on purpose")
    else:
        status, _, retry_after = fault.partition(":")
        extra = {"Retry-After": retry_after} if retry_after else {}
        await send(writer, int(status), {"error": {"message": "injected " + fault}}, extra, reason="Injected")


async def serve(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def ctl(port, path, payload=None):
    data = payload.encode() if payload is not None else None
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=10) as answer:
        print(answer.read().decode())


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        port = int(sys.argv[3]) if len(sys.argv) >= 4 and sys.argv[2] == "--port" else 0
        try:
            asyncio.run(serve(port))
        except KeyboardInterrupt:
            pass
    elif len(sys.argv) >= 4 and sys.argv[1] == "ctl":
        ctl(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
