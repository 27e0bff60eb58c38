namespace Vessel.Images.Oci;

public enum LayerCompression { None, Gzip, Zstd }

/// <summary>OCI image-spec media types and their Docker v2 schema 2 equivalents.</summary>
public static class MediaTypes
{
    public const string OciLayoutVersion = "1.0.0";

    public const string OciDescriptor = "application/vnd.oci.descriptor.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciLayerNonDistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    public const string OciLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    public const string OciLayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
    public const string DockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsConfig(string? mediaType) => mediaType is OciConfig or DockerConfig;

    public static bool IsLayer(string? mediaType) => mediaType is OciLayer or OciLayerGzip or OciLayerZstd
        or OciLayerNonDistributable or OciLayerNonDistributableGzip or OciLayerNonDistributableZstd
        or DockerLayer or DockerLayerGzip or DockerForeignLayerGzip;

    /// <summary>Compression the media type declares; null for a type that is not a layer. Extraction
    /// still sniffs the magic bytes, this is what the descriptor claims.</summary>
    public static LayerCompression? LayerCompressionOf(string? mediaType) => mediaType switch
    {
        OciLayer or OciLayerNonDistributable or DockerLayer => LayerCompression.None,
        OciLayerGzip or OciLayerNonDistributableGzip or DockerLayerGzip or DockerForeignLayerGzip => LayerCompression.Gzip,
        OciLayerZstd or OciLayerNonDistributableZstd => LayerCompression.Zstd,
        _ => null,
    };

    /// <summary>The OCI media type for a Docker schema 2 type (identity for OCI types and unknown ones).</summary>
    public static string ToOci(string mediaType) => mediaType switch
    {
        DockerManifest => OciManifest,
        DockerManifestList => OciIndex,
        DockerConfig => OciConfig,
        DockerLayerGzip => OciLayerGzip,
        DockerLayer => OciLayer,
        DockerForeignLayerGzip => OciLayerNonDistributableGzip,
        _ => mediaType,
    };
}
