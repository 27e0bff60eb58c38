using Vessel.Images.Content;
using Vessel.Images.Layers;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Gc;

public sealed record GcOptions
{
    /// <summary>How long to wait for running pulls/unpacks/builds to release the store (null: forever).</summary>
    public TimeSpan? LockTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Ingest files (partial downloads) untouched for this long are removed.</summary>
    public TimeSpan IngestMinAge { get; init; } = TimeSpan.FromMinutes(15);
    /// <summary>Report what would be removed, remove nothing.</summary>
    public bool DryRun { get; init; }

    public static GcOptions Default { get; } = new();
}

public sealed record GcResult(
    IReadOnlyList<Digest> RemovedBlobs,
    IReadOnlyList<Digest> RemovedSnapshots,
    int RemovedIngestFiles,
    int RemovedIncompleteSnapshots,
    IReadOnlyList<string> ExpiredLeases,
    long ReclaimedBytes,
    int KeptBlobs,
    int KeptSnapshots);

/// <summary>Mark and sweep over the content store and the snapshots.
/// <para>Roots: every reference in the <see cref="ReferenceStore"/> (an index keeps the manifests it lists that
/// are present, a manifest its config and layers, a config the snapshot chain of its diff_ids) and every
/// unexpired <see cref="Lease"/>. Swept: unreachable blobs, unreachable or incomplete snapshots, snapshot
/// temp dirs and lock files, ingest files older than <see cref="GcOptions.IngestMinAge"/>, expired leases.</para>
/// <para>Protocol: mark and the sweep decision run under <see cref="StoreLock.Exclusive"/>, which waits for
/// every pull/load/unpack/build/lease creation (they hold the lock shared) to finish, and keeps new ones
/// out. Under the lock, condemned blobs and snapshot dirs are only <i>renamed</i> into
/// <c>&lt;root&gt;/gc-trash/</c> (cheap, atomic: a blob is in the store or not, a snapshot dir moves whole with its
/// <c>.complete</c> marker); the slow recursive delete happens after the lock is released. A crash leaves
/// a trash dir, removed by the next GC. A reference or lease that cannot be read aborts the GC with
/// nothing removed.</para></summary>
public sealed class GarbageCollector(ContentStore content, ReferenceStore refs, SnapshotStore snapshots, LeaseStore leases)
{
    public const string TrashDir = "gc-trash";

    public GcResult Collect(GcOptions? options = null)
    {
        options ??= GcOptions.Default;
        string trashRoot = Path.Combine(content.Root, TrashDir);
        string trash = Path.Combine(trashRoot, Guid.NewGuid().ToString("N"));
        var removedBlobs = new List<Digest>();
        var removedSnaps = new List<Digest>();
        var expired = new List<string>();
        int ingest = 0, incomplete = 0, keptBlobs, keptSnaps;
        long reclaimed = 0;

        using (StoreLock.Exclusive(content.Root, options.LockTimeout))
        {
            var reach = new Reachability(content);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            try
            {
                foreach (ImageReference r in refs.List()) reach.Add(r.Target, $"gc: image {r.Name}");
                foreach (Lease lease in leases.List())
                {
                    if (lease.IsExpired(now)) { expired.Add(lease.Id); continue; }
                    foreach (Digest d in lease.Digests) reach.AddDigest(d, $"gc: lease {lease.Id}");
                    foreach (Digest c in lease.Snapshots) reach.AddSnapshot(snapshots, c);
                }
                // The build cache goes with the images: a record lives while an image built with it is reachable.
                var (cacheBlobs, cacheSnaps, _) = new Build.BuildCache(content).Collect(reach.Blobs.Contains, options.DryRun);
                foreach (Digest d in cacheBlobs) reach.AddDigest(d, "gc: build cache");
                foreach (Digest c in cacheSnaps) reach.AddSnapshot(snapshots, c);
            }
            catch (ContentException e)
            {
                throw new ContentException($"garbage collection aborted, nothing was removed: {e.Message}", e);
            }

            if (!options.DryRun)
            {
                Directory.CreateDirectory(trash);
                Directory.CreateDirectory(Path.Combine(trash, "blobs"));
                Directory.CreateDirectory(Path.Combine(trash, "snapshots"));
                Directory.CreateDirectory(Path.Combine(trash, "ingest"));
            }
            keptBlobs = 0;
            foreach (Digest d in content.List().ToList())
            {
                if (reach.Blobs.Contains(d)) { keptBlobs++; continue; }
                long size = content.GetSize(d) ?? 0;
                if (!options.DryRun && !Move(content.BlobPath(d), Path.Combine(trash, "blobs", d.Hex))) continue;
                removedBlobs.Add(d);
                reclaimed += size;
            }

            keptSnaps = 0;
            foreach (string dir in Directory.EnumerateDirectories(snapshots.SnapshotsDir).ToList())
            {
                string name = Path.GetFileName(dir);
                bool isTemp = name.StartsWith(".tmp-", StringComparison.Ordinal);
                bool isSnap = Digest.TryParseHex(name, out Digest chain);
                if (!isTemp && !isSnap) continue;
                bool complete = isSnap && File.Exists(Path.Combine(dir, SnapshotStore.CompleteMarker));
                if (isSnap && complete && reach.Snapshots.Contains(chain)) { keptSnaps++; continue; }
                long size = DirSize.Measure(dir);
                if (!options.DryRun && !Move(dir, Path.Combine(trash, "snapshots", name))) continue;
                reclaimed += size;
                if (isSnap && complete) removedSnaps.Add(chain); else incomplete++;
            }
            foreach (string f in Directory.EnumerateFiles(snapshots.SnapshotsDir, "*.lock").ToList())
            {
                string hex = Path.GetFileNameWithoutExtension(f);
                if (Digest.TryParseHex(hex, out Digest c) && !Directory.Exists(snapshots.SnapshotDir(c)) && !options.DryRun)
                    AtomicFile.TryDelete(f);
            }

            DateTime cutoff = DateTime.UtcNow - options.IngestMinAge;
            foreach (string p in Directory.EnumerateFileSystemEntries(content.IngestDir).ToList())
            {
                var fi = new FileInfo(p);
                DateTime mtime = Directory.Exists(p) ? Directory.GetLastWriteTimeUtc(p) : fi.LastWriteTimeUtc;
                if (mtime > cutoff) continue;
                long size = DirSize.Measure(p);
                if (!options.DryRun && !Move(p, Path.Combine(trash, "ingest", Path.GetFileName(p)))) continue;
                reclaimed += size;
                ingest++;
            }

            if (!options.DryRun)
            {
                foreach (string id in expired) leases.Delete(id);
                AtomicFile.FsyncDirectory(content.BlobsDir);
                AtomicFile.FsyncDirectory(snapshots.SnapshotsDir);
            }
        }

        // Outside the lock: the slow part. Also whatever an earlier, crashed GC left in the trash.
        if (Directory.Exists(trashRoot))
            foreach (string t in Directory.EnumerateDirectories(trashRoot).ToList())
            {
                try { FsOps.RemoveTree(t); } catch (IOException) { }
            }
        return new GcResult(removedBlobs, removedSnaps, ingest, incomplete, expired, reclaimed, keptBlobs, keptSnaps);
    }

    private static bool Move(string from, string to)
    {
        try
        {
            if (Directory.Exists(from)) Directory.Move(from, to);
            else File.Move(from, to);
            return true;
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
    }
}
