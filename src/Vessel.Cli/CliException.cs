namespace Vessel.Cli;

/// <summary>A failure to report as one line "vessel: MESSAGE" and exit with <see cref="ExitCode"/> (125, like docker,
/// for every engine or CLI error).</summary>
internal sealed class CliException(string message, int exitCode = CliException.Failure, Exception? inner = null) : Exception(message, inner)
{
    public const int Failure = 125;
    public int ExitCode { get; } = exitCode;
}
