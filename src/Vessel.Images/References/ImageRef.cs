using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Vessel.Images.Content;

namespace Vessel.Images.References;

/// <summary>A parsed, normalised image reference, following docker's grammar (distribution/reference):
/// <c>[registry[:port]/]path[:tag][@sha256:hex]</c>. "busybox" becomes <c>docker.io/library/busybox:latest</c>;
/// a reference without a tag or digest gets the tag "latest"; <c>name:tag@digest</c> keeps both (the digest
/// wins when pulling). The first path component is a registry when it contains '.' or ':', is "localhost",
/// or is a bracketed IPv6 address.</summary>
public sealed partial record ImageRef
{
    public const string DockerHub = "docker.io";
    /// <summary>Where docker.io's API actually lives.</summary>
    public const string DockerHubApiHost = "registry-1.docker.io";
    public const string DefaultTag = "latest";
    private const int MaxNameLength = 255;

    /// <summary>Registry host, with port if any: "docker.io", "localhost:5000", "[::1]:5000".</summary>
    public string Registry { get; }
    /// <summary>Repository path within the registry: "library/busybox", "a/b".</summary>
    public string Repository { get; }
    public string? Tag { get; }
    public Digest? Digest { get; }

    private ImageRef(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>registry/repository, e.g. "docker.io/library/busybox".</summary>
    public string Name => $"{Registry}/{Repository}";

    /// <summary>What goes after /manifests/: the digest when there is one, else the tag.</summary>
    public string ManifestReference => Digest is Digest d ? d.ToString() : Tag ?? DefaultTag;

    /// <summary>Host (and port) the HTTP API is reached at: docker.io is served by registry-1.docker.io.</summary>
    public string ApiHost => Registry == DockerHub ? DockerHubApiHost : Registry;

    /// <summary>The same repository with another tag (and no digest).</summary>
    public ImageRef WithTag(string tag)
    {
        if (!TagRegex().IsMatch(tag)) throw new FormatException($"invalid tag \"{tag}\": must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}");
        return new ImageRef(Registry, Repository, tag, null);
    }

    /// <summary>The same repository pinned to a digest (no tag).</summary>
    public ImageRef WithDigest(Digest digest) => new(Registry, Repository, null, digest);

    /// <summary>Normalised form: "docker.io/library/busybox:latest", "x@sha256:…", "x:tag@sha256:…".</summary>
    public override string ToString() =>
        Name + (Tag is null ? "" : ":" + Tag) + (Digest is Digest d ? "@" + d : "");

    /// <summary>Docker's short form: "busybox:1.36", "user/app:tag", "localhost:5000/x:tag".</summary>
    public string Familiar
    {
        get
        {
            string name = Registry == DockerHub
                ? (Repository.StartsWith("library/", StringComparison.Ordinal) && Repository.IndexOf('/', 8) < 0 ? Repository[8..] : Repository)
                : Name;
            return name + (Tag is null ? "" : ":" + Tag) + (Digest is Digest d ? "@" + d : "");
        }
    }

    public static ImageRef Parse(string reference)
    {
        if (!TryParse(reference, out ImageRef? r, out string? error)) throw new FormatException(error);
        return r;
    }

    public static bool TryParse(string? reference, [NotNullWhen(true)] out ImageRef? result, [NotNullWhen(false)] out string? error)
    {
        result = null;
        if (string.IsNullOrEmpty(reference)) { error = "invalid reference format: empty"; return false; }
        string shown = reference.Length > 300 ? reference[..300] + "..." : reference;
        foreach (char c in reference)
            if (c <= ' ' || c >= 0x7f)
            {
                error = $"invalid reference \"{Printable(shown)}\": contains whitespace, a control or a non-ASCII character";
                return false;
            }

        string rest = reference;
        Digest? digest = null;
        int at = rest.IndexOf('@');
        if (at >= 0)
        {
            string ds = rest[(at + 1)..];
            rest = rest[..at];
            if (!Content.Digest.TryParse(ds, out Digest d, out string? derr))
            {
                error = $"invalid reference \"{shown}\": {derr}";
                return false;
            }
            digest = d;
        }

        string? tag = null;
        int lastSlash = rest.LastIndexOf('/');
        int colon = rest.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagRegex().IsMatch(tag))
            {
                error = $"invalid reference \"{shown}\": invalid tag \"{tag}\" (allowed: letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')";
                return false;
            }
        }
        if (rest.Length == 0) { error = $"invalid reference \"{shown}\": no repository name"; return false; }

        string registry;
        string path;
        int slash = rest.IndexOf('/');
        string first = slash < 0 ? rest : rest[..slash];
        if (slash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost" || first.StartsWith('[')))
        {
            registry = first;
            path = rest[(slash + 1)..];
            if (!DomainRegex().IsMatch(registry))
            {
                error = $"invalid reference \"{shown}\": invalid registry host \"{registry}\"";
                return false;
            }
            if (registry == "index.docker.io" || registry == DockerHubApiHost) registry = DockerHub;
        }
        else
        {
            registry = DockerHub;
            path = rest;
        }
        if (path.Length == 0) { error = $"invalid reference \"{shown}\": no repository name after the registry"; return false; }
        if (registry == DockerHub && !path.Contains('/')) path = "library/" + path;

        if (path.Any(char.IsAsciiLetterUpper))
        {
            error = $"invalid reference \"{shown}\": repository name must be lowercase";
            return false;
        }
        foreach (string component in path.Split('/'))
        {
            if (!ComponentRegex().IsMatch(component))
            {
                error = component.Length == 0
                    ? $"invalid reference \"{shown}\": empty path component (double or trailing '/')"
                    : $"invalid reference \"{shown}\": invalid path component \"{component}\" (lowercase letters, digits and single '.', '_', '__' or '-' separators)";
                return false;
            }
        }
        if (registry == DockerHub && path.StartsWith("library/", StringComparison.Ordinal) && path.Length == 72 && Hex64Regex().IsMatch(path[8..])
            && !reference.Contains('/'))
        {
            error = $"invalid reference \"{shown}\": a bare 64-digit hex string is an image ID, not a repository name";
            return false;
        }
        if (registry.Length + 1 + path.Length > MaxNameLength)
        {
            error = $"invalid reference \"{shown}\": repository name is longer than {MaxNameLength} characters";
            return false;
        }
        if (tag is null && digest is null) tag = DefaultTag;
        result = new ImageRef(registry, path, tag, digest);
        error = null;
        return true;
    }

    /// <summary>Whether the registry host is a loopback address (reached over plain HTTP by default).</summary>
    public static bool IsLoopback(string registryHost)
    {
        string host = HostOf(registryHost);
        if (host == "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal)) return true;
        return System.Net.IPAddress.TryParse(host, out System.Net.IPAddress? ip) && System.Net.IPAddress.IsLoopback(ip);
    }

    /// <summary>The host without its port (and without IPv6 brackets).</summary>
    public static string HostOf(string registryHost)
    {
        if (registryHost.StartsWith('['))
        {
            int end = registryHost.IndexOf(']');
            return end > 0 ? registryHost[1..end] : registryHost;
        }
        int colon = registryHost.LastIndexOf(':');
        return colon >= 0 ? registryHost[..colon] : registryHost;
    }

    private static string Printable(string s) => new(s.Select(c => c < ' ' || c >= 0x7f ? '?' : c).ToArray());

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentRegex();

    [GeneratedRegex(@"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")]
    private static partial Regex DomainRegex();

    [GeneratedRegex(@"^[a-f0-9]{64}$")]
    private static partial Regex Hex64Regex();
}
