using System.Text.Json;
using Vessel.Images.Archive;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Layers;
using Vessel.Images.Layout;
using Vessel.Images.Oci;

namespace Vessel.Images.Tests.Archive;

public sealed class OciArchiveAndImportTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void OciArchiveRoundTrip()
    {
        var a = new ContentStore(_tmp.Sub("a"));
        var ra = new ReferenceStore(a);
        var (amd, _) = ImageBuilder.AddImage(a, "amd64", DockerArchiveTests.Layer1(), DockerArchiveTests.Layer2());
        var (arm, _) = ImageBuilder.AddImage(a, "arm64", DockerArchiveTests.Layer3());
        Descriptor index = ImageBuilder.AddIndex(a, amd, arm);
        ra.Tag("example.com/multi:1", index);
        string file = Path.Combine(_tmp.Path, "oci.tar");
        using (var fs = File.Create(file)) OciArchive.Export(fs, a, ra, ["example.com/multi:1"]);

        var b = new ContentStore(_tmp.Sub("b"));
        var rb = new ReferenceStore(b);
        LayoutImportResult r;
        using (var fs = File.OpenRead(file)) r = OciArchive.Import(fs, b, rb, what: "oci.tar");
        Assert.Equal("example.com/multi:1", r.Images[0].Name);
        Assert.Equal(index.Digest, rb.Resolve("example.com/multi:1")!.Digest);
        Assert.Equal(a.List().Select(d => d.Hex).Order().ToList(), b.List().Select(d => d.Hex).Order().ToList());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(b.Root, "ingest")));

        if (File.Exists("/usr/bin/skopeo"))
        {
            var (code, output) = Fs.Run("/usr/bin/skopeo", "inspect", "--raw", $"oci-archive:{file}");
            Assert.True(code == 0, output);
            Assert.Equal(index.Digest, Digest.Compute(System.Text.Encoding.UTF8.GetBytes(output.TrimEnd('\n'))));
        }
    }

    [Fact]
    public void OciArchiveImportRefusesATamperedBlob()
    {
        var a = new ContentStore(_tmp.Sub("a"));
        var ra = new ReferenceStore(a);
        var (m, _) = ImageBuilder.AddImage(a, "amd64", DockerArchiveTests.Layer3());
        ra.Tag("x:1", m);
        var ms = new MemoryStream();
        OciArchive.Export(ms, a, ra, ["x:1"]);
        byte[] tar = ms.ToArray();
        int at = IndexOf(tar, "plain"u8.ToArray());
        tar[at] = (byte)'P'; // inside the uncompressed layer blob
        var b = new ContentStore(_tmp.Sub("b"));
        var e = Assert.Throws<ArchiveException>(() => OciArchive.Import(new MemoryStream(tar), b, new ReferenceStore(b), what: "t.tar"));
        Assert.StartsWith("oci-archive t.tar: blob sha256:", e.Message);
        Assert.Contains("hashes to", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(b.Root, "ingest")));
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("not found");
    }

    [Theory]
    [InlineData("tar")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public void RootfsImportOfBusyboxGivesTheSameFilesBack(string format)
    {
        string rootfs = Path.Combine(_tmp.Path, "rootfs");
        var (code, output) = Fs.Run("bash", Path.Combine(AppContext.BaseDirectory, "../../../../fixtures/busybox-rootfs.sh"), rootfs);
        if (code != 0) Assert.Skip($"busybox rootfs: {output}");
        string tarFile = Path.Combine(_tmp.Path, "rootfs.tar");
        (code, output) = Fs.Run("tar", "--numeric-owner", "--xattrs", "-C", rootfs, "-cf", tarFile, ".");
        Assert.True(code == 0, output);
        byte[] tar = File.ReadAllBytes(tarFile);
        byte[] input = format switch { "gzip" => TarBuilder.Gzip(tar), "zstd" => TarBuilder.Zstd(tar), _ => tar };

        var store = new ContentStore(_tmp.Sub("store"));
        var refs = new ReferenceStore(store);
        var created = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
        RootfsImportResult r = RootfsImport.Import(new MemoryStream(input), store, refs, "local/busybox:imported", new CommitOptions
        {
            Created = created,
            Changes = new ConfigChanges { Cmd = ["/bin/sh"], Env = ["PATH=/bin:/usr/bin"], Entrypoint = ["/bin/busybox"] },
        }, "rootfs.tar");

        Assert.Equal(Digest.Compute(tar), r.Layer.DiffId); // the tar itself is the layer
        Assert.Equal(MediaTypes.OciLayerGzip, r.Layer.Descriptor.MediaType);
        ResolvedImage img = new ImageResolver(store, refs).Resolve("local/busybox:imported");
        Assert.Equal([Digest.Compute(tar)], img.Config.RootFs.DiffIds);
        Assert.Equal(("linux", "amd64"), (img.Config.Os, img.Config.Architecture));
        Assert.Equal(created, img.Config.Created);
        Assert.Equal("vessel import", Assert.Single(img.Config.History!).CreatedBy);
        Assert.Equal(["/bin/sh"], img.Config.Config!.Cmd);
        Assert.Equal(["/bin/busybox"], img.Config.Config.Entrypoint);

        string outDir = _tmp.Sub("out");
        using (VerifyingStream blob = store.OpenRead(r.Layer.Descriptor.Digest, r.Layer.Descriptor.Size))
            Assert.Equal(r.Layer.DiffId, LayerExtractor.Extract(blob, outDir, "busybox", null, null).DiffId);
        Assert.Equal(Fs.Snapshot(rootfs), Fs.Snapshot(outDir));
        Assert.Equal(File.ReadAllBytes(Path.Combine(rootfs, "bin/busybox")), File.ReadAllBytes(Path.Combine(outDir, "bin/busybox")));

        // Metadata for inspect/history.
        ImageInfo info = ImageInfo.Inspect(store, refs, "local/busybox:imported");
        Assert.Equal(img.Manifest.Config.Digest, info.Id);
        Assert.Equal(["local/busybox:imported"], info.RepoTags);
        Assert.Equal([$"local/busybox@{img.Target.Digest}"], info.RepoDigests);
        Assert.Equal(r.Layer.Descriptor.Size, info.Size);
        Assert.Equal(r.Layer.Descriptor, Assert.Single(info.History).Layer);
    }

    [Fact]
    public void RootfsImportRefusesAnEscapingEntry()
    {
        var store = new ContentStore(_tmp.Path);
        byte[] tar = RawTar.Archive(RawTar.Entry("../../root/.ssh/authorized_keys", '0', "k"u8.ToArray()));
        var e = Assert.Throws<ArchiveException>(() => RootfsImport.Import(new MemoryStream(tar), store, new ReferenceStore(store), "x:1", null, "evil.tar"));
        Assert.Equal("rootfs evil.tar: entry \"../../root/.ssh/authorized_keys\" escapes the root", e.Message);
        Assert.Empty(store.List());
    }
}
