using System.Collections.Frozen;

namespace Vessel.Runtime.Seccomp;

/// <summary>The syscall ABIs an x86_64 kernel runs, as far as seccomp can tell them apart.</summary>
internal enum SyscallAbi
{
    /// <summary>AUDIT_ARCH_X86_64, syscall number without __X32_SYSCALL_BIT.</summary>
    X86_64,
    /// <summary>AUDIT_ARCH_I386 (32-bit processes and int 0x80).</summary>
    I386,
    /// <summary>AUDIT_ARCH_X86_64 with __X32_SYSCALL_BIT set in the syscall number.</summary>
    X32,
}

/// <summary>Syscall name → number, per ABI. The data is generated (SyscallTables.g.cs) from this
/// machine's kernel headers by gen_syscall_tables.py; syscalls newer than those headers are unknown.</summary>
internal static partial class SyscallTables
{
    private static FrozenDictionary<string, uint>? _x86_64, _i386, _x32;

    /// <summary>The number of <paramref name="name"/> for <paramref name="abi"/> (x32 numbers include
    /// __X32_SYSCALL_BIT), or false when the ABI has no such syscall.</summary>
    public static bool TryGetNumber(SyscallAbi abi, string name, out uint number) => Table(abi).TryGetValue(name, out number);

    public static IReadOnlyDictionary<string, uint> Table(SyscallAbi abi) => abi switch
    {
        SyscallAbi.X86_64 => _x86_64 ??= Build(X86_64Entries),
        SyscallAbi.I386 => _i386 ??= Build(I386Entries),
        SyscallAbi.X32 => _x32 ??= Build(X32Entries),
        _ => throw new ArgumentOutOfRangeException(nameof(abi)),
    };

    private static FrozenDictionary<string, uint> Build(SyscallEntry[] entries) =>
        entries.ToFrozenDictionary(e => e.Name, e => e.Number, StringComparer.Ordinal);
}
