#!/usr/bin/env python3
"""The OpenAI Python SDK against the proxy's response store.

Usage: store_chain.py BASE_URL API_KEY

Runs, with `client.responses`: a three-turn chain through `previous_response_id` (turn 1 and 3
not streamed, turn 2 streamed), `retrieve`, `input_items.list`, `delete`, then the errors: a
deleted id, an unknown id, a `store=False` response continued. Prints one JSON object with
what it saw; exits 1 on an unexpected outcome.
"""

from __future__ import annotations

import json
import sys

import openai


def main() -> int:
    base_url, key = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
    out: dict = {}
    r1 = client.responses.create(model="m", input="My name is Ada. Remember it.")
    out["r1"] = {"id": r1.id, "text": r1.output_text, "store": r1.store}
    with client.responses.stream(
        model="m", input="And my city is Lyon.", previous_response_id=r1.id
    ) as stream:
        for _ in stream:
            pass
        r2 = stream.get_final_response()
    out["r2"] = {"id": r2.id, "text": r2.output_text, "previous": r2.previous_response_id}
    r3 = client.responses.create(
        model="m",
        input=[{"role": "user", "content": "What are my name and city?"}],
        previous_response_id=r2.id,
        instructions="Answer briefly.",
    )
    out["r3"] = {"id": r3.id, "text": r3.output_text}
    got = client.responses.retrieve(r2.id)
    out["retrieved"] = {"id": got.id, "text": got.output_text, "status": got.status}
    items = client.responses.input_items.list(r3.id)
    out["input_items"] = [i.model_dump() for i in items.data]
    deleted = client.responses.delete(r1.id)
    out["deleted"] = deleted if isinstance(deleted, (dict, type(None))) else str(deleted)
    errors = {}
    for name, call in [
        ("retrieve_deleted", lambda: client.responses.retrieve(r1.id)),
        ("continue_deleted", lambda: client.responses.create(model="m", input="x", previous_response_id=r2.id)),
        ("retrieve_unknown", lambda: client.responses.retrieve("resp_unknown0000")),
        ("continue_unknown", lambda: client.responses.create(model="m", input="x", previous_response_id="resp_unknown0000")),
    ]:
        try:
            call()
            errors[name] = None
        except openai.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}
            errors[name] = {"status": e.status_code, "code": body.get("code") or (body.get("error") or {}).get("code")}
    r4 = client.responses.create(model="m", input="not kept", store=False)
    try:
        client.responses.create(model="m", input="x", previous_response_id=r4.id)
        errors["continue_store_false"] = None
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        errors["continue_store_false"] = {"status": e.status_code, "code": body.get("code") or (body.get("error") or {}).get("code")}
    out["errors"] = errors
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
