using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Vessel.Images.Archive;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Oci;

namespace Vessel.Images.Diff;

/// <summary>A layer made from a container's changes: the gzip blob in the content store and the diff ID.</summary>
public sealed record LayerDiffResult(Descriptor Descriptor, Digest DiffId, long UncompressedSize, long Entries)
{
    public Digest Digest => Descriptor.Digest;
    public long Size => Descriptor.Size;
    public NewLayer ToNewLayer() => new(Descriptor, DiffId);
}

/// <summary>A container's changes could not be turned into a layer.</summary>
public sealed class LayerDiffException(string message) : ContentException(message);

/// <summary>Turns the upper dir of an overlayfs container (whiteouts as 0:0 character devices, opaque dirs
/// marked <c>trusted.overlay.opaque=y</c>) into an OCI layer: <c>.wh.NAME</c> and <c>.wh..wh..opq</c> entries,
/// ownership, modes (incl. setuid/setgid/sticky), xattrs as raw bytes (except <c>trusted.overlay.*</c> and
/// <c>user.overlay.*</c>), symlinks, hard links (same inode → a link entry to the first path), device
/// nodes and fifos; sockets are skipped (as Docker does). Entries are in byte order of their names, each
/// directory before its contents, mtimes in whole seconds, no atime/ctime, no user/group names: the same
/// upper dir always gives the same diff ID. Upper dirs that overlayfs wrote with redirect_dir or metacopy
/// (content living in a lower layer) are refused: a layer cannot express them.
/// The upper dir must not change while it is read (the container is stopped or paused).</summary>
public static class LayerDiff
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";

    /// <summary>Writes the layer gzip-compressed into the content store.</summary>
    public static LayerDiffResult Create(string upperDir, ContentStore content, CompressionLevel level = CompressionLevel.Optimal)
    {
        using BlobWriter blob = content.CreateWriter();
        Digest diffId;
        long size, entries;
        using (var gz = new GZipStream(blob, level, leaveOpen: true))
            (diffId, size, entries) = WriteTar(upperDir, gz);
        BlobInfo info = blob.Commit();
        return new LayerDiffResult(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = info.Digest, Size = info.Size }, diffId, size, entries);
    }

    /// <summary>Writes the uncompressed layer tar to <paramref name="output"/>; returns its diff ID, size and entry count.</summary>
    public static (Digest DiffId, long Size, long Entries) WriteTar(string upperDir, Stream output)
    {
        upperDir = Path.GetFullPath(upperDir).TrimEnd('/');
        var st = Lstat(upperDir);
        if (!st.IsDirectory) throw new LayerDiffException($"layer diff: {upperDir} is not a directory");
        using var hashing = new HashingStream(output);
        var w = new RawTarWriter(hashing);
        var walk = new Walker(upperDir, w);
        walk.Dir(upperDir, "");
        w.Finish();
        return (hashing.Digest(), hashing.Written, walk.Entries);
    }

    private sealed class Walker(string root, RawTarWriter w)
    {
        private readonly Dictionary<(uint, uint, ulong), string> _inodes = [];
        public long Entries { get; private set; }

        public void Dir(string dir, string rel)
        {
            var names = Directory.EnumerateFileSystemEntries(dir).Select(p => Path.GetFileName(p))
                .OrderBy(n => Encoding.UTF8.GetBytes(n), ByteOrder.Instance).ToList();
            foreach (string name in names)
            {
                string path = Path.Combine(dir, name);
                string entryName = rel + name;
                Libc.Statx st = Lstat(path);
                var xattrs = ReadXattrs(path, out bool opaque, out bool xattrWhiteout, out string? refused);
                if (refused is not null)
                    throw new LayerDiffException($"layer diff of {root}: \"{entryName}\" carries {refused}, which a layer cannot express (mount overlayfs with redirect_dir=off,metacopy=off)");
                long mtime = st.MTime.Sec;
                uint type = st.FileType;
                bool whiteout = (type == Libc.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0) || (type == Libc.S_IFREG && xattrWhiteout && st.Size == 0);
                if (whiteout)
                {
                    Emit(new TarHeader { Name = rel + WhiteoutPrefix + name, TypeFlag = TarHeader.Regular, Mode = 0x180, Uid = st.Uid, Gid = st.Gid, MTime = mtime });
                    continue;
                }
                var h = new TarHeader { Name = entryName, TypeFlag = TarHeader.Regular, Mode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid, MTime = mtime, Xattrs = xattrs };
                switch (type)
                {
                    case Libc.S_IFDIR:
                        Emit(h with { Name = entryName + "/", TypeFlag = TarHeader.Directory });
                        if (opaque)
                            Emit(new TarHeader { Name = entryName + "/" + OpaqueWhiteout, TypeFlag = TarHeader.Regular, Mode = st.Mode & 0x1ff, Uid = st.Uid, Gid = st.Gid, MTime = mtime });
                        Dir(path, entryName + "/");
                        break;
                    case Libc.S_IFREG:
                        var key = (st.DevMajor, st.DevMinor, st.Ino);
                        if (st.NLink > 1 && _inodes.TryGetValue(key, out string? first))
                        {
                            Emit(h with { TypeFlag = TarHeader.HardLink, LinkName = first, Xattrs = null });
                            break;
                        }
                        if (st.NLink > 1) _inodes[key] = entryName;
                        int fd = Libc.openat(Libc.AT_FDCWD, path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NOCTTY);
                        if (fd < 0) throw new LayerDiffException($"layer diff of {root}: cannot open \"{entryName}\": {Libc.StrError(Libc.Errno)}");
                        using (var fs = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1))
                        {
                            try { w.WriteEntry(h with { Size = (long)st.Size }, fs); }
                            catch (IOException e) { throw new LayerDiffException($"layer diff of {root}: \"{entryName}\": {e.Message}"); }
                        }
                        Entries++;
                        break;
                    case Libc.S_IFLNK:
                        string target = new FileInfo(path).LinkTarget ?? throw new LayerDiffException($"layer diff of {root}: cannot read symlink \"{entryName}\"");
                        Emit(h with { TypeFlag = TarHeader.Symlink, LinkName = target });
                        break;
                    case Libc.S_IFCHR or Libc.S_IFBLK:
                        Emit(h with { TypeFlag = type == Libc.S_IFCHR ? TarHeader.CharDevice : TarHeader.BlockDevice, DevMajor = (int)st.RdevMajor, DevMinor = (int)st.RdevMinor });
                        break;
                    case Libc.S_IFIFO:
                        Emit(h with { TypeFlag = TarHeader.Fifo });
                        break;
                    default:
                        break; // sockets have no place in a layer
                }
            }
        }

        private void Emit(TarHeader h)
        {
            w.WriteEntry(h);
            Entries++;
        }
    }

    private static unsafe List<KeyValuePair<string, byte[]>>? ReadXattrs(string path, out bool opaque, out bool whiteout, out string? refused)
    {
        opaque = whiteout = false;
        refused = null;
        byte[] list = new byte[4096];
        nint n;
        while (true)
        {
            fixed (byte* p = list) n = Libc.llistxattr(path, p, (nuint)list.Length);
            if (n >= 0) break;
            int e = Libc.Errno;
            if (e == Libc.ERANGE && list.Length < 1 << 20) { list = new byte[list.Length * 4]; continue; }
            if (e is Libc.EOPNOTSUPP) return null;
            throw new LayerDiffException($"layer diff: listxattr {path}: {Libc.StrError(e)}");
        }
        List<KeyValuePair<string, byte[]>>? result = null;
        foreach (string key in Encoding.UTF8.GetString(list, 0, (int)n).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            byte[]? value = GetXattr(path, key);
            if (value is null) continue; // removed meanwhile
            if (key.StartsWith("trusted.overlay.", StringComparison.Ordinal) || key.StartsWith("user.overlay.", StringComparison.Ordinal))
            {
                string what = key[(key.IndexOf(".overlay.", StringComparison.Ordinal) + ".overlay.".Length)..];
                if (what == "opaque" && value is [(byte)'y']) opaque = true;
                else if (what == "whiteout") whiteout = true;
                else if (what is "redirect" or "metacopy") refused = $"the overlayfs {what} xattr";
                continue;
            }
            (result ??= []).Add(new(key, value));
        }
        return result;
    }

    private static unsafe byte[]? GetXattr(string path, string key)
    {
        byte[] buf = new byte[1024];
        while (true)
        {
            nint n;
            fixed (byte* p = buf) n = Libc.lgetxattr(path, key, p, (nuint)buf.Length);
            if (n >= 0) return buf.AsSpan(0, (int)n).ToArray();
            int e = Libc.Errno;
            if (e == Libc.ERANGE && buf.Length < 1 << 20) { buf = new byte[buf.Length * 8]; continue; }
            if (e == Libc.ENODATA) return null;
            throw new LayerDiffException($"layer diff: getxattr {path} {key}: {Libc.StrError(e)}");
        }
    }

    private static Libc.Statx Lstat(string path)
    {
        if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0)
            throw new LayerDiffException($"layer diff: stat {path}: {Libc.StrError(Libc.Errno)}");
        return st;
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();
        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    /// <summary>Write-through stream that hashes and counts.</summary>
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public long Written { get; private set; }
        public Digest Digest() => Content.Digest.FromHash(_hash.GetHashAndReset());
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            inner.Write(buffer);
            Written += buffer.Length;
        }
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
