using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Content;

namespace Vessel.Images.Registry;

/// <summary>docker's config.json shape: <c>{"auths":{"host":{"auth":"base64(user:pass)"}}}</c>; other fields are
/// carried through untouched.</summary>
internal sealed class AuthFile
{
    [JsonPropertyName("auths")] public Dictionary<string, AuthEntry>? Auths { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

internal sealed class AuthEntry
{
    [JsonPropertyName("auth")] public string? Auth { get; set; }
    [JsonPropertyName("username")] public string? Username { get; set; }
    [JsonPropertyName("password")] public string? Password { get; set; }
    [JsonPropertyName("identitytoken")] public string? IdentityToken { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>Token endpoint answer (distribution token spec).</summary>
internal sealed class TokenResponse
{
    [JsonPropertyName("token")] public string? Token { get; set; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; set; }
    [JsonPropertyName("expires_in")] public int? ExpiresIn { get; set; }
}

/// <summary>OCI distribution error body.</summary>
internal sealed class ErrorBody
{
    [JsonPropertyName("errors")] public List<ErrorItem>? Errors { get; set; }
}

internal sealed class ErrorItem
{
    [JsonPropertyName("code")] public string? Code { get; set; }
    [JsonPropertyName("message")] public string? Message { get; set; }
    [JsonPropertyName("detail")] public JsonElement? Detail { get; set; }
}

/// <summary>Per registry: blob digest → repositories it is known to be in (for cross-repository mounts).</summary>
internal sealed class BlobSourcesFile
{
    [JsonPropertyName("version")] public int Version { get; set; } = 1;
    [JsonPropertyName("registries")] public Dictionary<string, Dictionary<string, List<string>>> Registries { get; set; } = new(StringComparer.Ordinal);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(AuthFile))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(BlobSourcesFile))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
