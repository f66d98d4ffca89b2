package dev.mergeforge.serve;

import dev.mergeforge.api.CalibrateRequest;
import dev.mergeforge.api.EvalRequest;
import dev.mergeforge.api.MergeEvalRequest;
import dev.mergeforge.api.MergeRequest;

/** One request of the serve protocol (docs/protocol.md), parsed and validated; {@code id} tags every response line. */
sealed interface Request {
    String id();

    /** The operation's name on the wire. */
    String op();

    record Merge(String id, MergeRequest request) implements Request {
        public String op() { return "merge"; }
    }

    record Plan(String id, MergeRequest request) implements Request {
        public String op() { return "plan"; }
    }

    record Calibrate(String id, CalibrateRequest request) implements Request {
        public String op() { return "calibrate"; }
    }

    record Eval(String id, EvalRequest request) implements Request {
        public String op() { return "eval"; }
    }

    record MergeEval(String id, MergeEvalRequest request) implements Request {
        public String op() { return "merge_eval"; }
    }

    /** Cancels the job {@code target} (queued or running). */
    record Cancel(String id, String target) implements Request {
        public String op() { return "cancel"; }
    }

    /** The state of job {@code target}, or of every job the server remembers when it is null. */
    record Status(String id, String target) implements Request {
        public String op() { return "status"; }
    }
}
