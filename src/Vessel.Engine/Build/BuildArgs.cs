using Vessel.Images.Build.Containerfile;

namespace Vessel.Engine.Build;

/// <summary>ARG scoping as Docker does it: ARGs before the first FROM (meta args) are visible to FROM lines
/// only, until a stage re-declares them (<c>ARG NAME</c> without default takes the meta value); a --build-arg
/// overrides a declared default; the predefined proxy args are usable without declaration and stay out of the
/// history and the cache key unless declared; an ENV of the same name wins over an ARG for expansion.</summary>
public sealed class BuildArgs
{
    public static readonly string[] Predefined =
    [
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    ];

    private readonly IReadOnlyDictionary<string, string?> _given;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public BuildArgs(IReadOnlyDictionary<string, string?> given) => _given = given;

    /// <summary>The automatic platform args (BuildKit defines them in the global scope).</summary>
    public static Dictionary<string, string?> PlatformArgs(string arch) => new(StringComparer.Ordinal)
    {
        ["TARGETPLATFORM"] = "linux/" + arch, ["TARGETOS"] = "linux", ["TARGETARCH"] = arch, ["TARGETVARIANT"] = "",
        ["BUILDPLATFORM"] = "linux/" + arch, ["BUILDOS"] = "linux", ["BUILDARCH"] = arch, ["BUILDVARIANT"] = "",
    };

    /// <summary>Evaluates the meta args in order (each default may use the ones before).</summary>
    public Dictionary<string, string?> Meta(IReadOnlyList<ArgInstruction> metaArgs, ShellWords words, string arch)
    {
        var meta = PlatformArgs(arch);
        foreach (ArgInstruction a in metaArgs)
            foreach (var (name, raw) in a.Args)
            {
                string? value = _given.TryGetValue(name, out string? v) && v is not null ? v
                    : raw is null ? null : Expand(words, raw, n => meta.GetValueOrDefault(n), a.Pos);
                if (_given.ContainsKey(name)) _used.Add(name);
                meta[name] = value;
            }
        return meta;
    }

    /// <summary>The value of a stage's <c>ARG name[=default]</c>.</summary>
    public string? Declare(string name, string? expandedDefault, IReadOnlyDictionary<string, string?> meta)
    {
        if (_given.TryGetValue(name, out string? v))
        {
            _used.Add(name);
            if (v is not null) return v;
        }
        if (expandedDefault is not null) return expandedDefault;
        return meta.GetValueOrDefault(name);
    }

    /// <summary>A predefined arg given on the command line that no ARG declares: in RUN's environment only.</summary>
    public IEnumerable<KeyValuePair<string, string>> PredefinedGiven()
    {
        foreach (string p in Predefined)
            if (_given.TryGetValue(p, out string? v) && v is not null)
            {
                _used.Add(p);
                yield return new(p, v);
            }
    }

    /// <summary>--build-args that nothing declared (Docker warns about them).</summary>
    public IEnumerable<string> Unused => _given.Keys.Where(k => !_used.Contains(k)).Order(StringComparer.Ordinal);

    public static string Expand(ShellWords words, string raw, Func<string, string?> lookup, SourcePos pos)
    {
        try { return words.Word(raw, lookup); }
        catch (ShellWordException e) { throw new ContainerfileException(pos, e.Message); }
    }
}
