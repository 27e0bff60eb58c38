using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vessel.Images.Content;

/// <summary>A content digest, <c>sha256:&lt;64 lowercase hex&gt;</c>. Only sha256 is accepted: every other
/// algorithm (sha512, blake3, ...) is rejected with a message that names it.</summary>
[JsonConverter(typeof(DigestJsonConverter))]
public readonly record struct Digest
{
    public const string Sha256 = "sha256";

    /// <summary>The 64 lowercase hex characters.</summary>
    public string Hex { get; }

    public string Algorithm => Sha256;

    private Digest(string hex) => Hex = hex;

    public static Digest Parse(string value)
    {
        if (!TryParse(value, out Digest d, out string? error))
            throw new FormatException(error);
        return d;
    }

    public static bool TryParse(string? value, out Digest digest) => TryParse(value, out digest, out _);

    public static bool TryParse(string? value, out Digest digest, [NotNullWhen(false)] out string? error)
    {
        digest = default;
        if (string.IsNullOrEmpty(value)) { error = "invalid digest: empty"; return false; }
        int colon = value.IndexOf(':');
        if (colon <= 0) { error = $"invalid digest \"{Shorten(value)}\": expected \"sha256:<64 hex digits>\""; return false; }
        string alg = value[..colon];
        if (alg != Sha256)
        {
            error = $"unsupported digest algorithm \"{Shorten(alg)}\" in \"{Shorten(value)}\": only sha256 is supported";
            return false;
        }
        string hex = value[(colon + 1)..];
        if (!IsHex64(hex))
        {
            error = $"invalid digest \"{Shorten(value)}\": sha256 needs exactly 64 lowercase hex digits";
            return false;
        }
        digest = new Digest(hex);
        error = null;
        return true;
    }

    /// <summary>Parses the bare 64-hex form (as used in file names).</summary>
    public static bool TryParseHex(string hex, out Digest digest)
    {
        digest = IsHex64(hex) ? new Digest(hex) : default;
        return digest.Hex is not null;
    }

    public static Digest FromHash(ReadOnlySpan<byte> sha256Hash)
    {
        if (sha256Hash.Length != 32) throw new ArgumentException("a sha256 hash is 32 bytes", nameof(sha256Hash));
        return new Digest(Convert.ToHexStringLower(sha256Hash));
    }

    public static Digest Compute(ReadOnlySpan<byte> data) => FromHash(SHA256.HashData(data));

    public static Digest Compute(Stream data) => FromHash(SHA256.HashData(data));

    public bool IsEmpty => Hex is null;

    /// <summary>First 12 hex digits, for messages.</summary>
    public string Short => Hex is null ? "<none>" : $"sha256:{Hex[..12]}";

    public override string ToString() => Hex is null ? "" : $"sha256:{Hex}";

    private static bool IsHex64(string s)
    {
        if (s.Length != 64) return false;
        foreach (char c in s)
            if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        return true;
    }

    private static string Shorten(string s) => s.Length > 80 ? s[..80] + "..." : s;
}

public sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("digest must be a string");
        string s = reader.GetString()!;
        if (!Digest.TryParse(s, out Digest d, out string? error)) throw new JsonException(error);
        return d;
    }

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
