namespace Vessel.Runtime.Seccomp;

/// <summary>A compiled seccomp filter, ready for
/// <c>seccomp(SECCOMP_SET_MODE_FILTER, Flags, &amp;(struct sock_fprog){ Filter.Length / 8, Filter })</c>.</summary>
/// <param name="Filter"><c>struct sock_filter[]</c>: 8 bytes per instruction (u16 code, u8 jt, u8 jf, u32 k), little-endian.</param>
/// <param name="Flags">SECCOMP_FILTER_FLAG_* bits (<see cref="SeccompFilterFlags"/>).</param>
public sealed record SeccompProgram(byte[] Filter, uint Flags)
{
    public int InstructionCount => Filter.Length / 8;
}

/// <summary>SECCOMP_RET_* filter return values (linux/seccomp.h).</summary>
public static class SeccompRet
{
    public const uint KillProcess = 0x80000000;
    public const uint KillThread = 0x00000000;
    public const uint Trap = 0x00030000;
    public const uint Errno = 0x00050000;
    public const uint UserNotif = 0x7fc00000;
    public const uint Trace = 0x7ff00000;
    public const uint Log = 0x7ffc0000;
    public const uint Allow = 0x7fff0000;

    /// <summary>SECCOMP_RET_ACTION_FULL: the action part of a return value.</summary>
    public const uint ActionMask = 0xffff0000;
    /// <summary>SECCOMP_RET_DATA: the errno / trace message part.</summary>
    public const uint DataMask = 0x0000ffff;
}

/// <summary>SECCOMP_FILTER_FLAG_* (linux/seccomp.h).</summary>
public static class SeccompFilterFlags
{
    public const uint Tsync = 1u << 0;
    public const uint Log = 1u << 1;
    public const uint SpecAllow = 1u << 2;
    public const uint NewListener = 1u << 3;
    public const uint TsyncEsrch = 1u << 4;
    public const uint WaitKillableRecv = 1u << 5;
}

/// <summary>Constants of <c>struct seccomp_data</c> on x86.</summary>
public static class SeccompData
{
    public const uint NrOffset = 0;
    public const uint ArchOffset = 4;
    public const uint InstructionPointerOffset = 8;
    /// <summary>args[i] is at 16 + 8 * i; on little-endian the low half first, the high half at +4.</summary>
    public const uint ArgsOffset = 16;

    public const uint AuditArchX86_64 = 0xc000003e;
    public const uint AuditArchI386 = 0x40000003;
    public const uint X32SyscallBit = 0x40000000;
}
