namespace Vessel.Images.Registry;

public enum RegistryErrorKind
{
    /// <summary>401/403, or wrong credentials.</summary>
    Unauthorized,
    /// <summary>404 for a manifest, blob or repository.</summary>
    NotFound,
    /// <summary>429 (see <see cref="RegistryException.RetryAfter"/>).</summary>
    RateLimited,
    /// <summary>DNS failure, connection refused, TLS failure, timeout.</summary>
    Unreachable,
    /// <summary>The download was cut off (after retries).</summary>
    Interrupted,
    /// <summary>Anything else the registry answered that we cannot use (5xx, bad JSON, protocol violations).</summary>
    BadResponse,
}

/// <summary>A registry operation failed. <see cref="Exception.Message"/> is one line meant for the user.
/// Digest mismatches are reported as <see cref="Content.DigestMismatchException"/> instead.</summary>
public sealed class RegistryException : Exception
{
    public RegistryErrorKind Kind { get; }
    public string Registry { get; }
    /// <summary>HTTP status, when the registry answered.</summary>
    public int? StatusCode { get; }
    /// <summary>From a 429's Retry-After header.</summary>
    public TimeSpan? RetryAfter { get; }
    /// <summary>The first error code of the registry's JSON error body (e.g. MANIFEST_UNKNOWN).</summary>
    public string? ErrorCode { get; }

    public RegistryException(RegistryErrorKind kind, string registry, string message, int? statusCode = null,
        TimeSpan? retryAfter = null, string? errorCode = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Registry = registry;
        StatusCode = statusCode;
        RetryAfter = retryAfter;
        ErrorCode = errorCode;
    }
}
