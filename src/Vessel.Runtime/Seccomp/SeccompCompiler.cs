using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Seccomp;

/// <summary>
/// Compiles an OCI <c>linux.seccomp</c> profile to a classic BPF seccomp filter for an x86_64 kernel.
/// <para>Semantics (what the filter returns for a syscall), chosen to match runc + libseccomp where the
/// spec is silent:</para>
/// <list type="bullet">
/// <item>Architectures: x86_64 is always handled (libseccomp always includes the native arch);
/// SCMP_ARCH_X86 adds i386 (AUDIT_ARCH_I386), SCMP_ARCH_X32 adds x32 (AUDIT_ARCH_X86_64 with
/// __X32_SYSCALL_BIT in the number). Other arch names known to runc (ARM, AARCH64, ...) are accepted and
/// ignored: an x86_64 kernel never reports them. A syscall from an arch the profile does not handle gets
/// the <em>bad-arch action</em> SECCOMP_RET_KILL_THREAD, libseccomp's default (SCMP_ACT_KILL), which runc
/// keeps: a foreign ABI can't be filtered by syscall number, so it must not fall through to a default
/// like ALLOW.</item>
/// <item>Names unknown for an arch (other arches' syscalls, or newer than the generated tables) are skipped
/// for that arch, as runc does.</item>
/// <item>Rules whose action (and errno) equals the default action are dropped, as runc does.</item>
/// <item>For one syscall: the rules with arguments are tried in profile order and the first whose conditions
/// all hold (AND) decides; otherwise the first rule without arguments decides; otherwise the default action.
/// So several rules for one syscall are OR-ed, and a specific rule beats a catch-all one. (runc turns
/// a rule with two conditions on the same argument into two OR-ed rules, a libseccomp workaround; here
/// conditions are always AND-ed.)</item>
/// <item>Arguments are compared as 64-bit values (high and low halves). On i386 only the low 32 bits
/// of an argument are read (zero-extended): the high half of a 32-bit ABI's argument is meaningless.</item>
/// <item>ENOSYS for unknown syscalls, like runc's patchbpf: unless the default action is ALLOW, LOG or
/// TRACE (or already ERRNO(ENOSYS)), a syscall numbered above the highest syscall the profile names (for
/// that arch) returns ENOSYS instead of the default action, so that a libc probing a syscall newer than
/// the profile (clone3, faccessat2, ...) falls back instead of failing with EPERM. Unlike runc this also
/// applies when <c>architectures</c> is empty.</item>
/// <item>SCMP_ACT_KILL is KILL_THREAD (as in libseccomp); SCMP_ACT_ERRNO and SCMP_ACT_TRACE carry
/// errnoRet (default EPERM, as runc); SCMP_ACT_NOTIFY is rejected: Vessel has no seccomp listener.</item>
/// </list>
/// <para>Program shape: check the arch, load the syscall number, then a binary search over ranges of
/// syscall numbers (adjacent numbers with the same unconditional result share a range) ending in a RET
/// or in the syscall's argument checks. Long jumps go through JA trampolines (<see cref="BpfAssembler"/>).</para>
/// </summary>
public static class SeccompCompiler
{
    /// <summary>BPF_MAXINSNS: the kernel rejects longer filters.</summary>
    public const int MaxInstructions = 4096;

    /// <summary>What a syscall of an architecture the profile doesn't include gets.</summary>
    public const uint BadArchAction = SeccompRet.KillThread;

    private const uint Eperm = 1;
    private const uint Enosys = 38;

    /// <summary>Compiles <paramref name="profile"/>; null when there is nothing to install (no profile, or
    /// neither a default action nor syscalls, which runc also treats as "no seccomp").</summary>
    /// <param name="fieldPrefix">JSON path of the profile, for <see cref="SpecException.Field"/>.</param>
    /// <exception cref="SpecException">An unknown or unsupported action, op, arch or flag, a bad argument
    /// index or errno, or a program over <see cref="MaxInstructions"/>.</exception>
    public static SeccompProgram? Compile(LinuxSeccomp? profile, string fieldPrefix = "linux.seccomp")
    {
        if (profile is null || (string.IsNullOrEmpty(profile.DefaultAction) && (profile.Syscalls is null || profile.Syscalls.Count == 0)))
            return null;

        var parsed = Parse(profile, fieldPrefix);
        var asm = new BpfAssembler();
        Emit(asm, parsed);
        var filter = asm.Assemble();
        int count = filter.Length / Bpf.InstructionSize;
        if (count > MaxInstructions)
            throw new SpecException(fieldPrefix, $"the profile compiles to {count} BPF instructions, more than the kernel's limit of {MaxInstructions}");
        return new SeccompProgram(filter, parsed.Flags);
    }

    // ---- parsing and validation -------------------------------------------------------------

    internal enum CmpOp { Ne, Lt, Le, Eq, Ge, Gt, MaskedEq }

    internal readonly record struct Condition(int Index, CmpOp Op, ulong Value, ulong ValueTwo);

    internal sealed record Rule(uint Action, Condition[] Conditions, string[] Names);

    internal sealed record ParsedProfile(uint DefaultAction, uint Flags, bool I386, bool X32, List<Rule> Rules);

    internal static uint ParseAction(string? action, uint? errnoRet, string field, string errnoField)
    {
        uint Data(uint fallback)
        {
            uint value = errnoRet ?? fallback;
            return value <= SeccompRet.DataMask
                ? value
                : throw new SpecException(errnoField, $"{value} does not fit the 16-bit data of a seccomp return value");
        }

        return action switch
        {
            null or "" => throw new SpecException(field, "is required"),
            "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => SeccompRet.KillThread,
            "SCMP_ACT_KILL_PROCESS" => SeccompRet.KillProcess,
            "SCMP_ACT_TRAP" => SeccompRet.Trap,
            "SCMP_ACT_ERRNO" => SeccompRet.Errno | Data(Eperm),
            "SCMP_ACT_TRACE" => SeccompRet.Trace | Data(Eperm),
            "SCMP_ACT_ALLOW" => SeccompRet.Allow,
            "SCMP_ACT_LOG" => SeccompRet.Log,
            "SCMP_ACT_NOTIFY" => throw new SpecException(field, "SCMP_ACT_NOTIFY is not supported (Vessel has no seccomp listener)"),
            _ => throw new SpecException(field, $"unknown seccomp action \"{action}\""),
        };
    }

    private static CmpOp ParseOp(string? op, string field) => op switch
    {
        "SCMP_CMP_NE" => CmpOp.Ne,
        "SCMP_CMP_LT" => CmpOp.Lt,
        "SCMP_CMP_LE" => CmpOp.Le,
        "SCMP_CMP_EQ" => CmpOp.Eq,
        "SCMP_CMP_GE" => CmpOp.Ge,
        "SCMP_CMP_GT" => CmpOp.Gt,
        "SCMP_CMP_MASKED_EQ" => CmpOp.MaskedEq,
        null or "" => throw new SpecException(field, "is required"),
        _ => throw new SpecException(field, $"unknown seccomp operator \"{op}\""),
    };

    private static uint ParseFlag(string? flag, string field) => flag switch
    {
        "SECCOMP_FILTER_FLAG_TSYNC" => SeccompFilterFlags.Tsync,
        "SECCOMP_FILTER_FLAG_LOG" => SeccompFilterFlags.Log,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => SeccompFilterFlags.SpecAllow,
        // Only changes how a listener's notifications wait; the kernel rejects it (EINVAL) without
        // SECCOMP_FILTER_FLAG_NEW_LISTENER, and Vessel never has a listener, so it is accepted and has no bit.
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 0,
        "SECCOMP_FILTER_FLAG_NEW_LISTENER" => throw new SpecException(field, "SECCOMP_FILTER_FLAG_NEW_LISTENER is not supported (Vessel has no seccomp listener)"),
        _ => throw new SpecException(field, $"unknown seccomp filter flag \"{flag}\""),
    };

    // The arch names runc knows that an x86_64 kernel can't run: accepted, then ignored.
    private static readonly HashSet<string> ForeignArches =
    [
        "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
    ];

    internal static ParsedProfile Parse(LinuxSeccomp profile, string p)
    {
        uint defaultAction = ParseAction(profile.DefaultAction, profile.DefaultErrnoRet, $"{p}.defaultAction", $"{p}.defaultErrnoRet");

        uint flags = 0;
        for (int i = 0; i < (profile.Flags?.Count ?? 0); i++)
            flags |= ParseFlag(profile.Flags![i], $"{p}.flags[{i}]");

        bool i386 = false, x32 = false;
        for (int i = 0; i < (profile.Architectures?.Count ?? 0); i++)
        {
            string? arch = profile.Architectures![i];
            switch (arch)
            {
                case "SCMP_ARCH_X86_64":
                    break;
                case "SCMP_ARCH_X86":
                    i386 = true;
                    break;
                case "SCMP_ARCH_X32":
                    x32 = true;
                    break;
                default:
                    if (arch is null || !ForeignArches.Contains(arch))
                        throw new SpecException($"{p}.architectures[{i}]", $"unknown seccomp architecture \"{arch}\"");
                    break;
            }
        }

        var rules = new List<Rule>();
        for (int i = 0; i < (profile.Syscalls?.Count ?? 0); i++)
        {
            string f = $"{p}.syscalls[{i}]";
            var syscall = profile.Syscalls![i] ?? throw new SpecException(f, "is null");
            uint action = ParseAction(syscall.Action, syscall.ErrnoRet, $"{f}.action", $"{f}.errnoRet");
            if (syscall.Names is null)
                throw new SpecException($"{f}.names", "is required");
            for (int k = 0; k < syscall.Names.Count; k++)
                if (string.IsNullOrEmpty(syscall.Names[k]))
                    throw new SpecException($"{f}.names[{k}]", "is empty");
            var conditions = new Condition[syscall.Args?.Count ?? 0];
            for (int j = 0; j < conditions.Length; j++)
            {
                string af = $"{f}.args[{j}]";
                var arg = syscall.Args![j] ?? throw new SpecException(af, "is null");
                if (arg.Index > 5)
                    throw new SpecException($"{af}.index", $"{arg.Index} is not a syscall argument index (0 to 5)");
                conditions[j] = new Condition((int)arg.Index, ParseOp(arg.Op, $"{af}.op"), arg.Value, arg.ValueTwo);
            }
            rules.Add(new Rule(action, conditions, [.. syscall.Names]));
        }
        return new ParsedProfile(defaultAction, flags, i386, x32, rules);
    }

    // ---- per-ABI decision: syscall number ranges → body --------------------------------------

    /// <summary>A rule reduced for one ABI: only the conditions that need a runtime check.</summary>
    private sealed record AbiRule(uint Action, List<(Condition Condition, bool CheckHigh)> Checks);

    /// <summary>What a range of syscall numbers does: a plain RET (<see cref="Complex"/> null), or argument checks.</summary>
    private sealed record Body(uint Action, List<AbiRule>? Complex);

    private readonly record struct Range(uint Start, Body Body);

    internal static bool EnosysStub(uint defaultAction)
    {
        uint kind = defaultAction & SeccompRet.ActionMask;
        return kind is not (SeccompRet.Allow or SeccompRet.Log or SeccompRet.Trace)
            && defaultAction != (SeccompRet.Errno | Enosys);
    }

    private static List<Range> Ranges(ParsedProfile profile, SyscallAbi abi)
    {
        var byNumber = new SortedDictionary<uint, List<Rule>>();
        uint? highest = null;
        foreach (var rule in profile.Rules)
        {
            foreach (var name in rule.Names)
            {
                if (!SyscallTables.TryGetNumber(abi, name, out uint nr))
                    continue;
                if (highest is null || nr > highest)
                    highest = nr;
                if (rule.Action == profile.DefaultAction)
                    continue;
                if (!byNumber.TryGetValue(nr, out var list))
                    byNumber[nr] = list = [];
                if (!list.Contains(rule))
                    list.Add(rule);
            }
        }

        var ranges = new List<Range>();
        void Add(uint start, Body body)
        {
            if (ranges.Count > 0 && ranges[^1].Body.Complex is null && body.Complex is null && ranges[^1].Body.Action == body.Action)
                return;
            ranges.Add(new Range(start, body));
        }

        var fallback = new Body(profile.DefaultAction, null);
        ulong next = 0;
        foreach (var (nr, rules) in byNumber)
        {
            if (nr > next)
                Add((uint)next, fallback);
            Add(nr, BodyFor(rules, profile.DefaultAction, abi));
            next = (ulong)nr + 1;
        }
        if (highest is { } max && EnosysStub(profile.DefaultAction))
        {
            if (max + 1UL > next)
                Add((uint)next, fallback);
            if (max < uint.MaxValue)
                Add(max + 1, new Body(SeccompRet.Errno | Enosys, null));
        }
        else if (next <= uint.MaxValue)
            Add((uint)next, fallback);
        return ranges;
    }

    private static Body BodyFor(List<Rule> rules, uint defaultAction, SyscallAbi abi)
    {
        uint otherwise = rules.FirstOrDefault(r => r.Conditions.Length == 0)?.Action ?? defaultAction;
        var complex = new List<AbiRule>();
        foreach (var rule in rules.Where(r => r.Conditions.Length > 0))
        {
            var checks = new List<(Condition, bool)>();
            bool possible = true;
            foreach (var c in rule.Conditions)
            {
                // i386: the argument's high half is taken as 0; a masked compare with a zero high mask
                // doesn't look at it either. Then the high-half step is decided now.
                bool staticHigh = abi == SyscallAbi.I386 || (c.Op == CmpOp.MaskedEq && (c.Value >> 32) == 0);
                if (!staticHigh)
                {
                    checks.Add((c, true));
                    continue;
                }
                switch (HighStep(c, 0))
                {
                    case Outcome.False:
                        possible = false;
                        break;
                    case Outcome.Continue:
                        checks.Add((c, false));
                        break;
                    // Outcome.True: the condition always holds.
                }
            }
            if (!possible)
                continue;
            complex.Add(new AbiRule(rule.Action, checks));
            if (checks.Count == 0)
                break; // always matches: later rules are unreachable
        }
        if (complex.Count == 0)
            return new Body(otherwise, null);
        if (complex[0].Checks.Count == 0)
            return new Body(complex[0].Action, null);
        return new Body(otherwise, complex);
    }

    private enum Outcome { True, False, Continue }

    /// <summary>The comparison decided on the high halves: true, false, or equal so far (compare the low halves).</summary>
    private static Outcome HighStep(Condition c, uint high)
    {
        uint vh = (uint)(c.Value >> 32);
        switch (c.Op)
        {
            case CmpOp.Eq: return high == vh ? Outcome.Continue : Outcome.False;
            case CmpOp.Ne: return high == vh ? Outcome.Continue : Outcome.True;
            case CmpOp.MaskedEq: return (high & vh) == (uint)(c.ValueTwo >> 32) ? Outcome.Continue : Outcome.False;
            case CmpOp.Gt:
            case CmpOp.Ge: return high > vh ? Outcome.True : high == vh ? Outcome.Continue : Outcome.False;
            default: return high > vh ? Outcome.False : high == vh ? Outcome.Continue : Outcome.True; // Lt, Le
        }
    }

    // ---- code generation ----------------------------------------------------------------------

    private static void Emit(BpfAssembler asm, ParsedProfile profile)
    {
        var x86_64 = asm.NewLabel();
        var i386 = asm.NewLabel();
        var x32 = asm.NewLabel();
        var badArch = asm.NewLabel();

        asm.LoadAbs(SeccompData.ArchOffset);
        asm.JumpIf(Bpf.JeqK, SeccompData.AuditArchX86_64, x86_64);
        if (profile.I386)
            asm.JumpIf(Bpf.JeqK, SeccompData.AuditArchI386, i386);
        asm.Ret(BadArchAction);

        asm.Mark(x86_64);
        asm.LoadAbs(SeccompData.NrOffset);
        asm.JumpIf(Bpf.JsetK, SeccompData.X32SyscallBit, profile.X32 ? x32 : badArch);
        EmitDispatch(asm, Ranges(profile, SyscallAbi.X86_64), SyscallAbi.X86_64);

        if (profile.X32)
        {
            asm.Mark(x32); // A still holds the syscall number
            EmitDispatch(asm, Ranges(profile, SyscallAbi.X32), SyscallAbi.X32);
        }
        else
        {
            asm.Mark(badArch);
            asm.Ret(BadArchAction);
        }

        if (profile.I386)
        {
            asm.Mark(i386);
            asm.LoadAbs(SeccompData.NrOffset);
            EmitDispatch(asm, Ranges(profile, SyscallAbi.I386), SyscallAbi.I386);
        }
    }

    /// <summary>Binary search over the ranges, with the syscall number in A.</summary>
    private static void EmitDispatch(BpfAssembler asm, List<Range> ranges, SyscallAbi abi)
    {
        void Tree(int lo, int hi)
        {
            if (lo == hi)
            {
                EmitBody(asm, ranges[lo].Body, abi);
                return;
            }
            int mid = (lo + hi + 1) / 2;
            var upper = asm.NewLabel();
            asm.JumpIf(Bpf.JgeK, ranges[mid].Start, upper);
            Tree(lo, mid - 1);
            asm.Mark(upper);
            Tree(mid, hi);
        }
        Tree(0, ranges.Count - 1);
    }

    private static void EmitBody(BpfAssembler asm, Body body, SyscallAbi abi)
    {
        if (body.Complex is not null)
        {
            foreach (var rule in body.Complex)
            {
                if (rule.Checks.Count == 0)
                {
                    asm.Ret(rule.Action); // always matches (BodyFor put it last)
                    return;
                }
                var nextRule = asm.NewLabel();
                foreach (var (condition, checkHigh) in rule.Checks)
                {
                    var holds = asm.NewLabel();
                    EmitCondition(asm, condition, checkHigh, holds, nextRule);
                    asm.Mark(holds);
                }
                asm.Ret(rule.Action);
                asm.Mark(nextRule);
            }
        }
        asm.Ret(body.Action);
    }

    /// <summary>Jumps to <paramref name="holds"/> or <paramref name="fails"/>. Clobbers A.</summary>
    private static void EmitCondition(BpfAssembler asm, Condition c, bool checkHigh, BpfLabel holds, BpfLabel fails)
    {
        uint argLow = SeccompData.ArgsOffset + 8 * (uint)c.Index;
        uint vl = (uint)c.Value, vh = (uint)(c.Value >> 32);

        if (checkHigh)
        {
            var low = asm.NewLabel();
            asm.LoadAbs(argLow + 4);
            switch (c.Op)
            {
                case CmpOp.Eq:
                    asm.Jump(Bpf.JeqK, vh, low, fails);
                    break;
                case CmpOp.Ne:
                    asm.Jump(Bpf.JeqK, vh, low, holds);
                    break;
                case CmpOp.MaskedEq:
                    asm.And(vh);
                    asm.Jump(Bpf.JeqK, (uint)(c.ValueTwo >> 32), low, fails);
                    break;
                case CmpOp.Gt:
                case CmpOp.Ge:
                    asm.JumpIf(Bpf.JgtK, vh, holds);
                    asm.Jump(Bpf.JeqK, vh, low, fails);
                    break;
                default: // Lt, Le
                    asm.JumpIf(Bpf.JgtK, vh, fails);
                    asm.Jump(Bpf.JeqK, vh, low, holds);
                    break;
            }
            asm.Mark(low);
        }

        asm.LoadAbs(argLow);
        switch (c.Op)
        {
            case CmpOp.Eq: asm.Jump(Bpf.JeqK, vl, holds, fails); break;
            case CmpOp.Ne: asm.Jump(Bpf.JeqK, vl, fails, holds); break;
            case CmpOp.Gt: asm.Jump(Bpf.JgtK, vl, holds, fails); break;
            case CmpOp.Ge: asm.Jump(Bpf.JgeK, vl, holds, fails); break;
            case CmpOp.Lt: asm.Jump(Bpf.JgeK, vl, fails, holds); break;
            case CmpOp.Le: asm.Jump(Bpf.JgtK, vl, fails, holds); break;
            case CmpOp.MaskedEq:
                asm.And(vl);
                asm.Jump(Bpf.JeqK, (uint)c.ValueTwo, holds, fails);
                break;
        }
    }
}
