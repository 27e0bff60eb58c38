using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Content;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Gc;

[JsonConverter(typeof(JsonStringEnumConverter<LeaseKind>))]
public enum LeaseKind { Pull, Build, Container, Other }

/// <summary>A named set of blobs and snapshots that garbage collection must keep although no reference
/// reaches them (yet): a pull in progress, a build's intermediate layers, a running container's rootfs.
/// A leased manifest or index keeps everything it reaches; a leased snapshot keeps its parent chain.</summary>
public sealed record Lease
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("kind")] public LeaseKind Kind { get; init; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
    /// <summary>After this time the lease protects nothing and GC deletes it (for pulls, so that a crashed
    /// pull cannot pin its partial content forever).</summary>
    [JsonPropertyName("expires")] public DateTimeOffset? Expires { get; init; }
    [JsonPropertyName("digests")] public IReadOnlyList<Digest> Digests { get; init; } = [];
    /// <summary>Snapshot chain IDs.</summary>
    [JsonPropertyName("snapshots")] public IReadOnlyList<Digest> Snapshots { get; init; } = [];
    [JsonPropertyName("labels")] public IReadOnlyDictionary<string, string>? Labels { get; init; }

    public bool IsExpired(DateTimeOffset now) => Expires is DateTimeOffset e && e <= now;
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(Lease))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;

/// <summary>Leases as small files, <c>&lt;root&gt;/leases/&lt;id&gt;.json</c>, each written atomically (temp + fsync +
/// rename), so they survive a crash of the process that holds them. Creating or extending a lease takes the
/// store lock shared, so it cannot interleave with a GC sweep decision; and by default the leased content
/// must exist at that moment, which catches the one race left (GC swept the content just before the lease
/// was taken: the caller sees an error instead of a lease on nothing). Callers that resolve an image and then
/// lease it should hold <see cref="StoreLock.Shared"/> across both steps.</summary>
public sealed class LeaseStore
{
    public const int MaxIdLength = 128;
    private readonly ContentStore _content;
    private readonly SnapshotStore? _snapshots;
    public string Dir { get; }

    public LeaseStore(ContentStore content, SnapshotStore? snapshots = null)
    {
        _content = content;
        _snapshots = snapshots;
        Dir = Path.Combine(content.Root, "leases");
        Directory.CreateDirectory(Dir);
    }

    public Lease Create(string id, LeaseKind kind, IEnumerable<Digest>? digests = null, IEnumerable<Digest>? snapshots = null,
        TimeSpan? expiresIn = null, IReadOnlyDictionary<string, string>? labels = null, bool requireExisting = true)
    {
        ValidateId(id);
        using StoreLock storeLock = StoreLock.Shared(_content.Root);
        var lease = new Lease
        {
            Id = id,
            Kind = kind,
            Created = DateTimeOffset.UtcNow,
            Expires = expiresIn is TimeSpan t ? DateTimeOffset.UtcNow + t : null,
            Digests = digests?.Distinct().ToList() ?? [],
            Snapshots = snapshots?.Distinct().ToList() ?? [],
            Labels = labels,
        };
        if (requireExisting) CheckExists(lease);
        if (File.Exists(PathOf(id))) throw new ContentException($"lease {id} already exists");
        Save(lease);
        return lease;
    }

    /// <summary>Adds content to a lease (e.g. each blob a pull has written) and optionally renews its expiry.</summary>
    public Lease Add(string id, IEnumerable<Digest>? digests = null, IEnumerable<Digest>? snapshots = null, TimeSpan? renew = null, bool requireExisting = true)
    {
        using StoreLock storeLock = StoreLock.Shared(_content.Root);
        Lease lease = Get(id) ?? throw new ContentException($"lease {id} does not exist");
        var added = lease with
        {
            Digests = lease.Digests.Concat(digests ?? []).Distinct().ToList(),
            Snapshots = lease.Snapshots.Concat(snapshots ?? []).Distinct().ToList(),
            Expires = renew is TimeSpan t ? DateTimeOffset.UtcNow + t : lease.Expires,
        };
        if (requireExisting) CheckExists(added with { Digests = digests?.ToList() ?? [], Snapshots = snapshots?.ToList() ?? [] });
        Save(added);
        return added;
    }

    public Lease? Get(string id)
    {
        ValidateId(id);
        return Read(PathOf(id));
    }

    /// <param name="durable">Fsync the directory, so that the deletion survives a power loss. A deletion that is lost
    /// only keeps content longer; callers whose owner sweeps its orphaned leases at start-up (containers) skip it.</param>
    public bool Delete(string id, bool durable = true)
    {
        ValidateId(id);
        string p = PathOf(id);
        if (!File.Exists(p)) return false;
        File.Delete(p);
        if (durable) AtomicFile.FsyncDirectory(Dir);
        return true;
    }

    /// <summary>All leases, expired ones included. A lease file that cannot be parsed is reported, not
    /// ignored: GC must not treat unreadable protection as no protection.</summary>
    public IReadOnlyList<Lease> List()
    {
        var result = new List<Lease>();
        foreach (string f in Directory.EnumerateFiles(Dir, "*.json").Order(StringComparer.Ordinal))
            if (Read(f) is Lease l) result.Add(l);
        return result;
    }

    private Lease? Read(string path)
    {
        byte[] json;
        try { json = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        try
        {
            return JsonSerializer.Deserialize(json, LeaseJsonContext.Default.Lease) ?? throw new ContentException($"lease file {path} is null");
        }
        catch (JsonException e) { throw new ContentException($"lease file {path} is corrupt: {e.Message}", e); }
    }

    private void Save(Lease lease) =>
        AtomicFile.WriteAllBytes(PathOf(lease.Id), JsonSerializer.SerializeToUtf8Bytes(lease, LeaseJsonContext.Default.Lease));

    private void CheckExists(Lease lease)
    {
        foreach (Digest d in lease.Digests)
            if (!_content.Exists(d)) throw new ContentException($"lease {lease.Id}: blob {d} is not in the content store");
        if (_snapshots is null) return;
        foreach (Digest c in lease.Snapshots)
            if (!_snapshots.IsComplete(c)) throw new ContentException($"lease {lease.Id}: snapshot {c} does not exist");
    }

    private string PathOf(string id) => Path.Combine(Dir, id + ".json");

    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdLength || id[0] == '.' ||
            !id.All(c => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-'))
            throw new ArgumentException($"invalid lease id \"{id}\": 1-{MaxIdLength} of [A-Za-z0-9._-], not starting with '.'", nameof(id));
    }
}
