using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Oci;

namespace Vessel.Images.Build;

/// <summary>One cached build step: what the step added (a layer, or nothing for metadata steps), its history
/// line and when it was first made (so that a fully cached rebuild writes the very same image).</summary>
public sealed record BuildCacheRecord
{
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("layer")] public Descriptor? Layer { get; init; }
    [JsonPropertyName("diffId")] public Digest? DiffId { get; init; }
    /// <summary>The snapshot (chain ID) of the rootfs after this step, when it has a layer.</summary>
    [JsonPropertyName("snapshot")] public Digest? Snapshot { get; init; }
    [JsonPropertyName("created")] public required DateTimeOffset Created { get; init; }
    [JsonPropertyName("createdBy")] public string? CreatedBy { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BuildCacheRecord))]
internal sealed partial class BuildCacheJson : JsonSerializerContext;

/// <summary>The build cache: <c>&lt;root&gt;/buildcache/&lt;key&gt;/record.json</c> plus one empty file per image that was
/// built with the step, <c>owners/&lt;manifest digest hex&gt;</c>. It is garbage-collected with the images: while
/// one of its owners is still named (reachable from a reference), a record keeps its layer and snapshot; a record
/// whose owners are all gone is removed by the GC, and its content with it when nothing else needs it. A record
/// whose layer is gone is a miss. Writers hold the store lock shared (as every writer), the GC exclusively.</summary>
public sealed class BuildCache(ContentStore content)
{
    public const string DirName = "buildcache";
    public string Dir { get; } = Path.Combine(content.Root, DirName);

    private string RecordDir(string key) => Path.Combine(Dir, key);

    public static void ValidateKey(string key)
    {
        if (key.Length != 64 || !key.All(char.IsAsciiHexDigitLower)) throw new ArgumentException($"bad build cache key \"{key}\"", nameof(key));
    }

    /// <summary>The record for <paramref name="key"/> when its content is still there, else null.</summary>
    public BuildCacheRecord? Get(string key)
    {
        ValidateKey(key);
        BuildCacheRecord? r = Read(Path.Combine(RecordDir(key), "record.json"));
        if (r is null) return null;
        if (r.Layer is Descriptor l && content.GetSize(l.Digest) != l.Size) return null;
        return r;
    }

    public void Put(BuildCacheRecord record)
    {
        ValidateKey(record.Key);
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        string dir = RecordDir(record.Key);
        Directory.CreateDirectory(Path.Combine(dir, "owners"));
        AtomicFile.WriteAllBytes(Path.Combine(dir, "record.json"), JsonSerializer.SerializeToUtf8Bytes(record, BuildCacheJson.Default.BuildCacheRecord));
    }

    /// <summary>Marks <paramref name="records"/> as used by the image <paramref name="owner"/> (its manifest digest).
    /// A record the GC removed meanwhile is written again.</summary>
    public void AddOwner(IEnumerable<BuildCacheRecord> records, Digest owner)
    {
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        foreach (BuildCacheRecord r in records)
        {
            string dir = RecordDir(r.Key);
            if (!File.Exists(Path.Combine(dir, "record.json"))) Put(r);
            Directory.CreateDirectory(Path.Combine(dir, "owners"));
            File.WriteAllBytes(Path.Combine(dir, "owners", owner.Hex), []);
        }
    }

    public int Count => Directory.Exists(Dir) ? Directory.EnumerateDirectories(Dir).Count() : 0;

    /// <summary>For the GC, under its exclusive lock: the layers and snapshots of records that an owner still
    /// needs (<paramref name="isLive"/>: is this manifest still reachable); records without a live owner are
    /// removed unless <paramref name="dryRun"/>. Unreadable records are removed too: they are only a cache.</summary>
    public (List<Digest> Blobs, List<Digest> Snapshots, int Removed) Collect(Func<Digest, bool> isLive, bool dryRun)
    {
        var blobs = new List<Digest>();
        var snaps = new List<Digest>();
        int removed = 0;
        if (!Directory.Exists(Dir)) return (blobs, snaps, 0);
        foreach (string dir in Directory.EnumerateDirectories(Dir).ToList())
        {
            BuildCacheRecord? r = null;
            try { r = Read(Path.Combine(dir, "record.json")); }
            catch (ContentException) { }
            bool live = false;
            string owners = Path.Combine(dir, "owners");
            if (r is not null && Directory.Exists(owners))
                foreach (string f in Directory.EnumerateFiles(owners))
                    if (Digest.TryParseHex(Path.GetFileName(f), out Digest d) && isLive(d)) { live = true; break; }
            if (live)
            {
                if (r!.Layer is Descriptor l) blobs.Add(l.Digest);
                if (r.Snapshot is Digest s) snaps.Add(s);
                continue;
            }
            removed++;
            if (!dryRun)
            {
                try { Directory.Delete(dir, recursive: true); }
                catch (IOException) { }
            }
        }
        return (blobs, snaps, removed);
    }

    private static BuildCacheRecord? Read(string path)
    {
        byte[] json;
        try { json = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        try { return JsonSerializer.Deserialize(json, BuildCacheJson.Default.BuildCacheRecord); }
        catch (JsonException e) { throw new ContentException($"build cache record {path} is corrupt: {e.Message}", e); }
    }
}
