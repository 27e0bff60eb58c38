namespace Vessel.Runtime;

/// <summary>A failure to report to the user as one line. <see cref="ExitCode"/> follows the conventions
/// callers parse: 127 command not found, 126 not executable, 1 otherwise.</summary>
public sealed class RuntimeException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
