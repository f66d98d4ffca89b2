package dev.mergeforge.cli;

import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * java.util.logging as the rest of the CLI prints: one line per message on stderr,
 * {@code note: ...} for information and {@code warning: ...} for warnings (Java's default is two
 * lines with a timestamp and the class). Installed once by {@link Main#main}.
 */
final class LogLines extends Formatter {
    private LogLines() {}

    /** Replaces the root logger's handlers with one stderr handler using this format. */
    static void install() {
        Logger root = Logger.getLogger("");
        for (Handler h : root.getHandlers()) root.removeHandler(h);
        ConsoleHandler h = new ConsoleHandler();
        h.setFormatter(new LogLines());
        h.setLevel(Level.INFO);
        root.addHandler(h);
    }

    @Override
    public String format(LogRecord r) {
        String prefix = r.getLevel().intValue() >= Level.SEVERE.intValue() ? "error: "
                : r.getLevel().intValue() >= Level.WARNING.intValue() ? "warning: " : "note: ";
        // one line: a message that spans lines is joined, so each message stays one line of the log
        return prefix + formatMessage(r).replace('\n', ' ') + System.lineSeparator();
    }
}
