import io
import sys
import types
import unittest
from contextlib import redirect_stderr

from mergeforge._process import last_error_line, progress_callback

EVENTS = [
    {"event": "start", "method": "ties", "tensors": 2},
    {"event": "tensor", "index": 0, "total": 2, "name": "a.weight"},
    {"event": "note", "message": "model x contributed nothing to a.weight"},
    {"event": "tensor", "index": 1, "total": 2, "name": "b.weight"},
    {"event": "done", "output": "/o", "seconds": 1.5},
]


class FakeBar:
    made = []

    def __init__(self, total, unit, desc):
        self.calls = [("new", total, unit, desc)]
        FakeBar.made.append(self)

    def update(self, n):
        self.calls.append(("update", n))

    def set_postfix_str(self, s, refresh=True):
        self.calls.append(("postfix", s))

    def close(self):
        self.calls.append(("close",))


class ProgressTest(unittest.TestCase):
    def test_tqdm_bar_when_importable(self):
        fake = types.ModuleType("tqdm")
        fake.tqdm = FakeBar
        sys.modules["tqdm"] = fake
        try:
            cb = progress_callback(True)
            for ev in EVENTS:
                cb(ev)
        finally:
            del sys.modules["tqdm"]
        self.assertEqual([("new", 2, "tensor", "ties"), ("update", 1), ("postfix", "a.weight"), ("update", 1),
                          ("postfix", "b.weight"), ("close",)], FakeBar.made[-1].calls)

    def test_lines_without_tqdm(self):
        saved = sys.modules.get("tqdm")
        sys.modules["tqdm"] = None  # import fails
        try:
            cb = progress_callback(True)
        finally:
            if saved is None:
                del sys.modules["tqdm"]
            else:
                sys.modules["tqdm"] = saved
        err = io.StringIO()
        with redirect_stderr(err):
            for ev in EVENTS:
                cb(ev)
        self.assertEqual("[1/2] a.weight\nnote: model x contributed nothing to a.weight\n[2/2] b.weight\nwrote /o in 1.50 s\n",
                         err.getvalue())

    def test_callables_and_off(self):
        self.assertIsNone(progress_callback(None))
        self.assertIsNone(progress_callback(False))
        self.assertIs(print, progress_callback(print))

    def test_error_line(self):
        self.assertEqual("x is wrong; fix it", last_error_line(["backend: java", "error: x is wrong; fix it", "\tat trace"]))
        self.assertEqual("Killed", last_error_line(["something", "Killed", ""]))
        self.assertIsNone(last_error_line([]))


if __name__ == "__main__":
    unittest.main()
