using System.Net;
using Vessel.Network.Dns;
using Vessel.Network.Nat;

namespace Vessel.Network.Tests;

public sealed class CidrAndIpamTests
{
    [Fact]
    public void CidrNormalisesAndContains()
    {
        var c = Cidr.Parse("10.88.3.7/16");
        Assert.Equal("10.88.0.0/16", c.ToString());
        Assert.True(c.Contains(IPAddress.Parse("10.88.255.254")));
        Assert.False(c.Contains(IPAddress.Parse("10.89.0.1")));
        Assert.Equal("10.88.255.255", c.Broadcast.ToString());
        Assert.True(c.Overlaps(Cidr.Parse("10.88.5.0/24")));
        Assert.False(c.Overlaps(Cidr.Parse("10.89.0.0/24")));
        Assert.False(Cidr.TryParse("10.1/8", out _));
        Assert.False(Cidr.TryParse("10.0.0.0/33", out _));
        Assert.False(Cidr.TryParse("::1/64", out _));
    }

    [Fact]
    public void ChooseSubnetSkipsTheHostsRoutesButNotTheDefaultRoute()
    {
        var taken = new[] { Cidr.Parse("0.0.0.0/0"), Cidr.Parse("172.17.0.0/16"), Cidr.Parse("172.18.5.0/24"), Cidr.Parse("192.0.2.0/24") };
        Assert.Equal("172.19.0.0/16", Ipam.ChooseSubnet(taken).ToString());
        Assert.Throws<InvalidOperationException>(() => Ipam.ChooseSubnet([Cidr.Parse("172.16.0.0/12"), Cidr.Parse("192.168.0.0/16")]));
    }

    [Fact]
    public void AllocateNeverGivesTheGatewayNetworkBroadcastOrAnAddressInUse()
    {
        var net = Cidr.Parse("10.5.0.0/29"); // .1 gateway, .2-.6 usable, .7 broadcast
        var gw = Ipam.DefaultGateway(net);
        Assert.Equal("10.5.0.1", gw.ToString());
        var used = new HashSet<uint>();
        var got = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var a = Ipam.Allocate(net, gw, used);
            used.Add(Cidr.ToUInt(a));
            got.Add(a.ToString());
        }
        Assert.Equal(["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"], got);
        Assert.Throws<InvalidOperationException>(() => Ipam.Allocate(net, gw, used));
        used.Remove(Cidr.ToUInt(IPAddress.Parse("10.5.0.4")));
        Assert.Equal("10.5.0.4", Ipam.Allocate(net, gw, used).ToString());
    }

    [Fact]
    public void AllocateHonoursARequestedAddressAndRefusesBadOnes()
    {
        var net = Cidr.Parse("10.5.0.0/24");
        var gw = IPAddress.Parse("10.5.0.1");
        var used = new HashSet<uint> { Cidr.ToUInt(IPAddress.Parse("10.5.0.9")) };
        Assert.Equal("10.5.0.50", Ipam.Allocate(net, gw, used, IPAddress.Parse("10.5.0.50")).ToString());
        Assert.Throws<InvalidOperationException>(() => Ipam.Allocate(net, gw, used, IPAddress.Parse("10.5.0.9")));
        Assert.Throws<ArgumentException>(() => Ipam.Allocate(net, gw, used, IPAddress.Parse("10.6.0.9")));
        Assert.Throws<ArgumentException>(() => Ipam.Allocate(net, gw, used, IPAddress.Parse("10.5.0.1")));
        Assert.Throws<ArgumentException>(() => Ipam.Allocate(net, gw, used, IPAddress.Parse("10.5.0.255")));
    }

    [Fact]
    public void MacsAreDerivedFromAddresses()
    {
        Assert.Equal("02:42:ac:11:00:02", Ipam.MacString(Ipam.MacFor(IPAddress.Parse("172.17.0.2"))));
        Assert.Equal([0x02, 0x42, 0xac, 0x11, 0, 2], Ipam.ParseMac("02:42:ac:11:00:02"));
        Assert.Throws<FormatException>(() => Ipam.ParseMac("01:00:5e:00:00:01"));
    }
}

public sealed class PortSpecTests
{
    [Theory]
    [InlineData("80", "", 0, 0, 80, "tcp")]
    [InlineData("8080:80", "", 8080, 8080, 80, "tcp")]
    [InlineData("127.0.0.1:8080:80/udp", "127.0.0.1", 8080, 8080, 80, "udp")]
    [InlineData("127.0.0.1::80", "127.0.0.1", 0, 0, 80, "tcp")]
    [InlineData("0.0.0.0:53:53/UDP", "", 53, 53, 53, "udp")]
    [InlineData("9000-9010:80", "", 9000, 9010, 80, "tcp")]
    public void SinglePorts(string spec, string ip, int first, int last, int container, string proto)
    {
        var p = Assert.Single(PortSpec.Parse(spec));
        Assert.Equal(new PortRequest(ip, first, last, container, proto), p);
    }

    [Fact]
    public void RangesArePairedOneToOne()
    {
        var ps = PortSpec.Parse("8000-8002:80-82/udp");
        Assert.Equal([(8000, 80), (8001, 81), (8002, 82)], ps.Select(p => (p.HostPortFirst, p.ContainerPort)));
        Assert.All(ps, p => Assert.Equal("udp", p.Proto));
        Assert.Equal(3, PortSpec.Parse("80-82").Count);
        Assert.Equal([(0, 443)], PortSpec.Exposed("443/tcp").Select(p => (p.HostPortFirst, p.ContainerPort)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("70000")]
    [InlineData("80/sctp")]
    [InlineData("80/icmp")]
    [InlineData("a:80")]
    [InlineData("300.1.1.1:80:80")]
    [InlineData("[::1]:80:80")]
    [InlineData("8000-8001:80-83")]
    [InlineData("90-80")]
    [InlineData("1:2:3:4")]
    public void BadSpecsAreOneClearError(string spec)
    {
        var e = Assert.Throws<FormatException>(() => PortSpec.Parse(spec));
        Assert.StartsWith("invalid port specification", e.Message);
    }
}

public sealed class DnsMessageTests
{
    [Fact]
    public void AQueryIsParsedAndAnsweredWithARecords()
    {
        byte[] q = DnsMessage.Query(0x1234, "Web.Example.");
        var parsed = DnsMessage.ParseQuery(q);
        Assert.NotNull(parsed);
        Assert.Equal(0x1234, parsed.Id);
        Assert.Equal("Web.Example", parsed.Name);
        Assert.Equal(DnsMessage.TypeA, parsed.Type);
        byte[] a = DnsMessage.Answer(q, parsed, [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("10.1.2.4")]);
        Assert.Equal(0x12, a[0]);
        Assert.Equal(0x34, a[1]);
        Assert.True((a[2] & 0x80) != 0); // a response
        Assert.True((a[2] & 0x01) != 0); // recursion desired, copied
        var (rcode, addrs) = DnsMessage.ParseAnswer(a);
        Assert.Equal(DnsMessage.NoError, rcode);
        Assert.Equal(["10.1.2.3", "10.1.2.4"], addrs.Select(x => x.ToString()));
    }

    [Fact]
    public void ErrorsAndGarbage()
    {
        byte[] q = DnsMessage.Query(7, "nothing.here", DnsMessage.TypeAAAA);
        var parsed = DnsMessage.ParseQuery(q)!;
        var (rcode, addrs) = DnsMessage.ParseAnswer(DnsMessage.Answer(q, parsed, [], DnsMessage.NxDomain));
        Assert.Equal(DnsMessage.NxDomain, rcode);
        Assert.Empty(addrs);
        Assert.Null(DnsMessage.ParseQuery(new byte[5]));
        var response = (byte[])q.Clone();
        response[2] |= 0x80;
        Assert.Null(DnsMessage.ParseQuery(response)); // not a query
        Assert.Null(DnsMessage.ParseQuery(q.AsSpan(0, q.Length - 3))); // truncated question
        var loop = (byte[])q.Clone();
        loop[12] = 0xc0; // a compression pointer in a question
        Assert.Null(DnsMessage.ParseQuery(loop));
    }

    [Fact]
    public async Task TheServerAnswersKnownNamesOverUdpAndTcpAndRefusesTheRestWithoutUpstreams()
    {
        var known = new Dictionary<string, IReadOnlyList<IPAddress>> { ["web"] = [IPAddress.Parse("10.9.0.2")] };
        int port = FreeUdpPort();
        using var server = new DnsServer(new IPEndPoint(IPAddress.Loopback, port), n => known.GetValueOrDefault(n), []);
        server.Start();
        using var udp = new System.Net.Sockets.UdpClient();
        udp.Connect(IPAddress.Loopback, port);
        await udp.SendAsync(DnsMessage.Query(1, "WEB"));
        var r = await udp.ReceiveAsync(TestContext.Current.CancellationToken);
        Assert.Equal(["10.9.0.2"], DnsMessage.ParseAnswer(r.Buffer).Addresses.Select(a => a.ToString()));
        await udp.SendAsync(DnsMessage.Query(2, "other.name"));
        r = await udp.ReceiveAsync(TestContext.Current.CancellationToken);
        Assert.Equal(DnsMessage.Refused, DnsMessage.ParseAnswer(r.Buffer).Rcode);

        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, TestContext.Current.CancellationToken);
        var stream = tcp.GetStream();
        byte[] q = DnsMessage.Query(3, "web");
        await stream.WriteAsync(new byte[] { 0, (byte)q.Length }.Concat(q).ToArray(), TestContext.Current.CancellationToken);
        var len = new byte[2];
        await stream.ReadExactlyAsync(len, TestContext.Current.CancellationToken);
        var answer = new byte[len[0] << 8 | len[1]];
        await stream.ReadExactlyAsync(answer, TestContext.Current.CancellationToken);
        Assert.Equal(["10.9.0.2"], DnsMessage.ParseAnswer(answer).Addresses.Select(a => a.ToString()));
    }

    [Fact]
    public async Task OtherNamesAreForwardedUpstream()
    {
        var upstreamKnown = new Dictionary<string, IReadOnlyList<IPAddress>> { ["far.away"] = [IPAddress.Parse("192.0.2.77")] };
        int upPort = FreeUdpPort(), port = FreeUdpPort();
        using var upstream = new DnsServer(new IPEndPoint(IPAddress.Loopback, upPort), n => upstreamKnown.GetValueOrDefault(n), []);
        upstream.Start();
        using var server = new DnsServer(new IPEndPoint(IPAddress.Loopback, port), _ => null, [new IPEndPoint(IPAddress.Loopback, upPort)]);
        server.Start();
        using var udp = new System.Net.Sockets.UdpClient();
        udp.Connect(IPAddress.Loopback, port);
        await udp.SendAsync(DnsMessage.Query(9, "far.away"));
        var r = await udp.ReceiveAsync(TestContext.Current.CancellationToken);
        Assert.Equal(["192.0.2.77"], DnsMessage.ParseAnswer(r.Buffer).Addresses.Select(a => a.ToString()));
    }

    private static int FreeUdpPort()
    {
        // A port free for both UDP and TCP on loopback.
        while (true)
        {
            using var u = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
            int p = ((IPEndPoint)u.Client.LocalEndPoint!).Port;
            try
            {
                var t = new System.Net.Sockets.TcpListener(IPAddress.Loopback, p);
                t.Start();
                t.Stop();
                return p;
            }
            catch (System.Net.Sockets.SocketException) { }
        }
    }
}

public sealed class HostFilesAndRulesTests
{
    [Fact]
    public void ResolvConfDropsLoopbackResolversOnTheDefaultNetworkAndNamesTheGatewayOnUserNetworks()
    {
        var host = HostFiles.ParseResolvConf("# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch a.example b.example\noptions ndots:2 edns0\n");
        Assert.Equal(["127.0.0.53", "10.0.0.2"], host.Nameservers);
        string def = HostFiles.ContainerResolvConf(host, null);
        Assert.Contains("nameserver 10.0.0.2\n", def);
        Assert.DoesNotContain("127.0.0.53", def);
        Assert.Contains("search a.example b.example\n", def);
        string user = HostFiles.ContainerResolvConf(host, IPAddress.Parse("10.9.0.1"));
        Assert.Contains("nameserver 10.9.0.1\n", user);
        Assert.DoesNotContain("10.0.0.2", user);
        Assert.Contains("8.8.8.8", HostFiles.ContainerResolvConf(HostFiles.ParseResolvConf("nameserver 127.0.0.1\n"), null));
    }

    [Fact]
    public void HostsNamesTheContainerAndItsAliases()
    {
        string hosts = HostFiles.Hosts("abc123", [(IPAddress.Parse("10.9.0.2"), new[] { "abc123", "web", "www" })]);
        Assert.Contains("127.0.0.1\tlocalhost\n", hosts);
        Assert.Contains("10.9.0.2\tabc123 web www\n", hosts);
        Assert.Contains("127.0.0.1\tabc123\n", HostFiles.Hosts("abc123", []));
    }

    [Fact]
    public void ConnectAddsAHostsLineAndDisconnectTakesOnlyItAway()
    {
        string hosts = HostFiles.Hosts("abc123", [(IPAddress.Parse("10.9.0.2"), new[] { "abc123", "web" })]) + "192.0.2.9\tadded-by-hand\n";
        string connected = HostFiles.SetEntry(hosts, IPAddress.Parse("10.8.0.5"), ["abc123", "web", "db", "web"]);
        Assert.Equal(hosts + "10.8.0.5\tabc123 web db\n", connected);
        // Connecting again with other aliases replaces the line instead of adding a second one.
        Assert.Equal(hosts + "10.8.0.5\tabc123 api\n", HostFiles.SetEntry(connected, IPAddress.Parse("10.8.0.5"), ["abc123", "api"]));
        Assert.Equal(hosts, HostFiles.SetEntry(connected, IPAddress.Parse("10.8.0.5"), []));
        // An address that is only a prefix of another one's is not a match.
        Assert.Equal(hosts, HostFiles.SetEntry(hosts, IPAddress.Parse("10.9.0.20"), []));
    }

    [Fact]
    public void RulesIsolateNetworksAndInternalOnesHaveNoWayOut()
    {
        var nft = new Nftables("vessel-unit");
        var nets = new List<FirewallNetwork>
        {
            new("vt-a", Cidr.Parse("10.1.0.0/24"), IPAddress.Parse("10.1.0.1"), false),
            new("vt-i", Cidr.Parse("10.2.0.0/24"), IPAddress.Parse("10.2.0.1"), true),
        };
        var ports = new List<FirewallPort> { new("vt-a", IPAddress.Parse("10.1.0.2"), new PublishedPort("127.0.0.1", 8080, 80, "tcp")) };
        string rules = nft.Render(nets, ports);
        Assert.StartsWith("table inet vessel-unit {}\ndelete table inet vessel-unit\n", rules);
        Assert.Contains("ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.1.0.2:80", rules);
        Assert.Contains("ip saddr 10.1.0.0/24 oifname != \"vt-a\" masquerade", rules);
        Assert.DoesNotContain("ip saddr 10.2.0.0/24", rules); // no NAT out of the internal network
        Assert.Contains("iifname { \"vt-a\" } oifname != { \"vt-a\", \"vt-i\" } accept", rules);
        Assert.Contains("iifname { \"vt-a\", \"vt-i\" } drop", rules);
        Assert.Contains("iifname \"vt-i\" drop", rules);
        Assert.Contains("iifname \"vt-i\" udp sport 68 udp dport 67 accept", rules); // DHCP for VMs still reaches the host
        Assert.Equal("table inet vessel-unit {}\ndelete table inet vessel-unit\n", nft.Render([], []));
        Assert.Throws<ArgumentException>(() => new Nftables("bad name;"));
    }
}
