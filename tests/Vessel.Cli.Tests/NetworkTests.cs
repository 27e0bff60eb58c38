using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vessel.Api;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>A daemon with its own bridge, subnet and nftables table (DaemonFixture), and an image "net:1": busybox
/// plus a static UDP echo server (tests/fixtures/udp-echo.c).</summary>
public sealed class NetworkFixture : IDisposable
{
    public DaemonFixture D { get; } = new();
    public const string Image = "net:1";

    public NetworkFixture()
    {
        string layout = BusyboxFixture.WriteLayout(D.Tmp.Sub("net"), rootfs =>
            BusyboxFixture.Exec("gcc", "-static", "-O2", "-o", Path.Combine(rootfs, "bin", "udp-echo"),
                Path.Combine(BusyboxFixture.RepoRoot(), "tests", "fixtures", "udp-echo.c")));
        var r = D.Vessel("image", "import-layout", layout, Image);
        if (r.Code != 0) throw new InvalidOperationException(r.ToString());
    }

    /// <summary>A subnet no other test daemon is likely to use at the same time.</summary>
    public static string Subnet() => $"10.{RandomNumberGenerator.GetInt32(160, 250)}.{RandomNumberGenerator.GetInt32(0, 256)}.0/24";

    public void Dispose()
    {
        try
        {
            var ids = D.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) D.Vessel(["rm", "-f", .. ids]);
            D.Vessel("network", "prune", "-f");
        }
        finally { D.Dispose(); }
    }
}

/// <summary>Real traffic between namespaces on this machine: names and aliases through the network's DNS server,
/// published ports from the host (TCP and UDP, 127.0.0.1 and the host's own address), isolation, --internal,
/// IPAM across a daemon restart, and nothing left behind.</summary>
public sealed class NetworkTests(NetworkFixture f) : IClassFixture<NetworkFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = NetworkFixture.Image;

    private string Net(bool isInternal = false)
    {
        string name = "n" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        Ok(D.Vessel(["network", "create", "--subnet", NetworkFixture.Subnet(), .. isInternal ? new[] { "--internal" } : [], name]));
        return name;
    }

    private NetworkInfo Inspect(string net) =>
        JsonSerializer.Deserialize(D.Vessel("network", "inspect", net).Out, NetworkJson.Default.ListNetworkInfo)![0];

    private ContainerInspect InspectContainer(string c) =>
        JsonDocument.Parse(D.Vessel("inspect", c).Out).RootElement[0].Deserialize(ContainerJson.Default.ContainerInspect)!;

    [Fact]
    public void ContainersReachEachOtherByNameAndAliasOnAUserNetwork()
    {
        string net = Net();
        Ok(D.Vessel("run", "-d", "--name", "srv-" + net, "--network", net, "--network-alias", "web." + net, Image,
            "sh", "-c", "mkdir -p /www && echo served-by-srv > /www/index.html && exec httpd -f -p 80 -h /www"));
        var gw = Inspect(net).Gateway;
        var r = D.Vessel("run", "--rm", "--network", net, Image, "sh", "-c",
            $"cat /etc/resolv.conf; nslookup srv-{net}; ping -c1 -W3 web.{net} && wget -q -O- http://web.{net}/ && wget -q -O- http://srv-{net}/");
        Ok(r);
        Assert.Contains($"nameserver {gw}", r.Out);
        string ip = InspectContainer("srv-" + net).NetworkSettings!.Networks[0].IpAddress;
        Assert.Contains($"Address: {ip}", r.Out);
        Assert.Contains("1 packets received", r.Out);
        Assert.Equal(2, r.Out.Split("served-by-srv").Length - 1);
        // Names of other networks are not answered here; the container's own /etc/hosts knows itself.
        var hosts = D.Vessel("exec", "srv-" + net, "cat", "/etc/hosts").Out;
        Assert.Contains($"{ip}\t", hosts);
        Assert.Contains($"srv-{net} web.{net}", hosts);
        Ok(D.Vessel("rm", "-f", "srv-" + net));
        Ok(D.Vessel("network", "rm", net));
    }

    [Fact]
    public void PublishedPortsAreReachableFromTheHostOverTcpAndUdp()
    {
        int tcp = FreePort(SocketType.Stream), tcpLo = FreePort(SocketType.Stream), udp = FreePort(SocketType.Dgram);
        string name = "pub-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        Ok(D.Vessel("run", "-d", "--name", name, "-p", $"{tcp}:80", "-p", $"127.0.0.1:{tcpLo}:80", "-p", "80", "-p", $"{udp}:9000/udp", Image,
            "sh", "-c", "mkdir -p /www && echo published > /www/index.html && (udp-echo 9000 &) && exec httpd -f -p 80 -h /www"));
        try
        {
            var ports = InspectContainer(name).NetworkSettings!.Ports;
            Assert.Contains(ports, p => p is { HostIp: "0.0.0.0", ContainerPort: 80, Proto: "tcp" } && p.HostPort == tcp);
            Assert.Contains(ports, p => p is { HostIp: "127.0.0.1", ContainerPort: 80 } && p.HostPort == tcpLo);
            int random = ports.Single(p => p.ContainerPort == 80 && p.HostPort != tcp && p.HostPort != tcpLo).HostPort;
            Assert.Contains(ports, p => p is { Proto: "udp", ContainerPort: 9000 } && p.HostPort == udp);
            Assert.Contains($"0.0.0.0:{tcp}->80/tcp", D.Vessel("ps").Out);

            string hostIp = HostAddress();
            foreach (string url in new[] { $"http://127.0.0.1:{tcp}/", $"http://{hostIp}:{tcp}/", $"http://127.0.0.1:{tcpLo}/", $"http://127.0.0.1:{random}/" })
                Assert.Equal("published\n", Curl(url));

            using var client = new UdpClient();
            client.Client.ReceiveTimeout = 2000;
            string? echoed = null;
            for (int i = 0; i < 20 && echoed is null; i++) // the echo server may still be starting
            {
                client.Send(Encoding.ASCII.GetBytes("hi"), new IPEndPoint(IPAddress.Loopback, udp));
                try { IPEndPoint? from = null; echoed = Encoding.ASCII.GetString(client.Receive(ref from)); }
                catch (SocketException) { }
            }
            Assert.Equal("echo:hi", echoed);

            // A host port that is taken is a clear error before the container starts.
            using var taken = new TcpListener(IPAddress.Any, 0);
            taken.Start();
            int busy = ((IPEndPoint)taken.LocalEndpoint).Port;
            var r = D.Vessel("run", "-d", "--name", name + "-busy", "-p", $"{busy}:80", Image, "true");
            Assert.Equal(125, r.Code);
            Assert.Contains("port is already allocated", r.Err);
            Assert.Single(r.ErrLines);
            Assert.Equal("created", InspectContainer(name + "-busy").State.Status); // as docker: it never ran
            Ok(D.Vessel("rm", name + "-busy"));
        }
        finally { D.Vessel("rm", "-f", name); }
        // The mapping is gone with the container: nothing answers there any more, and the port is free again.
        using var again = new TcpListener(IPAddress.Any, tcp);
        again.Start();
    }

    [Fact]
    public void NetworksAreIsolatedAndInternalNetworksHaveNoWayOut()
    {
        string a = Net(), b = Net(), i = Net(isInternal: true);
        Ok(D.Vessel("run", "-d", "--name", "iso-" + a, "--network", a, Image, "sleep", "300"));
        try
        {
            string ipA = InspectContainer("iso-" + a).NetworkSettings!.Networks[0].IpAddress;
            // Same network: reachable. Another network: not (neither by address nor by name).
            Ok(D.Vessel("run", "--rm", "--network", a, Image, "ping", "-c1", "-W2", ipA));
            var r = D.Vessel("run", "--rm", "--network", b, Image, "sh", "-c", $"ping -c1 -W2 {ipA} || echo unreachable; nslookup iso-{a} || echo unknown");
            Assert.Contains("unreachable", r.Out);
            Assert.Contains("unknown", r.Out);
            // Internal: no default route, no way to the host's address or other networks, no forwarding of names.
            string hostIp = HostAddress();
            r = D.Vessel("run", "--rm", "--network", i, Image, "sh", "-c",
                $"ip route; ping -c1 -W2 {hostIp} || echo no-host; ip route add default via {Inspect(i).Gateway}; ping -c1 -W2 {hostIp} || echo still-no-host; ping -c1 -W2 {ipA} || echo no-other; nslookup deb.debian.org || echo no-dns");
            Assert.DoesNotContain("default", r.Out.Split('\n')[0]);
            Assert.Contains("no-host", r.Out);
            Assert.Contains("still-no-host", r.Out);
            Assert.Contains("no-other", r.Out);
            Assert.Contains("no-dns", r.Out);
        }
        finally { D.Vessel("rm", "-f", "iso-" + a); }
        Ok(D.Vessel("network", "rm", a, b, i));
    }

    [Fact]
    public void AddressesSurviveADaemonRestartAndTeardownLeavesNothing()
    {
        string net = Net();
        var info = Inspect(net);
        string c1 = "ipam1-" + net, c2 = "ipam2-" + net, c3 = "ipam3-" + net;
        Ok(D.Vessel("run", "-d", "--name", c1, "--network", net, Image, "sleep", "300"));
        Ok(D.Vessel("create", "--name", c2, "--network", net, "--ip", Prefix(info.Subnet) + ".77", Image, "sleep", "300"));
        string ip1 = InspectContainer(c1).NetworkSettings!.Networks[0].IpAddress;
        Assert.Equal(Prefix(info.Subnet) + ".2", ip1);
        var dup = D.Vessel("create", "--network", net, "--ip", Prefix(info.Subnet) + ".77", Image, "true");
        Assert.Equal(125, dup.Code);
        Assert.Contains("already in use", dup.Err);

        var d2 = Restart();
        try
        {
            // After the restart: c1 still runs and is still known by name; new addresses skip the ones in use.
            Ok(D.Vessel("run", "-d", "--name", c3, "--network", net, Image, "sleep", "300"));
            Assert.Equal(Prefix(info.Subnet) + ".3", InspectContainer(c3).NetworkSettings!.Networks[0].IpAddress);
            var r = D.Vessel("exec", c3, "ping", "-c1", "-W3", c1);
            Assert.True(r.Code == 0, r.ToString());
            Ok(D.Vessel("start", c2));
            Assert.Equal(Prefix(info.Subnet) + ".77", InspectContainer(c2).NetworkSettings!.Networks[0].IpAddress);
            var rm = D.Vessel("network", "rm", net);
            Assert.Equal(125, rm.Code);
            Assert.Contains("active endpoints", rm.Err);
            Ok(D.Vessel("rm", "-f", c1, c2, c3));
            Ok(D.Vessel("network", "rm", net));
            Assert.DoesNotContain(info.Bridge, Sh("ip -o link show"));
            Assert.DoesNotContain(Prefix(info.Subnet) + ".", Sh("ip -o addr show") + Sh("ip route"));
            Assert.DoesNotContain(Prefix(info.Subnet) + ".", Sh($"nft list table inet {D.NftTable} 2>/dev/null"));
            // No veth of this daemon's containers is left on its default bridge either.
            Assert.DoesNotContain($"master {D.Bridge}", Sh("ip -o link show type veth"));
        }
        finally
        {
            var ids = D.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) D.Vessel(["rm", "-f", .. ids]);
        }
    }

    [Fact]
    public void ConnectAndDisconnectUpdateHostsAndNamesOfARunningContainerAtOnce()
    {
        string a = Net(), b = Net();
        string c = "conn-" + a, peer = "peer-" + b;
        Ok(D.Vessel("run", "-d", "--name", c, "--network", a, Image, "sleep", "300"));
        Ok(D.Vessel("run", "-d", "--name", peer, "--network", b, Image, "sleep", "300"));
        try
        {
            string ipA = InspectContainer(c).NetworkSettings!.Networks.Single().IpAddress;
            Assert.NotEqual(0, D.Vessel("exec", peer, "nslookup", c).Code);
            Ok(D.Vessel("network", "connect", "--alias", "db-" + b, b, c));
            string ipB = InspectContainer(c).NetworkSettings!.Networks.Single(n => n.Network == b).IpAddress;
            // The running container's /etc/hosts gained the new address (its first line stays), as docker's does.
            var hosts = D.Vessel("exec", c, "cat", "/etc/hosts").Out.Split('\n');
            Assert.EndsWith($" {c}", hosts.Single(l => l.StartsWith(ipA + "\t", StringComparison.Ordinal)));
            Assert.EndsWith($" {c} db-{b}", hosts.Single(l => l.StartsWith(ipB + "\t", StringComparison.Ordinal)));
            // b's DNS server answers the new member's name and alias at once, and the traffic flows.
            var r = D.Vessel("exec", peer, "sh", "-c", $"nslookup {c} && nslookup db-{b} && ping -c1 -W3 {c}");
            Ok(r);
            Assert.Equal(2, r.Out.Split($"Address: {ipB}").Length - 1);
            // Removing a network in use: one clear line.
            var rm = D.Vessel("network", "rm", b);
            Assert.Equal(125, rm.Code);
            Assert.Contains($"network {b} has active endpoints (", Assert.Single(rm.ErrLines));

            Ok(D.Vessel("network", "disconnect", b, c));
            hosts = D.Vessel("exec", c, "cat", "/etc/hosts").Out.Split('\n');
            Assert.DoesNotContain(hosts, l => l.StartsWith(ipB + "\t", StringComparison.Ordinal));
            Assert.Single(hosts, l => l.StartsWith(ipA + "\t", StringComparison.Ordinal));
            Assert.NotEqual(0, D.Vessel("exec", peer, "nslookup", "db-" + b).Code);
        }
        finally { D.Vessel("rm", "-f", c, peer); }
        Ok(D.Vessel("network", "rm", a, b));
    }

    [Fact]
    public void AfterAKill9TheNextDaemonServesNamesAndPortsAgainAndCleansWhatDiedMeanwhile()
    {
        string net = Net();
        var info = Inspect(net);
        string keep = "crash1-" + net, gone = "crash2-" + net, stray = "vt-s" + net[1..];
        int port = FreePort(SocketType.Stream), port2 = FreePort(SocketType.Stream);
        const string Httpd = "mkdir -p /www && echo alive > /www/index.html && exec httpd -f -p 80 -h /www";
        Ok(D.Vessel("run", "-d", "--name", keep, "--network", net, "-p", $"{port}:80", Image, "sh", "-c", Httpd));
        Ok(D.Vessel("run", "-d", "--name", gone, "--network", net, "-p", $"{port2}:80", Image, "sh", "-c", Httpd));
        try
        {
            Assert.Equal("alive\n", Curl($"http://127.0.0.1:{port}/"));
            int gonePid = InspectContainer(gone).State.Pid;
            Restart(crash: true, whileDown: () =>
            {
                // While no daemon runs: one container dies, and a veth nobody owns shows up on the network's bridge
                // (what a crash between creating a veth and recording it would leave).
                Binaries.Run("kill", ["-9", gonePid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                Ok(Binaries.Run("ip", ["link", "add", stray, "type", "veth", "peer", "name", stray + "p"]));
                Ok(Binaries.Run("ip", ["link", "set", stray, "master", info.Bridge]));
            });
            // The survivor is re-adopted: its port still answers, its name is served by a new DNS server.
            Assert.Equal("alive\n", Curl($"http://127.0.0.1:{port}/"));
            string ip = InspectContainer(keep).NetworkSettings!.Networks[0].IpAddress;
            var r = D.Vessel("run", "--rm", "--network", net, Image, "nslookup", keep);
            Ok(r);
            Assert.Contains($"Address: {ip}", r.Out);
            // The dead one: exited, its port unmapped and free again; the stray veth removed.
            Assert.NotEqual("running", InspectContainer(gone).State.Status);
            Assert.DoesNotContain($"dport {port2} ", Sh($"nft list table inet {D.NftTable}"));
            using (var free = new TcpListener(IPAddress.Any, port2)) free.Start();
            Assert.NotEqual(0, Binaries.Run("ip", ["link", "show", stray]).Code);
        }
        finally
        {
            D.Vessel("rm", "-f", keep, gone);
            Binaries.Run("ip", ["link", "del", stray]);
        }
        Ok(D.Vessel("network", "rm", net));
    }

    /// <summary>Stops the fixture's daemon (SIGTERM, or SIGKILL with <paramref name="crash"/>), runs
    /// <paramref name="whileDown"/>, and starts it again on the same state (the fixture then owns it).</summary>
    private System.Diagnostics.Process Restart(bool crash = false, Action? whileDown = null)
    {
        if (crash) D.Process.Kill();
        else Binaries.Stop(D.Process.Id);
        D.Process.WaitForExit(10_000);
        whileDown?.Invoke();
        var psi = new System.Diagnostics.ProcessStartInfo(Binaries.Vesseld) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in D.Args) psi.ArgumentList.Add(a);
        var p = System.Diagnostics.Process.Start(psi)!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        D.Replace(p);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!Binaries.Answers(D.Socket) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        return p;
    }

    private static string Prefix(string subnet) => string.Join('.', subnet.Split('/')[0].Split('.').Take(3));

    private static string Curl(string url)
    {
        var r = Binaries.Run("curl", ["-sS", "--max-time", "5", "--retry", "5", "--retry-connrefused", "--retry-delay", "0", url]);
        Assert.True(r.Code == 0, $"{url}: {r}");
        return r.Out;
    }

    private static string Sh(string command) => Binaries.Run("sh", ["-c", command]).Out;

    private static int FreePort(SocketType type)
    {
        using var s = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Any, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>The host's own address on its uplink (not loopback, not a bridge of ours).</summary>
    private static string HostAddress() => NetworkInterface.GetAllNetworkInterfaces()
        .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback
            && !n.Name.StartsWith("vt-", StringComparison.Ordinal) && !n.Name.StartsWith("vsl", StringComparison.Ordinal) && !n.Name.StartsWith("vessel", StringComparison.Ordinal)
            && !n.Name.StartsWith("veth", StringComparison.Ordinal) && !n.Name.StartsWith("docker", StringComparison.Ordinal) && !n.Name.StartsWith("podman", StringComparison.Ordinal))
        .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
        .First(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)).ToString();
}
