using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Vessel.Network.Dns;

/// <summary>The little of RFC 1035 the network DNS server needs: read a query's header and first question, and
/// write an answer with A records (or an error code). Names are compared without case and trailing dot.</summary>
public static class DnsMessage
{
    public const ushort TypeA = 1, TypeAAAA = 28, TypePTR = 12, TypeANY = 255, ClassIN = 1;
    public const byte NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, Refused = 5;

    public sealed record Question(ushort Id, ushort Flags, string Name, ushort Type, ushort Class, int End);

    /// <summary>The query's id, flags, first question and where the question ends; null for anything that is not a
    /// well-formed standard query.</summary>
    public static Question? ParseQuery(ReadOnlySpan<byte> m)
    {
        if (m.Length < 12) return null;
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(m);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(m[2..]);
        ushort qd = BinaryPrimitives.ReadUInt16BigEndian(m[4..]);
        if ((flags & 0x8000) != 0 || ((flags >> 11) & 0xf) != 0 || qd < 1) return null; // a response, or not QUERY
        int pos = 12;
        var name = new StringBuilder();
        while (true)
        {
            if (pos >= m.Length) return null;
            int len = m[pos++];
            if (len == 0) break;
            if ((len & 0xc0) != 0 || pos + len > m.Length || name.Length + len > 253) return null; // no compression in a question
            if (name.Length > 0) name.Append('.');
            name.Append(Encoding.ASCII.GetString(m.Slice(pos, len)));
            pos += len;
        }
        if (pos + 4 > m.Length) return null;
        return new Question(id, flags, name.ToString(), BinaryPrimitives.ReadUInt16BigEndian(m[pos..]), BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 2)..]), pos + 4);
    }

    /// <summary>An answer to <paramref name="query"/> (the raw query, whose question section is copied): the
    /// addresses as A records with <paramref name="ttl"/>, or none with <paramref name="rcode"/>.</summary>
    public static byte[] Answer(ReadOnlySpan<byte> query, Question q, IReadOnlyList<IPAddress> addresses, byte rcode = NoError, uint ttl = 600)
    {
        var outp = new List<byte>(q.End + addresses.Count * 16);
        Span<byte> h = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(h, q.Id);
        // QR=1, opcode 0, AA=1, RD copied, RA=1, rcode
        ushort flags = (ushort)(0x8000 | 0x0400 | (q.Flags & 0x0100) | 0x0080 | rcode);
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(h[6..], (ushort)addresses.Count);
        outp.AddRange(h.ToArray());
        outp.AddRange(query[12..q.End].ToArray());
        Span<byte> rr = stackalloc byte[16];
        foreach (var a in addresses)
        {
            BinaryPrimitives.WriteUInt16BigEndian(rr, 0xc00c); // pointer to the question's name
            BinaryPrimitives.WriteUInt16BigEndian(rr[2..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(rr[4..], ClassIN);
            BinaryPrimitives.WriteUInt32BigEndian(rr[6..], ttl);
            BinaryPrimitives.WriteUInt16BigEndian(rr[10..], 4);
            a.GetAddressBytes().CopyTo(rr[12..]);
            outp.AddRange(rr.ToArray());
        }
        return [.. outp];
    }

    /// <summary>A query for <paramref name="name"/> (tests and health checks).</summary>
    public static byte[] Query(ushort id, string name, ushort type = TypeA)
    {
        var outp = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            var b = Encoding.ASCII.GetBytes(label);
            outp.Add((byte)b.Length);
            outp.AddRange(b);
        }
        outp.AddRange(new byte[] { 0, (byte)(type >> 8), (byte)type, 0, 1 });
        return [.. outp];
    }

    /// <summary>The rcode and A-record addresses of a response (tests).</summary>
    public static (byte Rcode, List<IPAddress> Addresses) ParseAnswer(ReadOnlySpan<byte> m)
    {
        var q = ParseQueryIgnoringQr(m) ?? throw new FormatException("not a DNS message");
        byte rcode = (byte)(BinaryPrimitives.ReadUInt16BigEndian(m[2..]) & 0xf);
        int an = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        int pos = q.End;
        var list = new List<IPAddress>();
        for (int i = 0; i < an; i++)
        {
            pos = SkipName(m, pos);
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(m[pos..]);
            int rdlen = BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 8)..]);
            pos += 10;
            if (type == TypeA && rdlen == 4) list.Add(new IPAddress(m.Slice(pos, 4)));
            pos += rdlen;
        }
        return (rcode, list);
    }

    private static Question? ParseQueryIgnoringQr(ReadOnlySpan<byte> m)
    {
        if (m.Length < 12) return null;
        var copy = m.ToArray();
        copy[2] &= 0x7f;
        return ParseQuery(copy);
    }

    private static int SkipName(ReadOnlySpan<byte> m, int pos)
    {
        while (true)
        {
            int len = m[pos];
            if ((len & 0xc0) == 0xc0) return pos + 2;
            pos++;
            if (len == 0) return pos;
            pos += len;
        }
    }
}
