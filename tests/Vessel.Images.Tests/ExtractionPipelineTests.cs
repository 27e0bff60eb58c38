using System.Formats.Tar;
using System.Security.Cryptography;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layers;

namespace Vessel.Images.Tests;

/// <summary>The extraction fast paths: cached parent directory fds (dropped on every removal), create-first with
/// replace on EEXIST, and decompression on a read-ahead thread (same bytes, same errors, digest still checked).
/// Each case runs plain, gzip and zstd, so both the inline and the read-ahead paths are covered.</summary>
public sealed class ExtractionPipelineTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _outside;

    public ExtractionPipelineTests()
    {
        _outside = _tmp.Sub("outside");
        File.WriteAllText(Path.Combine(_outside, "secret"), "do not touch");
    }

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string> Formats => new() { "tar", "gzip", "zstd" };

    private static byte[] Compress(byte[] tar, string format) => format switch
    {
        "gzip" => TarBuilder.Gzip(tar),
        "zstd" => TarBuilder.Zstd(tar),
        _ => tar,
    };

    private LayerException Refuse(byte[] layer, string target)
    {
        string before = Fs.Snapshot(_outside);
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(layer), target, "t:1", "sha256:feed", null));
        Assert.Equal(before, Fs.Snapshot(_outside));
        return e;
    }

    [Theory, MemberData(nameof(Formats))]
    public void DirectoryReplacedBySymlinkAfterItsFdWasCached(string format)
    {
        // a/ and a/b/ are parents of earlier entries (cached fds); then a becomes a symlink out of the layer.
        byte[] tar = new TarBuilder()
            .Dir("a/").Dir("a/b/").File("a/b/x", "1").File("a/y", "2")
            .Symlink("a", _outside)
            .File("a/b/pwned", "gotcha")
            .Build();
        var e = Refuse(Compress(tar, format), _tmp.Sub("t-" + format));
        Assert.Contains("entry \"a/b/pwned\" would be written through the symbolic link \"a\"", e.Message);
        Assert.False(File.Exists(Path.Combine(_outside, "b/pwned")));
    }

    [Theory, MemberData(nameof(Formats))]
    public void WhiteoutRemovesACachedDirectory(string format)
    {
        byte[] tar = new TarBuilder()
            .Dir("d/").File("d/x", "1").Dir("d/sub/").File("d/sub/y", "2")
            .Symlink("e", _outside)
            .Build();
        string target = _tmp.Sub("w-" + format);
        LayerExtractor.Extract(new MemoryStream(Compress(tar, format)), target, "t:1", null, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply });
        // Second layer: whiteout d, then d as a symlink, then a file under it.
        byte[] upper = new TarBuilder().File("d/z", "3").File(".wh.d", "").Symlink("d", _outside).File("d/pwned", "x").Build();
        string before = Fs.Snapshot(_outside);
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(Compress(upper, format)), target, "t:1", null,
            new ExtractionOptions { Whiteouts = WhiteoutMode.Apply }));
        Assert.Contains("would be written through the symbolic link \"d\"", e.Message);
        Assert.Equal(before, Fs.Snapshot(_outside));
    }

    [Theory, MemberData(nameof(Formats))]
    public void ExistingNamesAreReplacedForEveryEntryType(string format)
    {
        byte[] tar = new TarBuilder()
            .File("f", "one").File("g", "two")
            .HardLink("g", "f")                     // over a file
            .Dir("d/").File("d/inner", "x")
            .Symlink("d", "/nowhere")               // over a directory with content
            .Symlink("s", "/a").Symlink("s", "/b")  // over a symlink
            .Fifo("p").File("p", "now a file")      // over a fifo
            .File("n", "x").Device("n", TarEntryType.CharacterDevice, 1, 3)
            .Symlink("k", "/x").Dir("k/")           // a directory over a symlink: replaced, not followed
            .Build();
        string target = _tmp.Sub("r-" + format);
        LayerExtractor.Extract(new MemoryStream(Compress(tar, format)), target, "t:1");
        Assert.Equal(Fs.Lstat(Path.Combine(target, "f")).Ino, Fs.Lstat(Path.Combine(target, "g")).Ino);
        Assert.Equal("/nowhere", new FileInfo(Path.Combine(target, "d")).LinkTarget);
        Assert.Equal("/b", new FileInfo(Path.Combine(target, "s")).LinkTarget);
        Assert.Equal("now a file", File.ReadAllText(Path.Combine(target, "p")));
        Assert.Equal(Libc.S_IFCHR, Fs.Lstat(Path.Combine(target, "n")).FileType);
        Assert.True(Fs.Lstat(Path.Combine(target, "k")).IsDirectory);
    }

    [Fact]
    public void ReadAheadGivesTheSameTreeAndDiffIdAsPlainTar()
    {
        // Several MiB across many directories: more than the read-ahead's chunks, and more than the fd cache holds.
        var b = new TarBuilder();
        var rnd = new Random(7);
        for (int d = 0; d < 300; d++)
        {
            b.Dir($"d{d}/");
            for (int f = 0; f < 5; f++)
            {
                var data = new char[rnd.Next(0, 20_000)];
                for (int i = 0; i < data.Length; i++) data[i] = (char)('a' + rnd.Next(26));
                b.File($"d{d}/f{f}", new string(data), mode: (UnixFileMode)(0x100 + f));
            }
        }
        byte[] tar = b.Build();
        string plain = _tmp.Sub("plain"), gz = _tmp.Sub("gz"), zst = _tmp.Sub("zst");
        LayerExtractResult r0 = LayerExtractor.Extract(new MemoryStream(tar), plain, "t:1");
        LayerExtractResult r1 = LayerExtractor.Extract(new MemoryStream(TarBuilder.Gzip(tar)), gz, "t:1");
        LayerExtractResult r2 = LayerExtractor.Extract(new MemoryStream(TarBuilder.Zstd(tar)), zst, "t:1");
        Assert.Equal(Digest.Compute(tar), r0.DiffId);
        Assert.Equal(r0.DiffId, r1.DiffId);
        Assert.Equal(r0.DiffId, r2.DiffId);
        Assert.Equal(Fs.Snapshot(plain), Fs.Snapshot(gz));
        Assert.Equal(Fs.Snapshot(plain), Fs.Snapshot(zst));
        Assert.Equal(1800, r1.Entries); // 300 dirs + 1500 files
    }

    [Fact]
    public void HardLinksAcrossMoreDirectoriesThanTheFdCacheHolds()
    {
        // Each link needs two directory fds (its parent and the source's); filling the cache must never close
        // one of them mid-entry (a reused fd number would put the link into the wrong directory).
        var b = new TarBuilder();
        for (int d = 0; d < 600; d++) b.Dir($"d{d}/").File($"d{d}/f", $"{d}");
        for (int d = 0; d < 600; d++) b.HardLink($"d{d}/h", $"d{(d + 300) % 600}/f");
        string target = _tmp.Sub("links");
        LayerExtractor.Extract(new MemoryStream(b.Build()), target, "t:1");
        for (int d = 0; d < 600; d++)
        {
            Assert.Equal(Fs.Lstat(Path.Combine(target, $"d{(d + 300) % 600}/f")).Ino, Fs.Lstat(Path.Combine(target, $"d{d}/h")).Ino);
            Assert.Equal(2, Directory.GetFileSystemEntries(Path.Combine(target, $"d{d}")).Length); // f and h
        }
    }

    [Fact]
    public void CorruptGzipFailsAtTheEntryItHitsWithoutHanging()
    {
        var b = new TarBuilder();
        for (int i = 0; i < 200; i++) b.File($"f{i}", new string((char)('a' + i % 26), 30_000 + i));
        byte[] gz = TarBuilder.Gzip(b.Build());
        gz[gz.Length / 2] ^= 0xff;
        gz[gz.Length / 2 + 1] ^= 0xff;
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(gz), _tmp.Sub("c"), "t:1", "sha256:feed", null));
        Assert.True(e.Message.Contains("not a valid tar"), e.Message);
        // Truncated: the stream ends inside an entry.
        var t = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(gz[..(gz.Length / 3)]), _tmp.Sub("c2"), "t:1", "sha256:feed", null));
        Assert.True(t.Message.Contains("not a valid tar"), t.Message);
    }

    [Theory, MemberData(nameof(Formats))]
    public void BlobDigestIsStillVerifiedAtTheEnd(string format)
    {
        byte[] blob = Compress(new TarBuilder().Dir("a/").File("a/f", "x").Build(), format);
        Digest wrong = Digest.FromHash(SHA256.HashData("something else"u8));
        using var verifying = new VerifyingStream(new MemoryStream(blob), wrong, blob.Length);
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(verifying, _tmp.Sub("v-" + format), "t:1", "sha256:feed", null));
        Assert.Contains(wrong.ToString(), e.Message);
        Digest right = Digest.Compute(blob);
        using var ok = new VerifyingStream(new MemoryStream(blob), right, blob.Length);
        LayerExtractor.Extract(ok, _tmp.Sub("ok-" + format), "t:1", right.ToString(), null);
    }

    [Fact]
    public void LimitsStillStopAGzipBombAtItsHeader()
    {
        var b = new TarBuilder();
        b.File("small", "x");
        b.Add(new PaxTarEntry(TarEntryType.RegularFile, "zeros") { DataStream = new MemoryStream(new byte[8 << 20]), ModificationTime = TarBuilder.Time });
        var limits = new ExtractionOptions { Limits = new ExtractionLimits { MaxTotalBytes = 4 << 20 } };
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(TarBuilder.Gzip(b.Build())), _tmp.Sub("bomb"), "t:1", null, limits));
        Assert.Contains("entry \"zeros\" brings the layer's extracted size to more than the limit", e.Message);
        Assert.False(File.Exists(Path.Combine(_tmp.Path, "bomb", "zeros")));
    }
}
