using Vessel.Images.Archive;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Tests.Gc;

public sealed class GcTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static byte[] Layer(string name, string content) => TarBuilder.Gzip(new TarBuilder().File(name, content).Build());

    private (ContentStore, ReferenceStore, SnapshotStore, LeaseStore, GarbageCollector) Stores()
    {
        var c = new ContentStore(_tmp.Path);
        var r = new ReferenceStore(c);
        var s = new SnapshotStore(c.Root);
        var l = new LeaseStore(c, s);
        return (c, r, s, l, new GarbageCollector(c, r, s, l));
    }

    private static HashSet<Digest> BlobsOf(ContentStore c, Descriptor manifest)
    {
        var m = OciJson.ParseManifest(c.ReadAllBytes(manifest.Digest, 1 << 20), "m");
        return [manifest.Digest, m.Config.Digest, .. m.Layers.Select(l => l.Digest)];
    }

    [Fact]
    public void RemovesUnreferencedKeepsReferencedAndLeased()
    {
        var (content, refs, snaps, leases, gc) = Stores();
        byte[] shared = Layer("shared", "s");
        var (tagged, _) = ImageBuilder.AddImage(content, "amd64", shared, Layer("a", "a"));
        var (untagged, _) = ImageBuilder.AddImage(content, "amd64", shared, Layer("b", "bbbbbbbb"));
        var (leased, _) = ImageBuilder.AddImage(content, "amd64", Layer("c", "c"));
        var (expired, _) = ImageBuilder.AddImage(content, "arm64", Layer("d", "d"));
        refs.Tag("keep:1", tagged);
        var resolver = new ImageResolver(content, refs);
        snaps.Unpack(content, resolver.Resolve("keep:1"));
        snaps.Unpack(content, resolver.Resolve("untagged", untagged));
        BlobInfo loose = content.Write("a loose blob"u8);
        leases.Create("pull-1", LeaseKind.Pull, [leased.Digest], expiresIn: TimeSpan.FromHours(1));
        leases.Create("container-1", LeaseKind.Container, [loose.Digest]);
        leases.Create("old-pull", LeaseKind.Pull, [expired.Digest], expiresIn: TimeSpan.FromMilliseconds(1));
        string stale = Path.Combine(content.Root, "ingest", "crashed-download");
        File.WriteAllText(stale, "partial");
        Thread.Sleep(10);

        var untaggedOnly = BlobsOf(content, untagged);
        untaggedOnly.ExceptWith(BlobsOf(content, tagged));
        Digest uniqueSnap = SnapshotStore.ChainIds(resolver.Resolve("u", untagged).Config.RootFs.DiffIds)[1];
        long expectedBytes = untaggedOnly.Concat(BlobsOf(content, expired)).Sum(d => content.GetSize(d)!.Value) + "partial".Length
            + DirSize.Measure(snaps.SnapshotDir(uniqueSnap)); // "bbbbbbbb" and the .complete marker
        var expiredBlobs = BlobsOf(content, expired);
        var dry = gc.Collect(new GcOptions { DryRun = true, IngestMinAge = TimeSpan.Zero });
        Assert.Equal(expectedBytes, dry.ReclaimedBytes);
        Assert.True(content.Exists(untagged.Digest));

        GcResult r = gc.Collect(new GcOptions { IngestMinAge = TimeSpan.Zero });
        Assert.Equal(expectedBytes, r.ReclaimedBytes);
        Assert.Equal(["old-pull"], r.ExpiredLeases);
        Assert.Equal(1, r.RemovedIngestFiles);
        Assert.Single(r.RemovedSnapshots);
        Assert.All(BlobsOf(content, tagged), d => Assert.True(content.Exists(d)));
        Assert.All(BlobsOf(content, leased), d => Assert.True(content.Exists(d)));
        Assert.True(content.Exists(loose.Digest));
        Assert.All(untaggedOnly, d => Assert.False(content.Exists(d)));
        Assert.All(expiredBlobs, d => Assert.False(content.Exists(d)));
        Assert.Null(leases.Get("old-pull"));
        Assert.False(File.Exists(stale));
        IReadOnlyList<Digest> chain = SnapshotStore.ChainIds(resolver.Resolve("keep:1").Config.RootFs.DiffIds);
        Assert.All(chain, c => Assert.True(snaps.IsComplete(c)));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(content.Root, GarbageCollector.TrashDir)));

        // A second run finds nothing; dropping the leases frees their content.
        Assert.Equal(0, gc.Collect().ReclaimedBytes);
        leases.Delete("pull-1");
        leases.Delete("container-1");
        Assert.Equal(BlobsOf(content, leased).Count + 1, gc.Collect().RemovedBlobs.Count);
    }

    [Fact]
    public void ACorruptLeaseAbortsWithNothingRemoved()
    {
        var (content, _, _, leases, gc) = Stores();
        BlobInfo b = content.Write("garbage"u8);
        File.WriteAllText(Path.Combine(leases.Dir, "broken.json"), "{not json");
        var e = Assert.ThrowsAny<ContentException>(() => gc.Collect());
        Assert.Contains("broken.json is corrupt", e.Message);
        Assert.True(content.Exists(b.Digest));
    }

    [Fact]
    public void LeaseOnMissingContentIsRefused()
    {
        var (_, _, _, leases, _) = Stores();
        var e = Assert.Throws<ContentException>(() => leases.Create("c1", LeaseKind.Container, snapshots: [Digest.Compute("x"u8)]));
        Assert.Contains("does not exist", e.Message);
        Assert.Throws<ArgumentException>(() => leases.Create("../evil", LeaseKind.Build));
    }

    [Fact]
    public void GcConcurrentWithPullsAndUnpacksNeverDeletesTheirContent()
    {
        var (content, refs, snaps, _, gc) = Stores();
        var resolver = new ImageResolver(content, refs);
        const int Images = 12;
        var errors = new List<Exception>();
        using var done = new CancellationTokenSource();
        int gcRuns = 0;
        var gcThread = new Thread(() =>
        {
            try
            {
                while (!done.IsCancellationRequested)
                {
                    gc.Collect(new GcOptions { IngestMinAge = TimeSpan.Zero, LockTimeout = null });
                    Interlocked.Increment(ref gcRuns);
                }
            }
            catch (Exception e) { lock (errors) errors.Add(e); }
        });
        gcThread.Start();
        try
        {
            Parallel.For(0, Images, new ParallelOptions { MaxDegreeOfParallelism = 3 }, i =>
            {
                // A "pull": blobs written while nothing references them, tagged at the end, all under the shared lock.
                Descriptor m;
                using (StoreLock.Shared(content.Root))
                {
                    var bigger = new byte[64 * 1024];
                    Random.Shared.NextBytes(bigger);
                    (m, _) = ImageBuilder.AddImage(content, "amd64", Layer($"f{i}", Convert.ToBase64String(bigger)), Layer("common", "c"));
                    Thread.Sleep(5);
                    refs.Tag($"img:{i}", m);
                }
                // An unpack of the tagged image while GC keeps running.
                IReadOnlyList<string> dirs = snaps.Unpack(content, resolver.Resolve($"img:{i}"));
                Assert.True(File.Exists(Path.Combine(dirs[0], $"f{i}")));
            });
        }
        finally
        {
            done.Cancel();
            gcThread.Join();
        }
        Assert.Empty(errors);
        Assert.True(gcRuns > 0);
        for (int i = 0; i < Images; i++)
        {
            ResolvedImage img = resolver.Resolve($"img:{i}");
            Assert.All(BlobsOf(content, img.ManifestDescriptor), d => Assert.True(content.Exists(d)));
            Assert.All(SnapshotStore.ChainIds(img.Config.RootFs.DiffIds), c => Assert.True(snaps.IsComplete(c)));
        }
    }

    [Fact]
    public void ExclusiveLockTimesOutWhileAnOperationHoldsTheStore()
    {
        var (content, _, _, _, gc) = Stores();
        using (StoreLock.Shared(content.Root))
        {
            var e = Assert.Throws<ContentException>(() => gc.Collect(new GcOptions { LockTimeout = TimeSpan.FromMilliseconds(50) }));
            Assert.Contains("is busy", e.Message);
        }
        gc.Collect();
    }

    [Fact]
    public void DiskUsageSplitsSharedAndUniqueBytes()
    {
        var (content, refs, snaps, _, _) = Stores();
        byte[] shared = Layer("shared", new string('s', 1000));
        var (a, _) = ImageBuilder.AddImage(content, "amd64", shared, Layer("a", "a"));
        var (b, _) = ImageBuilder.AddImage(content, "amd64", shared, Layer("b", "b"));
        refs.Tag("a:1", a);
        refs.Tag("a:latest", a);
        refs.Tag("b:1", b);
        var resolver = new ImageResolver(content, refs);
        snaps.Unpack(content, resolver.Resolve("a:1"));
        content.Write("unreferenced"u8);
        string container = _tmp.Sub("c1");
        File.WriteAllText(Path.Combine(container, "f"), "12345");

        DiskUsageReport r = DiskUsage.Compute(content, refs, snaps, new Dictionary<string, string> { ["c1"] = container });
        Assert.Equal(2, r.Images.Count);
        ImageUsage ua = r.Images.Single(i => i.Target == a.Digest);
        ImageUsage ub = r.Images.Single(i => i.Target == b.Digest);
        Assert.Equal(["a:1", "a:latest"], ua.Names);
        // The shared layer: its blob and its snapshot (b's chain starts with the same snapshot, unpacked or not).
        Assert.Equal(shared.Length + 1000, ub.SharedSize);
        Assert.Equal(shared.Length + 1000, ua.SharedSize);
        Assert.Equal(BlobsOf(content, a).Sum(d => content.GetSize(d)!.Value) + 1001, ua.Size); // blobs + unpacked files
        Assert.Equal(ua.Size - ua.SharedSize, ua.UniqueSize);
        Assert.Equal("unreferenced".Length, r.UnreferencedBytes);
        Assert.Equal(2, r.SnapshotCount);
        Assert.Equal(5, Assert.Single(r.Containers).Bytes);

        var list = ImageInfo.List(content, refs, snapshots: snaps);
        Assert.Equal(2, list.Count);
        ImageInfo ia = list.Single(i => i.Target.Digest == a.Digest);
        Assert.Equal(["a:1", "a:latest"], ia.RepoTags);
        Assert.Equal(["a@" + a.Digest], ia.RepoDigests);
        Assert.Equal(1001, ia.UnpackedSize);
        Assert.Null(list.Single(i => i.Target.Digest == b.Digest).UnpackedSize);
        Assert.Equal(["80/tcp"], ia.Config.ExposedPorts!.Keys);
    }
}
