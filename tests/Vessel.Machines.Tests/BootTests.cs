using System.Diagnostics;
using System.Text;
using Vessel.Machines.Boot;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

public sealed class CpioWriterTests
{
    [Fact]
    public void Cpio_lists_what_was_written_and_extracts_the_same_bytes()
    {
        using var tmp = new TempDir();
        string archive = Path.Combine(tmp.Path, "a.cpio");
        byte[] odd = Encoding.UTF8.GetBytes("three"); // lengths that need padding
        using (var f = File.Create(archive))
        using (var w = new CpioWriter(f))
        {
            w.Directory("bin");
            w.File("bin/tool", "#!/bin/sh\necho hi\n"u8, 0x1ed);
            w.File("odd", odd);
            w.File("empty", []);
            w.Symlink("bin/sh", "tool");
            w.Directory("deep");
            w.Directory("deep/er");
            w.File("deep/er/name-with-a-longer-file-name.txt", Encoding.UTF8.GetBytes(new string('x', 1001)));
        }
        Assert.Equal(0, new FileInfo(archive).Length % 512);
        string list = Run("cpio", $"-t -F {archive}", tmp.Path);
        Assert.Equal(["bin", "bin/tool", "odd", "empty", "bin/sh", "deep", "deep/er", "deep/er/name-with-a-longer-file-name.txt"],
            list.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        string verbose = Run("cpio", $"-tv -F {archive}", tmp.Path);
        Assert.Contains("-rwxr-xr-x", verbose.Split('\n').Single(l => l.EndsWith("bin/tool", StringComparison.Ordinal)));
        Assert.StartsWith("l", verbose.Split('\n').Single(l => l.Contains("bin/sh -> tool", StringComparison.Ordinal)));
        string outDir = Path.Combine(tmp.Path, "out");
        Directory.CreateDirectory(outDir);
        Run("cpio", $"-id --quiet -F {archive}", outDir);
        Assert.Equal(odd, File.ReadAllBytes(Path.Combine(outDir, "odd")));
        Assert.Equal(1001, new FileInfo(Path.Combine(outDir, "deep/er/name-with-a-longer-file-name.txt")).Length);
        Assert.Equal("tool", new FileInfo(Path.Combine(outDir, "bin/sh")).LinkTarget);
    }

    [Fact]
    public void Bad_or_duplicate_names_are_refused()
    {
        using var w = new CpioWriter(new MemoryStream());
        w.File("a", []);
        Assert.Throws<ArgumentException>(() => w.File("a", []));
        Assert.Throws<ArgumentException>(() => w.File("../x", []));
    }

    internal static string Run(string file, string args, string cwd)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = cwd };
        using Process p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd(), e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args}: {e}");
        return o;
    }
}

public sealed class InitramfsTests
{
    /// <summary>Debian's kernel as scripts/setup.sh unpacks it into .cache/kernel.</summary>
    internal static string? Kernel()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string boot = Path.Combine(dir.FullName, ".cache", "kernel", "boot");
            if (File.Exists(Path.Combine(dir.FullName, "Vessel.slnx")) && Directory.Exists(boot))
                return Directory.EnumerateFiles(boot, "vmlinuz-*").FirstOrDefault();
        }
        return null;
    }

    [Fact]
    public void Virtio_modules_come_with_their_dependencies_first()
    {
        string kernel = Kernel() ?? throw new InvalidOperationException("no kernel in .cache/kernel: run scripts/setup.sh (or copy /work/main/.cache/kernel)");
        string modules = Initramfs.ModulesFor(kernel) ?? throw new InvalidOperationException($"no modules beside {kernel}");
        var order = Initramfs.ResolveModules(modules, ["virtio_net", "virtio_blk", "virtio_pci"]).Select(m => m.Name).ToList();
        foreach (string m in new[] { "virtio", "virtio_ring", "virtio_pci", "virtio_blk", "virtio_net", "net_failover", "failover" }) Assert.Contains(m, order);
        Assert.True(order.IndexOf("virtio_ring") < order.IndexOf("virtio_net"));
        Assert.True(order.IndexOf("failover") < order.IndexOf("net_failover"));
        Assert.True(order.IndexOf("net_failover") < order.IndexOf("virtio_net"));
        Assert.True(order.IndexOf("virtio") < order.IndexOf("virtio_pci"));
        Assert.Equal(order.Count, order.Distinct().Count());
    }

    [Fact]
    public void The_initramfs_holds_busybox_init_and_the_modules()
    {
        string kernel = Kernel() ?? throw new InvalidOperationException("no kernel in .cache/kernel");
        using var tmp = new TempDir();
        string cpio = Path.Combine(tmp.Path, "i.cpio");
        using (var f = File.Create(cpio)) Initramfs.WriteCpio(f, new InitramfsOptions { ModulesDir = Initramfs.ModulesFor(kernel) });
        var names = CpioWriterTests.Run("cpio", $"-t -F {cpio}", tmp.Path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (string n in new[] { "init", "bin/busybox", "dev/console", "etc/modules", "lib/modules/virtio_blk.ko", "lib/modules/virtio_net.ko", "etc/acpi/PWRF/00000080" })
            Assert.Contains(n, names);
        string gz = Path.Combine(tmp.Path, "i.gz");
        Initramfs.Write(gz, new InitramfsOptions { ModulesDir = Initramfs.ModulesFor(kernel) });
        Assert.Equal([0x1f, 0x8b], File.ReadAllBytes(gz)[..2]);
    }

    [Fact]
    public void A_missing_busybox_is_named()
    {
        var e = Assert.Throws<MachineException>(() => Initramfs.WriteCpio(new MemoryStream(), new InitramfsOptions { Busybox = "/nonexistent/busybox" }));
        Assert.Contains("busybox-static", e.Message);
    }
}

public sealed class MachinePartsTests
{
    [Fact]
    public void Accelerator_override_and_probe()
    {
        Assert.Equal("tcg", AccelProbe.Choose("tcg").Accel);
        Assert.Throws<MachineException>(() => AccelProbe.Choose("hvf"));
        AccelChoice probed = AccelProbe.Choose("auto");
        Assert.Contains(probed.Accel, new[] { "kvm", "tcg" });
        Assert.NotEmpty(probed.Reason);
        Assert.Equal("tcg", AccelProbe.Probe("/nonexistent/kvm").Accel);
    }

    [Fact]
    public void Qemu_command_line_has_qmp_console_log_and_escaped_paths()
    {
        var spec = new MachineSpec
        {
            Name = "vm1", Accel = "tcg", Kernel = "/k", Initrd = "/i", Append = "console=ttyS0",
            Disks = [new DiskSpec("disk0", "/a,b/disk.qcow2", "qcow2", "none")],
            QmpSocket = "/run/q.sock", ConsoleSocket = "/run/c.sock", PidFile = "/run/p", ConsoleLog = "/var/log",
        };
        string line = string.Join(' ', QemuCommand.Build(spec));
        Assert.Contains("-accel tcg", line);
        Assert.Contains("-mon chardev=qmp,mode=control", line);
        Assert.Contains("socket,id=console,path=/run/c.sock,server=on,wait=off,logfile=/var/log,logappend=on", line);
        Assert.Contains("file=/a,,b/disk.qcow2,if=none,id=disk0,format=qcow2,cache=none", line);
        Assert.Throws<MachineException>(() => QemuCommand.Build(spec with { Disks = [new DiskSpec("d", "/x", "raw", "fast")] }));
    }

    [Fact]
    public void Cloud_init_user_data_gets_the_ssh_keys()
    {
        string ud = CloudInit.UserData(null, ["ssh-ed25519 AAAA me@host\n"]);
        Assert.Equal("#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA me@host\n", ud);
        Assert.Equal("#!/bin/sh\necho hi\n", CloudInit.UserData("#!/bin/sh\necho hi\n", []));
        Assert.Throws<MachineException>(() => CloudInit.UserData("#!/bin/sh\n", ["ssh-rsa X"]));
    }

    [Fact]
    public void Cloud_init_seed_is_an_iso_labelled_cidata()
    {
        using var tmp = new TempDir();
        string iso = Path.Combine(tmp.Path, "seed.iso");
        CloudInit.WriteSeed(iso, "vm1", "id-1", "#cloud-config\n", []);
        byte[] pvd = File.ReadAllBytes(iso).AsSpan(16 * 2048, 2048).ToArray(); // the primary volume descriptor
        Assert.Equal("CD001", Encoding.ASCII.GetString(pvd, 1, 5));
        Assert.Equal("cidata", Encoding.ASCII.GetString(pvd, 40, 32).Trim());
    }
}
