using System.IO.Compression;
using Vessel.Images.Content;
using Vessel.Images.Oci;

namespace Vessel.Images.Layers;

/// <summary>Sniffs a layer's magic bytes: gzip (1f 8b), zstd (28 b5 2f fd), otherwise plain tar.</summary>
public static class Decompression
{
    public static LayerCompression Detect(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b) return LayerCompression.Gzip;
        if (head.Length >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) return LayerCompression.Zstd;
        return LayerCompression.None;
    }

    /// <summary>Reads the magic and returns the decompressed stream. Throws <see cref="InvalidDataException"/>
    /// for formats that are recognised but unsupported (xz, bzip2).</summary>
    public static Stream Open(Stream input, out LayerCompression compression)
    {
        byte[] head = new byte[6];
        int n = input.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var prefixed = new PrefixedStream(head.AsMemory(0, n), input);
        ReadOnlySpan<byte> h = head.AsSpan(0, n);
        compression = Detect(h);
        switch (compression)
        {
            case LayerCompression.Gzip: return new GZipStream(prefixed, CompressionMode.Decompress);
            case LayerCompression.Zstd: return new ZstdSharp.DecompressionStream(prefixed);
        }
        if (h.StartsWith((ReadOnlySpan<byte>)[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
            throw new InvalidDataException("layer is xz-compressed, which OCI does not allow (tar, gzip or zstd only)");
        if (h.StartsWith("BZh"u8))
            throw new InvalidDataException("layer is bzip2-compressed, which OCI does not allow (tar, gzip or zstd only)");
        return prefixed;
    }

    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override int Read(Span<byte> buffer)
        {
            if (!_prefix.IsEmpty)
            {
                int n = Math.Min(buffer.Length, _prefix.Length);
                _prefix.Span[..n].CopyTo(buffer);
                _prefix = _prefix[n..];
                return n;
            }
            return inner.Read(buffer);
        }
    }
}
