using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Seccomp;

/// <summary>Evaluates a profile directly, the straightforward way, following the semantics documented
/// on SeccompCompiler; the compiled filter must agree with it.</summary>
internal static class ReferenceEvaluator
{
    private const uint X32Bit = 0x40000000;

    public static uint Evaluate(LinuxSeccomp profile, uint arch, uint nr, ulong[] args)
    {
        var arches = profile.Architectures ?? [];
        SyscallAbi abi;
        if (arch == BpfInterpreter.AuditArchX86_64 && (nr & X32Bit) == 0)
            abi = SyscallAbi.X86_64;
        else if (arch == BpfInterpreter.AuditArchX86_64 && arches.Contains("SCMP_ARCH_X32"))
            abi = SyscallAbi.X32;
        else if (arch == BpfInterpreter.AuditArchI386 && arches.Contains("SCMP_ARCH_X86"))
            abi = SyscallAbi.I386;
        else
            return 0; // bad arch: KILL_THREAD

        if (abi == SyscallAbi.I386)
            args = [.. args.Select(a => a & 0xffffffff)];

        uint defaultAction = Action(profile.DefaultAction!, profile.DefaultErrnoRet);
        var matching = new List<LinuxSyscall>();
        uint? highest = null;
        foreach (var rule in profile.Syscalls ?? [])
        {
            foreach (var name in rule.Names!)
                if (SyscallTables.TryGetNumber(abi, name, out uint n) && (highest is null || n > highest))
                    highest = n;
            if (Action(rule.Action!, rule.ErrnoRet) == defaultAction)
                continue;
            if (rule.Names!.Any(name => SyscallTables.TryGetNumber(abi, name, out uint n) && n == nr))
                matching.Add(rule);
        }

        foreach (var rule in matching.Where(r => r.Args is { Count: > 0 }))
            if (rule.Args!.All(c => Holds(c, args[c.Index])))
                return Action(rule.Action!, rule.ErrnoRet);
        var unconditional = matching.FirstOrDefault(r => r.Args is null or { Count: 0 });
        if (unconditional is not null)
            return Action(unconditional.Action!, unconditional.ErrnoRet);

        uint kind = defaultAction & 0xffff0000;
        bool stub = kind is not (0x7fff0000 or 0x7ffc0000 or 0x7ff00000) && defaultAction != 0x00050000 + 38;
        if (stub && highest is { } max && nr > max)
            return 0x00050000 + 38;
        return defaultAction;
    }

    public static bool Holds(LinuxSeccompArg c, ulong arg) => c.Op switch
    {
        "SCMP_CMP_NE" => arg != c.Value,
        "SCMP_CMP_LT" => arg < c.Value,
        "SCMP_CMP_LE" => arg <= c.Value,
        "SCMP_CMP_EQ" => arg == c.Value,
        "SCMP_CMP_GE" => arg >= c.Value,
        "SCMP_CMP_GT" => arg > c.Value,
        "SCMP_CMP_MASKED_EQ" => (arg & c.Value) == c.ValueTwo,
        _ => throw new ArgumentException(c.Op),
    };

    public static uint Action(string action, uint? errnoRet) => action switch
    {
        "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => 0,
        "SCMP_ACT_KILL_PROCESS" => 0x80000000,
        "SCMP_ACT_TRAP" => 0x00030000,
        "SCMP_ACT_ERRNO" => 0x00050000 | (errnoRet ?? 1),
        "SCMP_ACT_TRACE" => 0x7ff00000 | (errnoRet ?? 1),
        "SCMP_ACT_LOG" => 0x7ffc0000,
        "SCMP_ACT_ALLOW" => 0x7fff0000,
        _ => throw new ArgumentException(action),
    };
}
