using System.Globalization;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.DockerApi;

/// <summary>docker's container create body (Config + HostConfig + NetworkingConfig) → the engine's
/// <see cref="ContainerCreateRequest"/>. Every option is either mapped, accepted because it changes nothing
/// (a default value, metadata), or refused with a message naming it: a docker option is never dropped silently.</summary>
internal static class CreateMapping
{
    /// <summary>Config keys that are mapped or harmless whatever their value.</summary>
    private static readonly HashSet<string> ConfigHandled =
    [
        "Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname", "Labels", "AttachStdin", "AttachStdout", "AttachStderr",
        "Tty", "OpenStdin", "StdinOnce", "ExposedPorts", "NetworkDisabled", "ArgsEscaped", "HostConfig", "NetworkingConfig", "StopSignal",
        "Domainname", "OnBuild", "Shell", "Platform", "StopTimeout", "Healthcheck", "Volumes",
    ];

    private static readonly HashSet<string> HostHandled =
    [
        "Memory", "MemorySwap", "MemorySwappiness", "NanoCpus", "CpuQuota", "CpuPeriod", "PidsLimit", "CapAdd", "CapDrop", "Privileged",
        "ReadonlyRootfs", "AutoRemove", "NetworkMode", "RestartPolicy", "LogConfig", "ConsoleSize", "Isolation", "CgroupnsMode", "IpcMode",
        "Runtime", "OomKillDisable", "PublishAllPorts", "Init", "SecurityOpt", "ShmSize", "ReadonlyPaths", "MaskedPaths",
        "Binds", "Mounts", "Tmpfs", "CpuShares", "PortBindings", "Links",
    ];

    public static (ContainerCreateRequest Request, List<string> Warnings) Map(JsonElement body, string? name)
    {
        if (body.ValueKind != JsonValueKind.Object) throw EngineException.Invalid("container config must be a JSON object");
        var warnings = new List<string>();
        string image = Str(body, "Image") ?? "";
        if (image.Length == 0) throw EngineException.Invalid("no image given (config.Image is empty)");
        foreach (JsonProperty p in body.EnumerateObject())
            if (!ConfigHandled.Contains(p.Name) && !IsEmpty(p.Value)) throw Unsupported($"Config.{p.Name}");
        // -t, -i as `vessel create -t -i`: StdinOnce (docker run -i without -d) closes stdin when the attached client's ends.
        bool tty = Bool(body, "Tty"), openStdin = Bool(body, "OpenStdin"), stdinOnce = openStdin && Bool(body, "StdinOnce");
        if (!string.IsNullOrEmpty(Str(body, "Domainname"))) throw Unsupported("Config.Domainname");

        JsonElement host = body.TryGetProperty("HostConfig", out JsonElement h) && h.ValueKind == JsonValueKind.Object ? h : default;
        long? memory = null, pids = null;
        double? cpus = null;
        bool privileged = false, readOnly = false, autoRemove = false, init = false;
        List<string>? capAdd = null, capDrop = null, securityOpt = null, binds = null, tmpfs = null, mounts = null;
        string? restart = null;
        long? cpuShares = null;
        if (host.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty p in host.EnumerateObject())
                if (!HostHandled.Contains(p.Name) && !IsEmpty(p.Value)) throw Unsupported($"HostConfig.{p.Name}");
            memory = Long(host, "Memory") is > 0 and var m ? m : null;
            if (Long(host, "MemorySwap") is long swap && swap != 0 && swap != -1 && swap != memory)
                throw Unsupported("HostConfig.MemorySwap (a swap limit)");
            if (Long(host, "NanoCpus") is > 0 and var nano) cpus = nano / 1e9;
            if (Long(host, "CpuQuota") is > 0 and var quota)
            {
                if (cpus is not null) throw EngineException.Invalid("conflicting options: NanoCpus and CpuQuota cannot both be set");
                cpus = quota / (double)(Long(host, "CpuPeriod") is > 0 and var period ? period : 100_000);
            }
            pids = Long(host, "PidsLimit") is > 0 and var pl ? pl : null;
            capAdd = Strings(host, "CapAdd");
            capDrop = Strings(host, "CapDrop");
            privileged = Bool(host, "Privileged");
            readOnly = Bool(host, "ReadonlyRootfs");
            autoRemove = Bool(host, "AutoRemove");
            if (host.TryGetProperty("RestartPolicy", out JsonElement rp) && Str(rp, "Name") is { Length: > 0 } policy && policy != "no")
                restart = policy == "on-failure" && Long(rp, "MaximumRetryCount") is > 0 and var max ? $"on-failure:{Invariant(max)}" : policy;
            init = Bool(host, "Init");
            securityOpt = Strings(host, "SecurityOpt") is { Count: > 0 } so ? so : null;
            binds = Strings(host, "Binds") is { Count: > 0 } b ? b : null;
            cpuShares = Long(host, "CpuShares") is > 0 and var shares ? shares : null;
            if (host.TryGetProperty("Tmpfs", out JsonElement tm) && tm.ValueKind == JsonValueKind.Object)
                tmpfs = tm.EnumerateObject().Select(p => p.Value.GetString() is { Length: > 0 } opts ? $"{p.Name}:{opts}" : p.Name).ToList();
            if (host.TryGetProperty("Mounts", out JsonElement ms) && ms.ValueKind == JsonValueKind.Array)
                mounts = ms.EnumerateArray().Select(MountSpec).ToList();
            if (host.TryGetProperty("LogConfig", out JsonElement lc))
            {
                if (Str(lc, "Type") is { Length: > 0 } t && t != "json-file") throw Unsupported($"the {t} log driver (Vessel keeps json-file logs)");
                if (lc.TryGetProperty("Config", out JsonElement lcc) && !IsEmpty(lcc)) throw Unsupported("HostConfig.LogConfig.Config (log options)");
            }
            if (Str(host, "Isolation") is { Length: > 0 } iso && iso != "default") throw Unsupported($"HostConfig.Isolation {iso}");
            if (Str(host, "CgroupnsMode") is { Length: > 0 } cg && cg != "private") throw Unsupported($"HostConfig.CgroupnsMode {cg}");
            if (Str(host, "IpcMode") is { Length: > 0 } ipc && ipc is not ("private" or "shareable")) throw Unsupported($"HostConfig.IpcMode {ipc}");
            if (Str(host, "Runtime") is { Length: > 0 } rt && rt is not ("runc" or "vessel-runc")) throw Unsupported($"the {rt} runtime");
            if (Bool(host, "OomKillDisable")) throw Unsupported("HostConfig.OomKillDisable");
            if (Long(host, "ShmSize") is > 0) throw Unsupported("HostConfig.ShmSize");
            if (Long(host, "MemorySwappiness") is long sw && sw != -1) throw Unsupported("HostConfig.MemorySwappiness");
            foreach (string k in new[] { "ReadonlyPaths", "MaskedPaths" })
                if (host.TryGetProperty(k, out JsonElement v) && v.ValueKind == JsonValueKind.Array) throw Unsupported($"HostConfig.{k}");
        }

        // Config.Volumes (docker run -v /path, compose's anonymous volumes): anonymous volumes, as -v /path.
        if (body.TryGetProperty("Volumes", out JsonElement vols) && vols.ValueKind == JsonValueKind.Object)
            foreach (JsonProperty v in vols.EnumerateObject())
                if (binds?.Any(b => b.Split(':').ElementAtOrDefault(1) == v.Name || b == v.Name) != true && mounts?.Any(m => m.Contains("target=" + v.Name, StringComparison.Ordinal)) != true)
                    (binds ??= []).Add(v.Name);
        List<string>? entrypoint = Strings(body, "Entrypoint");
        if (entrypoint is [""]) entrypoint = []; // --entrypoint "": clear the image's
        var labels = body.TryGetProperty("Labels", out JsonElement l) && l.ValueKind == JsonValueKind.Object
            ? l.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.ToString())
            : null;
        var req = new ContainerCreateRequest
        {
            Tty = tty, OpenStdin = openStdin, StdinOnce = stdinOnce,
            Image = image, Name = string.IsNullOrEmpty(name) ? null : name, Cmd = Strings(body, "Cmd"), Entrypoint = entrypoint,
            Env = Strings(body, "Env"), WorkingDir = NullIfEmpty(Str(body, "WorkingDir")), User = NullIfEmpty(Str(body, "User")),
            Hostname = NullIfEmpty(Str(body, "Hostname")), Memory = memory, PidsLimit = pids, Cpus = cpus, ReadOnly = readOnly,
            CapAdd = capAdd is { Count: > 0 } ? capAdd : null, CapDrop = capDrop is { Count: > 0 } ? capDrop : null, Privileged = privileged,
            Labels = labels is { Count: > 0 } ? labels : null, AutoRemove = autoRemove,
            Binds = binds, Mounts = mounts is { Count: > 0 } ? mounts : null, Tmpfs = tmpfs is { Count: > 0 } ? tmpfs : null, Restart = restart,
            StopSignal = NullIfEmpty(Str(body, "StopSignal")), StopTimeout = Long(body, "StopTimeout") is long st ? (int)st : null, Init = init,
            SecurityOpt = securityOpt, Healthcheck = Health(body), CpuShares = cpuShares,
        };
        return (NetworkMapping.Apply(body, host, req, warnings), warnings);
    }

    private static EngineException Unsupported(string what) => DockerErrors.NotSupported(what);

    /// <summary>A HostConfig.Mounts entry → the --mount syntax the engine parses.</summary>
    private static string MountSpec(JsonElement m)
    {
        var parts = new List<string> { "type=" + (Str(m, "Type") ?? "volume") };
        if (Str(m, "Source") is { Length: > 0 } src) parts.Add("source=" + src);
        parts.Add("target=" + (Str(m, "Target") ?? throw EngineException.Invalid("mount without a Target")));
        if (Bool(m, "ReadOnly")) parts.Add("readonly");
        if (m.TryGetProperty("BindOptions", out JsonElement bo) && Str(bo, "Propagation") is { Length: > 0 } prop) parts.Add("bind-propagation=" + prop);
        if (m.TryGetProperty("BindOptions", out bo) && Bool(bo, "NonRecursive")) parts.Add("bind-nonrecursive");
        if (m.TryGetProperty("VolumeOptions", out JsonElement vo))
        {
            if (Bool(vo, "NoCopy")) parts.Add("volume-nocopy");
            if (vo.TryGetProperty("Labels", out JsonElement vl) && vl.ValueKind == JsonValueKind.Object)
                parts.AddRange(vl.EnumerateObject().Select(p => $"volume-label={p.Name}={p.Value}"));
            if (vo.TryGetProperty("DriverConfig", out JsonElement dc) && !IsEmpty(dc)) throw Unsupported("volume drivers");
        }
        if (m.TryGetProperty("TmpfsOptions", out JsonElement to))
        {
            if (Long(to, "SizeBytes") is > 0 and var size) parts.Add("tmpfs-size=" + Invariant(size));
            if (Long(to, "Mode") is > 0 and var mode) parts.Add("tmpfs-mode=" + Convert.ToString(mode, 8));
        }
        return string.Join(',', parts);
    }

    /// <summary>Config.Healthcheck (durations in nanoseconds) → the engine's health config (duration strings).</summary>
    private static ContainerHealthConfig? Health(JsonElement body)
    {
        if (!body.TryGetProperty("Healthcheck", out JsonElement h) || IsEmpty(h)) return null;
        static string? Dur(JsonElement h, string k) => Long(h, k) is > 0 and var ns ? Invariant(ns / 1_000_000) + "ms" : null;
        return new ContainerHealthConfig
        {
            Test = Strings(h, "Test"), Interval = Dur(h, "Interval"), Timeout = Dur(h, "Timeout"), StartPeriod = Dur(h, "StartPeriod"),
            Retries = Long(h, "Retries") is > 0 and var r ? (int)r : null,
        };
    }

    /// <summary>null, false, 0, "", [] and objects whose members are all empty: what clients send for "not set".</summary>
    public static bool IsEmpty(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined or JsonValueKind.False => true,
        JsonValueKind.Number => v.TryGetDouble(out double d) && d == 0,
        JsonValueKind.String => v.GetString()!.Length == 0,
        JsonValueKind.Array => v.EnumerateArray().All(IsEmpty),
        JsonValueKind.Object => v.EnumerateObject().All(p => IsEmpty(p.Value)),
        _ => false,
    };

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    public static string? Str(JsonElement o, string key) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool Bool(JsonElement o, string key) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.True;

    public static long? Long(JsonElement o, string key) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) ? n : null;

    /// <summary>A string array, or a single string (docker's StrSlice accepts both); null when absent or null.</summary>
    public static List<string>? Strings(JsonElement o, string key)
    {
        if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty(key, out JsonElement v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Array => v.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : x.ToString()).ToList(),
            JsonValueKind.String => [v.GetString()!],
            _ => null,
        };
    }

    public static string Invariant(long n) => n.ToString(CultureInfo.InvariantCulture);
}
