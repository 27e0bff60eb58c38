using System.Globalization;

namespace Vessel.Engine.Volumes;

/// <summary>A mount a container asked for, parsed from docker's -v, --mount or --tmpfs syntax (not yet resolved:
/// a volume Source is a name, or null for an anonymous volume).</summary>
public sealed record MountRequest
{
    /// <summary>volume, bind or tmpfs.</summary>
    public required string Type { get; init; }
    /// <summary>Volume name (null: anonymous) or absolute host path (bind); null for tmpfs.</summary>
    public string? Source { get; init; }
    public required string Target { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>Bind propagation (shared, rshared, slave, rslave, private, rprivate); null: rprivate.</summary>
    public string? Propagation { get; init; }
    /// <summary>Don't copy the image's content into a new, empty volume.</summary>
    public bool NoCopy { get; init; }
    /// <summary>-v creates a missing bind source directory (docker's legacy behaviour); --mount refuses it.</summary>
    public bool CreateSource { get; init; }
    /// <summary>A bind without its submounts (bind-nonrecursive).</summary>
    public bool NonRecursive { get; init; }
    /// <summary>tmpfs mount options (size=, mode=, noexec, …) after docker's defaults.</summary>
    public List<string>? TmpfsOptions { get; init; }
    /// <summary>Labels for a volume --mount creates (volume-label).</summary>
    public Dictionary<string, string>? VolumeLabels { get; init; }
}

/// <summary>docker's mount syntaxes (moby volume/mounts/linux_parser.go, docker/cli opts/mount.go). Pure.</summary>
public static class MountParser
{
    public static readonly string[] Propagations = ["shared", "rshared", "slave", "rslave", "private", "rprivate"];

    /// <summary>Options tmpfs mounts get before the user's (docker: rw,noexec,nosuid,nodev).</summary>
    public static readonly string[] TmpfsDefaults = ["nosuid", "nodev", "noexec"];

    private static readonly HashSet<string> TmpfsFlags =
    [
        "rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "norelatime",
        "strictatime", "nostrictatime", "diratime", "nodiratime", "sync", "async", "dirsync", "mand", "nomand", "lazytime", "nolazytime",
    ];

    private static readonly HashSet<string> TmpfsData = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol", "inode64", "noswap"];

    /// <summary><c>-v</c>: <c>/path</c> (anonymous volume), <c>NAME:/path[:opts]</c>, <c>/host:/path[:opts]</c>;
    /// opts: rw|ro, z|Z, a propagation, nocopy, consistent|cached|delegated, comma-separated.</summary>
    public static MountRequest ParseBind(string raw)
    {
        string[] arr = raw.Split(':', 4);
        if (arr[0].Length == 0) throw Invalid(raw);
        string? source = null;
        string target, mode = "";
        switch (arr.Length)
        {
            case 1: target = arr[0]; break;
            case 2:
                if (ValidMode(arr[1])) throw Invalid(raw); // /foo:rw: a destination with a mode but no source
                source = arr[0]; target = arr[1]; break;
            case 3: source = arr[0]; target = arr[1]; mode = arr[2]; break;
            default: throw Invalid(raw);
        }
        if (!ValidMode(mode)) throw EngineException.Invalid($"invalid mode: {mode}");
        var opts = mode.Length == 0 ? [] : mode.Split(',');
        bool bind = source is not null && source.StartsWith('/');
        string type = bind ? "bind" : "volume";
        if (source is not null && !bind && !VolumeService.ValidName(source))
            throw EngineException.Invalid($"\"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path");
        string? propagation = opts.FirstOrDefault(Propagations.Contains);
        if (propagation is not null && !bind) throw EngineException.Invalid($"invalid mount config for type \"volume\": propagation \"{propagation}\" applies to binds only ('{raw}')");
        if (opts.Contains("nocopy") && bind) throw EngineException.Invalid($"invalid mode: {mode}: nocopy applies to volumes only");
        return Check(new MountRequest
        {
            Type = type, Source = source is null ? null : bind ? Clean(source) : source, Target = target,
            ReadOnly = opts.Contains("ro"), Propagation = propagation, NoCopy = opts.Contains("nocopy"), CreateSource = bind,
        }, raw);
    }

    /// <summary>The mode of a -v: empty, or comma-separated options with at most one of each kind.</summary>
    public static bool ValidMode(string mode)
    {
        if (mode.Length == 0) return true;
        int rw = 0, label = 0, prop = 0, copy = 0, consistency = 0;
        foreach (string o in mode.Split(','))
        {
            if (o is "rw" or "ro") rw++;
            else if (o is "z" or "Z") label++;
            else if (Propagations.Contains(o)) prop++;
            else if (o == "nocopy") copy++;
            else if (o is "consistent" or "cached" or "delegated") consistency++;
            else return false;
        }
        return rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && consistency <= 1;
    }

    /// <summary><c>--mount type=volume|bind|tmpfs,source=…,target=…,readonly,…</c> (type defaults to volume).</summary>
    public static MountRequest ParseMount(string raw)
    {
        string type = "volume";
        string? source = null, target = null, propagation = null, tmpfsSize = null, tmpfsMode = null;
        bool ro = false, nocopy = false, nonRecursive = false, volumeOptions = false, bindOptions = false, tmpfsOptions = false;
        var labels = new Dictionary<string, string>();
        foreach (string field in SplitCsv(raw))
        {
            int eq = field.IndexOf('=');
            string key = (eq < 0 ? field : field[..eq]).Trim().ToLowerInvariant();
            string? value = eq < 0 ? null : field[(eq + 1)..];
            if (value is null && key is not ("readonly" or "ro" or "volume-nocopy" or "bind-nonrecursive"))
                throw EngineException.Invalid($"invalid field '{field}' must be a key=value pair");
            switch (key)
            {
                case "type": type = value!.ToLowerInvariant(); break;
                case "source" or "src": source = value; break;
                case "target" or "destination" or "dst": target = value; break;
                case "readonly" or "ro": ro = Bool(key, value); break;
                case "bind-propagation":
                    if (!Propagations.Contains(value!)) throw EngineException.Invalid($"invalid bind-propagation \"{value}\": use one of {string.Join(", ", Propagations)}");
                    propagation = value; bindOptions = true; break;
                case "bind-nonrecursive": nonRecursive = Bool(key, value); bindOptions = true; break;
                case "volume-nocopy": nocopy = Bool(key, value); volumeOptions = true; break;
                case "volume-label":
                    int leq = value!.IndexOf('=');
                    labels[leq < 0 ? value : value[..leq]] = leq < 0 ? "" : value[(leq + 1)..];
                    volumeOptions = true; break;
                case "volume-driver":
                    if (value != "local") throw EngineException.Invalid($"volume driver \"{value}\" is not supported: Vessel has the local driver only");
                    volumeOptions = true; break;
                case "volume-opt":
                    throw EngineException.Invalid($"volume-opt is not supported: the local driver keeps volumes as directories under the state root");
                case "tmpfs-size": tmpfsSize = value; tmpfsOptions = true; break;
                case "tmpfs-mode": tmpfsMode = value; tmpfsOptions = true; break;
                case "consistency": break; // macOS only, as docker
                default: throw EngineException.Invalid($"unexpected key '{key}' in '{field}'");
            }
        }
        if (type is not ("volume" or "bind" or "tmpfs")) throw EngineException.Invalid($"invalid mount type \"{type}\": use volume, bind or tmpfs");
        if (string.IsNullOrEmpty(target)) throw EngineException.Invalid("invalid --mount: target is required");
        string Cfg(string what) => $"invalid mount config for type \"{type}\": {what}";
        if (type != "volume" && volumeOptions) throw EngineException.Invalid(Cfg("field VolumeOptions must not be specified"));
        if (type != "bind" && bindOptions) throw EngineException.Invalid(Cfg("field BindOptions must not be specified"));
        if (type != "tmpfs" && tmpfsOptions) throw EngineException.Invalid(Cfg("field TmpfsOptions must not be specified"));
        if (type == "bind" && string.IsNullOrEmpty(source)) throw EngineException.Invalid(Cfg("field Source must not be empty"));
        if (type == "bind" && !source!.StartsWith('/')) throw EngineException.Invalid(Cfg($"invalid mount path: '{source}' mount path must be absolute"));
        if (type == "tmpfs" && !string.IsNullOrEmpty(source)) throw EngineException.Invalid(Cfg("field Source must not be specified"));
        if (type == "volume" && !string.IsNullOrEmpty(source) && !VolumeService.ValidName(source))
            throw EngineException.Invalid(Cfg($"invalid volume name \"{source}\": only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"));
        List<string>? tmpfs = null;
        if (type == "tmpfs")
        {
            tmpfs = [.. TmpfsDefaults];
            if (tmpfsSize is not null) tmpfs.Add("size=" + ParseSize(tmpfsSize, "tmpfs-size").ToString(CultureInfo.InvariantCulture));
            if (tmpfsMode is not null)
            {
                try { tmpfs.Add("mode=" + Convert.ToString(Convert.ToInt32(tmpfsMode, 8) & 0xfff, 8)); }
                catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
                { throw EngineException.Invalid($"invalid tmpfs-mode \"{tmpfsMode}\": expected an octal mode like 1777"); }
            }
        }
        return Check(new MountRequest
        {
            Type = type, Source = string.IsNullOrEmpty(source) ? null : type == "bind" ? Clean(source) : source, Target = target, ReadOnly = ro,
            Propagation = propagation, NoCopy = nocopy, NonRecursive = nonRecursive, TmpfsOptions = tmpfs,
            VolumeLabels = labels.Count > 0 ? labels : null,
        }, raw);
    }

    /// <summary><c>--tmpfs /path[:options]</c>; options are tmpfs mount options (size=64m, mode=1777, exec, …).</summary>
    public static MountRequest ParseTmpfs(string raw)
    {
        int colon = raw.IndexOf(':');
        string target = colon < 0 ? raw : raw[..colon];
        var options = new List<string>(TmpfsDefaults);
        if (colon >= 0)
            foreach (string o in raw[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = o.IndexOf('=');
                string key = eq < 0 ? o : o[..eq];
                if (eq < 0 ? !TmpfsFlags.Contains(o) : !TmpfsData.Contains(key))
                    throw EngineException.Invalid($"invalid tmpfs option \"{o}\" in --tmpfs {raw}");
                if (key == "size" && eq > 0) options.Add("size=" + ParseSize(o[(eq + 1)..], "size").ToString(CultureInfo.InvariantCulture));
                else options.Add(o);
            }
        return Check(new MountRequest { Type = "tmpfs", Target = target, TmpfsOptions = options, ReadOnly = options.Contains("ro") }, raw);
    }

    private static MountRequest Check(MountRequest m, string raw)
    {
        if (!m.Target.StartsWith('/'))
            throw EngineException.Invalid($"invalid mount config for type \"{m.Type}\": invalid mount path: '{m.Target}' mount path must be absolute");
        string target = Clean(m.Target);
        if (target == "/") throw EngineException.Invalid($"invalid specification: destination can't be '/' in '{raw}'");
        return m with { Target = target };
    }

    /// <summary>Lexically cleaned absolute path (no ., .., //, trailing /).</summary>
    public static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (string p in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (p == ".") continue;
            if (p == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return "/" + string.Join('/', parts);
    }

    private static bool Bool(string key, string? value) => value?.ToLowerInvariant() switch
    {
        null or "" or "1" or "true" => true,
        "0" or "false" => false,
        _ => throw EngineException.Invalid($"invalid value for {key}: {value}"),
    };

    /// <summary>CSV fields (docker's --mount is read as CSV, so a field may be quoted to hold a comma).</summary>
    private static List<string> SplitCsv(string s)
    {
        var fields = new List<string>();
        var cur = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '"') { if (quoted && i + 1 < s.Length && s[i + 1] == '"') { cur.Append('"'); i++; } else quoted = !quoted; }
            else if (c == ',' && !quoted) { fields.Add(cur.ToString()); cur.Clear(); }
            else cur.Append(c);
        }
        fields.Add(cur.ToString());
        return fields.Where(f => f.Length > 0).ToList();
    }

    /// <summary>Bytes: 123, 64k, 64m, 1g (binary units, as docker's RAMInBytes), optional trailing b.</summary>
    public static long ParseSize(string s, string what)
    {
        string t = s.Trim().ToLowerInvariant();
        if (t.EndsWith('b')) t = t[..^1];
        long mult = t.Length == 0 ? 1 : t[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1 };
        if (mult != 1) t = t[..^1];
        return double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0
            ? (long)(v * mult) : throw EngineException.Invalid($"invalid {what} \"{s}\": expected a size like 64m");
    }

    private static EngineException Invalid(string raw) => EngineException.Invalid($"invalid volume specification: '{raw}'");
}
