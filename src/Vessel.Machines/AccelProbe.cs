using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Vessel.Machines;

/// <summary>The accelerator QEMU should use and why: "kvm" or "tcg".</summary>
public sealed record AccelChoice(string Accel, string Reason);

/// <summary>Chooses the accelerator by trying it, not by trusting that /dev/kvm exists: through the KVM ioctls
/// it creates a VM with one vCPU and 64 KiB of memory and runs a tiny real-mode guest (100 port writes, each
/// an exit to us, around 200,000 loop iterations, then hlt). Hardware KVM does that in well under a
/// millisecond; an emulated or badly nested /dev/kvm (like this project's machines: about 1.4 ms per exit and
/// per thousand instructions) takes hundreds, and a kernel boots slower on it than under TCG. So KVM is chosen
/// only when the guest halts correctly within <see cref="Budget"/>.</summary>
public static unsafe class AccelProbe
{
    public static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan GiveUp = TimeSpan.FromSeconds(3);

    // KVM ioctls (linux/kvm.h; checked against the header with a C program).
    private const nuint KVM_GET_API_VERSION = 0xAE00, KVM_CREATE_VM = 0xAE01, KVM_GET_VCPU_MMAP_SIZE = 0xAE04, KVM_CREATE_VCPU = 0xAE41;
    private const nuint KVM_SET_USER_MEMORY_REGION = 0x4020AE46, KVM_RUN = 0xAE80, KVM_GET_REGS = 0x8090AE81, KVM_SET_REGS = 0x4090AE82;
    private const nuint KVM_GET_SREGS = 0x8138AE83, KVM_SET_SREGS = 0x4138AE84;
    private const int KVM_EXIT_IO = 2, KVM_EXIT_HLT = 5, SizeOfRegs = 144, SizeOfSregs = 312, MemSize = 0x10000, CodeAt = 0x1000;
    private const int Exits = 100, InnerLoop = 2000;

    /// <summary>16-bit real mode at 0x1000: bx = 100; do { cx = 2000; while (--cx); out 0x10, al } while (--bx); hlt.</summary>
    private static readonly byte[] Guest =
    [
        0xBB, Exits, 0x00,                                 // mov bx, 100
        0xB9, InnerLoop & 0xFF, InnerLoop >> 8,            // outer: mov cx, 2000
        0x49,                                              // inner: dec cx
        0x75, 0xFD,                                        //        jnz inner
        0xE6, 0x10,                                        // out 0x10, al  (an exit to the VMM)
        0x4B,                                              // dec bx
        0x75, 0xF5,                                        // jnz outer
        0xF4,                                              // hlt
    ];

    /// <summary>The choice for <paramref name="requested"/> ("auto"/null: probe; "kvm" or "tcg": as asked, KVM
    /// only if /dev/kvm can at least be opened).</summary>
    public static AccelChoice Choose(string? requested, string device = "/dev/kvm")
    {
        switch (requested)
        {
            case null or "" or "auto": return Probe(device);
            case "tcg": return new AccelChoice("tcg", "requested (--accel tcg)");
            case "kvm":
                int fd = Native.Open(device, Native.O_RDWR | Native.O_CLOEXEC);
                if (fd < 0) throw new MachineException($"--accel kvm: cannot open {device}: {Native.ErrorText(Marshal.GetLastPInvokeError())}", MachineErrorKind.Invalid);
                Native.Close(fd);
                return new AccelChoice("kvm", "requested (--accel kvm)");
            default: throw new MachineException($"unknown accelerator \"{requested}\": use auto, kvm or tcg", MachineErrorKind.Invalid);
        }
    }

    public static AccelChoice Probe(string device = "/dev/kvm")
    {
        if (!File.Exists(device)) return new AccelChoice("tcg", $"{device} does not exist (no KVM in this kernel or no hardware virtualization)");
        int kvm = Native.Open(device, Native.O_RDWR | Native.O_CLOEXEC);
        if (kvm < 0) return new AccelChoice("tcg", $"cannot open {device}: {Native.ErrorText(Marshal.GetLastPInvokeError())}");
        try
        {
            int api = Native.Ioctl(kvm, KVM_GET_API_VERSION, 0);
            if (api != 12) return new AccelChoice("tcg", $"{device} speaks KVM API version {api}, not 12");
            // The vCPU runs on a thread of its own: a guest that never exits would block KVM_RUN forever.
            var result = new TaskCompletionSource<(string? Error, TimeSpan Took)>(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() => result.TrySetResult(RunGuest(kvm))) { IsBackground = true, Name = "kvm-probe" };
            thread.Start();
            if (!result.Task.Wait(GiveUp))
                return new AccelChoice("tcg", $"a test guest on {device} (200,000 instructions, 100 exits) did not finish in {GiveUp.TotalSeconds:0} s: KVM cannot run guests at speed here");
            var (error, took) = result.Task.Result;
            if (error is not null) return new AccelChoice("tcg", $"{device}: {error}");
            string ms = took.TotalMilliseconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
            return took <= Budget
                ? new AccelChoice("kvm", $"a test guest on {device} (200,000 instructions, 100 exits) ran in {ms} ms")
                : new AccelChoice("tcg", $"a test guest on {device} (200,000 instructions, 100 exits) took {ms} ms (hardware KVM: under 1 ms): KVM is emulated or nested without hardware support here, so TCG is faster");
        }
        finally
        {
            // The probe thread may still use kvm when we gave up on it: then it closes it itself.
            if (Volatile.Read(ref _running) == 0) Native.Close(kvm);
            else Volatile.Write(ref _closeWhenDone, kvm);
        }
    }

    private static int _running, _closeWhenDone = -1;

    private static (string? Error, TimeSpan Took) RunGuest(int kvm)
    {
        Interlocked.Exchange(ref _running, 1);
        int vm = -1, vcpu = -1;
        nint mem = -1, run = -1;
        nuint runSize = 0;
        try
        {
            vm = Native.Ioctl(kvm, KVM_CREATE_VM, 0);
            if (vm < 0) return (Fail("KVM_CREATE_VM"), default);
            mem = Native.Mmap(0, MemSize, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED | Native.MAP_ANONYMOUS, -1, 0);
            if (mem == -1) return (Fail("mmap"), default);
            Guest.CopyTo(new Span<byte>((byte*)mem + CodeAt, Guest.Length));
            byte* region = stackalloc byte[32];
            new Span<byte>(region, 32).Clear();
            *(ulong*)(region + 8) = 0;               // guest_phys_addr
            *(ulong*)(region + 16) = MemSize;        // memory_size
            *(ulong*)(region + 24) = (ulong)mem;     // userspace_addr
            if (Native.Ioctl(vm, KVM_SET_USER_MEMORY_REGION, (nint)region) < 0) return (Fail("KVM_SET_USER_MEMORY_REGION"), default);
            vcpu = Native.Ioctl(vm, KVM_CREATE_VCPU, 0);
            if (vcpu < 0) return (Fail("KVM_CREATE_VCPU"), default);
            int size = Native.Ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
            if (size <= 0) return (Fail("KVM_GET_VCPU_MMAP_SIZE"), default);
            runSize = (nuint)size;
            run = Native.Mmap(0, runSize, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, vcpu, 0);
            if (run == -1) return (Fail("mmap vcpu"), default);
            byte* sregs = stackalloc byte[SizeOfSregs];
            if (Native.Ioctl(vcpu, KVM_GET_SREGS, (nint)sregs) < 0) return (Fail("KVM_GET_SREGS"), default);
            *(ulong*)sregs = 0;            // cs.base
            *(ushort*)(sregs + 12) = 0;    // cs.selector
            if (Native.Ioctl(vcpu, KVM_SET_SREGS, (nint)sregs) < 0) return (Fail("KVM_SET_SREGS"), default);
            byte* regs = stackalloc byte[SizeOfRegs];
            new Span<byte>(regs, SizeOfRegs).Clear();
            *(ulong*)(regs + 16 * 8) = CodeAt; // rip
            *(ulong*)(regs + 17 * 8) = 2;      // rflags (bit 1 is always set)
            if (Native.Ioctl(vcpu, KVM_SET_REGS, (nint)regs) < 0) return (Fail("KVM_SET_REGS"), default);
            int exits = 0;
            long start = Stopwatch.GetTimestamp();
            while (true)
            {
                if (Native.Ioctl(vcpu, KVM_RUN, 0) < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 4) continue; // EINTR
                    return ($"KVM_RUN: {Native.ErrorText(errno)}", default);
                }
                uint reason = *(uint*)((byte*)run + 8);
                if (reason == KVM_EXIT_IO) { exits++; if (Stopwatch.GetElapsedTime(start) > GiveUp) return ("the test guest is too slow", Stopwatch.GetElapsedTime(start)); continue; }
                TimeSpan took = Stopwatch.GetElapsedTime(start);
                if (reason != KVM_EXIT_HLT) return ($"the test guest stopped with KVM exit reason {reason} instead of hlt", took);
                if (exits != Exits) return ($"the test guest made {exits} port writes instead of {Exits}", took);
                return (null, took);
            }
        }
        finally
        {
            if (run != -1) Native.Munmap(run, runSize);
            if (vcpu >= 0) Native.Close(vcpu);
            if (vm >= 0) Native.Close(vm);
            if (mem != -1) Native.Munmap(mem, MemSize);
            Interlocked.Exchange(ref _running, 0);
            int late = Interlocked.Exchange(ref _closeWhenDone, -1);
            if (late >= 0) Native.Close(late);
        }
    }

    private static string Fail(string what) => $"{what}: {Native.ErrorText(Marshal.GetLastPInvokeError())}";
}
