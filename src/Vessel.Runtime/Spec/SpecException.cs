namespace Vessel.Runtime.Spec;

/// <summary>A config.json (or a resources file) that is malformed or asks for something unsupported.
/// <see cref="Field"/> is the JSON path of the offending field, e.g. <c>linux.seccomp.syscalls[3].action</c>,
/// so the user gets one line naming it.</summary>
public sealed class SpecException(string field, string message) : Exception($"{field}: {message}")
{
    public string Field { get; } = field;
}
