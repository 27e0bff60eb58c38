using System.Text.Json;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>--security-opt: seccomp=unconfined|PROFILE (the CLI sends the file's JSON, as docker's does),
/// no-new-privileges[:true|false], systempaths=unconfined; label=… and apparmor=… are accepted and have no effect
/// (this host runs neither SELinux nor AppArmor for containers), as docker on such a host. Anything else is refused.</summary>
public sealed record SecurityOptions
{
    public bool SeccompUnconfined { get; init; }
    /// <summary>A docker-format seccomp profile (JSON), or null for the default profile.</summary>
    public string? SeccompProfile { get; init; }
    public bool NoNewPrivileges { get; init; }
    public bool SystemPathsUnconfined { get; init; }

    public static SecurityOptions Parse(IEnumerable<string>? opts)
    {
        var r = new SecurityOptions();
        foreach (string opt in opts ?? [])
        {
            // docker accepts key=value and the older key:value.
            int sep = opt.IndexOfAny(['=', ':']);
            string key = sep < 0 ? opt : opt[..sep], value = sep < 0 ? "" : opt[(sep + 1)..];
            switch (key)
            {
                case "no-new-privileges":
                    r = r with
                    {
                        NoNewPrivileges = value switch
                        {
                            "" or "true" or "1" => true,
                            "false" or "0" => false,
                            _ => throw EngineException.Invalid($"invalid --security-opt \"{opt}\": no-new-privileges takes true or false"),
                        },
                    };
                    break;
                case "seccomp":
                    if (value.Length == 0) throw EngineException.Invalid($"invalid --security-opt \"{opt}\": seccomp needs unconfined or a profile");
                    r = value == "unconfined" ? r with { SeccompUnconfined = true, SeccompProfile = null } : r with { SeccompUnconfined = false, SeccompProfile = value };
                    break;
                case "systempaths":
                    if (value != "unconfined") throw EngineException.Invalid($"invalid --security-opt \"{opt}\": systempaths takes only unconfined");
                    r = r with { SystemPathsUnconfined = true };
                    break;
                case "label" or "apparmor":
                    break; // no SELinux/AppArmor confinement here: accepted without effect (docker does the same on such hosts)
                default:
                    throw EngineException.Invalid($"invalid --security-opt \"{opt}\": use seccomp=unconfined|PROFILE.json, no-new-privileges[:true|false], systempaths=unconfined, label=… or apparmor=…");
            }
        }
        return r;
    }

    /// <summary>A seccomp profile in docker's format (defaultAction, architectures or archMap, syscalls with names,
    /// action, args, errnoRet, includes/excludes of caps, arches and minKernel) as an OCI LinuxSeccomp for a container
    /// with <paramref name="caps"/>. Rules whose includes/excludes don't match are dropped, as moby does.</summary>
    public static LinuxSeccomp FromDockerProfile(string json, IReadOnlyCollection<string> caps)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new JsonException("a profile is a JSON object");
            var profile = new LinuxSeccomp
            {
                DefaultAction = Str(root, "defaultAction") ?? throw new JsonException("defaultAction is required"),
                DefaultErrnoRet = root.TryGetProperty("defaultErrnoRet", out var de) && de.ValueKind == JsonValueKind.Number ? de.GetUInt32() : null,
                Flags = Strings(root, "flags"),
                Syscalls = [],
            };
            const string native = "SCMP_ARCH_X86_64";
            var arches = Strings(root, "architectures") ?? [];
            if (root.TryGetProperty("archMap", out var map) && map.ValueKind == JsonValueKind.Array)
                foreach (var a in map.EnumerateArray())
                    if (Str(a, "architecture") == native)
                        arches = [native, .. Strings(a, "subArchitectures") ?? []];
            profile.Architectures = arches.Count > 0 ? arches : null;
            if (root.TryGetProperty("syscalls", out var calls) && calls.ValueKind == JsonValueKind.Array)
                foreach (var c in calls.EnumerateArray())
                {
                    if (c.TryGetProperty("includes", out var inc) && !Matches(inc, caps, all: true)) continue;
                    if (c.TryGetProperty("excludes", out var exc) && Matches(exc, caps, all: false)) continue;
                    var names = Strings(c, "names") ?? (Str(c, "name") is { } one ? [one] : null);
                    if (names is null or { Count: 0 }) continue;
                    var rule = new LinuxSyscall
                    {
                        Names = names, Action = Str(c, "action") ?? throw new JsonException("a syscall rule needs an action"),
                        ErrnoRet = c.TryGetProperty("errnoRet", out var er) && er.ValueKind == JsonValueKind.Number ? er.GetUInt32() : null,
                    };
                    if (c.TryGetProperty("args", out var args) && args.ValueKind == JsonValueKind.Array)
                        rule.Args = args.EnumerateArray().Select(a => new LinuxSeccompArg
                        {
                            Index = a.GetProperty("index").GetUInt32(), Value = a.TryGetProperty("value", out var v) ? v.GetUInt64() : 0,
                            ValueTwo = a.TryGetProperty("valueTwo", out var v2) ? v2.GetUInt64() : 0, Op = Str(a, "op"),
                        }).ToList();
                    profile.Syscalls.Add(rule);
                }
            return profile;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw EngineException.Invalid($"invalid seccomp profile: {e.Message}");
        }
    }

    /// <summary>includes (all listed conditions hold) / excludes (any holds) of a docker profile rule.</summary>
    private static bool Matches(JsonElement filter, IReadOnlyCollection<string> caps, bool all)
    {
        var conditions = new List<bool>();
        if (Strings(filter, "caps") is { Count: > 0 } c) conditions.Add(all ? c.All(caps.Contains) : c.Any(caps.Contains));
        if (Strings(filter, "arches") is { Count: > 0 } a) conditions.Add(a.Contains("amd64") || a.Contains("x86_64"));
        if (Str(filter, "minKernel") is { Length: > 0 } k && Version.TryParse(k, out var min))
        {
            var parts = Engine.Kernel.Split('.', '-');
            conditions.Add(parts.Length >= 2 && Version.TryParse(parts[0] + "." + parts[1], out var have) && have >= min);
        }
        return conditions.Count == 0 ? all : all ? conditions.All(x => x) : conditions.Any(x => x);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static List<string>? Strings(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList() : null;
}
