using System.Formats.Tar;
using System.Text;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layers;
using Vessel.Images.Oci;

namespace Vessel.Images.Tests;

public sealed class ExtractionTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static readonly byte[] CapNetBindService = [0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    // cap_setuid (bit 7): byte 0x80, not valid UTF-8 on its own, so it must survive as raw bytes.
    private static readonly byte[] CapSetuid = [0x01, 0, 0, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    [Fact]
    public void ExtractsANormalLayerFaithfully()
    {
        byte[] tar = new TarBuilder()
            .Dir("bin/")
            .File("bin/busybox", "#!busybox", mode: (UnixFileMode)0x1ed)
            .Symlink("bin/sh", "busybox")
            .HardLink("bin/ls", "bin/busybox")
            .File("bin/su", "su", mode: (UnixFileMode)0x9ed /* 04755 */)
            .Dir("home/user/", mode: (UnixFileMode)0x1c0, uid: 1000, gid: 1000)
            .File("home/user/notes", "mine", uid: 1000, gid: 1001, pax: new() { ["SCHILY.xattr.user.comment"] = "hello" })
            .Device("dev/null", TarEntryType.CharacterDevice, 1, 3)
            .Device("dev/loop0", TarEntryType.BlockDevice, 7, 0, (UnixFileMode)0x1b0)
            .Fifo("run/fifo")
            .File("/etc/abs", "absolute names are made relative")
            .Dir("tmp/", mode: (UnixFileMode)0x3ff /* 01777 */)
            .Build();
        string target = _tmp.Sub("rootfs");
        LayerExtractResult r = LayerExtractor.Extract(new MemoryStream(tar), target, "test:normal");

        Assert.Equal(Digest.Compute(tar), r.DiffId);
        Assert.Equal(LayerCompression.None, r.Compression);
        Assert.Equal("#!busybox", File.ReadAllText(Path.Combine(target, "bin/busybox")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(target, "bin/sh")).LinkTarget);
        var bb = Fs.Lstat(Path.Combine(target, "bin/busybox"));
        var ls = Fs.Lstat(Path.Combine(target, "bin/ls"));
        Assert.Equal(bb.Ino, ls.Ino);
        Assert.Equal(2u, ls.NLink);
        Assert.Equal(0x89edu, Fs.Lstat(Path.Combine(target, "bin/su")).Mode); // S_IFREG|04755: setuid kept
        var home = Fs.Lstat(Path.Combine(target, "home/user"));
        Assert.Equal((1000u, 1000u, 0x41c0u), (home.Uid, home.Gid, (uint)home.Mode));
        var notes = Fs.Lstat(Path.Combine(target, "home/user/notes"));
        Assert.Equal((1000u, 1001u), (notes.Uid, notes.Gid));
        Assert.Equal("hello"u8.ToArray(), Fs.GetXattr(Path.Combine(target, "home/user/notes"), "user.comment"));
        var dev = Fs.Lstat(Path.Combine(target, "dev/null"));
        Assert.Equal((Libc.S_IFCHR, 1u, 3u, 0x1b6u), (dev.FileType, dev.RdevMajor, dev.RdevMinor, dev.Mode & 0xfffu));
        var loop = Fs.Lstat(Path.Combine(target, "dev/loop0"));
        Assert.Equal((Libc.S_IFBLK, 7u, 0u, 0x1b0u), (loop.FileType, loop.RdevMajor, loop.RdevMinor, loop.Mode & 0xfffu));
        Assert.Equal(Libc.S_IFIFO, Fs.Lstat(Path.Combine(target, "run/fifo")).FileType);
        Assert.Equal(0x3ffu, Fs.Lstat(Path.Combine(target, "tmp")).Mode & 0xfffu);
        Assert.True(File.Exists(Path.Combine(target, "etc/abs")));
        Assert.Equal(0x1edu, Fs.Lstat(Path.Combine(target, "etc")).Mode & 0xfffu); // implicit parent: 0755
        long t = TarBuilder.Time.ToUnixTimeSeconds();
        Assert.Equal(t, Fs.Lstat(Path.Combine(target, "bin/busybox")).MTime.Sec);
        Assert.Equal(t, Fs.Lstat(Path.Combine(target, "bin")).MTime.Sec); // dir mtime survives its children
        Assert.Equal(t, Fs.Lstat(Path.Combine(target, "bin/sh")).MTime.Sec); // symlink's own mtime
        Assert.Equal(12, r.Entries);
    }

    [Fact]
    public void BinarySecurityCapabilityIsKeptByteForByte()
    {
        byte[] tar = RawTar.Archive(
            RawTar.Entry("usr/bin/ping", '0', "ping"u8.ToArray(), mode: 0x1ed,
                paxRecords: RawTar.PaxRecord("SCHILY.xattr.security.capability", CapNetBindService)),
            RawTar.Entry("usr/bin/newuidmap", '0', "map"u8.ToArray(), mode: 0x1ed,
                paxRecords: RawTar.PaxRecord("SCHILY.xattr.security.capability", CapSetuid)),
            RawTar.Entry("usr/bin/sneaky", '0', "x"u8.ToArray(),
                paxRecords: RawTar.PaxRecord("SCHILY.xattr.trusted.overlay.redirect", "/etc"u8.ToArray())));
        string target = _tmp.Sub("rootfs");
        LayerExtractResult r = LayerExtractor.Extract(new MemoryStream(tar), target, "test:caps");
        Assert.Equal(CapNetBindService, Fs.GetXattr(Path.Combine(target, "usr/bin/ping"), "security.capability"));
        Assert.Equal(CapSetuid, Fs.GetXattr(Path.Combine(target, "usr/bin/newuidmap"), "security.capability"));
        var (code, output) = Fs.Run("getcap", Path.Combine(target, "usr/bin/ping"));
        Assert.True(code == 0 && output.Contains("cap_net_bind_service=ep"), output);
        // overlayfs' own xattrs are never taken from layer content.
        Assert.Null(Fs.GetXattr(Path.Combine(target, "usr/bin/sneaky"), "trusted.overlay.redirect"));
        Assert.Contains(r.Warnings, w => w.Contains("trusted.overlay.redirect"));
    }

    [Fact]
    public void GnuTarMadeLayerRoundTrips()
    {
        // A layer made by the real GNU tar from a real directory.
        string src = _tmp.Sub("src");
        Directory.CreateDirectory(Path.Combine(src, "a/b"));
        File.WriteAllText(Path.Combine(src, "a/b/file"), new string('x', 100_000));
        File.CreateSymbolicLink(Path.Combine(src, "a/link"), "b/file");
        File.WriteAllText(Path.Combine(src, new string('n', 150)), "long name"); // GNU long name ('L')
        string tarPath = Path.Combine(_tmp.Path, "layer.tar");
        var (code, output) = Fs.Run("tar", "--format=gnu", "-C", src, "-cf", tarPath, ".");
        Assert.True(code == 0, output);
        string target = _tmp.Sub("out");
        using (var fs = File.OpenRead(tarPath))
            LayerExtractor.Extract(fs, target, "test:gnutar");
        Assert.Equal(100_000, new FileInfo(Path.Combine(target, "a/b/file")).Length);
        Assert.Equal("b/file", new FileInfo(Path.Combine(target, "a/link")).LinkTarget);
        Assert.Equal("long name", File.ReadAllText(Path.Combine(target, new string('n', 150))));
    }

    [Theory]
    [InlineData("gzip", LayerCompression.Gzip)]
    [InlineData("zstd", LayerCompression.Zstd)]
    [InlineData("none", LayerCompression.None)]
    public void DetectsCompressionFromMagicBytes(string tool, LayerCompression expected)
    {
        byte[] tar = new TarBuilder().Dir("d/").File("d/f", "compressed " + tool).Build();
        string tarPath = Path.Combine(_tmp.Path, "l.tar");
        File.WriteAllBytes(tarPath, tar);
        byte[] blob = tool switch
        {
            // The real command-line compressors, so detection is tested against what real tools produce.
            "gzip" => RunCompressor("gzip", "-c", tarPath),
            "zstd" => RunCompressor("zstd", "-q", "-c", tarPath),
            _ => tar,
        };
        Assert.Equal(expected, Decompression.Detect(blob));
        string target = _tmp.Sub("out-" + tool);
        LayerExtractResult r = LayerExtractor.Extract(new MemoryStream(blob), target, "test:" + tool);
        Assert.Equal(expected, r.Compression);
        Assert.Equal(Digest.Compute(tar), r.DiffId); // diffID = digest of the uncompressed tar
        Assert.Equal("compressed " + tool, File.ReadAllText(Path.Combine(target, "d/f")));

        // And the in-process compressors agree.
        if (tool == "zstd") Assert.Equal(Digest.Compute(tar), LayerExtractor.Extract(new MemoryStream(TarBuilder.Zstd(tar)), _tmp.Sub("z2"), "t").DiffId);
        if (tool == "gzip") Assert.Equal(Digest.Compute(tar), LayerExtractor.Extract(new MemoryStream(TarBuilder.Gzip(tar)), _tmp.Sub("g2"), "t").DiffId);
    }

    private static byte[] RunCompressor(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return ms.ToArray();
    }

    [Fact]
    public void RefusesXz()
    {
        byte[] xz = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0];
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(xz), _tmp.Sub("o"), "test:xz", "sha256:abc", null));
        Assert.Equal("image test:xz: layer sha256:abc: layer is xz-compressed, which OCI does not allow (tar, gzip or zstd only)", e.Message);
    }

    private static byte[] LowerLayer() => new TarBuilder()
        .Dir("a/").File("a/keep", "keep").File("a/gone", "gone")
        .Dir("b/").File("b/old", "old").Dir("b/sub/").File("b/sub/deep", "deep")
        .File("top", "top")
        .Build();

    private static byte[] UpperLayer() => new TarBuilder()
        .Dir("a/").File("a/.wh.gone", "")
        .Dir("b/").File("b/.wh..wh..opq", "").File("b/new", "new")
        .File(".wh.top", "")
        .File("a/.wh.mine", "").File("a/mine", "same layer: a whiteout never hides it")
        .Build();

    [Fact]
    public void WhiteoutsInOverlayFormat()
    {
        string l1 = _tmp.Sub("l1"), l2 = _tmp.Sub("l2");
        LayerExtractor.Extract(new MemoryStream(LowerLayer()), l1, "test:wh");
        LayerExtractor.Extract(new MemoryStream(UpperLayer()), l2, "test:wh");

        var gone = Fs.Lstat(Path.Combine(l2, "a/gone"));
        Assert.Equal((Libc.S_IFCHR, 0u, 0u), (gone.FileType, gone.RdevMajor, gone.RdevMinor));
        Assert.Equal(Libc.S_IFCHR, Fs.Lstat(Path.Combine(l2, "top")).FileType);
        Assert.Equal("y"u8.ToArray(), Fs.GetXattr(Path.Combine(l2, "b"), "trusted.overlay.opaque"));
        Assert.Null(Fs.GetXattr(Path.Combine(l2, "a"), "trusted.overlay.opaque"));
        Assert.Equal("new", File.ReadAllText(Path.Combine(l2, "b/new")));
        Assert.True(File.Exists(Path.Combine(l2, "a/mine")));
        Assert.False(Fs.Exists(Path.Combine(l2, "a/.wh.gone")));
        Assert.False(Fs.Exists(Path.Combine(l2, "b/.wh..wh..opq")));
        Assert.True(File.Exists(Path.Combine(l1, "a/gone"))); // the lower snapshot is untouched
    }

    [Fact]
    public void WhiteoutsAppliedOntoTheSameDirectory()
    {
        string root = _tmp.Sub("flat");
        var apply = new ExtractionOptions { Whiteouts = WhiteoutMode.Apply };
        LayerExtractor.Extract(new MemoryStream(LowerLayer()), root, "test:wh", null, apply);
        LayerExtractor.Extract(new MemoryStream(UpperLayer()), root, "test:wh", null, apply);
        Assert.True(File.Exists(Path.Combine(root, "a/keep")));
        Assert.False(Fs.Exists(Path.Combine(root, "a/gone")));
        Assert.False(Fs.Exists(Path.Combine(root, "top")));
        Assert.False(Fs.Exists(Path.Combine(root, "b/old")));
        Assert.False(Fs.Exists(Path.Combine(root, "b/sub")));
        Assert.Equal("new", File.ReadAllText(Path.Combine(root, "b/new")));
        Assert.True(File.Exists(Path.Combine(root, "a/mine")));
        Assert.Null(Fs.GetXattr(Path.Combine(root, "b"), "trusted.overlay.opaque"));
    }

    [Fact]
    public void LaterEntryReplacesEarlierOneButDirectoriesMerge()
    {
        byte[] tar = new TarBuilder()
            .File("x", "first").File("x", "second")
            .Dir("d/").File("d/child", "c").Dir("d/", mode: (UnixFileMode)0x1c0)
            .File("s", "file").Symlink("s", "/etc/passwd")
            .Build();
        string target = _tmp.Sub("r");
        LayerExtractor.Extract(new MemoryStream(tar), target, "test:dup");
        Assert.Equal("second", File.ReadAllText(Path.Combine(target, "x")));
        Assert.True(File.Exists(Path.Combine(target, "d/child")));
        Assert.Equal(0x1c0u, Fs.Lstat(Path.Combine(target, "d")).Mode & 0xfffu);
        Assert.Equal("/etc/passwd", new FileInfo(Path.Combine(target, "s")).LinkTarget); // stored, not followed
    }
}
