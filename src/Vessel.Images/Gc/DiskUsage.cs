using Vessel.Images.Content;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Gc;

/// <summary>One image's share of the disk: <see cref="Size"/> is every blob and snapshot it uses,
/// <see cref="SharedSize"/> the part also used by another image, <see cref="UniqueSize"/> what removing it frees.</summary>
public sealed record ImageUsage(Digest Target, IReadOnlyList<string> Names, long Size, long SharedSize, long UniqueSize);

public sealed record DirUsage(string Name, string Path, long Bytes);

/// <summary><c>system df</c>: images (shared/unique), snapshots, blobs no image uses (what GC would
/// reclaim, leases aside), and the sizes of the container writable layers and volumes the caller names.</summary>
public sealed record DiskUsageReport(
    IReadOnlyList<ImageUsage> Images,
    long ImagesBytes,
    long BlobsBytes,
    int BlobCount,
    long UnreferencedBytes,
    int SnapshotCount,
    long SnapshotsBytes,
    IReadOnlyList<DirUsage> Containers,
    IReadOnlyList<DirUsage> Volumes);

public static class DiskUsage
{
    /// <param name="containerDirs">name → writable layer dir (upper dir) of each container.</param>
    /// <param name="volumeDirs">name → data dir of each volume.</param>
    public static DiskUsageReport Compute(ContentStore content, ReferenceStore refs, SnapshotStore snapshots,
        IReadOnlyDictionary<string, string>? containerDirs = null, IReadOnlyDictionary<string, string>? volumeDirs = null)
    {
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        // Images are grouped by what their names point at.
        var byTarget = refs.List().GroupBy(r => r.Target.Digest).ToList();
        var itemSize = new Dictionary<string, long>(StringComparer.Ordinal);
        var owners = new Dictionary<string, int>(StringComparer.Ordinal);
        var perImage = new List<(Digest Target, List<string> Names, HashSet<string> Items)>();
        foreach (var group in byTarget)
        {
            var reach = new Reachability(content);
            reach.Add(group.First().Target, $"image {group.First().Name}");
            var items = new HashSet<string>(StringComparer.Ordinal);
            foreach (Digest b in reach.Blobs)
            {
                if (content.GetSize(b) is not long s) continue;
                string key = "b" + b.Hex;
                itemSize[key] = s;
                items.Add(key);
            }
            foreach (Digest c in reach.Snapshots)
            {
                if (!snapshots.IsComplete(c)) continue;
                string key = "s" + c.Hex;
                if (!itemSize.ContainsKey(key)) itemSize[key] = DirSize.Measure(snapshots.FsPath(c));
                items.Add(key);
            }
            foreach (string i in items) owners[i] = owners.GetValueOrDefault(i) + 1;
            perImage.Add((group.Key, group.Select(r => r.Name).ToList(), items));
        }
        var images = perImage.Select(p =>
        {
            long size = p.Items.Sum(i => itemSize[i]);
            long shared = p.Items.Where(i => owners[i] > 1).Sum(i => itemSize[i]);
            return new ImageUsage(p.Target, p.Names, size, shared, size - shared);
        }).ToList();

        long blobsBytes = 0, unreferenced = 0;
        int blobCount = 0;
        foreach (Digest d in content.List())
        {
            long s = content.GetSize(d) ?? 0;
            blobsBytes += s;
            blobCount++;
            if (!owners.ContainsKey("b" + d.Hex)) unreferenced += s;
        }
        int snapCount = 0;
        long snapBytes = 0;
        foreach (string dir in Directory.EnumerateDirectories(snapshots.SnapshotsDir))
        {
            if (!Digest.TryParseHex(Path.GetFileName(dir), out Digest c) || !snapshots.IsComplete(c)) continue;
            snapCount++;
            snapBytes += itemSize.TryGetValue("s" + c.Hex, out long s) ? s : DirSize.Measure(snapshots.FsPath(c));
        }
        return new DiskUsageReport(images, itemSize.Values.Sum(), blobsBytes, blobCount, unreferenced, snapCount, snapBytes,
            Dirs(containerDirs), Dirs(volumeDirs));
    }

    private static List<DirUsage> Dirs(IReadOnlyDictionary<string, string>? dirs) =>
        dirs?.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new DirUsage(kv.Key, kv.Value, DirSize.Measure(kv.Value))).ToList() ?? [];
}
