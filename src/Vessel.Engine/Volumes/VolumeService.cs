using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.State;

namespace Vessel.Engine.Volumes;

/// <summary>Named volumes of the local driver: a directory STATE_ROOT/volumes/NAME/_data per volume, a row in the
/// volumes table (name, created, labels). Anonymous volumes (-v /path, image VOLUMEs) carry docker's label
/// com.docker.volume.anonymous and are named by 64 random hex digits. A volume is in use while any container,
/// running or not, mounts it: rm refuses it (as docker does, even with force), prune skips it.</summary>
public sealed partial class VolumeService
{
    public const string AnonymousLabel = "com.docker.volume.anonymous";

    private readonly Database _db;
    private readonly EventBus _events;
    private readonly Action<string> _log;
    private readonly Dictionary<string, VolumeRow> _all = new(StringComparer.Ordinal);
    /// <summary>Volumes a container being created holds before its row exists (so rm can't take them meanwhile).</summary>
    private readonly Dictionary<string, int> _pinned = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public string Dir { get; }

    /// <summary>(container id, volume name) for every mount of a volume by a container; set by the engine.</summary>
    public Func<IReadOnlyList<(string ContainerId, string Volume)>> Users { get; set; } = () => [];

    public VolumeService(string root, Database db, EventBus events, Action<string>? log)
    {
        _db = db;
        _events = events;
        _log = log ?? (_ => { });
        Dir = Path.Combine(root, "volumes");
        Directory.CreateDirectory(Dir, (UnixFileMode)0x1c0); // 0700: like docker's /var/lib/docker/volumes
        foreach (var row in _db.Read(c =>
        {
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = "SELECT name, created, labels FROM volumes";
            using SqliteDataReader r = cmd.ExecuteReader();
            var list = new List<VolumeRow>();
            while (r.Read())
                list.Add(new VolumeRow(r.GetString(0), DateTimeOffset.UnixEpoch.AddTicks(r.GetInt64(1) / 100),
                    JsonSerializer.Deserialize(r.GetString(2), VolumeRowJson.Default.DictionaryStringString) ?? []));
            return list;
        }))
        {
            _all[row.Name] = row;
            Directory.CreateDirectory(DataOf(row.Name)); // a row whose directory went missing gets an empty one
        }
        // Directories without a row: a crash between mkdir and insert (create writes the row last).
        foreach (string dir in Directory.EnumerateDirectories(Dir))
        {
            string name = Path.GetFileName(dir);
            if (_all.ContainsKey(name)) continue;
            _log($"removing leftover volume directory {name}");
            try { Directory.Delete(dir, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log($"removing {dir}: {e.Message}"); }
        }
    }

    private sealed record VolumeRow(string Name, DateTimeOffset Created, Dictionary<string, string> Labels)
    {
        public bool Anonymous => Labels.ContainsKey(AnonymousLabel);
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")]
    private static partial Regex NamePattern();

    public static bool ValidName(string name) => NamePattern().IsMatch(name);

    public string DataOf(string name) => Path.Combine(Dir, name, "_data");

    // ---- create ------------------------------------------------------------------------------------------

    /// <summary>docker volume create: an existing name answers the existing volume (docker's idempotent create).</summary>
    public VolumeInfo Create(VolumeCreateRequest req) => Ensure(req.Name, req.Labels, out _);

    /// <summary>The volume NAME, created if missing (no name: a new anonymous volume).</summary>
    internal VolumeInfo Ensure(string? name, IReadOnlyDictionary<string, string>? labels, out bool created)
    {
        var l = labels is null ? new Dictionary<string, string>() : new Dictionary<string, string>(labels);
        if (string.IsNullOrEmpty(name))
        {
            name = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            l[AnonymousLabel] = "";
        }
        if (!ValidName(name))
            throw EngineException.Invalid($"create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed");
        lock (_lock)
        {
            if (_all.TryGetValue(name, out var existing)) { created = false; return Info(existing); }
            var row = new VolumeRow(name, DateTimeOffset.UtcNow, l);
            Directory.CreateDirectory(Path.Combine(Dir, name), (UnixFileMode)0x1c0);
            Directory.CreateDirectory(DataOf(name), (UnixFileMode)0x1ed); // 0755, as docker's _data
            try
            {
                _db.Write((conn, tx) =>
                {
                    using SqliteCommand cmd = conn.CreateCommand();
                    cmd.Transaction = tx;
                    cmd.CommandText = "INSERT INTO volumes (name, created, labels) VALUES ($n, $c, $l)";
                    cmd.Parameters.AddWithValue("$n", name);
                    cmd.Parameters.AddWithValue("$c", (row.Created - DateTimeOffset.UnixEpoch).Ticks * 100);
                    cmd.Parameters.AddWithValue("$l", JsonSerializer.Serialize(l, VolumeRowJson.Default.DictionaryStringString));
                    return cmd.ExecuteNonQuery();
                });
            }
            catch
            {
                Directory.Delete(Path.Combine(Dir, name), recursive: true);
                throw;
            }
            _all[name] = row;
            created = true;
            _events.Publish("volume", "create", name, name, new Dictionary<string, string> { ["driver"] = "local" });
            return Info(row);
        }
    }

    /// <summary>Keeps rm and prune off <paramref name="names"/> until <see cref="Unpin"/> (a container is being created).</summary>
    internal void Pin(IEnumerable<string> names)
    {
        lock (_lock) foreach (string n in names) _pinned[n] = _pinned.GetValueOrDefault(n) + 1;
    }

    internal void Unpin(IEnumerable<string> names)
    {
        lock (_lock)
            foreach (string n in names)
                if (_pinned.TryGetValue(n, out int k)) { if (k <= 1) _pinned.Remove(n); else _pinned[n] = k - 1; }
    }

    // ---- queries -----------------------------------------------------------------------------------------

    public VolumeInfo Inspect(string name)
    {
        lock (_lock) return Info(_all.GetValueOrDefault(name) ?? throw EngineException.NotFound($"no such volume: {name}"));
    }

    public bool Exists(string name)
    {
        lock (_lock) return _all.ContainsKey(name);
    }

    private VolumeInfo Info(VolumeRow row) => Info(row, UsersByVolume());

    private VolumeInfo Info(VolumeRow row, Dictionary<string, List<string>> users) => new()
    {
        Name = row.Name, Mountpoint = DataOf(row.Name), CreatedAt = row.Created, Labels = new Dictionary<string, string>(row.Labels),
        Anonymous = row.Anonymous, UsedBy = users.GetValueOrDefault(row.Name) ?? [],
    };

    private Dictionary<string, List<string>> UsersByVolume()
    {
        var map = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (c, v) in Users())
        {
            if (!map.TryGetValue(v, out var list)) map[v] = list = [];
            if (!list.Contains(c)) list.Add(c);
        }
        return map;
    }

    /// <summary>docker volume ls filters: dangling=true|false, label=KEY or KEY=VALUE, name=SUBSTRING, driver=local.</summary>
    public IReadOnlyList<VolumeInfo> List(IEnumerable<string>? filters)
    {
        var match = Filter(filters);
        var users = UsersByVolume();
        lock (_lock)
            return _all.Values.Select(r => Info(r, users)).Where(match).OrderBy(v => v.Name, StringComparer.Ordinal).ToList();
    }

    private static Func<VolumeInfo, bool> Filter(IEnumerable<string>? filters)
    {
        var checks = new List<Func<VolumeInfo, bool>>();
        foreach (var group in (filters ?? []).Select(f =>
                 {
                     int eq = f.IndexOf('=');
                     if (eq <= 0) throw EngineException.Invalid($"bad filter \"{f}\": expected KEY=VALUE");
                     return (Key: f[..eq], Value: f[(eq + 1)..]);
                 }).GroupBy(f => f.Key))
        {
            var values = group.Select(g => g.Value).ToList();
            Func<string, Func<VolumeInfo, bool>> one = group.Key switch
            {
                "dangling" => v => v.ToLowerInvariant() switch
                {
                    "true" or "1" => i => i.UsedBy.Count == 0,
                    "false" or "0" => i => i.UsedBy.Count > 0,
                    _ => throw EngineException.Invalid($"invalid filter 'dangling={v}': use true or false"),
                },
                "label" => v =>
                {
                    int eq = v.IndexOf('=');
                    return eq < 0 ? i => i.Labels.ContainsKey(v) : i => i.Labels.TryGetValue(v[..eq], out var lv) && lv == v[(eq + 1)..];
                },
                "label!" => v =>
                {
                    int eq = v.IndexOf('=');
                    return eq < 0 ? i => !i.Labels.ContainsKey(v) : i => !(i.Labels.TryGetValue(v[..eq], out var lv) && lv == v[(eq + 1)..]);
                },
                "name" => v => i => i.Name.Contains(v, StringComparison.Ordinal),
                "driver" => v => i => i.Driver == v,
                _ => throw EngineException.Invalid($"invalid filter '{group.Key}': use dangling, label, label!, name or driver"),
            };
            var preds = values.Select(one).ToList();
            // Values of one key are OR-ed, keys AND-ed (docker); label filters are all AND-ed, as docker's.
            checks.Add(group.Key is "label" or "label!" ? i => preds.All(p => p(i)) : i => preds.Any(p => p(i)));
        }
        return i => checks.All(c => c(i));
    }

    // ---- remove / prune ----------------------------------------------------------------------------------

    /// <summary>docker volume rm: a volume in use is refused even with <paramref name="force"/>; force only makes a
    /// missing volume no error.</summary>
    public void Remove(string name, bool force)
    {
        lock (_lock)
        {
            if (!_all.TryGetValue(name, out var row))
            {
                if (force) return;
                throw EngineException.NotFound($"no such volume: {name}");
            }
            var users = UsersByVolume().GetValueOrDefault(name);
            if (users is { Count: > 0 })
                throw EngineException.Conflict($"remove {name}: volume is in use - [{string.Join(", ", users)}]");
            if (_pinned.ContainsKey(name)) throw EngineException.Conflict($"remove {name}: volume is in use by a container being created");
            Delete(row);
        }
    }

    /// <summary>Removes the anonymous volumes among <paramref name="names"/> that no other container uses (rm -v, --rm).</summary>
    internal void RemoveAnonymous(IEnumerable<string> names)
    {
        lock (_lock)
        {
            var users = UsersByVolume();
            foreach (string n in names)
                if (_all.TryGetValue(n, out var row) && row.Anonymous && !users.ContainsKey(n) && !_pinned.ContainsKey(n))
                {
                    try { Delete(row); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log($"volume {n}: {e.Message}"); }
                }
        }
    }

    /// <summary>docker volume prune (docker 23+): unused anonymous volumes, or with <paramref name="all"/> every
    /// unused volume; filters: label=…, label!=….</summary>
    public VolumePruneResponse Prune(bool all, IEnumerable<string>? filters)
    {
        var list = filters?.ToList() ?? [];
        if (list.Any(f => !f.StartsWith("label=", StringComparison.Ordinal) && !f.StartsWith("label!=", StringComparison.Ordinal) && !f.StartsWith("all=", StringComparison.Ordinal)))
            throw EngineException.Invalid("volume prune takes only label, label! and all filters");
        if (list.FirstOrDefault(f => f.StartsWith("all=", StringComparison.Ordinal)) is { } a)
            all |= a[4..] is "true" or "1";
        var match = Filter(list.Where(f => !f.StartsWith("all=", StringComparison.Ordinal)));
        var deleted = new List<string>();
        long bytes = 0;
        lock (_lock)
        {
            var users = UsersByVolume();
            foreach (var row in _all.Values.ToList())
            {
                if (users.ContainsKey(row.Name) || _pinned.ContainsKey(row.Name)) continue;
                if (!all && !row.Anonymous) continue;
                if (!match(Info(row, users))) continue;
                long size = SizeOf(Path.Combine(Dir, row.Name));
                try { Delete(row); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log($"prune {row.Name}: {e.Message}"); continue; }
                deleted.Add(row.Name);
                bytes += size;
            }
        }
        _events.Publish("volume", "prune", "", null, new Dictionary<string, string> { ["reclaimed"] = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return new VolumePruneResponse(deleted, bytes);
    }

    /// <summary>(count, bytes) of all volumes, for system df.</summary>
    public (int Count, long Bytes) Usage()
    {
        List<string> names;
        lock (_lock) names = _all.Keys.ToList();
        return (names.Count, names.Sum(n => SizeOf(Path.Combine(Dir, n))));
    }

    private void Delete(VolumeRow row)
    {
        _db.Write((conn, tx) =>
        {
            using SqliteCommand cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM volumes WHERE name = $n";
            cmd.Parameters.AddWithValue("$n", row.Name);
            return cmd.ExecuteNonQuery();
        });
        _all.Remove(row.Name);
        string dir = Path.Combine(Dir, row.Name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        _events.Publish("volume", "destroy", row.Name, row.Name, new Dictionary<string, string> { ["driver"] = "local" });
    }

    /// <summary>Bytes of regular files below <paramref name="dir"/> (symlinks not followed).</summary>
    internal static long SizeOf(string dir)
    {
        long total = 0;
        try
        {
            foreach (var f in new DirectoryInfo(dir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true }))
                total += f.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return total;
    }
}

[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class VolumeRowJson : JsonSerializerContext;
