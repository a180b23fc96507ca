"""Sandbox tests: each attacks one property (persistence, limits, isolation, tools, bad input)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from toolr1_env.sandbox import Sandbox, SandboxConfig, SandboxError, available_layers

LAYERS = available_layers()
ANY_IMPORT = SandboxConfig(allowed_imports=None, preload=(), step_timeout=5)
ROOT = os.getuid() == 0


def make(**overrides) -> Sandbox:
    base = dict(allowed_imports=None, preload=(), step_timeout=5)
    base.update(overrides)
    sandbox = Sandbox(SandboxConfig(**base))
    sandbox.start()
    return sandbox


@pytest.fixture(scope="module")
def sb():
    sandbox = make()
    yield sandbox
    sandbox.close()


@pytest.fixture
def fresh():
    sandbox = make()
    yield sandbox
    sandbox.close()


# -- persistence and reset -------------------------------------------------------------------------
def test_variables_functions_and_imports_persist_between_calls(sb):
    sb.reset()
    assert sb.run("import math\nx = 20\ndef double(v):\n    return 2 * v").ok
    assert sb.run("double(x) + math.floor(1.5)").value == "41"


def test_trailing_expression_value_and_prints_are_captured(sb):
    result = sb.run("print('hello')\n[1, 2][-1]")
    assert result.stdout == "hello\n"
    assert result.value == "2"
    assert sb.run("y = 3").value is None


def test_reset_gives_clean_namespace_and_directory(sb):
    sb.run("z = 1\nopen('leftover.txt', 'w').write('x')")
    assert (sb.workdir / "leftover.txt").exists()
    old_dir = sb.workdir
    sb.reset()
    assert "NameError" in sb.run("z").error
    assert list(sb.workdir.iterdir()) == []
    assert not old_dir.exists()


def test_reset_copies_task_files_into_the_working_directory(sb, tmp_path):
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    sb.reset(files=[src])
    assert sb.run("open('data.csv').read()").value == repr("a,b\n1,2\n")


# -- hard timeout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [
    "import time\ntime.sleep(60)",
    "while True:\n    pass",
    "10 ** 10 ** 10",
    "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):\n"
    "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
])
def test_timeout_kills_the_worker_and_a_fresh_one_is_ready(code):
    sandbox = make(step_timeout=1)
    try:
        sandbox.run("kept = 1")
        started = time.monotonic()
        result = sandbox.run(code)
        assert result.timed_out and not result.ok
        assert "did not finish within 1 seconds" in result.error and "restarted" in result.error
        assert time.monotonic() - started < 20
        assert sandbox.run("1 + 1").value == "2"
        assert "NameError" in sandbox.run("kept").error  # the restart is announced and real
    finally:
        sandbox.close()


# -- resource limits -------------------------------------------------------------------------------
def test_memory_limit_raises_memory_error_inside_the_sandbox():
    sandbox = make(memory_limit_mb=512)
    try:
        result = sandbox.run("block = bytearray(2 * 1024 ** 3)")
        assert result.error_type == "MemoryError"
        assert sandbox.run("len(bytearray(10))").value == "10"
    finally:
        sandbox.close()


def test_cpu_time_limit_kills_the_worker():
    sandbox = make(cpu_time_limit=1, step_timeout=30)
    try:
        result = sandbox.run("while True:\n    pass")
        assert result.worker_died and not result.timed_out
        assert "WorkerDied" in result.error
        assert sandbox.run("2 * 3").value == "6"
    finally:
        sandbox.close()


def test_file_size_limit():
    sandbox = make(max_file_size_mb=1)
    try:
        result = sandbox.run("open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))")
        assert result.error_type == "OSError" and "File too large" in result.error
    finally:
        sandbox.close()


def test_open_files_limit():
    sandbox = make(max_open_files=32)
    try:
        result = sandbox.run("handles = [open(f'f{i}.txt', 'w') for i in range(100)]")
        assert result.error_type == "OSError" and "Too many open files" in result.error
    finally:
        sandbox.close()


@pytest.mark.skipif(not ROOT, reason="RLIMIT_NPROC is only set when the host runs as root (agent runs as nobody)")
def test_process_limit_stops_a_fork_bomb():
    sandbox = make(max_processes=8)
    try:
        code = ("import os\npids = []\nfor _ in range(50):\n    pid = os.fork()\n    if pid == 0:\n"
                "        import time; time.sleep(30); os._exit(0)\n    pids.append(pid)")
        result = sandbox.run(code)
        assert result.error_type == "BlockingIOError"
        sandbox.reset()
        assert sandbox.run("1").value == "1"
    finally:
        sandbox.close()


def test_output_is_capped_keeping_head_and_tail(sb):
    result = sb.run("for i in range(100000):\n    print(f'line {i}')")
    assert len(result.stdout) < 11_000
    assert result.stdout.startswith("line 0\n") and result.stdout.rstrip().endswith("line 99999")
    assert "characters truncated" in result.stdout


def test_stdin_is_closed(sb):
    assert sb.run("input('name? ')").error_type == "EOFError"


# -- isolation -------------------------------------------------------------------------------------
def test_host_environment_variables_are_not_visible(monkeypatch):
    monkeypatch.setenv("TOOLR1_TEST_API_KEY", "sk-secret")
    sandbox = make()
    try:
        assert sandbox.run("import os\n'TOOLR1_TEST_API_KEY' in os.environ").value == "False"
        assert "sk-secret" not in sandbox.run("import os\nstr(dict(os.environ))").value
    finally:
        sandbox.close()


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_net"]), reason="no network isolation layer here")
def test_no_network(sb):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        result = sb.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
        assert result.error_type in {"ConnectionRefusedError", "PermissionError", "OSError"}, result.error
    finally:
        server.close()


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_fs"]), reason="no filesystem isolation layer")
@pytest.mark.parametrize("path", ["/tmp/escaped.txt", "/root/escaped.txt", "../escaped.txt",
                                  str(Path(__file__).resolve().parent / "escaped.txt")])
def test_writes_outside_the_working_directory_fail(sb, path):
    result = sb.run(f"open({path!r}, 'w').write('x')")
    assert result.error_type in {"PermissionError", "FileNotFoundError", "OSError"}, result.error
    assert not Path(path).exists() or path.startswith("..")


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_fs"]), reason="no filesystem isolation layer")
def test_project_sources_and_data_are_unreadable(sb):
    import toolr1_env

    package_file = Path(toolr1_env.__file__).resolve()
    assert sb.run(f"open({str(package_file)!r}).read()").error_type in {"PermissionError", "FileNotFoundError"}
    assert sb.run("import toolr1_env").error_type in {"ModuleNotFoundError", "ImportError", "PermissionError"}


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_fs"]), reason="no /proc isolation layer")
def test_host_process_memory_cmdline_and_environment_are_unreadable(sb):
    pid = os.getpid()
    for leaf in ("environ", "cmdline", "mem"):
        result = sb.run(f"open('/proc/{pid}/{leaf}', 'rb').read(100)")
        assert not result.ok, f"/proc/{pid}/{leaf} was readable"


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_signal_scope"] or ROOT),
                    reason="no layer stops signals to the host")
def test_agent_cannot_signal_the_host(sb):
    result = sb.run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)")
    assert result.error_type in {"ProcessLookupError", "PermissionError"}
    assert sb.run("'still here'").value == "'still here'"


@pytest.mark.skipif(not ROOT, reason="counting the sandbox user's processes needs the uid switch (root host)")
def test_children_die_with_the_episode_even_after_setsid():
    def nobody_processes() -> int:
        count = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    count += entry.stat().st_uid == 65534 and (entry / "status").read_text().find("State:\tZ") < 0
                except OSError:
                    pass
        return count

    sandbox = make()
    try:
        before = nobody_processes()
        code = ("import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n"
                "        if os.fork() == 0:\n            time.sleep(300)\n        os._exit(0)\ntime.sleep(0.3)")
        assert sandbox.run(code).ok
        assert nobody_processes() >= before + 3
        sandbox.reset()
        assert nobody_processes() == before
    finally:
        sandbox.close()


def test_layers_report_matches_the_machine(sb):
    assert sb.layers["process"] and sb.layers["env_scrubbed"]
    assert sb.layers["bwrap"] == LAYERS["bwrap"]
    assert bool(sb.layers.get("landlock")) == bool(LAYERS["landlock_abi"])
    assert sb.layers["uid_dropped"] == ROOT


# -- import policy ---------------------------------------------------------------------------------
def test_import_allowlist_refuses_with_a_clear_message():
    sandbox = Sandbox(SandboxConfig(preload=(), allowed_imports=("math",)))
    sandbox.start()
    try:
        assert sandbox.run("import math\nmath.sqrt(16)").value == "4.0"
        result = sandbox.run("import subprocess")
        assert result.error_type == "ImportError"
        assert "import of 'subprocess' is not allowed" in result.error and "math" in result.error
        assert sandbox.run("from os import path").error_type == "ImportError"
    finally:
        sandbox.close()


# -- tools -----------------------------------------------------------------------------------------
def lookup(city: str, unit: str = "C") -> dict:
    """Return the temperature of a city."""
    return {"city": city, "temp": 21, "unit": unit, "key_seen": os.environ.get("TOOLR1_TOOL_KEY")}


def broken(x: int) -> int:
    """Always fails."""
    raise ValueError(f"bad x={x}")


def not_plain() -> object:
    """Returns something JSON cannot carry."""
    return object()


@pytest.fixture(scope="module")
def tool_box():
    os.environ["TOOLR1_TOOL_KEY"] = "host-only"
    sandbox = Sandbox(SandboxConfig(allowed_imports=None, preload=()), tools=[lookup, broken, not_plain],
                      prelude="def shout(text):\n    'Upper-case text (runs inside the sandbox).'\n"
                              "    import os\n    return text.upper() + str(os.environ.get('TOOLR1_TOOL_KEY'))")
    sandbox.start()
    yield sandbox
    sandbox.close()
    del os.environ["TOOLR1_TOOL_KEY"]


def test_host_tool_runs_in_the_host_with_plain_data(tool_box):
    result = tool_box.run("r = lookup('Oslo', unit='F')\nr")
    assert result.value == repr({"city": "Oslo", "temp": 21, "unit": "F", "key_seen": "host-only"})


def test_tool_errors_are_readable_and_catchable(tool_box):
    result = tool_box.run("broken(3)")
    assert result.error_type == "ToolError" and "ValueError: bad x=3" in result.error
    assert tool_box.run("try:\n    broken(1)\nexcept ToolError as e:\n    print('caught', e)").stdout.startswith(
        "caught broken() raised ValueError")
    assert "missing a required argument" in tool_box.run("lookup()").error


def test_tool_arguments_and_results_must_be_plain_data(tool_box):
    assert tool_box.run("lookup(object())").error_type == "TypeError"
    assert "not plain data" in tool_box.run("not_plain()").error


def test_prelude_tools_run_inside_the_sandbox(tool_box):
    assert tool_box.run("shout('hi')").value == repr("HINone")  # no host env var inside
    assert "Upper-case text" in tool_box.run("shout.__doc__").value


def test_tool_stub_carries_signature_and_docstring(tool_box):
    doc = tool_box.run("print(lookup.__doc__)").stdout
    assert doc.startswith("lookup(city: str, unit: str = 'C') -> dict\n\nReturn the temperature of a city.")


# -- final_answer ----------------------------------------------------------------------------------
def test_final_answer_stops_the_code_and_is_reported(fresh):
    result = fresh.run("print('a')\nfinal_answer(6 * 7)\nprint('never')")
    assert result.final_answer_called and result.final_answer == "42" and result.ok
    assert result.stdout == "a\n"


def test_final_answer_cannot_be_swallowed(fresh):
    result = fresh.run("try:\n    final_answer('Paris')\nexcept Exception:\n    print('swallowed')")
    assert result.final_answer == "Paris" and result.stdout == ""
    result = fresh.run("try:\n    final_answer('Rome')\nexcept:\n    pass\nprint('went on')")
    assert result.final_answer == "Paris"  # first call wins, even through a bare except


def test_final_answer_and_tools_cannot_be_redefined(tool_box):
    result = tool_box.run("def final_answer(x):\n    return x")
    assert result.error_type == "SyntaxError" and "'final_answer' is provided by the environment" in result.error
    assert "'lookup' is provided" in tool_box.run("lookup = 3").error
    assert tool_box.run("final_answer_text = 'fine'\nfinal_answer_text").value == "'fine'"


# -- worker death and bad input --------------------------------------------------------------------
@pytest.mark.parametrize("code", ["import os\nos._exit(3)", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                                  "import ctypes\nctypes.string_at(0)"])
def test_recovers_after_the_worker_dies(fresh, code):
    fresh.run("state = 1")
    result = fresh.run(code)
    assert result.worker_died and "WorkerDied" in result.error
    assert fresh.run("'alive'").value == "'alive'"


@pytest.mark.parametrize(("code", "needle"), [
    (b"x = '\xff\xfe'", "not valid UTF-8"),
    ("x = 1\x00", "null bytes"),
    ("def f(:\n    pass", "SyntaxError"),
    ("x = 1\n" * 200_000, "the limit is"),
    ("", "holds no code"),
    ("   \n\t", "holds no code"),
    ("s = '\udc80'", "cannot be parsed"),
])
def test_bad_input_becomes_an_error_result(sb, code, needle):
    result = sb.run(code)
    assert not result.ok and needle in result.error
    assert sb.run("'ok'").value == "'ok'"


def test_non_text_code_is_a_caller_bug(sb):
    with pytest.raises(TypeError):
        sb.run(123)  # type: ignore[arg-type]


def test_closing_twice_and_context_manager(tmp_path):
    with Sandbox(ANY_IMPORT) as sandbox:
        root = sandbox.workdir.parent
        assert sandbox.run("1").ok
    assert not root.exists()
    sandbox.close()


def test_exit_and_system_exit_are_errors_not_deaths(sb):
    result = sb.run("raise SystemExit(3)")
    assert result.error_type == "SystemExit" and not result.worker_died
    assert sb.run("exit()").error_type == "SystemExit"


def test_keyboard_interrupt_signal_from_agent_is_contained(sb):
    # Compared with the handler found before, not with SIG_IGN: a shell sets SIG_IGN for background jobs.
    before = signal.getsignal(signal.SIGINT)
    result = sb.run("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nimport time\ntime.sleep(0.1)")
    assert result.error_type == "KeyboardInterrupt" or result.worker_died
    assert sb.run("1").value == "1"
    assert signal.getsignal(signal.SIGINT) is before  # the agent's signal left this process's handling alone


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs the tests to run in a virtualenv")
def test_a_virtualenv_reached_through_a_linked_folder_keeps_its_packages(tmp_path, monkeypatch):
    # A worktree sharing a checkout's environment (`.venv -> <the real one>`): started through the link, the
    # interpreter inside bubblewrap missed its pyvenv.cfg and lost pandas (no long-file task could compute).
    link = tmp_path / "linked-venv"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    monkeypatch.setattr(sys, "executable", str(link / "bin" / Path(sys.executable).name))
    monkeypatch.setattr(sys, "prefix", str(link))
    sandbox = make()
    try:
        # the sandbox runs in the tests' own environment, not in the base interpreter under it
        assert sandbox.run("import sys\nsys.prefix").value == repr(str(Path(sys.prefix).resolve()))
        assert sandbox.run("import pandas\nint(pandas.Series([2, 3]).sum())").value == "5"
    finally:
        sandbox.close()


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs the tests to run in a virtualenv")
def test_a_sandbox_that_lost_the_environment_fails_to_start_instead_of_failing_every_file_task(
        tmp_path, monkeypatch):
    from toolr1_env.sandbox import isolation

    link = tmp_path / "linked-venv"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    monkeypatch.setattr(sys, "prefix", str(link))
    # the interpreter started through the link (the bug above): inside bubblewrap it runs without the venv
    monkeypatch.setattr(isolation, "interpreter", lambda: str(link / "bin" / Path(sys.executable).name))
    if not LAYERS["bwrap"]:
        pytest.skip("outside bubblewrap the link is visible and the environment is not lost")
    with pytest.raises(SandboxError, match="cannot import pandas, which this interpreter has"):
        make(preload=("pandas",))
