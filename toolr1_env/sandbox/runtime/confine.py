"""Confinement applied by each worker to itself right after the fork, before it runs any agent code.

Order matters: resource limits, then the switch to an unprivileged user (only possible while still
root), then ``no_new_privs`` and Landlock (which can never be undone by the process or its children).
Each function returns what it managed to do, so the host can report the layers that are really active.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from collections.abc import Iterable
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

# Landlock syscall numbers are shared by every architecture (the unified syscall table, Linux >= 5.13).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Filesystem rights, by the ABI version that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK, FS_MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FILE_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is missing or disabled."""
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _fs_rights(abi: int) -> int:
    return _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= abi)]


def apply_landlock(read_paths: Iterable[str], write_paths: Iterable[str], *, block_network: bool,
                   abi: int | None = None, list_paths: Iterable[str] = ()) -> dict[str, Any]:
    """Confine this process (and all its future children) with Landlock.

    Everything not listed is neither readable nor writable; ``write_paths`` get full rights beneath
    them; ``list_paths`` may only be listed (directories beneath them too, but no file beneath them is
    readable unless ``read_paths`` grant it). With ABI >= 4 and ``block_network``, TCP bind and connect
    are refused; with ABI >= 6 the process can no longer signal processes outside its domain (the host,
    the fork server) nor reach abstract Unix sockets. Paths that do not exist are skipped. Returns a
    report of what was enforced.
    """
    abi = landlock_abi() if abi is None else abi
    if abi < 1:
        return {"landlock": 0}
    handled_fs = _fs_rights(abi)
    attr = _RulesetAttr(handled_fs, 0, 0)
    if abi >= 4 and block_network:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset_fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                               ctypes.c_uint32(0))
    if ruleset_fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(p, FS_READ_DIR) for p in list_paths] + [(p, READ_RIGHTS) for p in read_paths]
        for path, rights in rules + [(p, handled_fs) for p in write_paths]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    rights &= FILE_RIGHTS
                rule = _PathBeneathAttr(rights & handled_fs, fd)
                if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset_fd),
                                 ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                 ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        set_no_new_privs()
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset_fd)
    return {"landlock": abi, "landlock_fs": True, "landlock_net": bool(attr.handled_access_net),
            "landlock_signal_scope": bool(attr.scoped)}


def set_no_new_privs() -> None:
    """Forbid gaining privileges through execve (setuid binaries, file capabilities) from now on."""
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def become_subreaper() -> bool:
    """Adopt orphaned descendants, so that processes which escape their group can still be found."""
    return _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def apply_rlimits(limits: dict[str, int]) -> dict[str, int]:
    """Set hard and soft resource limits; keys are ``resource.RLIMIT_*`` names without the prefix.

    ``CPU`` gets a soft limit one second below the hard one so the process first sees SIGXCPU.
    """
    applied = {}
    for name, value in limits.items():
        kind = getattr(resource, f"RLIMIT_{name}")
        soft = max(value - 1, 1) if name == "CPU" else value
        resource.setrlimit(kind, (soft, value))
        applied[name] = value
    return applied


def drop_privileges(uid: int, gid: int) -> bool:
    """Switch to an unprivileged user when running as root; returns whether the switch happened."""
    if os.getuid() != 0:
        return False
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return True


#: System locations agent code may read (and execute from): shared libraries, certificates, time zones.
SYSTEM_READ_PATHS = ("/usr", "/bin", "/lib", "/lib64", "/etc/ssl", "/etc/localtime", "/etc/passwd",
                     "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/mime.types",
                     "/dev/zero", "/dev/urandom", "/dev/random")


def default_read_paths(hidden_packages: Iterable[str]) -> list[str]:
    """What a worker may read: system libraries plus this interpreter's import path.

    A ``site-packages`` folder is granted entry by entry, leaving out ``hidden_packages`` (this project's
    own packages and anything else that must stay out of reach, such as task data).
    """
    hidden = set(hidden_packages)
    paths = list(SYSTEM_READ_PATHS)
    for entry in dict.fromkeys(p for p in sys.path if p and os.path.isdir(p)):
        if os.path.basename(entry) not in ("site-packages", "dist-packages"):
            if not any(os.path.exists(os.path.join(entry, h)) for h in hidden):
                paths.append(entry)
            continue
        for name in os.listdir(entry):
            if not _is_hidden(name, hidden):
                paths.append(os.path.join(entry, name))
    return paths


def listable_paths() -> list[str]:
    """The ``site-packages`` folders of the import path: listable, so ``importlib.metadata`` finds the
    installed distributions (libraries such as trafilatura read their own version when imported).
    Listing shows names only; reading stays limited to :func:`default_read_paths`."""
    return [p for p in dict.fromkeys(sys.path)
            if p and os.path.isdir(p) and os.path.basename(p) in ("site-packages", "dist-packages")]


def _is_hidden(entry_name: str, hidden: set[str]) -> bool:
    """Whether a site-packages entry (package, dist-info, editable finder or .pth) belongs to ``hidden``."""
    stem = entry_name.lower().removeprefix("__editable__").lstrip("._")
    return any(stem == h or (stem.startswith(h) and not stem[len(h)].isalnum()) for h in hidden)
