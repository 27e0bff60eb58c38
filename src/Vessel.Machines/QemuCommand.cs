using System.Globalization;

namespace Vessel.Machines;

public sealed record DiskSpec(string Id, string Path, string Format, string Cache = "writeback", bool ReadOnly = false);

public sealed record NicSpec(string Id, string Tap, string Mac, bool Vhost);

/// <summary>Everything needed to start one QEMU for a VM.</summary>
public sealed record MachineSpec
{
    public required string Name { get; init; }
    public int Cpus { get; init; } = 1;
    public long MemoryMiB { get; init; } = 512;
    public string Accel { get; init; } = "tcg";
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? Append { get; init; }
    public IReadOnlyList<DiskSpec> Disks { get; init; } = [];
    public IReadOnlyList<NicSpec> Nics { get; init; } = [];
    /// <summary>QMP socket, serial console socket and pid file.</summary>
    public required string QmpSocket { get; init; }
    public required string ConsoleSocket { get; init; }
    public required string PidFile { get; init; }
    /// <summary>Everything the serial console prints, appended.</summary>
    public required string ConsoleLog { get; init; }
    /// <summary>Start waiting for a migration stream (<c>-incoming</c>, e.g. unix:/path).</summary>
    public string? Incoming { get; init; }
    /// <summary>Start from this internal snapshot (<c>-loadvm</c>).</summary>
    public string? LoadVm { get; init; }
}

/// <summary>The QEMU command line for a <see cref="MachineSpec"/>: q35, no default devices, the serial console on a
/// Unix socket chardev that also logs to a file (the VM's log, written by QEMU even when nobody is attached),
/// QMP on a Unix socket, virtio disks and NICs.</summary>
public static class QemuCommand
{
    public static readonly string[] CacheModes = ["writeback", "none", "writethrough", "directsync", "unsafe"];

    public static List<string> Build(MachineSpec s)
    {
        var a = new List<string>
        {
            "-name", $"{Opt(s.Name)},process=vessel-{s.Name}",
            "-machine", "q35",
            "-accel", s.Accel == "kvm" ? "kvm" : "tcg",
            "-cpu", s.Accel == "kvm" ? "host" : "max",
            "-smp", s.Cpus.ToString(CultureInfo.InvariantCulture),
            "-m", s.MemoryMiB.ToString(CultureInfo.InvariantCulture) + "M",
            "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
            "-chardev", $"socket,id=console,path={Opt(s.ConsoleSocket)},server=on,wait=off,logfile={Opt(s.ConsoleLog)},logappend=on",
            "-serial", "chardev:console",
            "-chardev", $"socket,id=qmp,path={Opt(s.QmpSocket)},server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
            "-pidfile", s.PidFile,
            "-device", "virtio-rng-pci",
        };
        if (s.Kernel is not null)
        {
            a.AddRange(["-kernel", s.Kernel]);
            if (s.Initrd is not null) a.AddRange(["-initrd", s.Initrd]);
            a.AddRange(["-append", s.Append ?? "console=ttyS0"]);
        }
        int boot = 1;
        foreach (DiskSpec d in s.Disks)
        {
            if (!CacheModes.Contains(d.Cache)) throw new MachineException($"unknown cache mode \"{d.Cache}\": use {string.Join(", ", CacheModes)}", MachineErrorKind.Invalid);
            a.AddRange(["-drive", $"file={Opt(d.Path)},if=none,id={d.Id},format={d.Format},cache={d.Cache}{(d.ReadOnly ? ",readonly=on" : ",discard=unmap")}"]);
            a.AddRange(["-device", $"virtio-blk-pci,drive={d.Id}{(s.Kernel is null && boot == 1 ? $",bootindex={boot++}" : "")}"]);
        }
        foreach (NicSpec n in s.Nics)
        {
            a.AddRange(["-netdev", $"tap,id={n.Id},ifname={n.Tap},script=no,downscript=no{(n.Vhost ? ",vhost=on" : "")}"]);
            a.AddRange(["-device", $"virtio-net-pci,netdev={n.Id},mac={n.Mac}"]);
        }
        if (s.Incoming is not null) a.AddRange(["-incoming", s.Incoming]);
        if (s.LoadVm is not null) a.AddRange(["-loadvm", s.LoadVm]);
        return a;
    }

    /// <summary>QEMU option values escape a comma by doubling it.</summary>
    public static string Opt(string value) => value.Replace(",", ",,");
}
