using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Vessel.Network.Dhcp;

/// <summary>DHCPv4 message types (option 53, RFC 2132 §9.6).</summary>
public enum DhcpType : byte
{
    None = 0, Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8,
}

/// <summary>One DHCPv4 message (RFC 2131 BOOTP layout + RFC 2132 options): parsed from and written to the wire.
/// Only what Vessel's server reads and writes is modelled; other options are kept as raw bytes.</summary>
public sealed class DhcpMessage
{
    public const byte BootRequest = 1, BootReply = 2;
    public const byte OptSubnetMask = 1, OptRouter = 3, OptDns = 6, OptHostname = 12, OptDomain = 15, OptRequestedIp = 50, OptLeaseTime = 51,
        OptMessageType = 53, OptServerId = 54, OptParamList = 55, OptRenewal = 58, OptRebinding = 59, OptClientId = 61, OptEnd = 255, OptPad = 0;
    private static ReadOnlySpan<byte> Cookie => [99, 130, 83, 99];
    /// <summary>The fixed part up to and including the magic cookie.</summary>
    private const int FixedLength = 240;

    public byte Op { get; set; }
    public byte HType { get; set; } = 1;
    public byte HLen { get; set; } = 6;
    public uint Xid { get; set; }
    public ushort Secs { get; set; }
    public ushort Flags { get; set; }
    public IPAddress ClientAddress { get; set; } = IPAddress.Any;
    public IPAddress YourAddress { get; set; } = IPAddress.Any;
    public IPAddress ServerAddress { get; set; } = IPAddress.Any;
    public IPAddress RelayAddress { get; set; } = IPAddress.Any;
    /// <summary>The client's hardware address (chaddr, <see cref="HLen"/> bytes).</summary>
    public byte[] HardwareAddress { get; set; } = new byte[6];
    /// <summary>Options in order of appearance (code → value); the message type is <see cref="Type"/>.</summary>
    public List<(byte Code, byte[] Value)> Options { get; } = [];

    public DhcpType Type
    {
        get => Option(OptMessageType) is [byte t] ? (DhcpType)t : DhcpType.None;
        set => SetOption(OptMessageType, [(byte)value]);
    }

    /// <summary>The MAC as aa:bb:cc:dd:ee:ff (lower case).</summary>
    public string Mac => string.Join(':', HardwareAddress.Take(Math.Min((int)HLen, 16)).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    public byte[]? Option(byte code)
    {
        foreach (var (c, v) in Options) if (c == code) return v;
        return null;
    }

    public IPAddress? AddressOption(byte code) => Option(code) is { Length: 4 } v ? new IPAddress(v) : null;

    public string? TextOption(byte code) => Option(code) is { Length: > 0 } v ? Encoding.ASCII.GetString(v).TrimEnd('\0') : null;

    public void SetOption(byte code, byte[] value)
    {
        Options.RemoveAll(o => o.Code == code);
        Options.Add((code, value));
    }

    public void SetOption(byte code, params IPAddress[] addresses) => SetOption(code, addresses.SelectMany(a => a.GetAddressBytes()).ToArray());

    public void SetOption(byte code, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        SetOption(code, b);
    }

    /// <summary>Parses a message; null when it is not DHCP (too short, wrong cookie, truncated options).</summary>
    public static DhcpMessage? Parse(ReadOnlySpan<byte> p)
    {
        if (p.Length < FixedLength || !p.Slice(236, 4).SequenceEqual(Cookie)) return null;
        var m = new DhcpMessage
        {
            Op = p[0], HType = p[1], HLen = p[2], Xid = BinaryPrimitives.ReadUInt32BigEndian(p[4..]), Secs = BinaryPrimitives.ReadUInt16BigEndian(p[8..]),
            Flags = BinaryPrimitives.ReadUInt16BigEndian(p[10..]), ClientAddress = new IPAddress(p.Slice(12, 4)), YourAddress = new IPAddress(p.Slice(16, 4)),
            ServerAddress = new IPAddress(p.Slice(20, 4)), RelayAddress = new IPAddress(p.Slice(24, 4)),
        };
        if (m.HLen > 16) return null;
        m.HardwareAddress = p.Slice(28, m.HLen).ToArray();
        int i = FixedLength;
        while (i < p.Length)
        {
            byte code = p[i++];
            if (code == OptPad) continue;
            if (code == OptEnd) return m;
            if (i >= p.Length) return null;
            int len = p[i++];
            if (i + len > p.Length) return null;
            // RFC 3396: a repeated option is one long option, concatenated.
            int at = m.Options.FindIndex(o => o.Code == code);
            if (at >= 0) m.Options[at] = (code, [.. m.Options[at].Value, .. p.Slice(i, len)]);
            else m.Options.Add((code, p.Slice(i, len).ToArray()));
            i += len;
        }
        return m.Type == DhcpType.None ? null : m; // no end option: accept only if it still is a DHCP message
    }

    /// <summary>The wire form, padded to BOOTP's 300 bytes (some clients drop shorter replies).</summary>
    public byte[] ToBytes()
    {
        var b = new List<byte>(576);
        var head = new byte[FixedLength];
        head[0] = Op; head[1] = HType; head[2] = HLen;
        BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(4), Xid);
        BinaryPrimitives.WriteUInt16BigEndian(head.AsSpan(8), Secs);
        BinaryPrimitives.WriteUInt16BigEndian(head.AsSpan(10), Flags);
        ClientAddress.GetAddressBytes().CopyTo(head, 12);
        YourAddress.GetAddressBytes().CopyTo(head, 16);
        ServerAddress.GetAddressBytes().CopyTo(head, 20);
        RelayAddress.GetAddressBytes().CopyTo(head, 24);
        HardwareAddress.AsSpan(0, Math.Min(HardwareAddress.Length, 16)).CopyTo(head.AsSpan(28));
        Cookie.CopyTo(head.AsSpan(236));
        b.AddRange(head);
        foreach (var (code, value) in Options)
        {
            // Values over 255 bytes are split into several options of the same code (RFC 3396).
            for (int off = 0; off < value.Length || off == 0; off += 255)
            {
                int len = Math.Min(255, value.Length - off);
                b.Add(code);
                b.Add((byte)len);
                b.AddRange(value.AsSpan(off, len).ToArray());
                if (value.Length == 0) break;
            }
        }
        b.Add(OptEnd);
        while (b.Count < 300) b.Add(0);
        return [.. b];
    }
}
