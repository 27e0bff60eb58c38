using System.Buffers.Binary;
using System.Net;
using Vessel.Network.Dhcp;

namespace Vessel.Network.Tests;

/// <summary>The DHCP server's message parsing and answers, without sockets (docs/network.md#dhcp).</summary>
public sealed class DhcpTests
{
    private static readonly byte[] Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    private static readonly IPAddress Gw = IPAddress.Parse("10.77.0.1"), Ip = IPAddress.Parse("10.77.0.5");
    private static readonly DhcpConfig Cfg = new(Gw, 24, Gw, [Gw], 3600);

    private static DhcpLease? Lookup(string mac) => mac == "52:54:00:12:34:56" ? new DhcpLease(Ip, "vm1") : null;

    /// <summary>A client message as the wire has it (hand-built, not with <see cref="DhcpMessage.ToBytes"/>).</summary>
    private static byte[] Wire(byte type, byte[] mac, params (byte Code, byte[] Value)[] options)
    {
        var b = new byte[240];
        b[0] = 1; b[1] = 1; b[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 0xdeadbeef);
        b[10] = 0x80; // broadcast flag
        mac.CopyTo(b, 28);
        b[236] = 99; b[237] = 130; b[238] = 83; b[239] = 99;
        var list = new List<byte>(b) { 53, 1, type };
        foreach (var (c, v) in options) { list.Add(c); list.Add((byte)v.Length); list.AddRange(v); }
        list.Add(255);
        return [.. list];
    }

    [Fact]
    public void Parses_a_discover()
    {
        DhcpMessage m = DhcpMessage.Parse(Wire(1, Mac, (55, [1, 3, 6, 12, 15]), (12, "guest"u8.ToArray())))!;
        Assert.Equal(DhcpType.Discover, m.Type);
        Assert.Equal(0xdeadbeefu, m.Xid);
        Assert.Equal("52:54:00:12:34:56", m.Mac);
        Assert.Equal(0x8000, m.Flags);
        Assert.Equal("guest", m.TextOption(DhcpMessage.OptHostname));
        Assert.Null(DhcpMessage.Parse(new byte[100]));
        byte[] bad = Wire(1, Mac);
        bad[236] = 0;
        Assert.Null(DhcpMessage.Parse(bad));
        byte[] truncated = Wire(1, Mac, (12, "guest"u8.ToArray()));
        Assert.Null(DhcpMessage.Parse(truncated.AsSpan(0, truncated.Length - 4)));
    }

    [Fact]
    public void Offers_and_acks_exactly_the_reserved_address()
    {
        DhcpMessage offer = DhcpServer.Respond(DhcpMessage.Parse(Wire(1, Mac))!, Lookup, Cfg)!;
        // Through the wire and back: what a client would read.
        offer = DhcpMessage.Parse(offer.ToBytes())!;
        Assert.True(offer.ToBytes().Length >= 300);
        Assert.Equal(DhcpMessage.BootReply, offer.Op);
        Assert.Equal(DhcpType.Offer, offer.Type);
        Assert.Equal(0xdeadbeefu, offer.Xid);
        Assert.Equal(Ip, offer.YourAddress);
        Assert.Equal("52:54:00:12:34:56", offer.Mac);
        Assert.Equal(Gw, offer.AddressOption(DhcpMessage.OptServerId));
        Assert.Equal(IPAddress.Parse("255.255.255.0"), offer.AddressOption(DhcpMessage.OptSubnetMask));
        Assert.Equal(Gw, offer.AddressOption(DhcpMessage.OptRouter));
        Assert.Equal(Gw, offer.AddressOption(DhcpMessage.OptDns));
        Assert.Equal(3600u, BinaryPrimitives.ReadUInt32BigEndian(offer.Option(DhcpMessage.OptLeaseTime)));
        Assert.Equal("vm1", offer.TextOption(DhcpMessage.OptHostname));

        DhcpMessage ack = DhcpServer.Respond(DhcpMessage.Parse(Wire(3, Mac, (50, Ip.GetAddressBytes()), (54, Gw.GetAddressBytes())))!, Lookup, Cfg)!;
        Assert.Equal(DhcpType.Ack, ack.Type);
        Assert.Equal(Ip, ack.YourAddress);

        // Another address than IPAM's: refused, the client starts over and is offered the right one.
        DhcpMessage nak = DhcpServer.Respond(DhcpMessage.Parse(Wire(3, Mac, (50, IPAddress.Parse("10.77.0.9").GetAddressBytes())))!, Lookup, Cfg)!;
        Assert.Equal(DhcpType.Nak, nak.Type);
        Assert.Equal(IPAddress.Any, nak.YourAddress);
    }

    [Fact]
    public void Stays_silent_when_it_has_nothing_to_say()
    {
        byte[] other = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc];
        Assert.Null(DhcpServer.Respond(DhcpMessage.Parse(Wire(1, other))!, Lookup, Cfg)); // unknown MAC: never allocates
        Assert.Null(DhcpServer.Respond(DhcpMessage.Parse(Wire(3, other, (50, Ip.GetAddressBytes())))!, Lookup, Cfg));
        Assert.Null(DhcpServer.Respond(DhcpMessage.Parse(Wire(3, Mac, (50, Ip.GetAddressBytes()), (54, IPAddress.Parse("10.77.0.254").GetAddressBytes())))!, Lookup, Cfg));
        Assert.Null(DhcpServer.Respond(DhcpMessage.Parse(Wire(7, Mac))!, Lookup, Cfg)); // release: the address stays IPAM's
        Assert.Null(DhcpServer.Respond(DhcpMessage.Parse(Wire(4, Mac))!, Lookup, Cfg)); // decline
    }

    [Fact]
    public void Internal_networks_get_no_router()
    {
        var cfg = Cfg with { Router = null, Prefix = 16 };
        DhcpMessage offer = DhcpServer.Respond(DhcpMessage.Parse(Wire(1, Mac))!, Lookup, cfg)!;
        Assert.Null(offer.Option(DhcpMessage.OptRouter));
        Assert.Equal(IPAddress.Parse("255.255.0.0"), offer.AddressOption(DhcpMessage.OptSubnetMask));
    }

    [Fact]
    public void Renewal_names_the_address_in_ciaddr()
    {
        byte[] w = Wire(3, Mac);
        Ip.GetAddressBytes().CopyTo(w, 12);
        Assert.Equal(DhcpType.Ack, DhcpServer.Respond(DhcpMessage.Parse(w)!, Lookup, Cfg)!.Type);
    }
}
