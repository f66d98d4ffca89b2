"""Running the launcher: the child process, its JSON events (docs/events.md), results and errors."""

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field


class MergeforgeError(RuntimeError):
    """A mergeforge command failed. ``message`` is its one-line error, ``exit_code`` its exit status
    (2: configuration or usage, 1: runtime failure; negative: killed by that signal)."""

    def __init__(self, message, exit_code, command=None, stderr=""):
        super().__init__(f"{message} (exit code {exit_code})")
        self.message = message
        self.exit_code = exit_code
        self.command = command
        self.stderr = stderr


class ConfigError(MergeforgeError, ValueError):
    """Exit code 2: the config, an option or an argument is wrong (the message names it and the fix)."""


@dataclass
class MergeResult:
    """What a finished merge (or ``aim``) reported in its ``done`` event."""
    output: str
    seconds: float
    bytes_read: int
    bytes_written: int
    tensors: int
    peak_rss_bytes: int
    peak_working_bytes: int
    events: list = field(default_factory=list, repr=False)

    @classmethod
    def from_done(cls, done, events):
        return cls(output=done["output"], seconds=float(done["seconds"]), bytes_read=int(done["bytes_in"]),
                   bytes_written=int(done["bytes_out"]), tensors=int(done["tensors"]),
                   peak_rss_bytes=int(done.get("peak_rss_bytes", 0)), peak_working_bytes=int(done.get("peak_working_bytes", 0)),
                   events=events)


def error_for(code, message, command, stderr):
    cls = ConfigError if code == 2 else MergeforgeError
    return cls(message, code, command, stderr)


def last_error_line(stderr_lines):
    """The command's one-line error: the last "error: ..." line, else the last line, without the prefix."""
    for line in reversed(stderr_lines):
        if line.startswith("error: "):
            return line[len("error: "):]
    for line in reversed(stderr_lines):
        if line.strip():
            return line.strip()
    return None


class Job:
    """A running mergeforge command. Iterating yields its JSON events as dicts (when it was started
    with ``--events json``); :meth:`wait` finishes it and raises :class:`MergeforgeError` on failure.
    Use as a context manager to stop the command if the block is left early (its output directory is
    then removed by mergeforge itself: nothing half-written is left)."""

    def __init__(self, argv, json_events=True, cwd=None, env=None):
        self.argv = list(argv)
        self.json_events = json_events
        self.events = []
        self.stdout_lines = []
        self.stderr_lines = []
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      cwd=cwd, env=env, text=True, encoding="utf-8", errors="replace")
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self._consumed = False

    def _drain_stderr(self):
        for line in self._proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def __iter__(self):
        if self._consumed:
            yield from self.events
            return
        self._consumed = True
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            self.stdout_lines.append(line)
            if self.json_events and line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                self.events.append(ev)
                yield ev

    def wait(self, callback=None):
        """Runs the command to its end (calling ``callback(event)`` for each event not yet seen) and
        returns the ``done`` event (None for commands without events); raises on failure."""
        for ev in self:
            if callback is not None:
                callback(ev)
        code = self._proc.wait()
        self._stderr_thread.join()
        self._close_pipes()
        if code != 0:
            err = next((e for e in self.events if e.get("event") == "error"), None)
            message = err["message"] if err else last_error_line(self.stderr_lines)
            if message is None:
                message = f"{self.argv[0]} exited with status {code} and printed nothing"
            raise error_for(code, message, self.argv, "\n".join(self.stderr_lines))
        return next((e for e in reversed(self.events) if e.get("event") == "done"), None)

    @property
    def returncode(self):
        return self._proc.returncode

    def cancel(self):
        """Stops the command (SIGTERM: mergeforge removes its temporary output and exits)."""
        if self._proc.poll() is None:
            self._proc.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._proc.poll() is None:
            self.cancel()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr_thread.join(timeout=5)
        self._close_pipes()
        return False

    def _close_pipes(self):
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None and not self._stderr_thread.is_alive():
                pipe.close()


def progress_callback(progress):
    """``progress``: None (quiet), a callable taking each event dict, or True (a tqdm bar when tqdm
    is importable, else one line per tensor on stderr)."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        import tqdm  # optional
    except ImportError:
        tqdm = None
    return _TqdmProgress(tqdm) if tqdm is not None else _LineProgress()


class _TqdmProgress:
    def __init__(self, tqdm):
        self._tqdm = tqdm
        self._bar = None

    def __call__(self, ev):
        kind = ev.get("event")
        if kind == "start":
            self._bar = self._tqdm.tqdm(total=ev.get("tensors"), unit="tensor", desc=ev.get("method", "merge"))
        elif kind == "tensor" and self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(ev.get("name", ""), refresh=False)
        elif kind in ("done", "error") and self._bar is not None:
            self._bar.close()
            self._bar = None


class _LineProgress:
    def __call__(self, ev):
        kind = ev.get("event")
        if kind == "tensor":
            print(f"[{ev['index'] + 1}/{ev['total']}] {ev['name']}", file=sys.stderr)
        elif kind == "note":
            print(f"note: {ev['message']}", file=sys.stderr)
        elif kind == "done":
            print(f"wrote {ev['output']} in {ev['seconds']:.2f} s", file=sys.stderr)
