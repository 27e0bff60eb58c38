using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Vessel.Images.Content;

namespace Vessel.Images.Layers;

/// <summary>What the guard saw in one entry's header(s), in archive order.</summary>
internal sealed record TarHeaderRecord(byte TypeFlag, long Size, string HeaderName, List<KeyValuePair<string, byte[]>>? Xattrs, bool GnuSparse);

/// <summary>Sits between the decompressor and <see cref="System.Formats.Tar.TarReader"/> and parses every
/// 512-byte header as it passes, before TarReader acts on it: PAX / GNU long-name blocks larger than the
/// limit, too many entries and a total file size over the limit are refused at the header, before any
/// allocation or data is read (a decompression bomb never gets decompressed). It also hashes the whole
/// uncompressed stream (the diffID) and keeps the raw bytes of <c>SCHILY.xattr.*</c> PAX records, which
/// TarReader decodes as UTF-8 and would mangle for binary values such as <c>security.capability</c>.
/// Anything it cannot parse is refused (fail closed).</summary>
internal sealed class TarGuardStream : ReadOnlyStream
{
    private const int Block = 512;
    private readonly Stream _inner;
    private readonly ExtractionLimits _limits;
    private readonly Func<string?, string, LayerException> _fail;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buf = new byte[128 * Block];
    private int _bufPos, _bufLen;
    private long _bufStart;          // archive offset of _buf[0]
    private bool _innerEof;

    private long _nextHeader;        // archive offset of the next header block
    private bool _ended;             // end-of-archive marker seen
    private long _endOffset;

    private MemoryStream? _pax;      // data of the current 'x' header being collected
    private long _paxDataStart, _paxDataLen;
    private string _paxHeaderName = "";

    private long? _pendingSize;
    private List<KeyValuePair<string, byte[]>>? _pendingXattrs;
    private bool _pendingSparse;

    public Queue<TarHeaderRecord> Records { get; } = new();
    public long Entries { get; private set; }
    public long TotalFileBytes { get; private set; }
    public long TotalRead => _bufStart + _bufLen;

    public TarGuardStream(Stream inner, ExtractionLimits limits, Func<string?, string, LayerException> fail)
    {
        _inner = inner;
        _limits = limits;
        _fail = fail;
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_bufPos == _bufLen && !Fill()) return 0;
        int n = Math.Min(buffer.Length, _bufLen - _bufPos);
        _buf.AsSpan(_bufPos, n).CopyTo(buffer);
        _bufPos += n;
        return n;
    }

    /// <summary>Reads the rest of the stream (the padding after the end marker) so the diffID covers all of
    /// it, refusing more than the trailing-bytes limit, and returns the diffID.</summary>
    public Digest Finish()
    {
        long limit = (_ended ? _endOffset : TotalRead) + _limits.MaxTrailingBytes;
        _bufPos = _bufLen;
        while (Fill())
        {
            _bufPos = _bufLen;
            if (TotalRead > limit)
                throw _fail(null, $"has more than {_limits.MaxTrailingBytes} bytes after the end of the tar archive");
        }
        return Digest.FromHash(_hash.GetHashAndReset());
    }

    private bool Fill()
    {
        if (_innerEof) return false;
        _bufStart += _bufLen;
        _bufPos = 0;
        _bufLen = 0;
        while (_bufLen < _buf.Length)
        {
            int n = _inner.Read(_buf, _bufLen, _buf.Length - _bufLen);
            if (n == 0) { _innerEof = true; break; }
            _bufLen += n;
        }
        if (_bufLen == 0) return false;
        _hash.AppendData(_buf, 0, _bufLen);
        Scan();
        return true;
    }

    private void Scan()
    {
        long regionEnd = _bufStart + _bufLen;
        while (!_ended)
        {
            if (_pax is not null)
            {
                long from = Math.Max(_paxDataStart, _bufStart);
                long to = Math.Min(_paxDataStart + _paxDataLen, regionEnd);
                if (to > from) _pax.Write(_buf, (int)(from - _bufStart), (int)(to - from));
                if (to < _paxDataStart + _paxDataLen) return; // rest comes with the next fill
                ParsePax(_pax.ToArray());
                _pax = null;
            }
            if (_nextHeader + Block > regionEnd) return;
            if (_nextHeader < _bufStart) throw new InvalidOperationException("tar guard lost track of the header position");
            ParseHeader(_buf.AsSpan((int)(_nextHeader - _bufStart), Block));
        }
    }

    private void ParseHeader(ReadOnlySpan<byte> h)
    {
        ReadOnlySpan<byte> chk = h.Slice(148, 8);
        if (!chk.ContainsAnyExcept((byte)0)) { End(); return; }
        if (!TryParseOctal(chk, out long checksum)) throw _fail(null, $"is not a valid tar archive (bad header checksum field at offset {_nextHeader})");
        if (checksum == 0) { End(); return; }
        long unsignedSum = 0, signedSum = 0;
        for (int i = 0; i < Block; i++)
        {
            byte b = i is >= 148 and < 156 ? (byte)' ' : h[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }
        string name = HeaderName(h);
        if (checksum != unsignedSum && checksum != signedSum)
            throw _fail(name, $"has a bad tar header checksum (offset {_nextHeader})");
        if (!TryParseNumeric(h.Slice(124, 12), out long size) || size < 0)
            throw _fail(name, "has an invalid size field");
        byte type = h[156];
        long dataStart = _nextHeader + Block;
        switch (type)
        {
            case (byte)'x' or (byte)'g' or (byte)'L' or (byte)'K':
                if (size > _limits.MaxPaxHeaderSize)
                    throw _fail(name, $"has a {(type is (byte)'x' or (byte)'g' ? "PAX extended header" : "GNU long name")} of {size} bytes, more than the limit of {_limits.MaxPaxHeaderSize}");
                if (type == (byte)'x')
                {
                    _pax = new MemoryStream((int)size);
                    _paxDataStart = dataStart;
                    _paxDataLen = size;
                    _paxHeaderName = name;
                }
                if (type == (byte)'g')
                    Records.Enqueue(new TarHeaderRecord(type, size, name, null, false));
                break;
            default:
                if (type is not ((byte)'0' or 0 or (byte)'7' or (byte)'1' or (byte)'2' or (byte)'3' or (byte)'4' or (byte)'5' or (byte)'6'))
                    throw _fail(name, $"has unsupported tar entry type '{(type is >= 0x20 and < 0x7f ? (char)type : '?')}'{(type == (byte)'S' ? " (GNU sparse file)" : "")}");
                if (++Entries > _limits.MaxEntries)
                    throw _fail(name, $"exceeds the limit of {_limits.MaxEntries} entries per layer");
                if (_pendingSize is long s) size = s;
                if (type is (byte)'0' or 0 or (byte)'7')
                {
                    TotalFileBytes += size;
                    if (TotalFileBytes > _limits.MaxTotalBytes || size > _limits.MaxTotalBytes)
                        throw _fail(name, $"brings the layer's extracted size to more than the limit of {_limits.MaxTotalBytes} bytes (entry of {size} bytes; decompression bomb?)");
                }
                Records.Enqueue(new TarHeaderRecord(type, size, name, _pendingXattrs, _pendingSparse));
                _pendingSize = null;
                _pendingXattrs = null;
                _pendingSparse = false;
                break;
        }
        _nextHeader = dataStart + (size + Block - 1) / Block * Block;
    }

    private void End()
    {
        _ended = true;
        _endOffset = _nextHeader;
    }

    // PAX records: "<len> <key>=<value>\n", len counting the whole record; values are raw bytes.
    private void ParsePax(byte[] data)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            int sp = Array.IndexOf(data, (byte)' ', pos, Math.Min(20, data.Length - pos));
            if (sp < 0 || !long.TryParse(Encoding.ASCII.GetString(data, pos, sp - pos), System.Globalization.NumberStyles.None, null, out long len)
                || len <= sp - pos + 1 || pos + len > data.Length || data[pos + len - 1] != (byte)'\n')
                throw _fail(_paxHeaderName, "has a malformed PAX extended header record");
            int rec = (int)len;
            int eq = Array.IndexOf(data, (byte)'=', sp + 1, pos + rec - (sp + 1));
            if (eq < 0) throw _fail(_paxHeaderName, "has a malformed PAX extended header record (no '=')");
            string key = Encoding.UTF8.GetString(data, sp + 1, eq - sp - 1);
            byte[] value = data.AsSpan(eq + 1, pos + rec - 1 - (eq + 1)).ToArray();
            if (key == "size")
            {
                if (!long.TryParse(Encoding.ASCII.GetString(value), System.Globalization.NumberStyles.None, null, out long sz))
                    throw _fail(_paxHeaderName, "has an invalid PAX size record");
                _pendingSize = sz;
            }
            else if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
            {
                (_pendingXattrs ??= []).Add(new(key["SCHILY.xattr.".Length..], value));
            }
            else if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal))
            {
                _pendingSparse = true;
            }
            pos += rec;
        }
    }

    private static string HeaderName(ReadOnlySpan<byte> h)
    {
        string name = CString(h[..100]);
        if (h.Slice(257, 6).SequenceEqual("ustar\0"u8))
        {
            string prefix = CString(h.Slice(345, 155));
            if (prefix.Length > 0) name = prefix + "/" + name;
        }
        return name;
    }

    private static string CString(ReadOnlySpan<byte> s)
    {
        int z = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(z < 0 ? s : s[..z]);
    }

    private static bool TryParseOctal(ReadOnlySpan<byte> f, out long value)
    {
        value = 0;
        int i = 0;
        while (i < f.Length && (f[i] == ' ' || f[i] == 0)) i++;
        bool any = false;
        for (; i < f.Length; i++)
        {
            byte c = f[i];
            if (c is (byte)' ' or 0) break;
            if (c is < (byte)'0' or > (byte)'7') return false;
            if (value > (long.MaxValue >> 3)) return false;
            value = (value << 3) + (c - '0');
            any = true;
        }
        for (; i < f.Length; i++) if (f[i] is not ((byte)' ' or 0)) return false;
        if (!any) value = 0;
        return true;
    }

    // Octal, or GNU base-256 (high bit of the first byte set) for large values.
    private static bool TryParseNumeric(ReadOnlySpan<byte> f, out long value)
    {
        if ((f[0] & 0x80) == 0) return TryParseOctal(f, out value);
        value = 0;
        if ((f[0] & 0x7f) != 0) return false; // negative, or too large for a long
        if (f.Length > 9 && f[1..^8].ContainsAnyExcept((byte)0)) return false;
        value = (long)(BinaryPrimitives.ReadUInt64BigEndian(f[^8..]) & long.MaxValue);
        return true;
    }

    public override long Position { get => _bufStart + _bufPos; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
