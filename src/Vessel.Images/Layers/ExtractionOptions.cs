namespace Vessel.Images.Layers;

/// <summary>How whiteout entries (<c>.wh.NAME</c>, <c>.wh..wh..opq</c>) are applied.</summary>
public enum WhiteoutMode
{
    /// <summary>Per-layer snapshot used as an overlayfs lower dir: <c>.wh.NAME</c> becomes a 0:0 character
    /// device NAME, <c>.wh..wh..opq</c> becomes the <c>trusted.overlay.opaque=y</c> xattr on its directory.</summary>
    Overlay,
    /// <summary>Flattening onto a directory that already holds the lower layers: <c>.wh.NAME</c> deletes NAME,
    /// <c>.wh..wh..opq</c> deletes the directory's lower content. Entries of the same layer are never removed.</summary>
    Apply,
    /// <summary>Not a layer (a <c>cp</c> into a container): <c>.wh.</c> names are ordinary files.</summary>
    Literal,
}

/// <summary>Caps that stop hostile or broken layers. Defaults are generous but finite.</summary>
public sealed record ExtractionLimits
{
    /// <summary>Entries in one layer (headers, not counting PAX/GNU metadata headers).</summary>
    public long MaxEntries { get; init; } = 1_000_000;
    /// <summary>Sum of regular file sizes in one layer: a decompression bomb stops here, at the header that
    /// crosses it, before its data is read.</summary>
    public long MaxTotalBytes { get; init; } = 64L * 1024 * 1024 * 1024;
    /// <summary>Bytes of an entry name or link target (PATH_MAX).</summary>
    public int MaxNameLength { get; init; } = 4096;
    /// <summary>Bytes of one PAX extended header or GNU long-name block; checked before the data is read.</summary>
    public int MaxPaxHeaderSize { get; init; } = 1024 * 1024;
    /// <summary>Bytes allowed after the end-of-archive marker (record padding).</summary>
    public long MaxTrailingBytes { get; init; } = 1024 * 1024;

    public static ExtractionLimits Default { get; } = new();
}

public sealed record ExtractionOptions
{
    public ExtractionLimits Limits { get; init; } = ExtractionLimits.Default;
    public WhiteoutMode Whiteouts { get; init; } = WhiteoutMode.Overlay;

    public static ExtractionOptions Default { get; } = new();
}

/// <summary>What an extraction did. <see cref="DiffId"/> is the sha256 of the uncompressed tar stream (the
/// image config's rootfs.diff_ids entry for this layer).</summary>
public sealed record LayerExtractResult(
    Content.Digest DiffId,
    Oci.LayerCompression Compression,
    long Entries,
    long Bytes,
    IReadOnlyList<string> Warnings);
