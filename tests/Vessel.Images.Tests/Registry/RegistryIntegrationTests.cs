using System.Text;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layout;
using Vessel.Images.Oci;
using Vessel.Images.References;
using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

/// <summary>Push and pull against a real registry (docker-registry), with failures injected by a loopback proxy.</summary>
public sealed class RegistryIntegrationTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly RegistryProcess _reg = fixture.Registry;
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (IDisposable d in _owned) d.Dispose();
        _tmp.Dispose();
    }

    private (ContentStore Store, ReferenceStore Refs) NewStore(string name)
    {
        var store = new ContentStore(_tmp.Sub(name));
        return (store, new ReferenceStore(store));
    }

    private RegistryClient Client(ContentStore store, RegistryOptions? options = null)
    {
        var c = new RegistryClient(store, new ReferenceStore(store), options);
        _owned.Add(c);
        return c;
    }

    private LoopbackProxy Proxy()
    {
        var p = new LoopbackProxy(_reg.Host);
        _owned.Add(p);
        return p;
    }

    private ImageRef Ref(string host, string repoAndTag) => ImageRef.Parse($"{host}/{repoAndTag}");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PushThenPullIntoAnEmptyStoreGivesTheSameDigests()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "push-pull");
        var push = new ProgressLog();
        Digest pushed = await Client(src).PushAsync(manifest, Ref(_reg.Host, "t/busybox:1"), push, Ct);
        Assert.Equal(manifest.Digest, pushed);
        Assert.Contains(TransferPhase.Uploading, push.PhasesOf(parsed.Layers[0].Digest));
        Assert.Equal(TransferPhase.Done, push.PhasesOf(parsed.Layers[0].Digest).Last());

        var (dst, dstRefs) = NewStore("dst");
        var pull = new ProgressLog();
        PullResult r = await Client(dst).PullAsync(Ref(_reg.Host, "t/busybox:1"), pull, Ct);
        Assert.Equal(manifest.Digest, r.Target.Digest);
        Assert.Equal(MediaTypes.OciManifest, r.Target.MediaType);
        Assert.Equal(3, r.BlobsDownloaded);
        Assert.Equal(parsed.Layers.Sum(l => l.Size) + parsed.Config.Size, r.BytesDownloaded);
        Assert.Equal(r.Target, dstRefs.Resolve($"{_reg.Host}/t/busybox:1"));
        foreach (Descriptor b in parsed.Layers.Append(parsed.Config))
        {
            Assert.True(dst.Exists(b.Digest));
            Assert.Equal(File.ReadAllBytes(src.BlobPath(b.Digest)), File.ReadAllBytes(dst.BlobPath(b.Digest)));
            Assert.Equal(TransferPhase.Done, pull.PhasesOf(b.Digest).Last());
            Assert.Contains(TransferPhase.Verifying, pull.PhasesOf(b.Digest));
        }
        ResolvedImage img = new ImageResolver(dst, dstRefs).Resolve($"{_reg.Host}/t/busybox:1");
        Assert.Equal(2, img.Config.RootFs.DiffIds.Count);
        Assert.Empty(Directory.GetFiles(Path.Combine(dst.Root, "ingest")));

        // Pulling again downloads nothing; pushing again uploads nothing.
        var again = new ProgressLog();
        PullResult r2 = await Client(dst).PullAsync(Ref(_reg.Host, "t/busybox:1"), again, Ct);
        Assert.Equal(0, r2.BlobsDownloaded);
        Assert.All(parsed.Layers, l => Assert.Equal(TransferPhase.Exists, again.PhasesOf(l.Digest).Last()));
        var push2 = new ProgressLog();
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "t/busybox:2"), push2, Ct);
        Assert.All(parsed.Layers, l => Assert.Equal(TransferPhase.Exists, push2.PhasesOf(l.Digest).Last()));

        // By digest: verified against the reference.
        PullResult byDigest = await Client(dst).PullAsync(Ref(_reg.Host, $"t/busybox@{manifest.Digest}"), null, Ct);
        Assert.Equal(manifest.Digest, byDigest.Target.Digest);
    }

    [Fact]
    public async Task CrossRepositoryMountAndChunkedUpload()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "mount");
        // Chunked: the busybox layer is ~1 MB, chunks of 64 KiB.
        await Client(src, new RegistryOptions { UploadChunkSize = 64 * 1024 }).PushAsync(manifest, Ref(_reg.Host, "mnt/a:1"), null, Ct);
        var log = new ProgressLog();
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "mnt/b:1"), log, Ct);
        Assert.All(parsed.Layers, l => Assert.Equal(TransferPhase.Mounted, log.PhasesOf(l.Digest).Last()));
        Assert.Contains("\"mnt/a\"", File.ReadAllText(Path.Combine(src.Root, "registry-sources.json")));

        var (dst, _) = NewStore("dst");
        PullResult r = await Client(dst).PullAsync(Ref(_reg.Host, "mnt/b:1"), null, Ct);
        Assert.Equal(manifest.Digest, r.Target.Digest);
        Assert.Equal(File.ReadAllBytes(src.BlobPath(parsed.Layers[0].Digest)), File.ReadAllBytes(dst.BlobPath(parsed.Layers[0].Digest)));
    }

    [Fact]
    public async Task MultiArchIndexPullsOnlyTheRequestedPlatform()
    {
        var (src, _) = NewStore("src");
        var (amd, _) = ImageBuilder.AddImage(src, "amd64", TestImages.SmallLayer("amd64"));
        var (arm, _) = ImageBuilder.AddImage(src, "arm64", TestImages.SmallLayer("arm64"));
        Descriptor index = ImageBuilder.AddIndex(src, amd, arm);
        Assert.Equal(index.Digest, await Client(src).PushAsync(index, Ref(_reg.Host, "multi/x:1"), null, Ct));

        var (dst, dstRefs) = NewStore("dst");
        PullResult r = await Client(dst).PullAsync(Ref(_reg.Host, "multi/x:1"), null, Ct);
        Assert.Equal(index.Digest, r.Target.Digest);
        Assert.Equal(amd.Digest, r.Manifest.Digest);
        Assert.False(dst.Exists(arm.Digest));
        Assert.Equal("amd64", new ImageResolver(dst, dstRefs).Resolve($"{_reg.Host}/multi/x:1").Config.Architecture);

        var (dst2, _) = NewStore("dst2");
        PullResult r2 = await Client(dst2, new RegistryOptions { Platform = PlatformSpec.Parse("linux/aarch64") }).PullAsync(Ref(_reg.Host, "multi/x:1"), null, Ct);
        Assert.Equal(arm.Digest, r2.Manifest.Digest);

        var e = await Assert.ThrowsAsync<ContentException>(() =>
            Client(NewStore("dst3").Store, new RegistryOptions { Platform = PlatformSpec.Parse("linux/s390x") }).PullAsync(Ref(_reg.Host, "multi/x:1"), null, Ct));
        Assert.Equal($"image {_reg.Host}/multi/x:1: no manifest for platform linux/s390x (available: linux/amd64, linux/arm64)", e.Message);

        // Only one platform is local: pushing the index is refused with a clear line.
        var pe = await Assert.ThrowsAsync<ContentException>(() => Client(dst).PushAsync($"{_reg.Host}/multi/x:1", Ref(_reg.Host, "multi/y:1"), null, Ct));
        Assert.Contains("that is not in the content store (only one platform was pulled)", pe.Message);
    }

    [Fact]
    public async Task NotFoundAndUnreachableAreOneClearLine()
    {
        var (dst, _) = NewStore("dst");
        var nf = await Assert.ThrowsAsync<RegistryException>(() => Client(dst).PullAsync(Ref(_reg.Host, "nope/x:1"), null, Ct));
        Assert.Equal(RegistryErrorKind.NotFound, nf.Kind);
        Assert.StartsWith($"image {_reg.Host}/nope/x:1 not found in {_reg.Host}: ", nf.Message);
        Assert.Contains("\"", nf.Message); // the registry's own error message, quoted
        Assert.Equal(404, nf.StatusCode);

        string missing = "sha256:" + new string('e', 64);
        var nd = await Assert.ThrowsAsync<RegistryException>(() => Client(dst).PullAsync(Ref(_reg.Host, $"nope/x@{missing}"), null, Ct));
        Assert.Equal(RegistryErrorKind.NotFound, nd.Kind);

        int closed = RegistryProcess.FreePort();
        var un = await Assert.ThrowsAsync<RegistryException>(() => Client(dst).PullAsync(Ref($"127.0.0.1:{closed}", "x:1"), null, Ct));
        Assert.Equal(RegistryErrorKind.Unreachable, un.Kind);
        Assert.Equal($"cannot reach registry 127.0.0.1:{closed}: connection refused", un.Message);

        var dns = await Assert.ThrowsAsync<RegistryException>(() => Client(dst).PingAsync("no-such-host.invalid", Ct));
        Assert.StartsWith("cannot reach registry no-such-host.invalid: ", dns.Message);
        Assert.DoesNotContain('\n', dns.Message);
    }

    [Fact]
    public async Task RateLimitingIsReportedWithRetryAfter()
    {
        LoopbackProxy proxy = Proxy();
        proxy.RateLimitSeconds = 7;
        var e = await Assert.ThrowsAsync<RegistryException>(() => Client(NewStore("dst").Store).PullAsync(Ref(proxy.Host, "x/y:1"), null, Ct));
        Assert.Equal(RegistryErrorKind.RateLimited, e.Kind);
        Assert.Equal(TimeSpan.FromSeconds(7), e.RetryAfter);
        Assert.Equal($"pull {proxy.Host}/x/y:1: registry {proxy.Host} is rate-limiting requests (retry after 7s): TOOMANYREQUESTS \"slow down\"", e.Message);
    }

    [Fact]
    public async Task CorruptBlobsAndBadManifestsAreRefusedAndLeaveNothing()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "corrupt");
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "bad/x:1"), null, Ct);

        LoopbackProxy proxy = Proxy();
        Digest layer = parsed.Layers[1].Digest;
        proxy.RewriteBody[layer.Hex] = b => { b = (byte[])b.Clone(); b[^20] ^= 0xff; return b; };
        var (dst, dstRefs) = NewStore("dst");
        var e = await Assert.ThrowsAsync<DigestMismatchException>(() => Client(dst).PullAsync(Ref(proxy.Host, "bad/x:1"), null, Ct));
        Assert.Equal(layer, e.Expected);
        Assert.Contains($"blob {layer.Short} of {proxy.Host}/bad/x from {proxy.Host}: content hashes to sha256:", e.Message);
        Assert.False(dst.Exists(layer));
        Assert.Null(dstRefs.Resolve($"{proxy.Host}/bad/x:1"));
        Assert.False(File.Exists(Path.Combine(dst.Root, "ingest", "pull-" + layer.Hex)));

        proxy.RewriteBody.Clear();
        proxy.DropHeaders["Docker-Content-Digest"] = true; // else the mismatch with it is reported first
        proxy.RewriteBody["/manifests/1"] = _ => "{\"schemaVersion\":2,\"config\":"u8.ToArray();
        var m = await Assert.ThrowsAsync<ContentException>(() => Client(NewStore("dst2").Store).PullAsync(Ref(proxy.Host, "bad/x:1"), null, Ct));
        Assert.StartsWith($"image {proxy.Host}/bad/x:1: manifest from {proxy.Host}: invalid JSON: ", m.Message);
        Assert.DoesNotContain('\n', m.Message);

        proxy.RewriteBody["/manifests/1"] = _ => "<html>gateway error</html>"u8.ToArray();
        m = await Assert.ThrowsAsync<ContentException>(() => Client(NewStore("dst3").Store).PullAsync(Ref(proxy.Host, "bad/x:1"), null, Ct));
        Assert.DoesNotContain('\n', m.Message);

        // The manifest itself altered: its digest no longer matches what the registry announced.
        proxy.DropHeaders.Clear();
        proxy.RewriteBody["/manifests/1"] = b => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(b).Replace("\"schemaVersion\":2", "\"schemaVersion\":2 "));
        var md = await Assert.ThrowsAsync<DigestMismatchException>(() => Client(NewStore("dst4").Store).PullAsync(Ref(proxy.Host, "bad/x:1"), null, Ct));
        Assert.Contains("but the registry says", md.Message);
    }

    [Fact]
    public async Task AnInterruptedPullResumesWithARangeRequest()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "resume");
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "resume/x:1"), null, Ct);
        Descriptor layer = parsed.Layers[0];
        Assert.True(layer.Size > 500_000);

        // 1. The connection dies after 300 kB and the pull gives up (one attempt): the partial file stays.
        LoopbackProxy proxy = Proxy();
        proxy.CutAfter[layer.Digest.Hex] = 300_000;
        var (dst, dstRefs) = NewStore("dst");
        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            Client(dst, new RegistryOptions { DownloadAttempts = 1 }).PullAsync(Ref(proxy.Host, "resume/x:1"), null, Ct));
        Assert.Equal(RegistryErrorKind.Interrupted, e.Kind);
        Assert.Contains($"download of blob {layer.Digest.Short} of {proxy.Host}/resume/x from {proxy.Host} interrupted at ", e.Message);
        Assert.EndsWith("pull again to resume", e.Message);
        string partial = Path.Combine(dst.Root, "ingest", "pull-" + layer.Digest.Hex);
        long have = new FileInfo(partial).Length;
        Assert.InRange(have, 1, 300_000);

        // 2. The next pull continues from there with a Range request instead of starting over.
        PullResult r = await Client(dst).PullAsync(Ref(proxy.Host, "resume/x:1"), null, Ct);
        Assert.Equal(manifest.Digest, r.Target.Digest);
        ProxiedRequest last = proxy.BlobGets(layer.Digest.Hex).Last();
        Assert.Equal($"bytes={have}-", last.Range);
        Assert.Equal(206, last.Status);
        Assert.Equal(layer.Size - have, last.BytesSent);
        Assert.False(File.Exists(partial));
        Assert.Equal(layer.Digest, Digest.Compute(File.ReadAllBytes(dst.BlobPath(layer.Digest))));
        Assert.NotNull(dstRefs.Resolve($"{proxy.Host}/resume/x:1"));

        // 3. Within one pull: cut, retried with Range automatically.
        var (dst2, _) = NewStore("dst2");
        proxy.CutAfter[layer.Digest.Hex] = 200_000;
        int before = proxy.BlobGets(layer.Digest.Hex).Count();
        await Client(dst2).PullAsync(Ref(proxy.Host, "resume/x:1"), null, Ct);
        List<ProxiedRequest> gets = proxy.BlobGets(layer.Digest.Hex).Skip(before).ToList();
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.StartsWith("bytes=", gets[1].Range);
        Assert.Equal(layer.Size, gets.Sum(g => g.BytesSent));

        // 4. A registry that ignores Range: the partial is discarded and the full response used, cleanly.
        var (dst3, _) = NewStore("dst3");
        File.WriteAllBytes(Path.Combine(dst3.Root, "ingest", "pull-" + layer.Digest.Hex), File.ReadAllBytes(src.BlobPath(layer.Digest)).AsSpan(0, 1000).ToArray());
        proxy.IgnoreRange = true;
        await Client(dst3).PullAsync(Ref(proxy.Host, "resume/x:1"), null, Ct);
        Assert.Equal(layer.Digest, Digest.Compute(File.ReadAllBytes(dst3.BlobPath(layer.Digest))));

        // 5. A stale partial with wrong bytes: detected at the end, restarted once from zero.
        proxy.IgnoreRange = false;
        var (dst4, _) = NewStore("dst4");
        File.WriteAllBytes(Path.Combine(dst4.Root, "ingest", "pull-" + layer.Digest.Hex), new byte[5000]);
        await Client(dst4).PullAsync(Ref(proxy.Host, "resume/x:1"), null, Ct);
        Assert.Equal(layer.Digest, Digest.Compute(File.ReadAllBytes(dst4.BlobPath(layer.Digest))));
    }

    [Fact]
    public async Task ConcurrentPullsSharingALayerDownloadItOnce()
    {
        var (src, _) = NewStore("src");
        var (a, pa) = TestImages.Busybox(src, "image a");
        var (b, pb) = TestImages.Busybox(src, "image b");
        Assert.Equal(pa.Layers[0].Digest, pb.Layers[0].Digest);
        await Client(src).PushAsync(a, Ref(_reg.Host, "share/a:1"), null, Ct);
        await Client(src).PushAsync(b, Ref(_reg.Host, "share/b:1"), null, Ct);

        LoopbackProxy proxy = Proxy();
        proxy.BlobDelay = TimeSpan.FromMilliseconds(300);
        var (dst, refs) = NewStore("dst");
        var logA = new ProgressLog();
        var logB = new ProgressLog();
        PullResult[] results = await Task.WhenAll(
            Client(dst).PullAsync(Ref(proxy.Host, "share/a:1"), logA, Ct),
            Client(dst).PullAsync(Ref(proxy.Host, "share/b:1"), logB, Ct));
        Digest shared = pa.Layers[0].Digest;
        Assert.Single(proxy.BlobGets(shared.Hex));
        Assert.Single(proxy.BlobGets(pa.Config.Digest.Hex));
        Assert.Equal(a.Digest, results[0].Target.Digest);
        Assert.Equal(b.Digest, results[1].Target.Digest);
        Assert.Equal(3, results.Sum(r => r.BlobsDownloaded) - 2); // 2 configs + 2 top layers + 1 shared = 5
        Assert.Contains(TransferPhase.Waiting, logA.PhasesOf(shared).Concat(logB.PhasesOf(shared)).Skip(1));
        Assert.NotNull(refs.Resolve($"{proxy.Host}/share/a:1"));
        Assert.NotNull(refs.Resolve($"{proxy.Host}/share/b:1"));
    }

    [Fact]
    public async Task APullWaitsForAnotherProcessDownloadingTheSameBlob()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "flock");
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "flock/x:1"), null, Ct);
        LoopbackProxy proxy = Proxy();
        var (dst, _) = NewStore("dst");
        Descriptor layer = parsed.Layers[0];

        // Another "process" holds the flock on the ingest file (an independent open file description).
        string partial = Path.Combine(dst.Root, "ingest", "pull-" + layer.Digest.Hex);
        int fd = Libc.openat(Libc.AT_FDCWD, partial, 2 | Libc.O_CREAT, 0x1a4);
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(0, Libc.flock(fd, Libc.LOCK_EX));
            var log = new ProgressLog();
            Task<PullResult> pull = Client(dst).PullAsync(Ref(proxy.Host, "flock/x:1"), log, Ct);
            await Task.Delay(700, Ct);
            Assert.False(pull.IsCompleted);
            // The other process finishes: the blob lands in the store and its ingest file is renamed away.
            using (var other = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: false), FileAccess.ReadWrite))
            {
                other.Write(File.ReadAllBytes(src.BlobPath(layer.Digest)));
                other.Flush(flushToDisk: true);
            }
            AtomicFile.Commit(partial, dst.BlobPath(layer.Digest));
            Libc.flock(fd, Libc.LOCK_UN);
            PullResult r = await pull;
            Assert.Equal(manifest.Digest, r.Target.Digest);
            Assert.Empty(proxy.BlobGets(layer.Digest.Hex));
            Assert.Equal(TransferPhase.Exists, log.PhasesOf(layer.Digest).Last());
        }
        finally { Libc.close(fd); }
    }

    [Fact]
    public async Task SkopeoReadsWhatVesselPushes()
    {
        var (src, _) = NewStore("src");
        var (manifest, parsed) = TestImages.Busybox(src, "to skopeo");
        await Client(src).PushAsync(manifest, Ref(_reg.Host, "interop/vessel:1"), null, Ct);

        var (code, raw, err) = Cli.Run("skopeo", "inspect", "--tls-verify=false", "--raw", $"docker://{_reg.Host}/interop/vessel:1");
        Assert.True(code == 0, err);
        Assert.Equal(manifest.Digest, Digest.Compute(raw));

        string layout = Path.Combine(_tmp.Path, "skopeo-out");
        (code, _, err) = Cli.Run("skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", $"docker://{_reg.Host}/interop/vessel:1", $"oci:{layout}:1");
        Assert.True(code == 0, err);
        var (back, _) = NewStore("back");
        LayoutImportResult imported = OciLayout.Import(layout, back);
        Assert.Equal(manifest.Digest, Assert.Single(imported.Images).Target.Digest);
        Assert.Equal(File.ReadAllBytes(src.BlobPath(parsed.Layers[0].Digest)), File.ReadAllBytes(back.BlobPath(parsed.Layers[0].Digest)));
    }

    [Fact]
    public async Task VesselPullsWhatSkopeoPushes()
    {
        var (src, _) = NewStore("src");
        var (manifest, _) = TestImages.Busybox(src, "from skopeo");
        string layout = Path.Combine(_tmp.Path, "layout");
        OciLayout.Export(layout, src, [new LayoutImage("interop/skopeo:1", manifest)]);
        var (code, _, err) = Cli.Run("skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", $"oci:{layout}:1", $"docker://{_reg.Host}/interop/skopeo:1");
        Assert.True(code == 0, err);

        var (dst, refs) = NewStore("dst");
        PullResult r = await Client(dst).PullAsync(Ref(_reg.Host, "interop/skopeo:1"), null, Ct);
        Assert.Equal(manifest.Digest, r.Target.Digest);
        ResolvedImage img = new ImageResolver(dst, refs).Resolve($"{_reg.Host}/interop/skopeo:1");
        Assert.Equal("amd64", img.Config.Architecture);
    }
}
