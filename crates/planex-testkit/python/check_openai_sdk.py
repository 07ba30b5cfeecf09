"""Drives planex's agent endpoint with the official `openai` Python SDK.

Usage: python -W error check_openai_sdk.py BASE_URL TASK_OK TASK_PARTIAL TASK_FAILING

BASE_URL is planex's `/v1` URL; the task texts are pinned in the simulator's workload: TASK_OK
plans steps that succeed, TASK_PARTIAL one step that fails beside one that succeeds, TASK_FAILING
only steps that fail. Prints one `ok: ...` line per check and exits non-zero (with the assertion)
on the first that fails. Run with `-W error` so any SDK warning fails the check too.
"""

import json
import sys

import openai
import pydantic


class City(pydantic.BaseModel):
    name: str
    population: int
    coastal: bool


def ok(what):
    print(f"ok: {what}", flush=True)


def main():
    base_url, task_ok, task_partial, task_failing = sys.argv[1:5]
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)

    models = [m.id for m in client.models.list()]
    assert models == ["planex"], models
    assert client.models.retrieve("planex").id == "planex"
    ok("models.list() and models.retrieve()")

    completion = client.chat.completions.create(
        model="planex", messages=[{"role": "user", "content": task_ok}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice
    assert choice.message.content.startswith("[simulated]"), choice.message.content
    assert completion.usage.total_tokens > 0, completion.usage
    extra = completion.model_extra["planex"]
    assert extra["status"] == "complete" and extra["failed_steps"] == [], extra
    ok("create: a complete task's answer, usage and planex extension")

    chunks = list(
        client.chat.completions.create(
            model="planex",
            messages=[{"role": "user", "content": task_ok}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert with_usage == [len(chunks) - 1], with_usage
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0, chunks[-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated]"), text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    ok("stream with include_usage: usage once, on the last chunk only")
    pieces = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1, f"the answer came in {len(pieces)} chunk(s)"
    ok(f"stream: the answer arrives as the synthesis writes it ({len(pieces)} content chunks)")

    chunks = list(
        client.chat.completions.create(
            model="planex", messages=[{"role": "user", "content": task_ok}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks), [c.usage for c in chunks]
    ok("stream without include_usage: no usage at all")

    parsed = client.chat.completions.parse(
        model="planex",
        messages=[{"role": "user", "content": task_ok}],
        response_format=City,
    )
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City), parsed
    ok(f"parse with a json_schema response_format: {city!r}")

    short = client.chat.completions.create(
        model="planex", messages=[{"role": "user", "content": task_ok}], max_completion_tokens=5
    )
    assert short.choices[0].finish_reason == "length", short.choices[0]
    ok("max_completion_tokens caps the answer (finish_reason length)")

    partial = client.chat.completions.create(
        model="planex", messages=[{"role": "user", "content": task_partial}]
    )
    missing = partial.model_extra["planex"]["failed_steps"]
    assert partial.model_extra["planex"]["status"] == "partial", partial.model_extra
    assert [s["state"] for s in missing] == ["failed"], missing
    assert "http://" not in json.dumps(missing), missing
    ok(f"a partial task answers 200 and lists its missing steps: {missing}")

    try:
        client.chat.completions.create(
            model="planex", messages=[{"role": "user", "content": task_failing}]
        )
        raise AssertionError("a task whose every step failed answered 200")
    except openai.APIStatusError as error:
        assert error.status_code == 502, error
        assert error.code == "steps_failed", error.body
        assert "http://" not in error.message, error.message
        ok(f"a failed task raises APIStatusError 502: {error.message[:120]}")

    try:
        client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": task_ok}]
        )
        raise AssertionError("an unknown model answered 200")
    except openai.NotFoundError as error:
        assert error.code == "model_not_found" and error.param == "model", error.body
        ok("an unknown model raises NotFoundError (model_not_found)")

    try:
        client.chat.completions.create(
            model="planex", messages=[{"role": "user", "content": task_ok}], n=2
        )
        raise AssertionError("n=2 answered 200")
    except openai.BadRequestError as error:
        assert error.param == "n" and error.type == "invalid_request_error", error.body
        ok("n=2 raises BadRequestError naming the parameter")

    try:
        client.chat.completions.create(
            model="planex",
            messages=[{"role": "user", "content": task_ok}],
            extra_body={"budget_usd": "0.000000001"},
        )
        raise AssertionError("a budget below any plan answered 200")
    except openai.RateLimitError as error:
        assert error.type == "insufficient_quota", error.body
        assert error.response.headers.get("retry-after"), error.response.headers
        ok("a budget refusal raises RateLimitError with Retry-After")


if __name__ == "__main__":
    main()
