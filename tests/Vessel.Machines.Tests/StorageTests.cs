using System.Text.Json;
using Vessel.Api;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>Memory + disk snapshots of a running VM (HMP savevm/loadvm) and disk snapshots of a stopped one
/// (qemu-img snapshot), checked from inside the guest: tmpfs content for memory, the first bytes of /dev/vda for disk.</summary>
public sealed class MachineSnapshotTests
{
    [Fact]
    public void Snapshot_and_restore_memory_and_disk()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        string kernel = InitramfsTests.Kernel()!;
        d.Ok("vm", "create", "snap", "--kernel", kernel, "--initramfs", "--memory", "256m", "--disk", "64m");
        d.Ok("vm", "start", "snap");
        d.WaitForBoot("snap", 1);
        d.Shell("snap", "echo AAAA > /tmp/m; printf DISK-A | dd of=/dev/vda conv=notrunc 2>/dev/null; sync");

        d.Ok("vm", "snapshot", "create", "snap", "s1");
        var list = d.Ok("vm", "snapshot", "ls", "--format", "json", "snap").OutLines.Select(l => JsonSerializer.Deserialize(l, MachineJson.Default.MachineSnapshotInfo)!).ToList();
        Assert.True(Assert.Single(list).Memory);
        d.Shell("snap", "echo BBBB > /tmp/m");
        d.Ok("vm", "snapshot", "restore", "snap", "s1");
        Assert.Contains("AAAA-restored", d.Shell("snap", "echo $(cat /tmp/m)-restored"));

        // Stopped: the disk alone.
        d.Ok("vm", "stop", "snap");
        d.Ok("vm", "snapshot", "create", "snap", "d1");
        Assert.Contains(d.Ok("vm", "snapshot", "ls", "--format", "json", "snap").OutLines, l => l.Contains("\"name\":\"d1\"") && l.Contains("\"memory\":false"));
        d.Ok("vm", "start", "snap");
        d.WaitForBoot("snap", 2);
        d.Shell("snap", "printf DISK-B | dd of=/dev/vda conv=notrunc 2>/dev/null; sync");
        Assert.Contains("DISK-B-now", d.Shell("snap", "echo $(head -c 6 /dev/vda)-now"));
        d.Ok("vm", "stop", "snap");
        d.Ok("vm", "snapshot", "restore", "snap", "d1");
        d.Ok("vm", "start", "snap");
        d.WaitForBoot("snap", 3);
        Assert.Contains("DISK-A-now", d.Shell("snap", "echo $(head -c 6 /dev/vda)-now"));

        d.Ok("vm", "snapshot", "rm", "snap", "s1");
        Assert.DoesNotContain(d.Ok("vm", "snapshot", "ls", "snap").OutLines, l => l.StartsWith("s1 ", StringComparison.Ordinal));
        Assert.Contains("no snapshot", d.Vessel("vm", "snapshot", "restore", "snap", "nope").Err);
        d.Ok("vm", "rm", "-f", "snap");
    }
}

/// <summary>Linked clones (a qcow2 overlay on a frozen base, whatever the size), resize, image import.</summary>
public sealed class MachineCloneTests
{
    [Fact]
    public void Linked_clone_boots_with_the_sources_disk_and_resize_grows_it()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        string kernel = InitramfsTests.Kernel()!;
        d.Ok("vm", "create", "base", "--kernel", kernel, "--initramfs", "--memory", "256m", "--disk", "64m");
        d.Ok("vm", "start", "base");
        d.WaitForBoot("base", 1);
        d.Shell("base", "printf DISK-C | dd of=/dev/vda conv=notrunc 2>/dev/null; sync");
        Assert.Contains("is running", d.Vessel("vm", "clone", "base", "copy").Err);
        d.Ok("vm", "stop", "base");
        d.Ok("vm", "clone", "base", "copy");
        MachineInspect copy = d.Inspect("copy");
        MachineDiskInfo disk = Assert.Single(copy.Disks);
        Assert.StartsWith("../pool/", disk.Backing);
        Assert.StartsWith("../pool/", Assert.Single(d.Inspect("base").Disks).Backing);
        Assert.Equal(64L << 20, disk.Size);

        // Resize while stopped (qemu-img), then while running (QMP block_resize): the guest sees it.
        d.Ok("vm", "resize-disk", "copy", "96m");
        Assert.Equal(96L << 20, Assert.Single(d.Inspect("copy").Disks).Size);
        Assert.Contains("lose data", d.Vessel("vm", "resize-disk", "copy", "32m").Err);
        d.Ok("vm", "rm", "base"); // the clone's base lives in the pool, not in the source's directory
        d.Ok("vm", "start", "copy");
        d.WaitForBoot("copy", 1);
        Assert.Contains("DISK-C-clone", d.Shell("copy", "echo $(head -c 6 /dev/vda)-clone"));
        Assert.Contains("vessel-guest-copy", d.Shell("copy", "echo vessel-guest-$(hostname)"));
        d.Ok("vm", "resize-disk", "copy", "128m");
        Assert.Contains("sectors-262144", d.Shell("copy", "echo sectors-$(cat /sys/block/vda/size)"));
        d.Ok("vm", "rm", "-f", "copy");
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(d.Root, "machines", "pool"))); // no disk depends on the base any more
    }

    [Fact]
    public void Images_are_imported_into_the_pool_and_vmdk_is_converted()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        string raw = Path.Combine(tmp.Path, "img.raw"), vmdk = Path.Combine(tmp.Path, "img.vmdk");
        Vessel.Machines.Tools.Run(Vessel.Machines.Tools.QemuImg, ["create", "-q", "-f", "raw", raw, "16M"]);
        Vessel.Machines.Tools.Run(Vessel.Machines.Tools.QemuImg, ["convert", "-q", "-O", "vmdk", raw, vmdk]);
        d.Ok("vm", "create", "fromvmdk", vmdk, "--disk", "32m");
        d.Ok("vm", "create", "fromraw", raw);
        d.Ok("vm", "create", "fromraw2", raw);
        MachineDiskInfo a = Assert.Single(d.Inspect("fromvmdk").Disks), b = Assert.Single(d.Inspect("fromraw").Disks), c = Assert.Single(d.Inspect("fromraw2").Disks);
        Assert.EndsWith(".qcow2", a.Backing);
        Assert.Equal(32L << 20, a.Size);
        Assert.EndsWith(".raw", b.Backing);
        Assert.Equal(b.Backing, c.Backing); // one import, shared
        Assert.Equal(16L << 20, b.Size);
        string pool = Path.Combine(d.Root, "machines", "pool");
        d.Ok("vm", "rm", "fromraw");
        Assert.True(File.Exists(Path.Combine(pool, Path.GetFileName(c.Backing!))), "a base still in use was collected");
        foreach (string n in new[] { "fromvmdk", "fromraw2" }) d.Ok("vm", "rm", n);
        Assert.Empty(Directory.EnumerateFiles(pool));
    }
}
