using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Gc;

/// <summary>What an image (or a lease) keeps alive: blobs reached from a descriptor (index → manifests present,
/// manifest → config and layers) and the snapshot chain IDs of every image config reached. A document that
/// cannot be read is an error, never "reaches nothing": GC must fail closed.</summary>
internal sealed class Reachability(ContentStore content)
{
    private const int MaxDepth = 8;
    private readonly ImageResolver _resolver = new(content, new ReferenceStore(content));

    public HashSet<Digest> Blobs { get; } = [];
    public HashSet<Digest> Snapshots { get; } = [];

    public void Add(Descriptor d, string owner, int depth = 0)
    {
        if (depth > MaxDepth) throw new ContentException($"{owner}: {d.Digest} is nested more than {MaxDepth} levels deep");
        if (!Blobs.Add(d.Digest)) return;
        if (!content.Exists(d.Digest)) return; // a partial multi-arch copy, a foreign layer: nothing below it here
        if (MediaTypes.IsIndex(d.MediaType))
        {
            foreach (Descriptor m in _resolver.ReadIndex(d, owner).Manifests)
                if (MediaTypes.IsIndex(m.MediaType) || MediaTypes.IsManifest(m.MediaType) || content.Exists(m.Digest))
                    Add(m, owner, depth + 1);
        }
        else if (MediaTypes.IsManifest(d.MediaType))
        {
            ImageManifest m = _resolver.ReadManifest(d, owner);
            Blobs.Add(m.Config.Digest);
            foreach (Descriptor l in m.Layers) Blobs.Add(l.Digest);
            if (MediaTypes.IsConfig(m.Config.MediaType) && content.Exists(m.Config.Digest))
            {
                ImageConfig config = _resolver.ReadConfig(m.Config, owner);
                if (config.RootFs.DiffIds.Count > 0) Snapshots.UnionWith(SnapshotStore.ChainIds(config.RootFs.DiffIds));
            }
        }
    }

    /// <summary>A bare digest (from a lease): if it is a manifest or index, everything it reaches too.</summary>
    public void AddDigest(Digest d, string owner)
    {
        if (Blobs.Contains(d)) return;
        long? size = content.GetSize(d);
        if (size is long s && s <= OciJson.MaxManifestSize)
        {
            byte[] json = content.ReadAllBytes(d, OciJson.MaxManifestSize);
            if (json.Length > 0 && json[0] == (byte)'{' && OciJson.SniffMediaType(json) is string mt && (MediaTypes.IsIndex(mt) || MediaTypes.IsManifest(mt)))
            {
                Add(new Descriptor { MediaType = mt, Digest = d, Size = s }, owner);
                return;
            }
        }
        Blobs.Add(d);
    }

    /// <summary>A snapshot and its parents (from the <c>.complete</c> markers).</summary>
    public void AddSnapshot(SnapshotStore snapshots, Digest chainId)
    {
        Digest? c = chainId;
        for (int i = 0; c is Digest cur && i < OverlayMount.MaxLowerDirs + 1; i++)
        {
            if (!Snapshots.Add(cur) && i > 0) return;
            c = ParentOf(snapshots, cur);
        }
    }

    private static Digest? ParentOf(SnapshotStore snapshots, Digest chainId)
    {
        try
        {
            byte[] json = File.ReadAllBytes(Path.Combine(snapshots.SnapshotDir(chainId), SnapshotStore.CompleteMarker));
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("parent", out JsonElement p) && Digest.TryParse(p.GetString(), out Digest d) ? d : null;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException) { return null; }
    }
}

/// <summary>Apparent size of a directory tree: regular file bytes, each inode counted once, symlinks never followed.</summary>
public static class DirSize
{
    public static long Measure(string path)
    {
        var seen = new HashSet<(uint, uint, ulong)>();
        long total = 0;
        void Walk(string dir)
        {
            IEnumerable<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(dir).ToList(); }
            catch (Exception e) when (e is DirectoryNotFoundException or UnauthorizedAccessException) { return; }
            foreach (string p in entries)
            {
                if (Libc.statx(Libc.AT_FDCWD, p, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0) continue;
                if (st.IsDirectory) Walk(p);
                else if (st.IsRegular && (st.NLink <= 1 || seen.Add((st.DevMajor, st.DevMinor, st.Ino)))) total += (long)st.Size;
            }
        }
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx root) != 0) return 0;
        if (root.IsRegular) return (long)root.Size;
        if (root.IsDirectory) Walk(path);
        return total;
    }
}
