using System.Security.Cryptography;
using System.Text;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Diff;
using Vessel.Images.Interop;
using Vessel.Images.Layers;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Tests.Diff;

public sealed class LayerDiffTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static byte[] Base() => TarBuilder.Gzip(new TarBuilder()
        .Dir("etc/").File("etc/os", "base").File("etc/old", "old").File("etc/keep", "keep")
        .Dir("var/").File("var/x", "x").Dir("var/sub/").File("var/sub/y", "y")
        .Dir("bin/").File("bin/tool", "#!/bin/sh\n", (UnixFileMode)0x1ed)
        .Dir("data/").File("data/a", "a").Build());

    [Fact]
    public void DiffOfARealOverlayUpperDirReproducesTheMergedView()
    {
        var store = new ContentStore(_tmp.Sub("store"));
        var refs = new ReferenceStore(store);
        var (m, _) = ImageBuilder.AddImage(store, "amd64", Base());
        refs.Tag("base:1", m);
        var resolver = new ImageResolver(store, refs);
        ResolvedImage baseImage = resolver.Resolve("base:1");
        IReadOnlyList<string> lowers = new SnapshotStore(store.Root).Unpack(store, baseImage);

        string upper = _tmp.Sub("upper"), work = _tmp.Sub("work"), merged = _tmp.Sub("merged");
        var (code, output) = Fs.Run("mount", "-t", "overlay", "overlay", "-o",
            OverlayMount.BuildOptions(lowers, upper, work) + ",redirect_dir=off,metacopy=off", merged);
        if (code != 0) Assert.Skip($"cannot mount overlayfs here: {output}");
        string mergedView;
        try
        {
            string M(string p) => Path.Combine(merged, p);
            File.WriteAllText(M("etc/os"), "changed");                 // modified (copy-up)
            File.Delete(M("etc/old"));                                 // whiteout
            Directory.Delete(M("var"), recursive: true);               // whole dir gone ...
            Directory.CreateDirectory(M("var"));                       // ... and recreated: opaque
            File.WriteAllText(M("var/new"), "new");
            Run("chmod", "4755", M("bin/tool"));                       // setuid on a lower file
            Directory.CreateDirectory(M("home/user"));
            File.WriteAllText(M("home/user/file"), "owned");
            Run("chown", "-R", "1000:1001", M("home/user"));
            File.CreateSymbolicLink(M("home/link"), "../etc/os");
            File.WriteAllText(M("home/hard1"), "linked");
            Run("ln", M("home/hard1"), M("home/hard2"));
            Run("mkfifo", M("home/fifo"));
            Run("mknod", M("home/null"), "c", "1", "3");
            SetXattr(M("home/hard1"), "user.note", [0x00, 0xff, 0x10]);
            SetXattr(M("bin/tool"), "security.capability", Convert.FromHexString("0100000200200000000000000000000000000000"));
            Directory.Delete(M("data"), recursive: true);               // a whole lower dir deleted
            Run("touch", "-d", "2020-01-01T00:00:00Z", M("var/new"));
            mergedView = View(merged);
        }
        finally
        {
            Fs.Run("umount", merged);
        }
        Assert.Equal(Libc.S_IFCHR, Fs.Lstat(Path.Combine(upper, "etc/old")).FileType);
        Assert.Equal("y"u8.ToArray(), Fs.GetXattr(Path.Combine(upper, "var"), "trusted.overlay.opaque"));

        LayerDiffResult diff = LayerDiff.Create(upper, store);
        Assert.Equal(diff.DiffId, LayerDiff.Create(upper, store).DiffId); // deterministic
        var entries = TarNames(store, diff.Descriptor);
        Assert.Contains("etc/.wh.old", entries);
        Assert.Contains("var/.wh..wh..opq", entries);
        Assert.Contains(".wh.data", entries);
        Assert.Equal(entries.IndexOf("var/") + 1, entries.IndexOf("var/.wh..wh..opq"));

        WrittenImage img = ImageWriter.Write(store, baseImage, [diff.ToNewLayer()], new CommitOptions
        {
            CreatedBy = "vessel commit",
            Changes = new ConfigChanges { Env = ["PATH=/sbin:/bin", "NEW=1"], Labels = new Dictionary<string, string> { ["a"] = "b" } },
        });
        refs.Tag("base:2", img.Manifest);
        ResolvedImage next = resolver.Resolve("base:2");
        Assert.Equal([.. baseImage.Config.RootFs.DiffIds, diff.DiffId], next.Config.RootFs.DiffIds);
        Assert.Equal(2, next.Config.History!.Count);
        Assert.Equal(["PATH=/sbin:/bin", "NEW=1"], next.Config.Config!.Env);
        Assert.Equal(MediaTypes.OciLayerGzip, next.Manifest.Layers[^1].MediaType);

        // Apply lower + new layer onto one directory: the result is what the container saw.
        string flat = _tmp.Sub("flat");
        foreach (Descriptor l in next.Manifest.Layers)
            using (VerifyingStream s = store.OpenRead(l.Digest, l.Size))
                LayerExtractor.Extract(s, flat, "base:2", l.Digest.ToString(), new ExtractionOptions { Whiteouts = WhiteoutMode.Apply });
        Assert.Equal(mergedView, View(flat));
        Assert.Equal(Fs.Lstat(Path.Combine(flat, "home/hard1")).Ino, Fs.Lstat(Path.Combine(flat, "home/hard2")).Ino);

        // And the unpacked snapshots, used as overlay lower dirs, show the same view.
        IReadOnlyList<string> dirs = new SnapshotStore(store.Root).Unpack(store, next);
        string ro = _tmp.Sub("ro");
        (code, output) = Fs.Run("mount", "-t", "overlay", "overlay", "-o", OverlayMount.BuildOptions(dirs, null, null), ro);
        Assert.True(code == 0, output);
        try { Assert.Equal(mergedView, View(ro)); }
        finally { Fs.Run("umount", ro); }
    }

    private static unsafe void SetXattr(string path, string key, byte[] value)
    {
        fixed (byte* v = value)
            Assert.True(Libc.lsetxattr(path, key, v, (nuint)value.Length, 0) == 0, $"setxattr {key}: {Libc.StrError(Libc.Errno)}");
    }

    private static void Run(string file, params string[] args)
    {
        var (code, output) = Fs.Run(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)}: {output}");
    }

    private static List<string> TarNames(ContentStore store, Descriptor d)
    {
        using VerifyingStream s = store.OpenRead(d.Digest, d.Size);
        using Stream tar = Decompression.Open(s, out _);
        using var r = new System.Formats.Tar.TarReader(tar);
        var names = new List<string>();
        System.Formats.Tar.TarEntry? e;
        while ((e = r.GetNextEntry()) is not null) names.Add(e.Name);
        return names;
    }

    /// <summary>Everything observable about a tree: type, mode, owner, size, content hash, link target,
    /// device number, mtime (non-directories), user/security xattrs.</summary>
    internal static unsafe string View(string dir)
    {
        var lines = new List<string>();
        void Walk(string d)
        {
            foreach (string p in Directory.EnumerateFileSystemEntries(d).Order(StringComparer.Ordinal))
            {
                Libc.Statx st = Fs.Lstat(p);
                var sb = new StringBuilder(Path.GetRelativePath(dir, p));
                sb.Append($" mode={st.Mode:x} uid={st.Uid} gid={st.Gid}");
                if (st.IsRegular) sb.Append($" size={st.Size} sha={Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(p)))[..16]}");
                if (st.IsSymlink) sb.Append($" -> {new FileInfo(p).LinkTarget}");
                if (st.FileType is Libc.S_IFCHR or Libc.S_IFBLK) sb.Append($" dev={st.RdevMajor}:{st.RdevMinor}");
                if (!st.IsDirectory) sb.Append($" mtime={st.MTime.Sec}");
                byte[] list = new byte[4096];
                nint n;
                fixed (byte* b = list) n = Libc.llistxattr(p, b, 4096);
                foreach (string key in Encoding.UTF8.GetString(list, 0, (int)Math.Max(0, n)).Split('\0', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal))
                    if (key.StartsWith("user.") || key.StartsWith("security."))
                        sb.Append($" {key}={Convert.ToHexString(Fs.GetXattr(p, key) ?? [])}");
                lines.Add(sb.ToString());
                if (st.IsDirectory) Walk(p);
            }
        }
        Walk(dir);
        return string.Join("\n", lines);
    }
}
