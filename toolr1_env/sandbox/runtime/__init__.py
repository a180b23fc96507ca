"""Code that runs inside the sandbox child processes (the fork server and its workers).

Everything here uses only the standard library and relative imports, because the sandbox loads this
folder on its own (bind-mounted read-only under bubblewrap), without the rest of ``toolr1_env``.
"""
