using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;
using static Vessel.Runtime.Tests.Seccomp.BpfInterpreter;

namespace Vessel.Runtime.Tests.Seccomp;

/// <summary>Random profiles and random syscalls (fixed seed, so failures reproduce): the compiled filter,
/// run by the test interpreter, must return what the reference evaluation of the profile returns.</summary>
public class SeccompPropertyTests
{
    private static readonly string[] Actions =
    [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
    ];

    private static readonly string[] Ops =
        ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

    private static readonly string[] Arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"];

    private static readonly ulong[] Interesting =
    [
        0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x1_0000_0000, 0x1_0000_0001, 0x1_ffff_ffff,
        0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0xffff_ffff_0000_0000, 0xffff_ffff_ffff_fffe, ulong.MaxValue,
    ];

    private static ulong Value(Random r) => r.Next(4) switch
    {
        0 => Interesting[r.Next(Interesting.Length)],
        1 => (ulong)r.Next(64),
        2 => (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63),
        _ => (ulong)r.Next(4) << 32 | (uint)r.Next(4),
    };

    private static uint? Errno(Random r) => r.Next(3) switch { 0 => null, 1 => (uint)r.Next(1, 134), _ => (uint)r.Next(0, 0x10000) };

    private static LinuxSeccomp RandomProfile(Random r, string[] names, int maxRules)
    {
        var syscalls = new List<LinuxSyscall>();
        int ruleCount = r.Next(maxRules + 1);
        for (int i = 0; i < ruleCount; i++)
        {
            var args = new List<LinuxSeccompArg>();
            int argCount = r.Next(5) switch { 0 or 1 => 0, 2 or 3 => 1, _ => r.Next(2, 4) };
            for (int j = 0; j < argCount; j++)
                args.Add(new LinuxSeccompArg { Index = (uint)r.Next(6), Op = Ops[r.Next(Ops.Length)], Value = Value(r), ValueTwo = Value(r) });
            syscalls.Add(new LinuxSyscall
            {
                Names = [.. Enumerable.Range(0, r.Next(1, 5)).Select(_ => names[r.Next(names.Length)])],
                Action = Actions[r.Next(Actions.Length)],
                ErrnoRet = Errno(r),
                Args = args.Count == 0 && r.Next(2) == 0 ? null : args,
            });
        }
        return new LinuxSeccomp
        {
            DefaultAction = Actions[r.Next(Actions.Length)],
            DefaultErrnoRet = Errno(r),
            Architectures = [.. Arches.Where(_ => r.Next(2) == 0)],
            Syscalls = syscalls,
        };
    }

    /// <summary>An argument likely to sit on a boundary of one of the profile's conditions.</summary>
    private static ulong Argument(Random r, List<LinuxSeccompArg> conditions)
    {
        if (conditions.Count == 0 || r.Next(4) == 0)
            return Value(r);
        var c = conditions[r.Next(conditions.Count)];
        return r.Next(6) switch
        {
            0 => c.Value,
            1 => c.Value + 1,
            2 => c.Value - 1,
            3 => c.Value ^ (1UL << (32 + r.Next(32))),
            4 => c.Value ^ (1UL << r.Next(32)),
            _ => c.ValueTwo | ((ulong)r.NextInt64() & ~c.Value), // MASKED_EQ: datum plus bits outside the mask
        };
    }

    private static void Check(LinuxSeccomp profile, Random r, int samples)
    {
        var filter = SeccompCompilerTests.Compile(profile);
        var conditions = (profile.Syscalls ?? []).SelectMany(s => s.Args ?? []).ToList();
        var named = (profile.Syscalls ?? []).SelectMany(s => s.Names!).Distinct().ToList();
        for (int i = 0; i < samples; i++)
        {
            var (arch, abi) = r.Next(7) switch
            {
                0 or 1 or 2 => (AuditArchX86_64, SyscallAbi.X86_64),
                3 or 4 => (AuditArchI386, SyscallAbi.I386),
                5 => (AuditArchX86_64, SyscallAbi.X32),
                _ => (AuditArchAarch64, SyscallAbi.X86_64),
            };
            uint nr;
            if (named.Count > 0 && r.Next(3) != 0 && SyscallTables.TryGetNumber(abi, named[r.Next(named.Count)], out uint known))
                nr = known;
            else
                nr = (abi == SyscallAbi.X32 ? 0x40000000u : 0u) | (r.Next(8) == 0 ? (uint)r.Next() : (uint)r.Next(600));
            ulong[] args = [.. Enumerable.Range(0, 6).Select(_ => Argument(r, conditions))];
            uint expected = ReferenceEvaluator.Evaluate(profile, arch, nr, args);
            uint actual = Run(filter, arch, nr, args, (ulong)r.NextInt64());
            if (expected != actual)
                Assert.Fail($"arch 0x{arch:x} nr 0x{nr:x} args [{string.Join(", ", args.Select(a => $"0x{a:x}"))}]: filter returned 0x{actual:x}, reference 0x{expected:x}");
        }
    }

    [Fact]
    public void SmallProfilesAgreeWithTheReference()
    {
        var r = new Random(20240611);
        // A small pool of names, so that rules collide on the same syscall; some exist only on some
        // ABIs (_llseek, socketcall: i386; arch_prctl numbering differs) or nowhere.
        string[] names =
        [
            "read", "write", "open", "close", "mmap", "personality", "socket", "clone", "getpid", "kexec_load",
            "rt_sigaction", "execve", "_llseek", "socketcall", "arch_prctl", "futex_waitv", "no_such_syscall",
        ];
        for (int i = 0; i < 400; i++)
            Check(RandomProfile(r, names, 12), r, 150);
    }

    [Fact]
    public void LargeProfilesAgreeWithTheReference()
    {
        var r = new Random(4096);
        var names = SyscallTables.Table(SyscallAbi.X86_64).Keys
            .Concat(SyscallTables.Table(SyscallAbi.I386).Keys)
            .Distinct().Order(StringComparer.Ordinal).ToArray();
        for (int i = 0; i < 30; i++)
            Check(RandomProfile(r, names, 120), r, 2000);
    }
}
