using System.Text.Json;
using Vessel.Api;
using Vessel.Cli.Tests;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>VMs on a bridge network beside a container (docs/machines.md#networking): two VMs booted from Debian's
/// kernel with the generated initramfs take their addresses by DHCP from the daemon (exactly what IPAM reserved),
/// and the VMs and a busybox container reach each other by name through the network's DNS; the names keep working
/// after vesseld is killed and re-adopts the VMs; no tap is left behind.</summary>
public sealed class MachineNetworkTests
{
    private static string Kernel => InitramfsTests.Kernel() ?? throw new InvalidOperationException("no kernel in .cache/kernel: run scripts/setup.sh");

    private static string RepoRoot() => Path.GetFullPath(Path.Combine(Binaries.Dir, ".."));

    [Fact]
    public void Two_vms_and_a_container_reach_each_other_by_name()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        string net = "vmnet" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
        d.Ok("network", "create", net);

        // A busybox container image (Debian's busybox-static as the rootfs).
        string rootfs = Path.Combine(tmp.Path, "rootfs"), tar = Path.Combine(tmp.Path, "rootfs.tar");
        Binaries.Result r = Binaries.Run("bash", [Path.Combine(RepoRoot(), "tests", "fixtures", "busybox-rootfs.sh"), rootfs]);
        Assert.True(r.Code == 0, r.ToString());
        r = Binaries.Run("tar", ["-C", rootfs, "-cf", tar, "."]);
        Assert.True(r.Code == 0, r.ToString());
        d.Ok("image", "import", tar, "vmnet-bb:1");

        Binaries.Result bad = d.Vessel("vm", "create", "x", "--kernel", Kernel, "--network", "no-such-net");
        Assert.Equal(125, bad.Code);
        Assert.Contains("no-such-net", bad.Err);
        bad = d.Vessel("vm", "create", "x", "--kernel", Kernel, "--network", "host");
        Assert.Equal(125, bad.Code);

        foreach (string vm in new[] { "vm1", "vm2" })
            d.Ok("vm", "create", vm, "--kernel", Kernel, "--initramfs", "--memory", "192m", "--network", net);
        MachineNetworkInfo n1 = Assert.Single(d.Inspect("vm1").Networks!), n2 = Assert.Single(d.Inspect("vm2").Networks!);
        Assert.Equal(net, n1.Network);
        Assert.NotNull(n1.IpAddress);
        Assert.NotEqual(n1.IpAddress, n2.IpAddress);
        Assert.StartsWith("52:54:00:", n1.MacAddress);
        Assert.StartsWith("vsl", n1.Tap);
        d.Ok("vm", "start", "vm1");
        d.Ok("vm", "start", "vm2");
        d.Ok("run", "-d", "--name", "ctr", "--network", net, "vmnet-bb:1", "sh", "-c", "mkdir -p /www && echo ctr-page > /www/index.html && httpd -f -p 80 -h /www");

        // The udhcpc script prints the address it was given: the one IPAM reserved for the tap's MAC.
        d.WaitForLog("vm1", $"vessel-guest: eth0 {n1.IpAddress}");
        d.WaitForLog("vm2", $"vessel-guest: eth0 {n2.IpAddress}");
        Assert.Equal(n1.MacAddress, d.Inspect("vm1").Networks![0].MacAddress);
        string cmdline = string.Join(' ', d.Inspect("vm1").Command!);
        Assert.Contains($"tap,id=net0,ifname={n1.Tap},script=no,downscript=no", cmdline);
        Assert.Contains($"virtio-net-pci,netdev=net0,mac={n1.MacAddress}", cmdline);
        Assert.Contains(n1.Tap, Binaries.Run("ip", ["-o", "link", "show", "master", NetworkBridge(d, net)]).Out);

        foreach (string vm in new[] { "vm1", "vm2" })
            d.Shell(vm, $"mkdir -p /www && echo {vm}-page > /www/index.html && httpd -p 80 -h /www");
        string out1 = d.Shell("vm1", "ping -c1 -W5 vm2 && ping -c1 -W5 ctr && wget -q -O- http://vm2/ && wget -q -O- http://ctr/ && echo VM1-$((40+2))");
        Assert.Contains("vm2-page", out1);
        Assert.Contains("ctr-page", out1);
        Assert.Contains("VM1-42", out1);
        string out2 = d.Shell("vm2", "ping -c1 -W5 vm1 && wget -q -O- http://vm1/ && wget -q -O- http://ctr/ && echo VM2-$((40+3))");
        Assert.Contains("VM2-43", out2);
        r = d.Ok("exec", "ctr", "sh", "-c", "ping -c1 -W5 vm1 && ping -c1 -W5 vm2 && wget -q -O- http://vm1/ && wget -q -O- http://vm2/");
        Assert.Contains("vm1-page", r.Out);
        Assert.Contains("vm2-page", r.Out);

        // vesseld dies; QEMU and its tap stay; the next daemon serves the VMs' names again.
        d.Kill9();
        d.Start();
        d.WaitForStatus("vm1", MachineStatus.Running);
        r = d.Ok("exec", "ctr", "sh", "-c", "wget -q -O- http://vm1/ && wget -q -O- http://vm2/");
        Assert.Contains("vm1-page", r.Out);
        Assert.Contains("vm2-page", r.Out);

        d.Ok("vm", "kill", "vm2");
        Assert.DoesNotContain(n2.Tap, Binaries.Run("ip", ["-o", "link"]).Out);
        Assert.NotEqual(0, d.Vessel("exec", "ctr", "nslookup", "vm2").Code); // a stopped VM's name is not served
        // A tap leaving the bridge changes nothing for the others (the bridge's MAC is fixed, so ARP entries for the
        // gateway stay right): the container still resolves and reaches vm1.
        Assert.Contains("vm1-page", d.Ok("exec", "ctr", "wget", "-q", "-O-", "http://vm1/").Out);
        // Started again, vm2 gets the same address (reserved until rm) and its name back.
        d.Ok("vm", "start", "vm2");
        Assert.Contains(n2.IpAddress!, d.Ok("exec", "ctr", "nslookup", "vm2").Out);
        d.Ok("vm", "rm", "-f", "vm1", "vm2");
        d.Ok("rm", "-f", "ctr");
        string links = Binaries.Run("ip", ["-o", "link"]).Out;
        Assert.DoesNotContain(n1.Tap, links);
        d.Ok("network", "rm", net); // no endpoint left: the addresses went back to IPAM
    }

    private static string NetworkBridge(TestDaemon d, string net) =>
        JsonDocument.Parse(d.Ok("network", "inspect", net).Out).RootElement.EnumerateArray().First().GetProperty("bridge").GetString()!;
}
