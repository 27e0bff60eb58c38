using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;
using static Vessel.Runtime.Tests.Seccomp.BpfInterpreter;

namespace Vessel.Runtime.Tests.Seccomp;

public class SeccompCompilerTests
{
    private const uint Allow = 0x7fff0000, Log = 0x7ffc0000, Trace = 0x7ff00000, Trap = 0x00030000;
    private const uint Errno = 0x00050000, KillThread = 0, KillProcess = 0x80000000;
    private const uint Eperm = 1, Enosys = 38;
    private const uint X32 = 0x40000000;

    // x86_64 numbers
    private const uint Read = 0, Write = 1, Open = 2, Close = 3, Mmap = 9, RtSigaction = 13, Getpid = 39;
    private const uint KexecLoad = 246;

    internal static byte[] Compile(LinuxSeccomp profile)
    {
        var program = SeccompCompiler.Compile(profile);
        Assert.NotNull(program);
        Validate(program.Filter);
        return program.Filter;
    }

    private static LinuxSyscall Rule(string action, params string[] names) => new() { Names = [.. names], Action = action };

    private static LinuxSyscall Rule(string action, string name, params LinuxSeccompArg[] args) =>
        new() { Names = [name], Action = action, Args = [.. args] };

    private static LinuxSeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0) =>
        new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };

    private static uint Run64(byte[] filter, uint nr, params ulong[] args) => Run(filter, AuditArchX86_64, nr, args);

    [Fact]
    public void NullOrEmptyProfileGivesNoProgram()
    {
        Assert.Null(SeccompCompiler.Compile(null));
        Assert.Null(SeccompCompiler.Compile(new LinuxSeccomp()));
        Assert.Null(SeccompCompiler.Compile(new LinuxSeccomp { Syscalls = [] }));
    }

    [Fact]
    public void ProgramStartsByLoadingTheArch()
    {
        var filter = Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW" });
        Assert.Equal(new byte[] { 0x20, 0, 0, 0, 4, 0, 0, 0 }, filter[..8]);
    }

    [Fact]
    public void DefaultActionAppliesToUnlistedSyscalls()
    {
        var allow = Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Syscalls = [Rule("SCMP_ACT_ERRNO", "getpid")] });
        Assert.Equal(Allow, Run64(allow, Read));
        Assert.Equal(Allow, Run64(allow, 100_000));
        Assert.Equal(Errno | Eperm, Run64(allow, Getpid));

        var deny = Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ERRNO", DefaultErrnoRet = 13, Syscalls = [Rule("SCMP_ACT_ALLOW", "read", "write", "getpid")] });
        Assert.Equal(Allow, Run64(deny, Read));
        Assert.Equal(Allow, Run64(deny, Write));
        Assert.Equal(Allow, Run64(deny, Getpid));
        Assert.Equal(Errno | 13, Run64(deny, Open));
        Assert.Equal(Errno | 13, Run64(deny, Mmap));
        Assert.Equal(Errno | Enosys, Run64(deny, Getpid + 1)); // above the highest syscall the profile names
    }

    [Fact]
    public void EveryActionMapsToItsReturnValue()
    {
        var profile = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_KILL_PROCESS",
            Syscalls =
            [
                Rule("SCMP_ACT_KILL", "read"),
                Rule("SCMP_ACT_KILL_THREAD", "write"),
                Rule("SCMP_ACT_TRAP", "open"),
                Rule("SCMP_ACT_ERRNO", "close"),
                new LinuxSyscall { Names = ["mmap"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 22 },
                new LinuxSyscall { Names = ["rt_sigaction"], Action = "SCMP_ACT_TRACE", ErrnoRet = 1234 },
                Rule("SCMP_ACT_TRACE", "getpid"),
                Rule("SCMP_ACT_LOG", "stat"),
                Rule("SCMP_ACT_ALLOW", "fstat"),
            ],
        };
        var filter = Compile(profile);
        Assert.Equal(KillThread, Run64(filter, Read));
        Assert.Equal(KillThread, Run64(filter, Write));
        Assert.Equal(Trap, Run64(filter, Open));
        Assert.Equal(Errno | Eperm, Run64(filter, Close));
        Assert.Equal(Errno | 22, Run64(filter, Mmap));
        Assert.Equal(Trace | 1234, Run64(filter, RtSigaction));
        Assert.Equal(Trace | Eperm, Run64(filter, Getpid));
        Assert.Equal(Log, Run64(filter, 4));
        Assert.Equal(Allow, Run64(filter, 5));
        Assert.Equal(KillProcess, Run64(filter, 6)); // lstat: default
    }

    [Fact]
    public void FlagsMapToSeccompFilterFlagBits()
    {
        var program = SeccompCompiler.Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        });
        // WAIT_KILLABLE_RECV needs NEW_LISTENER (EINVAL otherwise) and Vessel has no listener: no bit.
        Assert.Equal(SeccompFilterFlags.Tsync | SeccompFilterFlags.Log | SeccompFilterFlags.SpecAllow, program!.Flags);
        Assert.Equal(0u, SeccompCompiler.Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW" })!.Flags);
    }

    public static TheoryData<string, ulong, ulong, bool> Comparisons()
    {
        var data = new TheoryData<string, ulong, ulong, bool>();
        // (op, value, argument, holds) with values that differ only in the high half, only in the low half, or both.
        ulong v = 0x0000_0001_8000_0000;
        foreach (var (arg, cmp) in new (ulong, int)[]
        {
            (v, 0), (v + 1, 1), (v - 1, -1),
            (0x0000_0000_8000_0000, -1), (0x0000_0002_8000_0000, 1), (0x0000_0001_0000_0000, -1),
            (0x0000_0000_ffff_ffff, -1), (0x0000_0001_ffff_ffff, 1), (0xffff_ffff_0000_0000, 1), (0, -1),
        })
        {
            data.Add("SCMP_CMP_EQ", v, arg, cmp == 0);
            data.Add("SCMP_CMP_NE", v, arg, cmp != 0);
            data.Add("SCMP_CMP_LT", v, arg, cmp < 0);
            data.Add("SCMP_CMP_LE", v, arg, cmp <= 0);
            data.Add("SCMP_CMP_GT", v, arg, cmp > 0);
            data.Add("SCMP_CMP_GE", v, arg, cmp >= 0);
        }
        // Extremes.
        data.Add("SCMP_CMP_GT", ulong.MaxValue, ulong.MaxValue, false);
        data.Add("SCMP_CMP_GE", ulong.MaxValue, ulong.MaxValue, true);
        data.Add("SCMP_CMP_LT", 0, 0, false);
        data.Add("SCMP_CMP_LE", 0, 0, true);
        data.Add("SCMP_CMP_LT", 0xffff_ffff, 0x1_0000_0000, false);
        data.Add("SCMP_CMP_GT", 0xffff_ffff, 0x1_0000_0000, true);
        return data;
    }

    [Theory]
    [MemberData(nameof(Comparisons))]
    public void ArgumentComparisonsUseAll64Bits(string op, ulong value, ulong arg, bool holds)
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Syscalls = [Rule("SCMP_ACT_ALLOW", "mmap", Arg(3, op, value))],
        });
        ulong[] args = [0xdead, 0xbeef, 0xcafe, arg, 0, 0];
        Assert.Equal(holds ? Allow : Errno | Eperm, Run64(filter, Mmap, args));
        Assert.Equal(ReferenceEvaluator.Holds(Arg(3, op, value), arg), holds);
    }

    [Theory]
    [InlineData(0x0000_0000_0000_00f0UL, 0x0000_0000_0000_0030UL, 0x0000_0000_0000_1234UL, true)]
    [InlineData(0x0000_0000_0000_00f0UL, 0x0000_0000_0000_0030UL, 0x0000_0000_0000_1244UL, false)]
    [InlineData(0xff00_0000_0000_0000UL, 0x1200_0000_0000_0000UL, 0x1234_5678_9abc_def0UL, true)]
    [InlineData(0xff00_0000_0000_0000UL, 0x1200_0000_0000_0000UL, 0x1334_5678_9abc_def0UL, false)]
    [InlineData(0xff00_0000_0000_00ffUL, 0x1200_0000_0000_00f0UL, 0x12ff_ffff_ffff_fff0UL, true)]
    [InlineData(0xff00_0000_0000_00ffUL, 0x1200_0000_0000_00f0UL, 0x12ff_ffff_ffff_ff0fUL, false)]
    [InlineData(0xff00_0000_0000_00ffUL, 0x1200_0000_0000_00f0UL, 0x11ff_ffff_ffff_fff0UL, false)]
    [InlineData(0x0000_0000_7e02_0000UL, 0UL, 0xffff_ffff_0000_0011UL, true)]  // clone flags without CLONE_NEW*
    [InlineData(0x0000_0000_7e02_0000UL, 0UL, 0x0000_0000_1000_0011UL, false)] // CLONE_NEWUSER
    [InlineData(0x0000_0000_0000_00f0UL, 0x0000_0000_0000_0f00UL, 0x0000_0000_0000_0f00UL, false)] // datum outside the mask never matches
    public void MaskedEqualCompares64Bits(ulong mask, ulong datum, ulong arg, bool holds)
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Syscalls = [Rule("SCMP_ACT_ALLOW", "clone", Arg(0, "SCMP_CMP_MASKED_EQ", mask, datum))],
        });
        Assert.Equal(holds ? Allow : Errno | Eperm, Run64(filter, 56, arg));
    }

    [Fact]
    public void ArgsOfOneRuleAreAndedAndRulesAreOred()
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Syscalls =
            [
                Rule("SCMP_ACT_ALLOW", "mmap", Arg(0, "SCMP_CMP_EQ", 0), Arg(2, "SCMP_CMP_MASKED_EQ", 4, 0)), // no PROT_EXEC at NULL hint
                Rule("SCMP_ACT_ALLOW", "mmap", Arg(1, "SCMP_CMP_LE", 4096)),
                Rule("SCMP_ACT_ALLOW", "mmap", Arg(5, "SCMP_CMP_GT", 0x10, 0), Arg(5, "SCMP_CMP_LT", 0x20)), // same arg twice: a range
            ],
        });
        Assert.Equal(Allow, Run64(filter, Mmap, 0, 1 << 20, 3, 0, 0, 0));
        Assert.Equal(Errno | Eperm, Run64(filter, Mmap, 0, 1 << 20, 7, 0, 0, 0));
        Assert.Equal(Errno | Eperm, Run64(filter, Mmap, 0x1000, 1 << 20, 3, 0, 0, 0));
        Assert.Equal(Allow, Run64(filter, Mmap, 0x1000, 4096, 7, 0, 0, 0));
        Assert.Equal(Allow, Run64(filter, Mmap, 0x1000, 1 << 20, 7, 0, 0, 0x15));
        Assert.Equal(Errno | Eperm, Run64(filter, Mmap, 0x1000, 1 << 20, 7, 0, 0, 0x20));
        Assert.Equal(Errno | Eperm, Run64(filter, Mmap, 0x1000, 1 << 20, 7, 0, 0, 0x10));
        Assert.Equal(Errno | Eperm, Run64(filter, Read));
    }

    [Fact]
    public void ConditionalRulesComeBeforeTheCatchAllOfTheSameSyscall()
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls =
            [
                new LinuxSyscall { Names = ["personality"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 22 },
                Rule("SCMP_ACT_KILL_PROCESS", "personality", Arg(0, "SCMP_CMP_EQ", 0x0040000)), // ADDR_NO_RANDOMIZE
                Rule("SCMP_ACT_ALLOW", "personality", Arg(0, "SCMP_CMP_EQ", 0)), // = default: dropped, as runc
            ],
        });
        Assert.Equal(KillProcess, Run64(filter, 135, 0x0040000));
        Assert.Equal(Errno | 22, Run64(filter, 135, 8));
        Assert.Equal(Errno | 22, Run64(filter, 135, 0));
    }

    [Fact]
    public void SyscallsOfArchitecturesNotInTheProfileGetTheBadArchAction()
    {
        var profile = new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Syscalls = [Rule("SCMP_ACT_ERRNO", "getpid")] };
        var filter = Compile(profile);
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Read));
        Assert.Equal(KillThread, Run(filter, AuditArchI386, 3));       // i386 not listed
        Assert.Equal(KillThread, Run(filter, AuditArchX86_64, X32 | 0)); // x32 not listed
        Assert.Equal(KillThread, Run(filter, AuditArchAarch64, 63));
        Assert.Equal(SeccompCompiler.BadArchAction, KillThread);

        // Listed: syscalls are looked up in that ABI's table. getpid is 20 on i386, 39 | X32 on x32.
        profile.Architectures = ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"];
        filter = Compile(profile);
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchI386, 20));
        Assert.Equal(Allow, Run(filter, AuditArchI386, Getpid)); // 39 is mkdir on i386
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchX86_64, X32 | Getpid));
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchX86_64, Getpid));
        Assert.Equal(KillThread, Run(filter, AuditArchAarch64, 172)); // listed but foreign to an x86_64 kernel
    }

    [Fact]
    public void X32UsesItsOwnNumbers()
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            Syscalls = [Rule("SCMP_ACT_ALLOW", "read", "rt_sigaction", "kexec_load")],
        });
        Assert.Equal(Allow, Run64(filter, Read));
        Assert.Equal(Allow, Run64(filter, X32 | Read));
        Assert.Equal(Allow, Run64(filter, RtSigaction));
        Assert.Equal(Allow, Run64(filter, X32 | 512));          // x32 rt_sigaction
        Assert.Equal(Errno | Eperm, Run64(filter, X32 | RtSigaction)); // 13 is not an x32 syscall
        Assert.Equal(Allow, Run64(filter, KexecLoad));
        Assert.Equal(Allow, Run64(filter, X32 | 528));          // x32 kexec_load
        Assert.Equal(Errno | Eperm, Run64(filter, X32 | KexecLoad));
        Assert.Equal(Errno | Enosys, Run64(filter, 512));       // above x86_64's highest listed (246): ENOSYS
    }

    [Fact]
    public void I386ComparesOnlyTheLow32BitsOfArguments()
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            Syscalls =
            [
                Rule("SCMP_ACT_ALLOW", "personality", Arg(0, "SCMP_CMP_EQ", 8)),
                Rule("SCMP_ACT_ALLOW", "personality", Arg(0, "SCMP_CMP_EQ", 0x1_0000_0000)), // can't hold for a 32-bit argument
                Rule("SCMP_ACT_LOG", "personality", Arg(0, "SCMP_CMP_LT", 0x1_0000_0000)),  // always holds for a 32-bit argument
            ],
        });
        const uint personality64 = 135, personality32 = 136;
        Assert.Equal(Allow, Run(filter, AuditArchI386, personality32, [8]));
        Assert.Equal(Allow, Run(filter, AuditArchI386, personality32, [0xffff_ffff_0000_0008]));
        Assert.Equal(Log, Run(filter, AuditArchI386, personality32, [9]));
        Assert.Equal(Log, Run(filter, AuditArchI386, personality32, [0x1_0000_0000]));
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, personality64, [0x1_0000_0000]));
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchX86_64, personality64, [0xffff_ffff_0000_0008]));
        Assert.Equal(Log, Run(filter, AuditArchX86_64, personality64, [9]));
    }

    [Fact]
    public void UnknownSyscallNamesAreSkipped()
    {
        var filter = Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls = [Rule("SCMP_ACT_ERRNO", "read", "arm_fadvise64_64", "no_such_syscall", "_llseek", "write")],
        });
        Assert.Equal(Errno | Eperm, Run64(filter, Read));
        Assert.Equal(Errno | Eperm, Run64(filter, Write));
        Assert.Equal(Allow, Run64(filter, 140)); // getpriority, not _llseek (i386 only)
    }

    [Fact]
    public void SyscallsNewerThanTheProfileGetEnosysUnlessTheDefaultAllows()
    {
        var profile = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            Syscalls = [Rule("SCMP_ACT_ALLOW", "read", "write"), Rule("SCMP_ACT_ERRNO", "getpid")],
        };
        var filter = Compile(profile);
        Assert.Equal(Errno | Eperm, Run64(filter, Open));
        Assert.Equal(Errno | Eperm, Run64(filter, Getpid));
        Assert.Equal(Errno | Enosys, Run64(filter, Getpid + 1));
        Assert.Equal(Errno | Enosys, Run64(filter, 0x3fff_ffff));
        Assert.Equal(Allow, Run(filter, AuditArchI386, 3));               // read
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchI386, 5));       // open
        Assert.Equal(Errno | Eperm, Run(filter, AuditArchI386, 20));      // getpid: highest on i386
        Assert.Equal(Errno | Enosys, Run(filter, AuditArchI386, 21));

        profile.DefaultAction = "SCMP_ACT_LOG";
        Assert.Equal(Log, Run64(Compile(profile), 1000));
        profile.DefaultAction = "SCMP_ACT_KILL_PROCESS";
        Assert.Equal(Errno | Enosys, Run64(Compile(profile), 1000));
        Assert.Equal(KillProcess, Run64(Compile(profile), Open));
    }

    [Fact]
    public void LongProgramsUseTrampolinesForFarJumps()
    {
        // Every x86_64 syscall with two 64-bit conditions: ~20 instructions per syscall, far beyond 8-bit jumps.
        var names = SyscallTables.Table(SyscallAbi.X86_64).Keys.Order(StringComparer.Ordinal).Take(150).ToList();
        var profile = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Syscalls = [.. names.Select((n, i) => Rule("SCMP_ACT_ALLOW", n, Arg(0, "SCMP_CMP_GE", (ulong)i << 32), Arg(1, "SCMP_CMP_NE", (ulong)i)))],
        };
        var filter = Compile(profile);
        Assert.InRange(filter.Length / 8, 1000, 4096);
        bool sawFarJump = false;
        for (int pc = 0; pc < filter.Length / 8; pc++)
            if (Decode(filter, pc) is { Code: 0x05, K: > 255 })
                sawFarJump = true;
        Assert.True(sawFarJump);
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X86_64, name, out uint nr));
            Assert.Equal(Allow, Run64(filter, nr, (ulong)i << 32, (ulong)i + 1));
            Assert.Equal(Errno | Eperm, Run64(filter, nr, (ulong)i << 32, (ulong)i));
            Assert.Equal(i == 0 ? Allow : Errno | Eperm, Run64(filter, nr, ((ulong)i << 32) - 1, (ulong)i + 1));
        }
    }

    [Fact]
    public void ProgramsOverTheKernelLimitAreRejected()
    {
        var names = SyscallTables.Table(SyscallAbi.X86_64).Keys.ToList();
        var profile = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Syscalls = [.. names.Select(n => Rule("SCMP_ACT_ALLOW", n, Arg(0, "SCMP_CMP_GE", 1UL << 40), Arg(1, "SCMP_CMP_LE", 1UL << 40), Arg(2, "SCMP_CMP_EQ", 1UL << 40)))],
        };
        var e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(profile, "x.seccomp"));
        Assert.Equal("x.seccomp", e.Field);
        Assert.Contains("4096", e.Message);
    }

    [Theory]
    [InlineData("linux.seccomp.defaultAction")]
    [InlineData("linux.seccomp.defaultErrnoRet")]
    [InlineData("linux.seccomp.flags[1]")]
    [InlineData("linux.seccomp.architectures[1]")]
    [InlineData("linux.seccomp.syscalls[3].action")]
    [InlineData("linux.seccomp.syscalls[2].errnoRet")]
    [InlineData("linux.seccomp.syscalls[1].args[1].op")]
    [InlineData("linux.seccomp.syscalls[1].args[0].index")]
    [InlineData("linux.seccomp.syscalls[0].names")]
    public void InvalidFieldsAreSpecExceptionsNamingTheField(string field)
    {
        LinuxSeccomp Valid() => new()
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            Flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            Syscalls =
            [
                Rule("SCMP_ACT_ALLOW", "read"),
                Rule("SCMP_ACT_ALLOW", "mmap", Arg(0, "SCMP_CMP_EQ", 0), Arg(1, "SCMP_CMP_GT", 0)),
                Rule("SCMP_ACT_ERRNO", "open"),
                Rule("SCMP_ACT_LOG", "close"),
            ],
        };
        Assert.NotNull(SeccompCompiler.Compile(Valid()));

        var profile = Valid();
        switch (field)
        {
            case "linux.seccomp.defaultAction": profile.DefaultAction = "SCMP_ACT_MAYBE"; break;
            case "linux.seccomp.defaultErrnoRet": profile.DefaultErrnoRet = 70000; break;
            case "linux.seccomp.flags[1]": profile.Flags![1] = "SECCOMP_FILTER_FLAG_BOGUS"; break;
            case "linux.seccomp.architectures[1]": profile.Architectures![1] = "SCMP_ARCH_Z80"; break;
            case "linux.seccomp.syscalls[3].action": profile.Syscalls![3].Action = "SCMP_ACT_EXPLODE"; break;
            case "linux.seccomp.syscalls[2].errnoRet": profile.Syscalls![2].ErrnoRet = 0x10000; break;
            case "linux.seccomp.syscalls[1].args[1].op": profile.Syscalls![1].Args![1].Op = "SCMP_CMP_APPROX"; break;
            case "linux.seccomp.syscalls[1].args[0].index": profile.Syscalls![1].Args![0].Index = 6; break;
            case "linux.seccomp.syscalls[0].names": profile.Syscalls![0].Names = null; break;
        }
        var e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(profile));
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ": ", e.Message);
    }

    [Fact]
    public void NotifyIsRejectedAsUnsupported()
    {
        var e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            ListenerPath = "/run/agent.sock",
            Syscalls = [Rule("SCMP_ACT_ALLOW", "read"), Rule("SCMP_ACT_NOTIFY", "mkdir")],
        }, "spec.linux.seccomp"));
        Assert.Equal("spec.linux.seccomp.syscalls[1].action", e.Field);
        Assert.Contains("not supported", e.Message);

        e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_NOTIFY" }));
        Assert.Equal("linux.seccomp.defaultAction", e.Field);
        e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Flags = ["SECCOMP_FILTER_FLAG_NEW_LISTENER"] }));
        Assert.Equal("linux.seccomp.flags[0]", e.Field);
    }

    [Fact]
    public void MissingDefaultActionWithSyscallsIsAnError()
    {
        var e = Assert.Throws<SpecException>(() => SeccompCompiler.Compile(new LinuxSeccomp { Syscalls = [Rule("SCMP_ACT_ALLOW", "read")] }));
        Assert.Equal("linux.seccomp.defaultAction", e.Field);
    }

    [Fact]
    public void SyscallTablesComeFromTheKernelHeaders()
    {
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X86_64, "read", out uint nr) && nr == 0);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X86_64, "kexec_load", out nr) && nr == 246);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X86_64, "clone3", out nr) && nr == 435);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.I386, "read", out nr) && nr == 3);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.I386, "socketcall", out nr) && nr == 102);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X32, "read", out nr) && nr == X32);
        Assert.True(SyscallTables.TryGetNumber(SyscallAbi.X32, "execve", out nr) && nr == (X32 | 520));
        Assert.False(SyscallTables.TryGetNumber(SyscallAbi.X86_64, "socketcall", out _));
        Assert.False(SyscallTables.TryGetNumber(SyscallAbi.X32, "rt_sigaction_bogus", out _));
        Assert.InRange(SyscallTables.Table(SyscallAbi.X86_64).Count, 330, 500);
        Assert.InRange(SyscallTables.Table(SyscallAbi.I386).Count, 400, 550);
    }
}
