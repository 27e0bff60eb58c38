using System.Text;
using Vessel.Images.Content;
using Vessel.Images.Oci;

namespace Vessel.Images.Tests;

public sealed class DigestTests
{
    private const string Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Fact]
    public void ParsesAndFormatsSha256()
    {
        Digest d = Digest.Parse("sha256:" + Hex);
        Assert.Equal(Hex, d.Hex);
        Assert.Equal("sha256:" + Hex, d.ToString());
        Assert.Equal(d, Digest.Compute(ReadOnlySpan<byte>.Empty));
        Assert.Equal("sha256:e3b0c44298fc", d.Short);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData(Hex, "expected \"sha256:<64 hex digits>\"")]
    [InlineData("sha512:" + Hex + Hex, "unsupported digest algorithm \"sha512\"")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm \"md5\"")]
    [InlineData("sha256:" + "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "64 lowercase hex")]
    [InlineData("sha256:abc", "64 lowercase hex")]
    [InlineData("sha256:" + Hex + "0", "64 lowercase hex")]
    [InlineData("sha256:../../../etc/passwd", "64 lowercase hex")]
    public void RejectsInvalid(string value, string message)
    {
        var e = Assert.Throws<FormatException>(() => Digest.Parse(value));
        Assert.Contains(message, e.Message);
        Assert.False(Digest.TryParse(value, out _));
    }

    [Fact]
    public void JsonRejectsOtherAlgorithmsClearly()
    {
        string json = "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"x\",\"digest\":\"sha512:00\",\"size\":1},\"layers\":[]}";
        var e = Assert.Throws<ContentException>(() => OciJson.ParseManifest(Encoding.UTF8.GetBytes(json), "manifest m"));
        Assert.Contains("unsupported digest algorithm \"sha512\"", e.Message);
    }
}

public sealed class ContentStoreTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void WritesReadsAndVerifies()
    {
        var store = new ContentStore(_tmp.Path);
        byte[] data = Encoding.UTF8.GetBytes("hello vessel");
        BlobInfo info = store.Write(new MemoryStream(data));
        Assert.Equal(Digest.Compute(data), info.Digest);
        Assert.Equal(data.Length, info.Size);
        Assert.True(File.Exists(Path.Combine(_tmp.Path, "blobs", "sha256", info.Digest.Hex)));
        Assert.Equal(data, store.ReadAllBytes(info.Digest, 1024));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_tmp.Path, "ingest"))); // no temp left
        Assert.Contains(info.Digest, store.List());
        // Idempotent: an existing blob is not rewritten.
        Assert.Equal(info, store.Write(new MemoryStream(data), info.Digest, data.Length));
    }

    [Fact]
    public void WriteWithWrongDigestOrSizeIsRefusedAndLeavesNothing()
    {
        var store = new ContentStore(_tmp.Path);
        byte[] data = Encoding.UTF8.GetBytes("payload");
        Digest wrong = Digest.Compute("other"u8);
        var e = Assert.Throws<DigestMismatchException>(() => store.Write(new MemoryStream(data), wrong));
        Assert.Contains("hashes to", e.Message);
        Assert.False(store.Exists(wrong));
        Assert.Throws<DigestMismatchException>(() => store.Write(new MemoryStream(data), Digest.Compute(data), 3));
        Assert.Throws<DigestMismatchException>(() => store.Write(new MemoryStream(data), Digest.Compute(data), 100));
        Assert.Empty(store.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_tmp.Path, "ingest")));
    }

    [Fact]
    public void CorruptedBlobIsDetectedOnRead()
    {
        var store = new ContentStore(_tmp.Path);
        BlobInfo info = store.Write(Encoding.UTF8.GetBytes("original content of the blob"));
        byte[] onDisk = File.ReadAllBytes(store.BlobPath(info.Digest));
        onDisk[3] ^= 0xff; // same size, different bytes
        File.WriteAllBytes(store.BlobPath(info.Digest), onDisk);

        using VerifyingStream s = store.OpenRead(info.Digest);
        var buf = new byte[1024];
        int n = s.Read(buf); // data comes through...
        Assert.Equal(onDisk.Length, n);
        var e = Assert.Throws<DigestMismatchException>(() => s.Read(buf)); // ...and EOF throws
        Assert.Contains(info.Digest.ToString(), e.Message);
        Assert.Throws<DigestMismatchException>(() => store.ReadAllBytes(info.Digest, 1024));
    }

    [Fact]
    public void MissingBlobIsAClearError()
    {
        var store = new ContentStore(_tmp.Path);
        var e = Assert.Throws<ContentException>(() => store.OpenRead(Digest.Compute("x"u8)));
        Assert.Contains("is not in the content store", e.Message);
    }
}

public sealed class ReferenceStoreTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void TagResolveUntagListPersist()
    {
        var store = new ContentStore(_tmp.Path);
        var (m1, _) = ImageBuilder.AddImage(store, "amd64", new TarBuilder().File("a", "1").Build());
        var (m2, _) = ImageBuilder.AddImage(store, "amd64", new TarBuilder().File("b", "2").Build());
        var refs = new ReferenceStore(store);
        refs.Tag("busybox:latest", m1);
        refs.Tag("docker.io/library/alpine:3.20", m2);
        Assert.Equal(m1.Digest, refs.Resolve("busybox:latest")!.Digest);
        refs.Tag("busybox:latest", m2); // retag replaces
        // A fresh instance reads what was written.
        var again = new ReferenceStore(new ContentStore(_tmp.Path));
        Assert.Equal(m2.Digest, again.Resolve("busybox:latest")!.Digest);
        Assert.Equal(["busybox:latest", "docker.io/library/alpine:3.20"], again.List().Select(r => r.Name));
        Assert.True(again.Untag("busybox:latest"));
        Assert.False(again.Untag("busybox:latest"));
        Assert.Null(refs.Resolve("busybox:latest"));
        Assert.Single(refs.List());
        Assert.Empty(Directory.EnumerateFiles(_tmp.Path, ".tmp-*"));
    }

    [Fact]
    public void RefusesBadNamesAndUnknownTargets()
    {
        var store = new ContentStore(_tmp.Path);
        var (m, _) = ImageBuilder.AddImage(store, "amd64", new TarBuilder().File("a", "1").Build());
        var refs = new ReferenceStore(store);
        Assert.Throws<ArgumentException>(() => refs.Tag("", m));
        Assert.Throws<ArgumentException>(() => refs.Tag("bad name", m));
        Assert.Throws<ArgumentException>(() => refs.Tag("bad\nname", m));
        var missing = m with { Digest = Digest.Compute("nope"u8) };
        Assert.Contains("not in the content store", Assert.Throws<ContentException>(() => refs.Tag("x:1", missing)).Message);
        Assert.Throws<ArgumentException>(() => refs.Tag("x:1", m with { MediaType = MediaTypes.OciLayerGzip }));
    }
}

public sealed class ResolverTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void MultiArchIndexResolvesToLinuxAmd64OrOverride()
    {
        var store = new ContentStore(_tmp.Path);
        var (arm, _) = ImageBuilder.AddImage(store, "arm64", "v8", new TarBuilder().File("arch", "arm64").Build());
        var (amd, _) = ImageBuilder.AddImage(store, "amd64", new TarBuilder().File("arch", "amd64").Build());
        var attestation = amd with { Platform = new Platform { Os = "unknown", Architecture = "unknown" } };
        Descriptor index = ImageBuilder.AddIndex(store, arm, attestation, amd);
        var refs = new ReferenceStore(store);
        refs.Tag("multi:latest", index);
        var resolver = new ImageResolver(store, refs);

        ResolvedImage r = resolver.Resolve("multi:latest");
        Assert.Equal(amd.Digest, r.ManifestDescriptor.Digest);
        Assert.Equal("amd64", r.Config.Architecture);
        Assert.Equal(index.Digest, r.Target.Digest);

        Assert.Equal(arm.Digest, resolver.Resolve("multi:latest", PlatformSpec.Parse("linux/arm64")).ManifestDescriptor.Digest);
        Assert.Equal(arm.Digest, resolver.Resolve("multi:latest", PlatformSpec.Parse("linux/aarch64/v8")).ManifestDescriptor.Digest);

        var e = Assert.Throws<ContentException>(() => resolver.Resolve("multi:latest", PlatformSpec.Parse("linux/s390x")));
        Assert.Contains("no manifest for platform linux/s390x", e.Message);
        Assert.Contains("available: linux/arm64/v8, linux/amd64", e.Message);
        Assert.Throws<FormatException>(() => PlatformSpec.Parse("linux"));
        Assert.Contains("no such image", Assert.Throws<ContentException>(() => resolver.Resolve("nope:1")).Message);
    }

    [Fact]
    public void SingleManifestMustMatchPlatformAndDockerTypesAreAccepted()
    {
        var store = new ContentStore(_tmp.Path);
        var (amd, _) = ImageBuilder.AddImage(store, "amd64", new TarBuilder().File("a", "1").Build());
        var refs = new ReferenceStore(store);
        refs.Tag("single:1", amd);
        var resolver = new ImageResolver(store, refs);
        Assert.Equal(amd.Digest, resolver.Resolve("single:1").ManifestDescriptor.Digest);
        Assert.Contains("not linux/arm64", Assert.Throws<ContentException>(() => resolver.Resolve("single:1", PlatformSpec.Parse("linux/arm64"))).Message);

        // A Docker schema 2 manifest list pointing at a Docker manifest.
        string cfgJson = Encoding.UTF8.GetString(store.ReadAllBytes(resolver.ReadManifest(amd, "x").Config.Digest, 1 << 20));
        BlobInfo cfg = store.Write(Encoding.UTF8.GetBytes(cfgJson));
        ImageManifest om = resolver.ReadManifest(amd, "x");
        byte[] dm = OciJson.Serialize(om with
        {
            MediaType = MediaTypes.DockerManifest,
            Config = om.Config with { MediaType = MediaTypes.DockerConfig, Digest = cfg.Digest },
            Layers = om.Layers.Select(l => l with { MediaType = MediaTypes.DockerLayer }).ToList(),
        });
        BlobInfo dmi = store.Write(dm);
        var dmd = new Descriptor { MediaType = MediaTypes.DockerManifest, Digest = dmi.Digest, Size = dmi.Size, Platform = new Platform { Os = "linux", Architecture = "amd64" } };
        byte[] list = OciJson.Serialize(new ImageIndex { MediaType = MediaTypes.DockerManifestList, Manifests = [dmd] });
        BlobInfo li = store.Write(list);
        refs.Tag("docker:1", new Descriptor { MediaType = MediaTypes.DockerManifestList, Digest = li.Digest, Size = li.Size });
        Assert.Equal(dmi.Digest, resolver.Resolve("docker:1").ManifestDescriptor.Digest);
        Assert.Equal(MediaTypes.OciManifest, MediaTypes.ToOci(MediaTypes.DockerManifest));
        Assert.Equal(LayerCompression.Gzip, MediaTypes.LayerCompressionOf(MediaTypes.DockerLayerGzip));

        // A document that contradicts its descriptor's media type is refused.
        refs.Tag("confused:1", new Descriptor { MediaType = MediaTypes.OciManifest, Digest = li.Digest, Size = li.Size });
        Assert.Contains("declares media type", Assert.Throws<ContentException>(() => resolver.Resolve("confused:1")).Message);
    }
}
