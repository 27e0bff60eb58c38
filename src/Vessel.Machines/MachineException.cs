namespace Vessel.Machines;

/// <summary>A failure of the machine layer that names what is missing or wrong in one line (the engine maps
/// it to an API error). <see cref="Kind"/> says which API error fits: invalid input, a conflict, something
/// not found, or a failure of QEMU or the host.</summary>
public class MachineException(string message, MachineErrorKind kind = MachineErrorKind.Failed, Exception? inner = null)
    : Exception(message, inner)
{
    public MachineErrorKind Kind { get; } = kind;
}

public enum MachineErrorKind { Failed, Invalid, NotFound, Conflict, Unavailable }
