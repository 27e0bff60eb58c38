namespace Vessel.Images.Oci;

/// <summary>A requested platform, "os/arch[/variant]", normalised the way containerd does
/// (x86_64→amd64, aarch64→arm64, arm64 variant v8 is the default, arm defaults to v7, amd64 v1 == none).</summary>
public sealed record PlatformSpec(string Os, string Architecture, string? Variant)
{
    public static PlatformSpec Default { get; } = new("linux", "amd64", null);

    public static PlatformSpec Parse(string s)
    {
        string[] parts = s.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
            throw new FormatException($"invalid platform \"{s}\": expected os/arch[/variant], e.g. linux/arm64");
        return Normalize(parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
    }

    public static PlatformSpec Normalize(string os, string arch, string? variant)
    {
        os = os.ToLowerInvariant();
        arch = arch.ToLowerInvariant();
        variant = string.IsNullOrEmpty(variant) ? null : variant.ToLowerInvariant();
        switch (arch)
        {
            case "x86_64" or "x86-64" or "amd64":
                arch = "amd64";
                if (variant == "v1") variant = null;
                break;
            case "aarch64" or "arm64":
                arch = "arm64";
                if (variant is "v8" or "8") variant = null;
                break;
            case "armhf":
                arch = "arm"; variant = "v7"; break;
            case "armel":
                arch = "arm"; variant = "v6"; break;
            case "arm":
                variant = variant switch { null or "7" => "v7", "5" => "v5", "6" => "v6", "8" => "v8", _ => variant };
                break;
            case "i386" or "i686" or "386":
                arch = "386"; break;
        }
        return new PlatformSpec(os, arch, variant);
    }

    public bool Matches(Platform? p)
    {
        if (p is null) return false;
        PlatformSpec other = Normalize(p.Os, p.Architecture, p.Variant);
        return other.Os == Os && other.Architecture == Architecture && other.Variant == Variant;
    }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}
