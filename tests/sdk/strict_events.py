#!/usr/bin/env python3
"""Strict client check of the proxy's Responses output with the OpenAI Python SDK's models.

Usage: strict_events.py DIR

Every `*.sse` file in DIR is a streamed response body of the proxy, every `*.json` file a
non-streamed Response object. Each SSE event is parsed with the SDK's typed union
`openai.types.responses.ResponseStreamEvent` (pydantic `TypeAdapter(...).validate_python`);
the Response objects (inside `response.created` / `in_progress` / `completed` / `failed` /
`incomplete`, and the JSON bodies) with `openai.types.responses.Response`.

The SDK itself parses leniently (it never tells a client that a field is missing), so on top
of pydantic's validation every field that the matched SDK model marks as required must be
present in the JSON, recursively (`response`, `item`, `part`, `output[]`, `usage`, ...).
Also checked: the `event:` line equals the JSON `type`, `sequence_number`s are 0, 1, 2, ...,
the stream ends with `data: [DONE]`.

Prints one line per file and every problem; exits 1 when there is any problem, 2 on usage
errors.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

try:
    import openai
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import BaseModel, TypeAdapter, ValidationError
except ImportError as e:  # pragma: no cover - set-up problem
    print(f"error: the OpenAI SDK is not importable ({e}): run scripts/sdk-venv.sh", file=sys.stderr)
    sys.exit(2)

EVENT_ADAPTER = TypeAdapter(ResponseStreamEvent)


def _event_models() -> dict[str, type[BaseModel]]:
    """The members of the ResponseStreamEvent union by their `type` literal."""
    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], PropertyInfo]
    models = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            models[literal] = cls
    return models


EVENT_MODELS = _event_models()
RESPONSE_EVENTS = {
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.failed",
    "response.incomplete",
    "response.queued",
}
TERMINAL = {"response.completed", "response.failed", "response.incomplete"}
# Response fields the Open Responses spec (ResponseResource) requires, nullable or not; the
# SDK declares several of them optional, so they are checked by name too.
OPEN_RESPONSES_REQUIRED = (
    "id object created_at completed_at status incomplete_details model previous_response_id "
    "instructions output error tools tool_choice truncation parallel_tool_calls text top_p "
    "presence_penalty frequency_penalty top_logprobs temperature reasoning usage "
    "max_output_tokens max_tool_calls store background service_tier metadata "
    "safety_identifier prompt_cache_key"
).split()


def check_required(obj: Any, data: Any, path: str, errors: list[str]) -> None:
    """Every field the SDK model of `obj` marks as required is present in `data`, recursively."""
    if isinstance(obj, BaseModel):
        if not isinstance(data, dict):
            errors.append(f"{path}: expected an object for {type(obj).__name__}, got {data!r:.80}")
            return
        cls = type(obj)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data:
                if field.is_required():
                    errors.append(f"{path}.{key}: required by {cls.__name__} but missing")
                continue
            check_required(getattr(obj, name), data[key], f"{path}.{key}", errors)
    elif isinstance(obj, (list, tuple)) and isinstance(data, list):
        if len(obj) != len(data):
            errors.append(f"{path}: {len(data)} elements in JSON, {len(obj)} parsed")
        for i, (o, d) in enumerate(zip(obj, data)):
            check_required(o, d, f"{path}[{i}]", errors)
    elif isinstance(obj, dict) and isinstance(data, dict):
        for k, d in data.items():
            if k in obj:
                check_required(obj[k], d, f"{path}.{k}", errors)


def validation_errors(e: ValidationError, limit: int = 8) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"{loc}: {err['msg']}")
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def event_errors(ev: Any, e: ValidationError) -> str:
    """Why the union rejected an event: the errors of the member its `type` names (pydantic
    lists the errors of every member)."""
    ty = ev.get("type") if isinstance(ev, dict) else None
    cls = EVENT_MODELS.get(ty)  # type: ignore[arg-type]
    if cls is None:
        return f"unknown event type {ty!r}"
    try:
        cls.model_validate(ev, strict=False)
    except ValidationError as member_error:
        return f"{cls.__name__}: {validation_errors(member_error)}"
    return validation_errors(e)


def check_response(resp: Any, path: str, errors: list[str]) -> Response | None:
    try:
        model = Response.model_validate(resp, strict=False)
    except ValidationError as e:
        errors.append(f"{path}: not a valid Response: {validation_errors(e)}")
        return None
    check_required(model, resp, path, errors)
    missing = [k for k in OPEN_RESPONSES_REQUIRED if k not in resp]
    if missing:
        errors.append(f"{path}: fields required by Open Responses missing: {', '.join(missing)}")
    return model


def parse_sse(text: str, errors: list[str]) -> tuple[list[tuple[str | None, Any]], bool]:
    events: list[tuple[str | None, Any]] = []
    done = False
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data_lines.append(value)
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if done:
            errors.append(f"an event follows data: [DONE]: {data!r:.80}")
        if data.strip() == "[DONE]":
            done = True
            continue
        try:
            events.append((name, json.loads(data)))
        except json.JSONDecodeError as e:
            errors.append(f"data is not JSON ({e}): {data!r:.120}")
    return events, done


def check_stream(path: Path) -> tuple[list[str], str]:
    errors: list[str] = []
    events, done = parse_sse(path.read_text(encoding="utf-8"), errors)
    if not done:
        errors.append("the stream does not end with data: [DONE]")
    if not events:
        errors.append("no events")
    types = []
    for i, (name, ev) in enumerate(events):
        ty = ev.get("type") if isinstance(ev, dict) else None
        where = f"event #{i} ({ty})"
        types.append(str(ty))
        if name != ty:
            errors.append(f"{where}: `event: {name}` differs from the JSON type")
        if isinstance(ev, dict) and ev.get("sequence_number") != i:
            errors.append(f"{where}: sequence_number {ev.get('sequence_number')!r}, expected {i}")
        try:
            model = EVENT_ADAPTER.validate_python(ev, strict=False)
        except ValidationError as e:
            errors.append(f"{where}: not a valid ResponseStreamEvent: {event_errors(ev, e)}")
            continue
        if getattr(model, "type", None) != ty:
            errors.append(f"{where}: parsed as {type(model).__name__}")
        check_required(model, ev, where, errors)
        if ty in RESPONSE_EVENTS:
            check_response(ev.get("response"), f"{where}.response", errors)
    terminals = [t for t in types if t in TERMINAL]
    if len(terminals) != 1 or (types and types[-1] not in TERMINAL):
        errors.append(f"expected exactly one terminal event, last; got {terminals}")
    summary = f"{len(events)} events, ends with {types[-1] if types else None}"
    return errors, summary


def check_json(path: Path) -> tuple[list[str], str]:
    errors: list[str] = []
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [f"not JSON: {e}"], ""
    model = check_response(body, "response", errors)
    status = model.status if model else None
    return errors, f"Response status {status}, {len(body.get('output') or [])} output items"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    files = sorted(p for p in Path(argv[1]).iterdir() if p.suffix in (".sse", ".json"))
    if not files:
        print(f"error: no .sse or .json file in {argv[1]}", file=sys.stderr)
        return 2
    print(f"openai {openai.__version__}: checking {len(files)} bodies")
    failed = 0
    for f in files:
        errors, summary = check_stream(f) if f.suffix == ".sse" else check_json(f)
        status = "ok" if not errors else f"{len(errors)} problem(s)"
        print(f"{f.name}: {summary}: {status}")
        for e in errors:
            print(f"  - {e}")
        failed += bool(errors)
    print(f"strict check: {len(files) - failed} of {len(files)} bodies valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
