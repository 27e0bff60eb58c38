using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layers;
using Vessel.Images.Oci;

namespace Vessel.Images.Tests;

/// <summary>A scratch directory /tmp/vessel-test-*, removed (without following symlinks) on Dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("vessel-test-").FullName;

    public string Sub(string name)
    {
        string p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try { FsOps.RemoveTree(Path); } catch (IOException) { }
    }
}

internal static class Fs
{
    public static Libc.Statx Lstat(string path)
    {
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0)
            throw new IOException($"statx {path}: {Libc.StrError(Libc.Errno)}");
        return st;
    }

    public static bool Exists(string path) =>
        Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out _) == 0;

    public static unsafe byte[]? GetXattr(string path, string name)
    {
        byte* buf = stackalloc byte[4096];
        nint n = Libc.lgetxattr(path, name, buf, 4096);
        return n < 0 ? null : new ReadOnlySpan<byte>(buf, (int)n).ToArray();
    }

    /// <summary>Every path under a directory (relative, with mode and size), walked without following
    /// symlinks, for "nothing changed outside" checks.</summary>
    public static string Snapshot(string dir)
    {
        var lines = new List<string>();
        void Walk(string d)
        {
            foreach (string p in Directory.EnumerateFileSystemEntries(d))
            {
                var st = Lstat(p);
                lines.Add(System.IO.Path.GetRelativePath(dir, p) + ":" + st.Mode + ":" + st.Size);
                if (st.IsDirectory) Walk(p);
            }
        }
        Walk(dir);
        lines.Sort(StringComparer.Ordinal);
        return string.Join("\n", lines);
    }

    public static (int Code, string Out) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, o);
    }
}

/// <summary>Builds tar streams with System.Formats.Tar.</summary>
internal sealed class TarBuilder
{
    private readonly MemoryStream _ms = new();
    private readonly TarWriter _w;
    public static readonly DateTimeOffset Time = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    public TarBuilder() => _w = new TarWriter(_ms, TarEntryFormat.Pax, leaveOpen: true);

    public TarBuilder Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ed, int uid = 0, int gid = 0) =>
        Add(new PaxTarEntry(TarEntryType.Directory, name) { Mode = mode, Uid = uid, Gid = gid, ModificationTime = Time });

    public TarBuilder File(string name, string content, UnixFileMode mode = (UnixFileMode)0x1a4, int uid = 0, int gid = 0,
        Dictionary<string, string>? pax = null) =>
        Add(new PaxTarEntry(TarEntryType.RegularFile, name, pax ?? new Dictionary<string, string>())
        {
            Mode = mode, Uid = uid, Gid = gid, ModificationTime = Time,
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
        });

    public TarBuilder Symlink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1ff, ModificationTime = Time });

    public TarBuilder HardLink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1a4, ModificationTime = Time });

    public TarBuilder Device(string name, TarEntryType type, int major, int minor, UnixFileMode mode = (UnixFileMode)0x1b6) =>
        Add(new PaxTarEntry(type, name) { DeviceMajor = major, DeviceMinor = minor, Mode = mode, ModificationTime = Time });

    public TarBuilder Fifo(string name) => Add(new PaxTarEntry(TarEntryType.Fifo, name) { Mode = (UnixFileMode)0x1a4, ModificationTime = Time });

    public TarBuilder Add(TarEntry e) { _w.WriteEntry(e); return this; }

    public byte[] Build()
    {
        _w.Dispose();
        return _ms.ToArray();
    }

    public static byte[] Gzip(byte[] tar)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(tar);
        return ms.ToArray();
    }

    public static byte[] Zstd(byte[] tar)
    {
        var ms = new MemoryStream();
        using (var z = new ZstdSharp.CompressionStream(ms, 3, leaveOpen: true)) z.Write(tar);
        return ms.ToArray();
    }
}

/// <summary>Hand-made tar blocks, for what TarWriter refuses to or cannot write (binary PAX values, lies).</summary>
internal static class RawTar
{
    public static byte[] Header(string name, char type, long size, string link = "", int mode = 0x1a4)
    {
        byte[] h = new byte[512];
        Encoding.UTF8.GetBytes(name).AsSpan(0, Math.Min(100, Encoding.UTF8.GetByteCount(name))).CopyTo(h);
        Octal(h, 100, 8, mode);
        Octal(h, 108, 8, 0);
        Octal(h, 116, 8, 0);
        Octal(h, 124, 12, size);
        Octal(h, 136, 12, TarBuilder.Time.ToUnixTimeSeconds());
        h[156] = (byte)type;
        Encoding.UTF8.GetBytes(link).CopyTo(h, 157);
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        for (int i = 148; i < 156; i++) h[i] = (byte)' ';
        int sum = 0;
        foreach (byte b in h) sum += b;
        Octal(h, 148, 7, sum);
        h[155] = (byte)' ';
        return h;
    }

    private static void Octal(byte[] h, int off, int len, long v)
    {
        string s = Convert.ToString(v, 8).PadLeft(len - 1, '0');
        Encoding.ASCII.GetBytes(s).CopyTo(h, off);
        h[off + len - 1] = 0;
    }

    public static byte[] PaxRecord(string key, byte[] value)
    {
        byte[] k = Encoding.UTF8.GetBytes(key);
        int body = 1 + k.Length + 1 + value.Length + 1;
        int len = body + 1;
        while (len.ToString().Length + body != len) len = len.ToString().Length + body;
        var ms = new MemoryStream();
        ms.Write(Encoding.ASCII.GetBytes(len + " "));
        ms.Write(k);
        ms.WriteByte((byte)'=');
        ms.Write(value);
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    public static byte[] Entry(string name, char type, byte[] data, string link = "", int mode = 0x1a4, params byte[][] paxRecords)
    {
        var ms = new MemoryStream();
        if (paxRecords.Length > 0)
        {
            byte[] pax = paxRecords.SelectMany(r => r).ToArray();
            ms.Write(Header("PaxHeaders/" + name.Split('/')[^1], 'x', pax.Length));
            ms.Write(Pad(pax));
        }
        ms.Write(Header(name, type, data.Length, link, mode));
        ms.Write(Pad(data));
        return ms.ToArray();
    }

    public static byte[] Pad(byte[] data)
    {
        byte[] r = new byte[(data.Length + 511) / 512 * 512];
        data.CopyTo(r, 0);
        return r;
    }

    public static byte[] Archive(params byte[][] entries) => entries.SelectMany(e => e).Concat(new byte[1024]).ToArray();
}

/// <summary>Builds a real image (layers, config, manifest, optional index) in a content store.</summary>
internal static class ImageBuilder
{
    public static (Descriptor Manifest, ImageConfig Config) AddImage(ContentStore store, string arch, params byte[][] layerBlobs) =>
        AddImage(store, arch, null, layerBlobs);

    public static (Descriptor Manifest, ImageConfig Config) AddImage(ContentStore store, string arch, string? variant, params byte[][] layerBlobs)
    {
        var layers = new List<Descriptor>();
        var diffIds = new List<Digest>();
        foreach (byte[] blob in layerBlobs)
        {
            LayerCompression c = Decompression.Detect(blob);
            BlobInfo info = store.Write(blob);
            layers.Add(new Descriptor
            {
                MediaType = c switch { LayerCompression.Gzip => MediaTypes.OciLayerGzip, LayerCompression.Zstd => MediaTypes.OciLayerZstd, _ => MediaTypes.OciLayer },
                Digest = info.Digest, Size = info.Size,
            });
            using Stream s = Decompression.Open(new MemoryStream(blob), out _);
            diffIds.Add(Digest.Compute(s));
        }
        var config = new ImageConfig
        {
            Architecture = arch, Os = "linux", Variant = variant,
            Config = new ContainerConfig { Cmd = ["/bin/sh"], Env = ["PATH=/usr/bin:/bin"], ExposedPorts = new Dictionary<string, EmptyObject> { ["80/tcp"] = new() } },
            RootFs = new RootFs { Type = "layers", DiffIds = diffIds },
            History = [new History { CreatedBy = "test", Created = TarBuilder.Time }],
        };
        byte[] cfg = OciJson.Serialize(config);
        BlobInfo ci = store.Write(cfg);
        var manifest = new ImageManifest
        {
            SchemaVersion = 2, MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = ci.Digest, Size = ci.Size },
            Layers = layers,
        };
        byte[] mj = OciJson.Serialize(manifest);
        BlobInfo mi = store.Write(mj);
        return (new Descriptor { MediaType = MediaTypes.OciManifest, Digest = mi.Digest, Size = mi.Size,
            Platform = new Platform { Os = "linux", Architecture = arch, Variant = variant } }, config);
    }

    public static Descriptor AddIndex(ContentStore store, params Descriptor[] manifests)
    {
        byte[] ij = OciJson.Serialize(new ImageIndex { SchemaVersion = 2, MediaType = MediaTypes.OciIndex, Manifests = manifests });
        BlobInfo ii = store.Write(ij);
        return new Descriptor { MediaType = MediaTypes.OciIndex, Digest = ii.Digest, Size = ii.Size };
    }
}
