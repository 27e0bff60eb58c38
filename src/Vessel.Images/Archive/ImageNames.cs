namespace Vessel.Images.Archive;

/// <summary>Docker reference spelling for archive metadata: "busybox" is familiar for
/// "docker.io/library/busybox". Names in the reference store are kept as given; these helpers only decide
/// what goes into RepoTags (familiar) and the index.json annotations (fully qualified).</summary>
public static class ImageNames
{
    /// <summary>True for a name that is an image ID (<c>sha256:&lt;64 hex&gt;</c>), not a repository reference.</summary>
    public static bool IsId(string name) => Content.Digest.TryParse(name, out _);

    /// <summary>The tag of a name ("latest" when it has none); null for digest references and IDs.</summary>
    public static string? Tag(string name)
    {
        if (name.Contains('@') || IsId(name)) return null;
        int slash = name.LastIndexOf('/');
        int colon = name.LastIndexOf(':');
        return colon > slash ? name[(colon + 1)..] : "latest";
    }

    /// <summary>"repo:tag" with ":latest" added when the name has no tag; null for digest references and IDs.</summary>
    public static string? WithTag(string name)
    {
        string? tag = Tag(name);
        if (tag is null) return null;
        return Repository(name) + ":" + tag;
    }

    /// <summary>The name without tag or digest.</summary>
    public static string Repository(string name)
    {
        int at = name.IndexOf('@');
        if (at >= 0) name = name[..at];
        int slash = name.LastIndexOf('/');
        int colon = name.LastIndexOf(':');
        return colon > slash ? name[..colon] : name;
    }

    /// <summary>docker.io/library/busybox:latest → busybox:latest (Docker's "familiar" form).</summary>
    public static string Familiar(string name)
    {
        if (name.StartsWith("docker.io/library/", StringComparison.Ordinal) && name.IndexOf('/', "docker.io/library/".Length) < 0)
            return name["docker.io/library/".Length..];
        if (name.StartsWith("docker.io/", StringComparison.Ordinal)) return name["docker.io/".Length..];
        return name;
    }

    /// <summary>busybox:latest → docker.io/library/busybox:latest (what containerd stores).</summary>
    public static string Qualified(string name)
    {
        int slash = name.IndexOf('/');
        string first = slash < 0 ? "" : name[..slash];
        bool hasDomain = slash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost");
        if (hasDomain) return name;
        return slash < 0 ? "docker.io/library/" + name : "docker.io/" + name;
    }
}
