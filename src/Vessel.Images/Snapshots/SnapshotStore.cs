using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layers;
using Vessel.Images.Oci;

namespace Vessel.Images.Snapshots;

/// <summary>Per-layer unpacked snapshots, <c>&lt;root&gt;/snapshots/&lt;chainid hex&gt;/fs</c>, each usable as an overlayfs
/// lower dir (whiteouts in overlay format). A layer is unpacked once per chain ID: into a temp dir, checked
/// against the config's diff_id, synced (syncfs), renamed into place, and only then marked with
/// <c>.complete</c>. A snapshot dir without the marker (interrupted unpack) is removed and redone.</summary>
public sealed class SnapshotStore
{
    public const string CompleteMarker = ".complete";
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string SnapshotsDir { get; }

    public SnapshotStore(string root)
    {
        SnapshotsDir = Path.Combine(Path.GetFullPath(root), "snapshots");
        Unix.CreateDirectory(SnapshotsDir, DirMode);
    }

    /// <summary>ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).</summary>
    public static IReadOnlyList<Digest> ChainIds(IReadOnlyList<Digest> diffIds)
    {
        var result = new List<Digest>(diffIds.Count);
        for (int i = 0; i < diffIds.Count; i++)
        {
            result.Add(i == 0 ? diffIds[0]
                : Digest.FromHash(SHA256.HashData(Encoding.ASCII.GetBytes($"{result[i - 1]} {diffIds[i]}"))));
        }
        return result;
    }

    public static Digest ChainId(IReadOnlyList<Digest> diffIds) =>
        diffIds.Count == 0 ? throw new ArgumentException("no layers", nameof(diffIds)) : ChainIds(diffIds)[^1];

    public string SnapshotDir(Digest chainId) => Path.Combine(SnapshotsDir, chainId.Hex);

    public string FsPath(Digest chainId) => Path.Combine(SnapshotDir(chainId), "fs");

    public bool IsComplete(Digest chainId) => File.Exists(Path.Combine(SnapshotDir(chainId), CompleteMarker));

    /// <summary>Makes sure every layer of <paramref name="image"/> is unpacked and returns the snapshot fs
    /// dirs, bottom layer first.</summary>
    public IReadOnlyList<string> Unpack(ContentStore content, ResolvedImage image, ExtractionOptions? options = null)
    {
        options = (options ?? ExtractionOptions.Default) with { Whiteouts = WhiteoutMode.Overlay };
        IReadOnlyList<Digest> diffIds = image.Config.RootFs.DiffIds;
        if (diffIds.Count != image.Manifest.Layers.Count)
            throw new ContentException($"image {image.Name}: {image.Manifest.Layers.Count} layers but {diffIds.Count} diff_ids");
        IReadOnlyList<Digest> chain = ChainIds(diffIds);
        // Shared store lock: garbage collection (exclusive) never decides about snapshots mid-unpack.
        using Gc.StoreLock storeLock = Gc.StoreLock.Shared(Path.GetDirectoryName(SnapshotsDir)!);
        var dirs = new List<string>(chain.Count);
        for (int i = 0; i < chain.Count; i++)
        {
            UnpackLayer(content, image.Name, image.Manifest.Layers[i], diffIds[i], chain[i], i == 0 ? null : chain[i - 1], options);
            dirs.Add(FsPath(chain[i]));
        }
        return dirs;
    }

    private void UnpackLayer(ContentStore content, string imageName, Descriptor layer, Digest diffId, Digest chainId, Digest? parent, ExtractionOptions options)
    {
        if (IsComplete(chainId)) return;
        if (!MediaTypes.IsLayer(layer.MediaType))
            throw new LayerException(imageName, layer.Digest.ToString(), null, $"has unsupported media type \"{layer.MediaType}\"");

        int lfd = Gc.StoreLock.OpenLockFile(Path.Combine(SnapshotsDir, chainId.Hex + ".lock"));
        using var closeFd = new FdCloser(lfd);
        while (Libc.flock(lfd, Libc.LOCK_EX) != 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException($"flock: {Libc.StrError(Libc.Errno)}");
        try
        {
            if (IsComplete(chainId)) return; // another process finished it while we waited
            string final = SnapshotDir(chainId);
            if (Directory.Exists(final)) FsOps.RemoveTree(final); // interrupted earlier: redo
            string tmp = Path.Combine(SnapshotsDir, $".tmp-{chainId.Hex[..16]}-{Guid.NewGuid():N}");
            try
            {
                Unix.CreateDirectory(tmp, DirMode);
                string fs = Path.Combine(tmp, "fs");
                Unix.CreateDirectory(fs, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                    | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
                LayerExtractResult result;
                using (VerifyingStream blob = content.OpenRead(layer.Digest, layer.Size))
                    result = LayerExtractor.Extract(blob, fs, imageName, layer.Digest.ToString(), options);
                if (result.DiffId != diffId)
                    throw new LayerException(imageName, layer.Digest.ToString(), null,
                        $"uncompressed content hashes to {result.DiffId}, but the image config lists diff_id {diffId}");
                SyncFs(tmp);
                Directory.Move(tmp, final);
                AtomicFile.FsyncDirectory(SnapshotsDir);
                AtomicFile.WriteAllBytes(Path.Combine(final, CompleteMarker), Marker(chainId, diffId, layer, parent));
            }
            catch
            {
                try { FsOps.RemoveTree(tmp); } catch (IOException) { }
                throw;
            }
        }
        finally
        {
            Libc.flock(lfd, Libc.LOCK_UN);
        }
    }

    /// <summary>Makes <paramref name="fsDir"/> (an overlay upper dir that was just turned into <paramref name="layer"/>,
    /// on the same file system) the snapshot of <paramref name="chainId"/> by renaming it into place, instead of
    /// extracting the layer again: what a build does after each step. A snapshot that already exists wins (the
    /// directory is left to the caller).</summary>
    public bool Adopt(string fsDir, Digest chainId, Digest diffId, Descriptor layer, Digest? parent)
    {
        using Gc.StoreLock storeLock = Gc.StoreLock.Shared(Path.GetDirectoryName(SnapshotsDir)!);
        int lfd = Gc.StoreLock.OpenLockFile(Path.Combine(SnapshotsDir, chainId.Hex + ".lock"));
        using var closeFd = new FdCloser(lfd);
        while (Libc.flock(lfd, Libc.LOCK_EX) != 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException($"flock: {Libc.StrError(Libc.Errno)}");
        try
        {
            if (IsComplete(chainId)) return false;
            string final = SnapshotDir(chainId);
            if (Directory.Exists(final)) FsOps.RemoveTree(final);
            string tmp = Path.Combine(SnapshotsDir, $".tmp-{chainId.Hex[..16]}-{Guid.NewGuid():N}");
            Unix.CreateDirectory(tmp, DirMode);
            try
            {
                Directory.Move(fsDir, Path.Combine(tmp, "fs"));
                SyncFs(tmp);
                Directory.Move(tmp, final);
            }
            catch
            {
                try { FsOps.RemoveTree(tmp); } catch (IOException) { }
                throw;
            }
            AtomicFile.FsyncDirectory(SnapshotsDir);
            AtomicFile.WriteAllBytes(Path.Combine(final, CompleteMarker), Marker(chainId, diffId, layer, parent));
            return true;
        }
        finally
        {
            Libc.flock(lfd, Libc.LOCK_UN);
        }
    }

    /// <summary>Removes leftovers of unpacks that were interrupted (temp dirs, dirs without marker).</summary>
    public void CleanupIncomplete()
    {
        foreach (string dir in Directory.EnumerateDirectories(SnapshotsDir))
        {
            string name = Path.GetFileName(dir);
            if (name.StartsWith(".tmp-", StringComparison.Ordinal) ||
                (Digest.TryParseHex(name, out _) && !File.Exists(Path.Combine(dir, CompleteMarker))))
                FsOps.RemoveTree(dir);
        }
    }

    private static byte[] Marker(Digest chainId, Digest diffId, Descriptor layer, Digest? parent)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("chainId", chainId.ToString());
            w.WriteString("diffId", diffId.ToString());
            w.WriteString("layer", layer.Digest.ToString());
            w.WriteString("mediaType", layer.MediaType);
            if (parent is Digest p) w.WriteString("parent", p.ToString());
            w.WriteString("completed", DateTimeOffset.UtcNow);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void SyncFs(string dir)
    {
        int fd = Libc.openat(Libc.AT_FDCWD, dir, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) throw new IOException($"open {dir}: {Libc.StrError(Libc.Errno)}");
        try
        {
            if (Libc.syncfs(fd) != 0) throw new IOException($"syncfs {dir}: {Libc.StrError(Libc.Errno)}");
        }
        finally { Libc.close(fd); }
    }
}
