using System.Text.Json.Serialization;

namespace Vessel.Runtime.Spec;

// The seccomp part of the OCI runtime-spec config (linux.seccomp). Plain classes with settable
// properties and no polymorphism so that System.Text.Json source generation (NativeAOT) handles them.
// Strings (actions, ops, arches, flags) are kept as strings: they are validated, with the JSON path
// in the error, by Vessel.Runtime.Seccomp.SeccompCompiler.

/// <summary><c>linux.seccomp</c>.</summary>
public sealed class LinuxSeccomp
{
    /// <summary>REQUIRED by the spec, e.g. <c>SCMP_ACT_ERRNO</c>.</summary>
    [JsonPropertyName("defaultAction")]
    public string? DefaultAction { get; set; }

    /// <summary>errno returned by the default action when it is SCMP_ACT_ERRNO (EPERM if absent).</summary>
    [JsonPropertyName("defaultErrnoRet")]
    public uint? DefaultErrnoRet { get; set; }

    /// <summary>e.g. <c>SCMP_ARCH_X86_64</c>, <c>SCMP_ARCH_X86</c>, <c>SCMP_ARCH_X32</c>.</summary>
    [JsonPropertyName("architectures")]
    public List<string>? Architectures { get; set; }

    /// <summary>e.g. <c>SECCOMP_FILTER_FLAG_LOG</c>.</summary>
    [JsonPropertyName("flags")]
    public List<string>? Flags { get; set; }

    [JsonPropertyName("listenerPath")]
    public string? ListenerPath { get; set; }

    [JsonPropertyName("listenerMetadata")]
    public string? ListenerMetadata { get; set; }

    [JsonPropertyName("syscalls")]
    public List<LinuxSyscall>? Syscalls { get; set; }
}

/// <summary>One entry of <c>linux.seccomp.syscalls</c>.</summary>
public sealed class LinuxSyscall
{
    [JsonPropertyName("names")]
    public List<string>? Names { get; set; }

    /// <summary>e.g. <c>SCMP_ACT_ALLOW</c>.</summary>
    [JsonPropertyName("action")]
    public string? Action { get; set; }

    /// <summary>errno for SCMP_ACT_ERRNO (EPERM if absent); also the message number of SCMP_ACT_TRACE.</summary>
    [JsonPropertyName("errnoRet")]
    public uint? ErrnoRet { get; set; }

    /// <summary>Conditions on the syscall's arguments; all must hold (AND).</summary>
    [JsonPropertyName("args")]
    public List<LinuxSeccompArg>? Args { get; set; }
}

/// <summary>One condition on a syscall argument.</summary>
public sealed class LinuxSeccompArg
{
    /// <summary>Argument index, 0..5.</summary>
    [JsonPropertyName("index")]
    public uint Index { get; set; }

    /// <summary>The operand; for SCMP_CMP_MASKED_EQ the mask.</summary>
    [JsonPropertyName("value")]
    public ulong Value { get; set; }

    /// <summary>For SCMP_CMP_MASKED_EQ the value the masked argument must equal; unused otherwise.</summary>
    [JsonPropertyName("valueTwo")]
    public ulong ValueTwo { get; set; }

    /// <summary>e.g. <c>SCMP_CMP_EQ</c>.</summary>
    [JsonPropertyName("op")]
    public string? Op { get; set; }
}
