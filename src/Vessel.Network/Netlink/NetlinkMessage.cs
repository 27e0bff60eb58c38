using System.Buffers.Binary;
using System.Text;

namespace Vessel.Network.Netlink;

/// <summary>Builds one netlink request: nlmsghdr, a fixed header (ifinfomsg, ifaddrmsg, rtmsg), then attributes,
/// each 4-byte aligned. Nested attributes are opened with <see cref="Begin"/> and closed with <see cref="End"/>,
/// which patches their length.</summary>
internal sealed class NetlinkMessage
{
    private byte[] _buf = new byte[256];
    private int _len;

    public NetlinkMessage(ushort type, ushort flags)
    {
        _len = 16;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(6), flags);
    }

    public ushort Type => BinaryPrimitives.ReadUInt16LittleEndian(_buf.AsSpan(4));

    private Span<byte> Grow(int n)
    {
        int aligned = Align(n);
        if (_len + aligned > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + aligned));
        var span = _buf.AsSpan(_len, aligned);
        span.Clear();
        _len += aligned;
        return span[..n];
    }

    public static int Align(int n) => (n + 3) & ~3;

    /// <summary>struct ifinfomsg (16 bytes).</summary>
    public NetlinkMessage IfInfo(byte family = 0, int index = 0, uint flags = 0, uint change = 0)
    {
        var s = Grow(16);
        s[0] = family;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], change);
        return this;
    }

    /// <summary>struct ifaddrmsg (8 bytes).</summary>
    public NetlinkMessage IfAddr(byte family, byte prefix, byte scope, int index)
    {
        var s = Grow(8);
        s[0] = family; s[1] = prefix; s[3] = scope;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        return this;
    }

    /// <summary>struct rtmsg (12 bytes).</summary>
    public NetlinkMessage Rt(byte family, byte dstLen, byte table, byte protocol, byte scope, byte type)
    {
        var s = Grow(12);
        s[0] = family; s[1] = dstLen; s[4] = table; s[5] = protocol; s[6] = scope; s[7] = type;
        return this;
    }

    public NetlinkMessage Attr(ushort type, ReadOnlySpan<byte> value)
    {
        var s = Grow(4 + value.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        value.CopyTo(s[4..]);
        return this;
    }

    public NetlinkMessage Attr(ushort type, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value + "\0");
        return Attr(type, bytes);
    }

    public NetlinkMessage Attr(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return Attr(type, b);
    }

    public NetlinkMessage Attr(ushort type, byte value) => Attr(type, [value]);

    /// <summary>Opens a nested attribute; returns its offset for <see cref="End"/>.</summary>
    public int Begin(ushort type)
    {
        int at = _len;
        var s = Grow(4);
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        return at;
    }

    public NetlinkMessage End(int at)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(at), (ushort)(_len - at));
        return this;
    }

    /// <summary>The finished message with its length and sequence number.</summary>
    public ReadOnlySpan<byte> Finish(uint seq)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buf, (uint)_len);
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(8), seq);
        return _buf.AsSpan(0, _len);
    }
}

/// <summary>Attributes of a received message, by type (the last one wins for repeated types).</summary>
internal readonly ref struct NetlinkAttrs
{
    private readonly ReadOnlySpan<byte> _data;

    public NetlinkAttrs(ReadOnlySpan<byte> data) => _data = data;

    public bool TryGet(ushort type, out ReadOnlySpan<byte> value)
    {
        var d = _data;
        while (d.Length >= 4)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(d);
            ushort t = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(d[2..]) & 0x3fff); // without NESTED/BYTEORDER flags
            if (len < 4 || len > d.Length) break;
            if (t == type) { value = d[4..len]; return true; }
            int next = NetlinkMessage.Align(len);
            if (next >= d.Length) break;
            d = d[next..];
        }
        value = default;
        return false;
    }

    public string? String(ushort type) => TryGet(type, out var v) ? Encoding.UTF8.GetString(v.TrimEnd((byte)0)) : null;

    public uint? U32(ushort type) => TryGet(type, out var v) && v.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(v) : null;

    public byte[]? Bytes(ushort type) => TryGet(type, out var v) ? v.ToArray() : null;
}
