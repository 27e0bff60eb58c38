using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vessel.Network;

/// <summary>An IPv4 prefix (10.88.0.0/16). The network address is normalised (host bits cleared).</summary>
public readonly record struct Cidr
{
    public uint Value { get; }
    public int Prefix { get; }

    public Cidr(uint value, int prefix)
    {
        if (prefix is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(prefix));
        Prefix = prefix;
        Value = value & Mask(prefix);
    }

    public Cidr(IPAddress address, int prefix) : this(ToUInt(address), prefix) { }

    public static uint Mask(int prefix) => prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);

    public IPAddress Network => FromUInt(Value);
    public IPAddress Broadcast => FromUInt(Value | ~Mask(Prefix));
    /// <summary>Addresses in the prefix, network and broadcast included.</summary>
    public ulong Size => 1UL << (32 - Prefix);
    public uint First => Prefix >= 31 ? Value : Value + 1;
    public uint Last => Prefix >= 31 ? Value | ~Mask(Prefix) : (Value | ~Mask(Prefix)) - 1;

    public bool Contains(IPAddress a) => Contains(ToUInt(a));
    public bool Contains(uint a) => (a & Mask(Prefix)) == Value;
    public bool Overlaps(Cidr o) => Contains(o.Value) || o.Contains(Value);

    public static uint ToUInt(IPAddress a)
    {
        if (a.AddressFamily != AddressFamily.InterNetwork)
        {
            if (a.IsIPv4MappedToIPv6) a = a.MapToIPv4();
            else throw new FormatException($"{a} is not an IPv4 address (only IPv4 networks are supported)");
        }
        Span<byte> b = stackalloc byte[4];
        a.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress FromUInt(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }

    public static bool TryParse(string? s, out Cidr cidr)
    {
        cidr = default;
        if (string.IsNullOrWhiteSpace(s)) return false;
        var parts = s.Trim().Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[1], out int prefix) || prefix is < 0 or > 32) return false;
        if (!TryParseV4(parts[0], out var a)) return false;
        cidr = new Cidr(a, prefix);
        return true;
    }

    public static Cidr Parse(string s) =>
        TryParse(s, out var c) ? c : throw new FormatException($"invalid subnet \"{s}\": expected an IPv4 CIDR such as 10.89.0.0/24");

    /// <summary>A dotted quad only (IPAddress.Parse also takes "1", "1.2", hex and IPv6).</summary>
    public static bool TryParseV4(string s, out IPAddress address)
    {
        address = IPAddress.None;
        var p = s.Split('.');
        if (p.Length != 4) return false;
        foreach (var x in p)
            if (x.Length is 0 or > 3 || !x.All(char.IsAsciiDigit) || int.Parse(x) > 255) return false;
        address = IPAddress.Parse(s);
        return true;
    }

    public override string ToString() => $"{Network}/{Prefix}";
}
