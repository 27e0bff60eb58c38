using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Content;

namespace Vessel.Images.Oci;

[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow,
    WriteIndented = false)]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageConfig))]
[JsonSerializable(typeof(OciLayoutFile))]
internal sealed partial class OciJsonContext : JsonSerializerContext;

/// <summary>Parsing and serialising OCI documents (source-generated, no reflection). Parse errors become
/// <see cref="ContentException"/> naming the document.</summary>
public static class OciJson
{
    /// <summary>Largest manifest or index accepted (the limit registries use).</summary>
    public const long MaxManifestSize = 4 * 1024 * 1024;
    /// <summary>Largest image config accepted.</summary>
    public const long MaxConfigSize = 16 * 1024 * 1024;

    public static ImageManifest ParseManifest(ReadOnlySpan<byte> json, string what) =>
        Parse(json, OciJsonContext.Default.ImageManifest, what);

    public static ImageIndex ParseIndex(ReadOnlySpan<byte> json, string what) =>
        Parse(json, OciJsonContext.Default.ImageIndex, what);

    public static ImageConfig ParseConfig(ReadOnlySpan<byte> json, string what) =>
        Parse(json, OciJsonContext.Default.ImageConfig, what);

    public static OciLayoutFile ParseLayoutFile(ReadOnlySpan<byte> json, string what) =>
        Parse(json, OciJsonContext.Default.OciLayoutFile, what);

    public static byte[] Serialize(ImageManifest m) => JsonSerializer.SerializeToUtf8Bytes(m, OciJsonContext.Default.ImageManifest);
    public static byte[] Serialize(ImageIndex i) => JsonSerializer.SerializeToUtf8Bytes(i, OciJsonContext.Default.ImageIndex);
    public static byte[] Serialize(ImageConfig c) => JsonSerializer.SerializeToUtf8Bytes(c, OciJsonContext.Default.ImageConfig);
    public static byte[] Serialize(OciLayoutFile f) => JsonSerializer.SerializeToUtf8Bytes(f, OciJsonContext.Default.OciLayoutFile);

    /// <summary>Peeks at a document's shape for descriptors whose media type is missing or generic.</summary>
    public static string? SniffMediaType(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return null;
            if (doc.RootElement.TryGetProperty("mediaType", out JsonElement mt) && mt.ValueKind == JsonValueKind.String)
                return mt.GetString();
            if (doc.RootElement.TryGetProperty("manifests", out _)) return MediaTypes.OciIndex;
            if (doc.RootElement.TryGetProperty("config", out _) && doc.RootElement.TryGetProperty("layers", out _)) return MediaTypes.OciManifest;
            return null;
        }
        catch (JsonException) { return null; }
    }

    /// <summary>The document's own "mediaType" field, if it has one.</summary>
    public static string? DeclaredMediaType(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("mediaType", out JsonElement mt) && mt.ValueKind == JsonValueKind.String
                ? mt.GetString() : null;
        }
        catch (JsonException) { return null; }
    }

    private static T Parse<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, info) ?? throw new ContentException($"{what}: document is null");
        }
        catch (JsonException e)
        {
            throw new ContentException($"{what}: invalid JSON: {e.Message}", e);
        }
    }
}
