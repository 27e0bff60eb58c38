using System.Text;

namespace Vessel.Images.Archive;

/// <summary>One entry for <see cref="RawTarWriter"/>. <see cref="TypeFlag"/> is the ustar type byte
/// ('0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' directory, '6' fifo).</summary>
public sealed record TarHeader
{
    public required string Name { get; init; }
    public required byte TypeFlag { get; init; }
    public long Size { get; init; }
    public int Mode { get; init; }
    public long Uid { get; init; }
    public long Gid { get; init; }
    /// <summary>Seconds since the epoch (sub-second times are not written, as Docker does).</summary>
    public long MTime { get; init; }
    public string LinkName { get; init; } = "";
    public int DevMajor { get; init; }
    public int DevMinor { get; init; }
    /// <summary>Extended attributes as raw bytes, written as PAX <c>SCHILY.xattr.NAME</c> records.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>>? Xattrs { get; init; }

    public const byte Regular = (byte)'0', HardLink = (byte)'1', Symlink = (byte)'2', CharDevice = (byte)'3',
        BlockDevice = (byte)'4', Directory = (byte)'5', Fifo = (byte)'6';
}

/// <summary>A minimal, deterministic POSIX (ustar + PAX) tar writer. Unlike System.Formats.Tar it writes
/// binary xattr values byte-exact (<c>security.capability</c>) and never adds atime/ctime. PAX records are
/// used only when ustar cannot hold a field (long or non-ASCII names, big ids or sizes, xattrs), like Go's
/// archive/tar, so the output reads the same in Docker, containerd and GNU tar.</summary>
public sealed class RawTarWriter(Stream output) : IDisposable
{
    private const int Block = 512;
    private const long MaxOctal7 = 0x1FFFFF;        // 07777777
    private const long MaxOctal11 = 0x1FFFFFFFF;    // 077777777777
    private readonly byte[] _zero = new byte[Block];
    private bool _finished;

    public long BytesWritten { get; private set; }

    /// <summary>Writes a header and exactly <see cref="TarHeader.Size"/> bytes of <paramref name="data"/>
    /// (a shorter or longer stream is an error: the archive would be corrupt).</summary>
    public void WriteEntry(TarHeader h, Stream? data = null)
    {
        var pax = new List<(string Key, byte[] Value)>();
        byte[] name = Encoding.UTF8.GetBytes(h.Name);
        byte[] link = Encoding.UTF8.GetBytes(h.LinkName);
        if (name.Length > 100 || !IsAscii(name)) pax.Add(("path", name));
        if (link.Length > 100 || !IsAscii(link)) pax.Add(("linkpath", link));
        if (h.Uid > MaxOctal7 || h.Uid < 0) pax.Add(("uid", Ascii(h.Uid)));
        if (h.Gid > MaxOctal7 || h.Gid < 0) pax.Add(("gid", Ascii(h.Gid)));
        if (h.Size > MaxOctal11) pax.Add(("size", Ascii(h.Size)));
        if (h.MTime > MaxOctal11 || h.MTime < 0) pax.Add(("mtime", Ascii(h.MTime)));
        if (h.Xattrs is not null)
            foreach (var kv in h.Xattrs.OrderBy(k => k.Key, StringComparer.Ordinal))
                pax.Add(("SCHILY.xattr." + kv.Key, kv.Value));

        if (pax.Count > 0)
        {
            using var ms = new MemoryStream();
            foreach ((string key, byte[] value) in pax.OrderBy(p => p.Key, StringComparer.Ordinal)) WriteRecord(ms, key, value);
            byte[] body = ms.ToArray();
            string paxName = PaxName(h.Name);
            WriteBlock(Header(Encoding.UTF8.GetBytes(paxName), (byte)'x', body.Length, 0x1a4, 0, 0, 0, [], 0, 0));
            WriteData(body);
        }
        byte[] header = Header(Truncate(name, 100), h.TypeFlag, h.Size > MaxOctal11 ? 0 : h.Size, h.Mode,
            Math.Clamp(h.Uid, 0, MaxOctal7), Math.Clamp(h.Gid, 0, MaxOctal7), Math.Clamp(h.MTime, 0, MaxOctal11),
            Truncate(link, 100), h.DevMajor, h.DevMinor);
        WriteBlock(header);
        if (h.Size > 0)
        {
            if (data is null) throw new ArgumentException($"tar entry {h.Name}: {h.Size} bytes declared but no data given");
            byte[] buf = new byte[128 * 1024];
            long left = h.Size;
            while (left > 0)
            {
                int n = data.Read(buf, 0, (int)Math.Min(buf.Length, left));
                if (n == 0) throw new IOException($"tar entry {h.Name}: content ended {left} bytes before the declared size {h.Size} (changed while reading?)");
                output.Write(buf, 0, n);
                left -= n;
            }
            BytesWritten += h.Size;
            if (data.Read(buf, 0, 1) != 0)
                throw new IOException($"tar entry {h.Name}: content is longer than the declared size {h.Size} (changed while reading?)");
            Pad(h.Size);
        }
    }

    /// <summary>Writes the end-of-archive marker (two zero blocks).</summary>
    public void Finish()
    {
        if (_finished) return;
        _finished = true;
        WriteBlock(_zero);
        WriteBlock(_zero);
        output.Flush();
    }

    public void Dispose() => Finish();

    private void WriteData(byte[] body)
    {
        output.Write(body);
        BytesWritten += body.Length;
        Pad(body.Length);
    }

    private void Pad(long size)
    {
        int rem = (int)(size % Block);
        if (rem != 0) { output.Write(_zero, 0, Block - rem); BytesWritten += Block - rem; }
    }

    private void WriteBlock(byte[] b)
    {
        output.Write(b, 0, Block);
        BytesWritten += Block;
    }

    private static string PaxName(string name)
    {
        string trimmed = name.TrimEnd('/');
        int slash = trimmed.LastIndexOf('/');
        string dir = slash < 0 ? "" : trimmed[..slash];
        string file = slash < 0 ? trimmed : trimmed[(slash + 1)..];
        string p = (dir.Length == 0 ? "" : dir + "/") + "PaxHeaders.0/" + file;
        byte[] b = Encoding.UTF8.GetBytes(p);
        return IsAscii(b) && b.Length <= 100 ? p : "PaxHeaders.0/entry";
    }

    private static void WriteRecord(Stream s, string key, byte[] value)
    {
        byte[] k = Encoding.UTF8.GetBytes(key);
        int body = 1 + k.Length + 1 + value.Length + 1; // " key=value\n"
        int len = body + 1;
        while (len.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body != len)
            len = len.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body;
        s.Write(Encoding.ASCII.GetBytes(len.ToString(System.Globalization.CultureInfo.InvariantCulture) + " "));
        s.Write(k);
        s.WriteByte((byte)'=');
        s.Write(value);
        s.WriteByte((byte)'\n');
    }

    private static byte[] Header(byte[] name, byte type, long size, int mode, long uid, long gid, long mtime, byte[] link, int major, int minor)
    {
        byte[] h = new byte[Block];
        name.CopyTo(h, 0);
        Octal(h, 100, 8, mode & 0xfff);
        Octal(h, 108, 8, uid);
        Octal(h, 116, 8, gid);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, mtime);
        h[156] = type;
        link.CopyTo(h, 157);
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        if (type is TarHeader.CharDevice or TarHeader.BlockDevice)
        {
            Octal(h, 329, 8, major);
            Octal(h, 337, 8, minor);
        }
        for (int i = 148; i < 156; i++) h[i] = (byte)' ';
        int sum = 0;
        foreach (byte b in h) sum += b;
        Octal(h, 148, 7, sum);
        h[155] = (byte)' ';
        return h;
    }

    private static void Octal(byte[] h, int off, int len, long v)
    {
        string s = Convert.ToString(v, 8).PadLeft(len - 1, '0');
        Encoding.ASCII.GetBytes(s).CopyTo(h, off);
        h[off + len - 1] = 0;
    }

    private static bool IsAscii(byte[] b)
    {
        foreach (byte x in b) if (x >= 0x80 || x == 0) return false;
        return true;
    }

    private static byte[] Truncate(byte[] b, int max)
    {
        if (b.Length <= max && IsAscii(b)) return b;
        // The real value is in the PAX record; keep an ASCII-safe prefix for readers that ignore PAX.
        var r = new List<byte>();
        foreach (byte x in b)
        {
            if (r.Count == max) break;
            r.Add(x is >= 0x80 or 0 ? (byte)'_' : x);
        }
        return r.ToArray();
    }

    private static byte[] Ascii(long v) => Encoding.ASCII.GetBytes(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
