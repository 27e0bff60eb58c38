using System.Diagnostics;
using System.Net;
using Vessel.Linux;
using Vessel.Network.Netlink;

namespace Vessel.Network.Tests;

/// <summary>rtnetlink against the real kernel (root): a bridge here, a veth whose other end is created inside the
/// network namespace of a process started with `unshare -n`, configured from a socket opened in that namespace.</summary>
public sealed class NetlinkTests
{
    private static string Tag() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));

    [Fact]
    public void BridgeVethAddressesAndRoutesInAnotherNamespace()
    {
        string br = "vt-b" + Tag(), veth = "vt-v" + Tag();
        using var sleeper = Process.Start(new ProcessStartInfo("unshare", ["-n", "sleep", "60"]))!;
        var driver = new BridgeDriver();
        try
        {
            WaitForOwnNetns(sleeper.Id);
            driver.EnsureBridge(br, IPAddress.Parse("10.231.7.1"), 24);
            driver.EnsureBridge(br, IPAddress.Parse("10.231.7.1"), 24); // idempotent
            using (var nl = RtNetlink.Open())
            {
                var link = nl.Link(br)!;
                Assert.Equal("bridge", link.Kind);
                Assert.True(link.Up);
                Assert.Contains(nl.Addresses(), a => a.Index == link.Index && a.Address.ToString() == "10.231.7.1" && a.Prefix == 24);
                Assert.Contains(nl.Routes(), r => r.Destination.ToString() == "10.231.7.0/24");
                Assert.Null(nl.Link("vt-none" + Tag()));
                var e = Assert.Throws<LinuxException>(() => nl.CreateBridge(br));
                Assert.Equal(Errno.EEXIST, e.ErrorNumber);
            }
            driver.Attach(sleeper.Id, br, new EndpointConfig(veth, "eth0", IPAddress.Parse("10.231.7.2"), 24, IPAddress.Parse("10.231.7.1"),
                Ipam.MacFor(IPAddress.Parse("10.231.7.2")), DefaultRoute: true));
            string addr = Sh($"nsenter -t {sleeper.Id} -n ip -o -4 addr show dev eth0");
            Assert.Contains("10.231.7.2/24", addr);
            Assert.Contains("default via 10.231.7.1 dev eth0", Sh($"nsenter -t {sleeper.Id} -n ip route"));
            Assert.Contains("02:42:0a:e7:07:02", Sh($"nsenter -t {sleeper.Id} -n ip -o link show dev eth0"));
            Assert.Contains("LOOPBACK,UP", Sh($"nsenter -t {sleeper.Id} -n ip -o link show dev lo"));
            using (var nl = RtNetlink.Open()) Assert.Equal(nl.Index(br), nl.Link(veth)!.Master);
            Assert.Contains("1 packets received", Sh($"nsenter -t {sleeper.Id} -n busybox ping -c1 -W2 10.231.7.1"));
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
            driver.DeleteLink(veth);
            driver.DeleteLink(br);
        }
        using var after = RtNetlink.Open();
        Assert.Null(after.Link(br));
        // The veth went with the namespace.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (after.Link(veth) is not null && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.Null(after.Link(veth));
    }

    [Fact]
    public void ErrorsCarryTheErrno()
    {
        using var nl = RtNetlink.Open();
        var e = Assert.Throws<LinuxException>(() => nl.SetUp(999_999));
        Assert.Equal(RtNetlink.ENODEV, e.ErrorNumber);
        Assert.False(nl.Delete("vt-none" + Tag()));
    }

    private static void WaitForOwnNetns(int pid)
    {
        string mine = File.ResolveLinkTarget("/proc/self/ns/net", false)!.ToString();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (File.ResolveLinkTarget($"/proc/{pid}/ns/net", false)?.ToString() is { } ns && ns != mine &&
                    File.ReadAllText($"/proc/{pid}/comm").Trim() == "sleep") return;
            }
            catch (IOException) { }
            Thread.Sleep(10);
        }
        throw new TimeoutException("unshare -n did not start");
    }

    private static string Sh(string command)
    {
        var psi = new ProcessStartInfo("sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return o;
    }
}
