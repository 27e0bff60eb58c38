using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;
using static Vessel.Runtime.Tests.Seccomp.BpfInterpreter;

namespace Vessel.Runtime.Tests.Seccomp;

public class DefaultProfileTests
{
    private const uint Allow = 0x7fff0000, Eperm = 0x00050001, Enosys = 0x00050026, X32 = 0x40000000;

    // x86_64 numbers
    private const uint Read = 0, Write = 1, Socket = 41, Clone = 56, Exit = 60, Ptrace = 101, Personality = 135;
    private const uint Mount = 165, Umount2 = 166, ExitGroup = 231, KexecLoad = 246, Unshare = 272, Kcmp = 312, Clone3 = 435;

    private const ulong CloneNewUser = 0x10000000, CloneThreadFlags = 0x003d0f00; // what pthread_create passes

    private static readonly string[] DockerDefaultCaps =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    private static byte[] Filter(params string[] caps) => SeccompCompilerTests.Compile(DefaultProfile.Create(caps));

    [Fact]
    public void CompilesWellWithinTheKernelLimit()
    {
        var profile = DefaultProfile.Create(DockerDefaultCaps);
        Assert.True(profile.Syscalls!.Sum(s => s.Names!.Count) > 350);
        var program = SeccompCompiler.Compile(profile)!;
        Assert.InRange(program.InstructionCount, 50, 1000);
        Assert.Equal(0u, program.Flags);

        var all = SeccompCompiler.Compile(DefaultProfile.Create(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE", "CAP_SYS_TIME", "CAP_BPF"]))!;
        Assert.InRange(all.InstructionCount, 50, 1000);
    }

    [Fact]
    public void AllowsTheBasicsOnEveryX86Abi()
    {
        var filter = Filter(DockerDefaultCaps);
        foreach (uint nr in new uint[] { Read, Write, Exit, ExitGroup, 9 /* mmap */, 257 /* openat */, 59 /* execve */ })
            Assert.Equal(Allow, Run(filter, AuditArchX86_64, nr));
        foreach (uint nr in new uint[] { 3, 4, 1, 252, 192 /* mmap2 */, 102 /* socketcall */ })
            Assert.Equal(Allow, Run(filter, AuditArchI386, nr));
        foreach (uint nr in new uint[] { Read, Write, Exit, ExitGroup, 520 /* execve */ })
            Assert.Equal(Allow, Run(filter, AuditArchX86_64, X32 | nr));
        Assert.Equal(0u, Run(filter, AuditArchAarch64, 63)); // not an arch of the profile: KILL_THREAD
    }

    [Fact]
    public void DeniesDangerousSyscallsWithEperm()
    {
        var filter = Filter(DockerDefaultCaps);
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, KexecLoad));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, 320)); // kexec_file_load
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, 250)); // keyctl
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, 323)); // userfaultfd
        Assert.Equal(Eperm, Run(filter, AuditArchI386, 283));   // i386 kexec_load
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, X32 | 528)); // x32 kexec_load
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Mount));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Umount2));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Unshare));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, 169)); // reboot: needs CAP_SYS_BOOT
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, 161)); // chroot: CAP_SYS_CHROOT is in Docker's set
    }

    [Fact]
    public void SyscallsNewerThanTheProfileGetEnosys()
    {
        var filter = Filter(DockerDefaultCaps);
        Assert.Equal(Enosys, Run(filter, AuditArchX86_64, 1000));
        Assert.Equal(Enosys, Run(filter, AuditArchI386, 1000));
        Assert.Equal(Enosys, Run(filter, AuditArchX86_64, X32 | 1000));
    }

    [Fact]
    public void CapSysAdminUnlocksMountNamespacesAndClone3()
    {
        var plain = Filter(DockerDefaultCaps);
        var admin = Filter([.. DockerDefaultCaps, "CAP_SYS_ADMIN"]);

        Assert.Equal(Allow, Run(plain, AuditArchX86_64, Clone, [CloneThreadFlags]));
        Assert.Equal(Eperm, Run(plain, AuditArchX86_64, Clone, [CloneNewUser | 0x11]));
        Assert.Equal(Eperm, Run(plain, AuditArchI386, 120, [CloneNewUser | 0x11]));
        Assert.Equal(Enosys, Run(plain, AuditArchX86_64, Clone3));

        Assert.Equal(Allow, Run(admin, AuditArchX86_64, Clone, [CloneThreadFlags]));
        Assert.Equal(Allow, Run(admin, AuditArchX86_64, Clone, [CloneNewUser | 0x11]));
        Assert.Equal(Allow, Run(admin, AuditArchX86_64, Clone3));
        Assert.Equal(Allow, Run(admin, AuditArchX86_64, Mount));
        Assert.Equal(Allow, Run(admin, AuditArchX86_64, Unshare));
        Assert.Equal(Allow, Run(admin, AuditArchX86_64, 308)); // setns
        Assert.Equal(Eperm, Run(admin, AuditArchX86_64, KexecLoad));
    }

    [Fact]
    public void CapabilityNamesAreNormalised()
    {
        Assert.Equal(Eperm, Run(Filter(DockerDefaultCaps), AuditArchX86_64, Kcmp));
        Assert.Equal(Allow, Run(Filter("sys_ptrace"), AuditArchX86_64, Kcmp));
        Assert.Equal(Allow, Run(Filter("cap_sys_ptrace"), AuditArchX86_64, Kcmp));
        Assert.Equal(Allow, Run(Filter(), AuditArchX86_64, Ptrace)); // allowed without CAP_SYS_PTRACE, as moby on >= 4.8
    }

    [Fact]
    public void SocketFamiliesAndPersonalities()
    {
        var filter = Filter(DockerDefaultCaps);
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Socket, [2, 1, 0]));   // AF_INET
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Socket, [16, 3, 0]));  // AF_NETLINK
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Socket, [38, 5, 0]));  // AF_ALG
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Socket, [39, 1, 0]));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Socket, [40, 1, 0]));  // AF_VSOCK
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Socket, [44, 3, 0]));  // AF_XDP
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Socket, [0x1_0000_0026, 5, 0])); // truncated by the kernel to AF_ALG

        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Personality, [0]));
        Assert.Equal(Allow, Run(filter, AuditArchX86_64, Personality, [0xffffffff]));
        Assert.Equal(Eperm, Run(filter, AuditArchX86_64, Personality, [0x0040000])); // ADDR_NO_RANDOMIZE
        Assert.Equal(Allow, Run(filter, AuditArchI386, 136, [0x20008]));
    }

    [Fact]
    public void AgreesWithTheReferenceOnEverySyscallNumber()
    {
        foreach (var caps in new[] { DockerDefaultCaps, ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], Array.Empty<string>() })
        {
            var profile = DefaultProfile.Create(caps);
            var filter = SeccompCompilerTests.Compile(profile);
            var random = new Random(7);
            for (uint nr = 0; nr < 600; nr++)
            {
                foreach (var (arch, number) in new[] { (AuditArchX86_64, nr), (AuditArchI386, nr), (AuditArchX86_64, X32 | nr) })
                {
                    ulong[] args = [(ulong)random.NextInt64(), (ulong)random.Next(64), 0, 0, 0, 0];
                    Assert.Equal(ReferenceEvaluator.Evaluate(profile, arch, number, args), Run(filter, arch, number, args));
                }
            }
        }
    }
}
