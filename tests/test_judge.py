"""Judges: the exact-match default, and LLMJudge driven through the real openai client against a real
local HTTP server (tests/openai_server.py) that can be made slow, failing or incoherent."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer, verdict_for

from toolr1_env.judge import (
    DEFAULT_JUDGE_PROMPT,
    ExactMatchJudge,
    Judge,
    LLMJudge,
    Verdict,
    make_judge,
    parse_judge_reply,
)

Q = "What is the capital of France?"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must not intercept loopback requests.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def make(server: FakeOpenAIServer, **kwargs: object) -> LLMJudge:
    options: dict = {"api_key": "test-key", "max_retries": 3, "timeout": 5.0}
    options.update(kwargs)
    return LLMJudge(server.base_url, "judge-model", **options)


# ----------------------------------------------------------------------------- records and defaults


def test_verdict_rejects_scores_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Verdict(score=1.5, raw="x")
    assert Verdict(score=0.5, raw="x").infra_error is None


def test_exact_match_judge() -> None:
    judge = ExactMatchJudge()
    assert judge.judge(Q, "paris", "Paris") == Verdict(1.0, "question_scorer: True")
    assert judge.judge(Q, "The capital is Paris", "Paris") == Verdict(0.0, "question_scorer: False")
    assert judge.judge(Q, None, "Paris").score == 0.0
    assert isinstance(judge, Judge)


def test_make_judge(tmp_path: Path) -> None:
    assert isinstance(make_judge(None), ExactMatchJudge)
    existing = ExactMatchJudge()
    assert make_judge(existing) is existing
    built = make_judge({"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": "k", "timeout": 2.0})
    assert isinstance(built, LLMJudge)
    assert (built.base_url, built.model, built.timeout) == ("http://127.0.0.1:1/v1", "m", 2.0)
    with pytest.raises(ValueError, match="needs \\['model'\\]"):
        make_judge({"base_url": "http://x/v1"})
    with pytest.raises(ValueError, match="unknown LLMJudge option.*'temprature'"):
        make_judge({"base_url": "http://x/v1", "model": "m", "temprature": 0})
    with pytest.raises(TypeError, match="got str"):
        make_judge("gpt-4o")  # type: ignore[arg-type]


def test_llm_judge_rejects_bad_prompt_template() -> None:
    with pytest.raises(ValueError, match="prompt_template"):
        LLMJudge("http://127.0.0.1:1/v1", "m", prompt_template="Is {answer} right?")


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("SCORE: 1", 1.0),
        ("SCORE: 0", 0.0),
        ("The answers match.\nScore: 1", 1.0),
        ("I first thought SCORE: 0 but then...\nSCORE: 1", 1.0),  # the last one counts
        ("**SCORE:** 0.5", 0.5),
        ("SCORE: 7", None),  # out of range
        ("SCORE: -1", None),
        ("It is correct.", None),
        ("", None),
    ],
)
def test_parse_judge_reply(reply: str, score: float | None) -> None:
    assert parse_judge_reply(reply) == score


def test_server_rule_reads_the_default_prompt() -> None:
    prompt = DEFAULT_JUDGE_PROMPT.format(question=Q, ground_truth="Paris", prediction="It is PARIS.")
    assert verdict_for(prompt).endswith("SCORE: 1")
    prompt = DEFAULT_JUDGE_PROMPT.format(question=Q, ground_truth="Paris", prediction="Lyon")
    assert verdict_for(prompt).endswith("SCORE: 0")


# ----------------------------------------------------------------------------- verdicts through HTTP


def test_correct_and_incorrect_verdicts(server: FakeOpenAIServer) -> None:
    judge = make(server)
    right = judge.judge(Q, "The capital is Paris", "Paris")
    wrong = judge.judge(Q, "Lyon", "Paris")
    assert (right.score, right.infra_error) == (1.0, None)
    assert right.raw.endswith("SCORE: 1")
    assert (wrong.score, wrong.infra_error) == (0.0, None)
    assert wrong.raw.endswith("SCORE: 0")
    assert len(server.chat_requests) == 2


def test_request_shape(server: FakeOpenAIServer) -> None:
    make(server).judge(Q, "The capital is Paris", "Paris")
    (request,) = server.chat_requests
    body = request.body
    assert body is not None
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert message["content"] == DEFAULT_JUDGE_PROMPT.format(
        question=Q, ground_truth="Paris", prediction="The capital is Paris"
    )


def test_empty_prediction_scores_zero_without_a_call(server: FakeOpenAIServer) -> None:
    judge = make(server)
    for prediction in (None, "", "   \n"):
        verdict = judge.judge(Q, prediction, "Paris")
        assert (verdict.score, verdict.infra_error) == (0.0, None)
    assert server.chat_requests == []


def test_exact_match_shortcut(server: FakeOpenAIServer) -> None:
    verdict = make(server).judge(Q, " PARIS ", "Paris")
    assert (verdict.score, verdict.infra_error) == (1.0, None)
    assert "exact match" in verdict.raw
    assert server.chat_requests == []
    # Without the shortcut the judge is asked even when the exact scorer would accept.
    verdict = make(server, exact_match_shortcut=False).judge(Q, " PARIS ", "Paris")
    assert verdict.score == 1.0 and verdict.raw.endswith("SCORE: 1")
    assert len(server.chat_requests) == 1


# ----------------------------------------------------------------------------- caching


def test_memory_cache(server: FakeOpenAIServer) -> None:
    judge = make(server)
    first = judge.judge(Q, "It is Paris", "Paris")
    second = judge.judge(Q, "It is Paris", "Paris")
    assert first == second and first.score == 1.0
    assert len(server.chat_requests) == 1
    judge.judge(Q, "It is Lyon", "Paris")  # another prediction is another key
    judge.judge("Another question?", "It is Paris", "Paris")  # so is another question
    assert len(server.chat_requests) == 3


def test_disk_cache_survives_a_new_instance(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "sub" / "judge_cache.jsonl"
    verdict = make(server, cache_path=cache).judge(Q, "It is Paris", "Paris")
    assert verdict.score == 1.0
    lines = cache.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["question"], record["prediction"], record["ground_truth"]) == (Q, "It is Paris", "Paris")
    assert record["score"] == 1.0 and record["model"] == "judge-model"

    again = make(server, cache_path=cache).judge(Q, "It is Paris", "Paris")
    assert again == verdict
    assert len(server.chat_requests) == 1

    # Another model or prompt must not reuse the verdicts.
    other = LLMJudge(server.base_url, "other-model", "k", cache_path=cache)
    other.judge(Q, "It is Paris", "Paris")
    assert len(server.chat_requests) == 2


def test_disk_cache_skips_a_truncated_line(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    make(server, cache_path=cache).judge(Q, "It is Paris", "Paris")
    with open(cache, "a", encoding="utf-8") as f:
        f.write('{"model": "judge-model", "question": "cut sh')
    judge = make(server, cache_path=cache)
    assert judge.judge(Q, "It is Paris", "Paris").score == 1.0
    assert len(server.chat_requests) == 1


def test_pickled_judge_keeps_working(server: FakeOpenAIServer) -> None:
    judge = make(server)
    judge.judge(Q, "It is Paris", "Paris")
    clone = pickle.loads(pickle.dumps(judge))
    assert clone.judge(Q, "It is Paris", "Paris").score == 1.0  # from the copied cache
    assert clone.judge(Q, "It is Lyon", "Paris").score == 0.0
    assert len(server.chat_requests) == 2


# ----------------------------------------------------------------------------- retries and failures


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(server: FakeOpenAIServer, status: int) -> None:
    server.fail_next(status, 2)
    verdict = make(server, max_retries=3).judge(Q, "It is Paris", "Paris")
    assert (verdict.score, verdict.infra_error) == (1.0, None)
    assert [r.status for r in server.chat_requests] == [status, status, 200]


def test_retries_exhausted_is_an_infra_error_and_not_cached(server: FakeOpenAIServer) -> None:
    server.fail_next(500, 3)
    judge = make(server, max_retries=2)
    verdict = judge.judge(Q, "It is Paris", "Paris")
    assert verdict.score == 0.0
    assert verdict.infra_error is not None
    assert "after 3 attempts" in verdict.infra_error and "InternalServerError" in verdict.infra_error
    assert len(server.chat_requests) == 3
    # Not cached: the next call asks again and gets the real verdict.
    retry = judge.judge(Q, "It is Paris", "Paris")
    assert (retry.score, retry.infra_error) == (1.0, None)
    assert len(server.chat_requests) == 4


def test_client_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(400, 5)
    verdict = make(server).judge(Q, "It is Paris", "Paris")
    assert verdict.score == 0.0
    assert verdict.infra_error is not None and "HTTP 400" in verdict.infra_error
    assert len(server.chat_requests) == 1


def test_backoff_is_exponential(server: FakeOpenAIServer) -> None:
    server.fail_next(429, 2)
    start = time.monotonic()
    make(server, max_retries=2).judge(Q, "It is Paris", "Paris")
    assert time.monotonic() - start >= 0.375 + 0.75  # the openai client's backoff: 0.5 s, 1 s, at most 25% jitter


def test_outage_is_an_infra_error_and_not_cached(tmp_path: Path) -> None:
    server = FakeOpenAIServer()
    server.stop()  # the port is now closed: connections are refused
    cache = tmp_path / "cache.jsonl"
    judge = make(server, max_retries=2, cache_path=cache)
    verdict = judge.judge(Q, "It is Paris", "Paris")
    assert verdict.score == 0.0
    assert verdict.infra_error is not None
    assert "unavailable" in verdict.infra_error and "APIConnectionError" in verdict.infra_error
    assert judge.cached(Q, "It is Paris", "Paris") is None
    assert not cache.exists() or cache.read_text() == ""


def test_timeout_is_retried_then_an_infra_error(server: FakeOpenAIServer) -> None:
    server.delay = 0.5
    verdict = make(server, max_retries=1, timeout=0.1).judge(Q, "It is Paris", "Paris")
    assert verdict.infra_error is not None and "APITimeoutError" in verdict.infra_error
    time.sleep(0.6)  # let the server finish the abandoned requests before counting
    assert len(server.chat_requests) == 2


def test_unparseable_reply_is_an_infra_error_and_not_cached(server: FakeOpenAIServer) -> None:
    server.reply = "Hmm, hard to say. Probably fine?"
    judge = make(server)
    verdict = judge.judge(Q, "It is Paris", "Paris")
    assert verdict.score == 0.0
    assert verdict.raw == "Hmm, hard to say. Probably fine?"
    assert verdict.infra_error is not None and "unparseable" in verdict.infra_error
    assert len(server.chat_requests) == 1  # a bad reply is not a transport error: no retry
    server.reply = None
    assert judge.judge(Q, "It is Paris", "Paris").score == 1.0
    assert len(server.chat_requests) == 2


def test_non_json_body_is_an_infra_error(server: FakeOpenAIServer) -> None:
    server.raw_body = "<html>502 bad gateway</html>"
    verdict = make(server).judge(Q, "It is Paris", "Paris")
    assert verdict.score == 0.0
    assert verdict.infra_error is not None and "unparseable" in verdict.infra_error


# ----------------------------------------------------------------------------- threads


def test_judging_from_threads(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    judge = make(server, cache_path=cache)
    predictions = [f"answer {i} Paris" if i % 2 else f"answer {i}" for i in range(16)]
    results: dict[str, float] = {}

    def work(prediction: str) -> None:
        results[prediction] = judge.judge(Q, prediction, "Paris").score

    threads = [threading.Thread(target=work, args=(p,)) for p in predictions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {p: (1.0 if "Paris" in p else 0.0) for p in predictions}
    records = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["prediction"] for r in records) == sorted(predictions)
