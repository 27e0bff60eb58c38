using System.Text.Json;
using Vessel.Images.Content;

namespace Vessel.Images.Registry;

/// <summary>Where blobs were last seen, per registry: <c>&lt;root&gt;/registry-sources.json</c>, digest → the
/// repositories (most recent first, at most 8) that hold it. Updated on every pull and push; consulted on push
/// to mount a blob from a sibling repository instead of uploading it. Rewritten atomically under an flock;
/// losing it only costs an upload.</summary>
internal sealed class BlobSources(string root)
{
    private const int MaxReposPerBlob = 8;
    private readonly string _path = Path.Combine(root, "registry-sources.json");
    private readonly string _lock = Path.Combine(root, "registry-sources.lock");

    public IReadOnlyList<string> Lookup(string registry, Digest digest)
    {
        BlobSourcesFile f;
        try { f = Load(); }
        catch (ContentException) { return []; }
        return f.Registries.TryGetValue(registry, out var blobs) && blobs.TryGetValue(digest.ToString(), out var repos) ? repos : [];
    }

    public void Record(string registry, string repository, IEnumerable<Digest> digests)
    {
        List<Digest> list = digests.Distinct().ToList();
        if (list.Count == 0) return;
        using FileStream lk = FileLock.Open(_lock, 0x1a4);
        FileLock.Acquire(lk, _lock);
        try
        {
            BlobSourcesFile f;
            try { f = Load(); }
            catch (ContentException) { f = new BlobSourcesFile(); } // a corrupt cache is rebuilt, not fatal
            if (!f.Registries.TryGetValue(registry, out var blobs))
                f.Registries[registry] = blobs = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (Digest d in list)
            {
                string key = d.ToString();
                if (!blobs.TryGetValue(key, out var repos)) blobs[key] = repos = [];
                repos.Remove(repository);
                repos.Insert(0, repository);
                if (repos.Count > MaxReposPerBlob) repos.RemoveRange(MaxReposPerBlob, repos.Count - MaxReposPerBlob);
            }
            AtomicFile.WriteAllBytes(_path, JsonSerializer.SerializeToUtf8Bytes(f, RegistryJsonContext.Default.BlobSourcesFile));
        }
        finally { FileLock.Release(lk); }
    }

    private BlobSourcesFile Load()
    {
        byte[] json;
        try { json = File.ReadAllBytes(_path); }
        catch (FileNotFoundException) { return new BlobSourcesFile(); }
        try { return JsonSerializer.Deserialize(json, RegistryJsonContext.Default.BlobSourcesFile) ?? new BlobSourcesFile(); }
        catch (JsonException e) { throw new ContentException($"{_path} is corrupt: {e.Message}", e); }
    }
}
