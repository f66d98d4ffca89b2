package dev.mergeforge.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point: `mergeforge <command> ...`. The only place that calls System.exit. */
@Command(name = "mergeforge", mixinStandardHelpOptions = true, version = "mergeforge 0.1.0",
        description = "Merge fine-tuned LLM checkpoints tensor by tensor.",
        subcommands = {MergeCommand.class, AimCommand.class, CalibrateCommand.class, EvalCommand.class, MethodsCommand.class, DemoCommand.class, BenchCommand.class, AimSweepCommand.class, CalibBenchCommand.class,
                MergekitYamlCommand.class, FixtureCommand.class, ExtractLoraCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        LogLines.install();
        System.exit(commandLine().execute(args));
    }

    /** The configured command line (tests call execute on it with captured writers). */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        ErrorHandler errors = new ErrorHandler();
        cl.setExecutionExceptionHandler(errors);
        cl.setParameterExceptionHandler(errors);
        return cl;
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
