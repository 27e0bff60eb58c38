using System.Formats.Tar;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Oci;

namespace Vessel.Images.Layers;

/// <summary>Hardened extraction of one OCI layer (tar, tar+gzip, tar+zstd; detected from the magic bytes).
/// <para>Path rules: names are normalised lexically; a leading "/" is dropped (absolute names are taken as
/// relative to the layer root, as Docker does); ".." may only climb back within the name ("a/../b" is "b"),
/// one that would climb above the root is refused. Every parent directory is reached from the root fd
/// without following any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk), so
/// no entry is ever written through a symlink, neither one planted earlier in the layer nor one already in
/// the target. Symlink entries themselves may point anywhere: they are stored, never followed. Hard links
/// must name a non-directory entry that appeared earlier in the same layer.</para>
/// <para>Limits (<see cref="ExtractionLimits"/>) are enforced on the headers before data is read.</para></summary>
public static class LayerExtractor
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const string WhiteoutMetaPrefix = ".wh..wh.";

    public static LayerExtractResult Extract(Stream layer, string targetDir, string imageName) =>
        Extract(layer, targetDir, imageName, null, null);

    /// <param name="layer">The layer blob (compressed or not); it is read to its end.</param>
    /// <param name="targetDir">Directory to extract into (created if missing).</param>
    /// <param name="imageName">Image name, for error messages.</param>
    /// <param name="layerId">Layer digest (or other id), for error messages.</param>
    public static LayerExtractResult Extract(Stream layer, string targetDir, string imageName, string? layerId, ExtractionOptions? options)
    {
        options ??= ExtractionOptions.Default;
        Directory.CreateDirectory(targetDir);
        int rootFd = Libc.openat(Libc.AT_FDCWD, targetDir, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (rootFd < 0) throw new LayerException(imageName, layerId, null, $"cannot open target {targetDir}: {Libc.StrError(Libc.Errno)}");
        try
        {
            var run = new Run(rootFd, imageName, layerId, options);
            return run.Execute(layer);
        }
        finally
        {
            Libc.close(rootFd);
        }
    }

    private sealed class Run(int rootFd, string image, string? layerId, ExtractionOptions options)
    {
        private readonly ExtractionLimits _limits = options.Limits;
        // Paths (joined components) created by this layer, and whether each is a directory.
        private readonly Dictionary<string, bool> _created = new(StringComparer.Ordinal);
        private readonly List<(string[] Comps, DateTimeOffset MTime)> _dirTimes = [];
        private readonly List<string> _warnings = [];
        private string? _current;
        private long _bytes;
        // One copy buffer for all file data (a fresh 128 KiB array per file kept the GC busy).
        private readonly byte[] _copyBuf = new byte[256 * 1024];
        // Directory fds by path ("" = the root, "a/b" = comps joined), each opened beneath the root without
        // following symlinks (FsOps.OpenDir) or by O_NOFOLLOW from such a parent. A path keeps naming the same
        // directory until something is removed, so every removal (replacing an existing entry, whiteouts) drops
        // the whole cache first; creating entries never changes what an existing path names.
        private readonly Dictionary<string, int> _dirs = new(StringComparer.Ordinal);
        private const int MaxCachedDirs = 256;

        private LayerException Fail(string? entry, string reason, Exception? inner = null) =>
            new(image, layerId, entry, reason, inner);

        public LayerExtractResult Execute(Stream layer)
        {
            // Big reads from the blob (the decompressors ask for 8 KiB at a time).
            var input = new BufferedStream(layer, 256 * 1024);
            Stream tarStream;
            LayerCompression compression;
            try
            {
                tarStream = Decompression.Open(input, out compression);
            }
            catch (InvalidDataException e) { throw Fail(null, e.Message, e); }

            // Compressed layers decompress on a second thread, ahead of the extraction (see ReadAheadStream): the
            // consumer sees the same bytes and the same errors at the same positions. At the end of the
            // decompressed stream that thread also drains what the decompressor did not need (gzip trailer,
            // padding), so a verifying source stream reaches its end and checks the blob digest.
            ReadAheadStream? ahead = compression != LayerCompression.None && Environment.ProcessorCount > 1
                ? new ReadAheadStream(tarStream, () => input.CopyTo(Stream.Null))
                : null;
            var guard = new TarGuardStream(ahead ?? tarStream, _limits, (entry, reason) => Fail(entry, reason));
            Digest diffId;
            try
            {
                using (var reader = new TarReader(guard, leaveOpen: true))
                {
                    TarEntry? entry;
                    while ((entry = reader.GetNextEntry(copyData: false)) is not null)
                    {
                        if (!guard.Records.TryDequeue(out TarHeaderRecord? rec) || rec.TypeFlag != (byte)entry.EntryType)
                            throw Fail(entry.Name, "could not be matched with its tar header (malformed archive)");
                        _current = entry.Name;
                        ExtractEntry(entry, rec);
                    }
                }
                _current = null;
                ApplyDirTimes();
                diffId = guard.Finish();
                // Without read-ahead the drain happens here (with it, it already did, before the stream's end).
                input.CopyTo(Stream.Null);
            }
            catch (LayerException) { throw; }
            catch (UnsafePathException e) { throw Fail(_current, e.Message, e); }
            catch (DigestMismatchException e) { throw Fail(null, e.Message, e); }
            catch (ErrnoException e) { throw Fail(_current, $"could not be extracted: {e.Message}", e); }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException
                                          or FormatException or InvalidOperationException or IOException or ArgumentException
                                          or ZstdSharp.ZstdException)
            {
                throw Fail(_current, $"{(_current is null ? "is" : "is in a layer that is")} not a valid tar stream: {e.Message}", e);
            }
            finally
            {
                CloseDirs();
                guard.Dispose();
                ahead?.Dispose(); // stops and joins the read-ahead thread before the streams under it go away
                tarStream.Dispose();
            }
            return new LayerExtractResult(diffId, compression, guard.Entries, _bytes, _warnings);
        }

        private string[] Normalize(string name, string entryName, string what)
        {
            if (Encoding.UTF8.GetByteCount(name) > _limits.MaxNameLength)
                throw Fail(entryName, $"has a {what} of {Encoding.UTF8.GetByteCount(name)} bytes, more than the limit of {_limits.MaxNameLength}");
            if (name.Contains('\0')) throw Fail(entryName, $"has a NUL byte in its {what}");
            var comps = new List<string>();
            foreach (string c in name.Split('/'))
            {
                if (c.Length == 0 || c == ".") continue;
                if (c == "..")
                {
                    if (comps.Count == 0) throw Fail(entryName, what == "name" ? "escapes the layer root" : "links outside the layer root");
                    comps.RemoveAt(comps.Count - 1);
                    continue;
                }
                if (Encoding.UTF8.GetByteCount(c) > 255) throw Fail(entryName, $"has a path component longer than 255 bytes");
                comps.Add(c);
            }
            return comps.ToArray();
        }

        private void ExtractEntry(TarEntry entry, TarHeaderRecord rec)
        {
            string name = entry.Name;
            if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) return;
            string[] comps = Normalize(name, name, "name");
            TrimDirs(); // no fd of the cache is in use between entries
            if (rec.GnuSparse || entry.EntryType == TarEntryType.SparseFile)
                throw Fail(name, "is a GNU sparse file, which is not supported in layers");

            if (comps.Length > 0 && options.Whiteouts != WhiteoutMode.Literal && comps[^1].StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
            {
                Whiteout(name, comps);
                return;
            }

            switch (entry.EntryType)
            {
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                case TarEntryType.Directory:
                case TarEntryType.SymbolicLink:
                case TarEntryType.HardLink:
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                    break;
                default:
                    throw Fail(name, $"has unsupported tar entry type '{(char)entry.EntryType}'");
            }

            if (comps.Length == 0)
            {
                if (entry.EntryType != TarEntryType.Directory) throw Fail(name, "would replace the layer root with a non-directory");
                int fd = FsOps.Check(Libc.openat(rootFd, ".", Libc.O_RDONLY | Libc.O_DIRECTORY), "open layer root");
                try { ApplyMetadata(entry, rec, fd, null); }
                finally { Libc.close(fd); }
                _dirTimes.Add((comps, entry.ModificationTime));
                return;
            }

            string path = string.Join('/', comps);
            string leaf = comps[^1];
            // The parent is cached (not closed here); see _dirs. Creation is tried first: an entry that
            // already exists (EEXIST; O_EXCL also refuses a symlink there) is removed and created again,
            // except a directory over a directory, which is kept.
            int parent = Dir(comps, comps.Length - 1, create: true);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (Libc.mkdirat(parent, leaf, 0x1c0 /* 0700 until chmod */) != 0)
                    {
                        int e = Libc.Errno;
                        if (e != Libc.EEXIST) throw new ErrnoException("mkdir", e);
                        if (!(FsOps.TryStat(parent, leaf, out Libc.Statx st) && st.IsDirectory))
                        {
                            parent = Replace(comps);
                            FsOps.CheckZero(Libc.mkdirat(parent, leaf, 0x1c0), "mkdir");
                        }
                    }
                    int dfd = FsOps.Check(Libc.openat(parent, leaf, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW), "open directory");
                    try { ApplyMetadata(entry, rec, dfd, null); }
                    catch { Libc.close(dfd); throw; }
                    // Its children come next: keep the fd as their parent (opened O_NOFOLLOW from a safe parent).
                    CacheDir(path, dfd);
                    _dirTimes.Add((comps, entry.ModificationTime));
                    _created[path] = true;
                    return;

                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    const int createFlags = Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC;
                    int fd = Libc.openat(parent, leaf, createFlags, 0x180);
                    if (fd < 0 && Libc.Errno == Libc.EEXIST)
                    {
                        parent = Replace(comps);
                        fd = Libc.openat(parent, leaf, createFlags, 0x180);
                    }
                    WriteFile(entry, rec, FsOps.Check(fd, "create file"));
                    break;

                case TarEntryType.SymbolicLink:
                    string target = entry.LinkName;
                    if (target.Length == 0) throw Fail(name, "is a symbolic link with an empty target");
                    if (Encoding.UTF8.GetByteCount(target) > _limits.MaxNameLength)
                        throw Fail(name, $"has a link target of {Encoding.UTF8.GetByteCount(target)} bytes, more than the limit of {_limits.MaxNameLength}");
                    if (target.Contains('\0')) throw Fail(name, "has a NUL byte in its link target");
                    if (Libc.symlinkat(target, parent, leaf) != 0)
                    {
                        int e = Libc.Errno;
                        if (e != Libc.EEXIST) throw new ErrnoException("symlink", e);
                        parent = Replace(comps);
                        FsOps.CheckZero(Libc.symlinkat(target, parent, leaf), "symlink");
                    }
                    ApplyMetadataAt(entry, rec, parent, leaf, chmod: false);
                    break;

                case TarEntryType.HardLink:
                    HardLink(entry, comps, parent, leaf);
                    break;

                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                    uint kind = entry.EntryType switch
                    {
                        TarEntryType.CharacterDevice => Libc.S_IFCHR,
                        TarEntryType.BlockDevice => Libc.S_IFBLK,
                        _ => Libc.S_IFIFO,
                    };
                    var posix = (PosixTarEntry)entry;
                    ulong dev = kind == Libc.S_IFIFO ? 0 : Libc.MakeDev((uint)posix.DeviceMajor, (uint)posix.DeviceMinor);
                    if (Libc.mknodat(parent, leaf, kind | 0x180, dev) != 0)
                    {
                        int e = Libc.Errno;
                        if (e != Libc.EEXIST) throw new ErrnoException("mknod", e);
                        parent = Replace(comps);
                        FsOps.CheckZero(Libc.mknodat(parent, leaf, kind | 0x180, dev), "mknod");
                    }
                    ApplyMetadataAt(entry, rec, parent, leaf, chmod: true);
                    break;
            }
            _created[path] = false;
        }

        /// <summary>The directory fd for comps[0..count), from the cache or opened beneath the root (FsOps.OpenDir:
        /// openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS or the O_NOFOLLOW walk). Owned by the cache: not to be
        /// closed by the caller. -1 when missing and create is false.</summary>
        private int Dir(string[] comps, int count, bool create)
        {
            string key = count == 0 ? "" : count == 1 ? comps[0] : string.Join('/', comps, 0, count);
            if (_dirs.TryGetValue(key, out int fd)) return fd;
            fd = FsOps.OpenDir(rootFd, comps, count, create, OnImplicitDir);
            if (fd >= 0) CacheDir(key, fd);
            return fd;
        }

        // Never evicts: a caller may hold fds from this cache (a hard link uses two). The size is capped
        // between entries instead (TrimDirs).
        private void CacheDir(string key, int fd)
        {
            if (_dirs.Remove(key, out int old)) Libc.close(old);
            _dirs[key] = fd;
        }

        private void TrimDirs()
        {
            if (_dirs.Count >= MaxCachedDirs) CloseDirs();
        }

        private void CloseDirs()
        {
            foreach (int fd in _dirs.Values) Libc.close(fd);
            _dirs.Clear();
        }

        /// <summary>Removes the existing entry at comps (whatever it is, nothing followed) and returns the parent
        /// fd to create the new one in. Every cached directory fd is dropped first: the removal may take away a
        /// directory the cache names.</summary>
        private int Replace(string[] comps)
        {
            CloseDirs();
            int parent = Dir(comps, comps.Length - 1, create: true);
            FsOps.RemoveAll(parent, comps[^1]);
            return parent;
        }

        private void OnImplicitDir(string path) => _created[path] = true;

        private unsafe void WriteFile(TarEntry entry, TarHeaderRecord rec, int fd)
        {
            try
            {
                if (entry.DataStream is Stream data)
                {
                    byte[] buf = _copyBuf;
                    long written = 0;
                    int n;
                    while ((n = data.Read(buf)) > 0)
                    {
                        if (written + n > rec.Size) throw Fail(entry.Name, "has more data than its header declares");
                        fixed (byte* p = buf)
                        {
                            for (int off = 0; off < n;)
                            {
                                nint w = FsOps.Write(fd, p + off, (nuint)(n - off));
                                if (w < 0)
                                {
                                    int e = Libc.Errno;
                                    if (e == Libc.EINTR) continue;
                                    throw new ErrnoException("write", e);
                                }
                                if (w == 0) throw new ErrnoException("write", 28 /* ENOSPC */);
                                off += (int)w;
                            }
                        }
                        written += n;
                    }
                    _bytes += written;
                }
                ApplyMetadata(entry, rec, fd, null);
            }
            finally { Libc.close(fd); }
        }

        private void HardLink(TarEntry entry, string[] comps, int parent, string leaf)
        {
            string[] target = Normalize(entry.LinkName, entry.Name, "link target");
            string targetPath = string.Join('/', target);
            if (target.Length == 0 || !_created.TryGetValue(targetPath, out bool isDir) || isDir)
                throw Fail(entry.Name, $"is a hard link to {LayerException.Quote(entry.LinkName)}, which is not an earlier file of this layer");
            int srcParent = Dir(target, target.Length - 1, create: false);
            // flags 0: the source is linked as is, a symlink is never followed.
            if (srcParent >= 0 && Libc.linkat(srcParent, target[^1], parent, leaf, 0) == 0) return;
            if (srcParent >= 0 && Libc.Errno != Libc.EEXIST) throw new ErrnoException("link", Libc.Errno);
            // The name exists (or the source's directory is gone): remove it, then link again.
            parent = Replace(comps);
            srcParent = Dir(target, target.Length - 1, create: false);
            if (srcParent < 0)
                throw Fail(entry.Name, $"is a hard link to {LayerException.Quote(entry.LinkName)}, which no longer exists");
            FsOps.CheckZero(Libc.linkat(srcParent, target[^1], parent, leaf, 0), "link");
        }

        private void Whiteout(string name, string[] comps)
        {
            CloseDirs(); // whiteouts remove things: no cached directory fd survives them
            string leaf = comps[^1];
            string parentPath = string.Join('/', comps.Take(comps.Length - 1));
            if (leaf == OpaqueWhiteout)
            {
                if (options.Whiteouts == WhiteoutMode.Overlay)
                {
                    int p = FsOps.OpenDir(rootFd, comps, comps.Length - 1, create: true, OnImplicitDir);
                    try
                    {
                        int dfd = FsOps.Check(Libc.openat(p, ".", Libc.O_RDONLY | Libc.O_DIRECTORY), "open directory");
                        try { FsOps.SetXattr(dfd, null, "trusted.overlay.opaque", "y"u8.ToArray()); }
                        finally { Libc.close(dfd); }
                    }
                    finally { Libc.close(p); }
                }
                else
                {
                    int p = FsOps.OpenDir(rootFd, comps, comps.Length - 1, create: false);
                    if (p < 0) return;
                    try
                    {
                        foreach (string child in FsOps.ListNames(p))
                        {
                            string childPath = parentPath.Length == 0 ? child : parentPath + "/" + child;
                            if (!_created.ContainsKey(childPath)) FsOps.RemoveAll(p, child);
                        }
                    }
                    finally { Libc.close(p); }
                }
                return;
            }
            if (leaf.StartsWith(WhiteoutMetaPrefix, StringComparison.Ordinal)) return; // aufs metadata (.wh..wh.plnk etc.)

            string victim = leaf[WhiteoutPrefix.Length..];
            if (victim.Length == 0 || victim == "." || victim == "..")
                throw Fail(name, "is a whiteout that names no file");
            string victimPath = parentPath.Length == 0 ? victim : parentPath + "/" + victim;
            if (_created.ContainsKey(victimPath)) return; // a whiteout only hides lower layers, never its own layer's files

            int parent = FsOps.OpenDir(rootFd, comps, comps.Length - 1, create: options.Whiteouts == WhiteoutMode.Overlay, OnImplicitDir);
            if (parent < 0) return;
            try
            {
                FsOps.RemoveAll(parent, victim);
                if (options.Whiteouts == WhiteoutMode.Overlay)
                {
                    FsOps.CheckZero(Libc.mknodat(parent, victim, Libc.S_IFCHR, Libc.MakeDev(0, 0)), "mknod whiteout");
                    _created[victimPath] = false;
                }
            }
            finally { Libc.close(parent); }
        }

        // Metadata through an open fd (files, directories). Order matters: chown clears setuid/setgid and
        // security.capability, so it goes first, then mode, then xattrs, then times.
        private void ApplyMetadata(TarEntry entry, TarHeaderRecord rec, int fd, string? _)
        {
            FsOps.CheckZero(Libc.fchown(fd, entry.Uid, entry.Gid), "chown");
            FsOps.CheckZero(Libc.fchmod(fd, (uint)entry.Mode & 0xfff), "chmod");
            ApplyXattrs(entry, rec, fd, null);
            if (entry.EntryType != TarEntryType.Directory)
                SetTimes(fd, null, entry.ModificationTime);
        }

        // Metadata by name relative to the parent (symlinks, devices, fifos), never following a symlink.
        private void ApplyMetadataAt(TarEntry entry, TarHeaderRecord rec, int parent, string leaf, bool chmod)
        {
            FsOps.CheckZero(Libc.fchownat(parent, leaf, entry.Uid, entry.Gid, Libc.AT_SYMLINK_NOFOLLOW), "chown");
            // Only for the device/fifo we just created with mknodat (not a symlink): follows nothing.
            if (chmod) FsOps.CheckZero(Libc.fchmodat(parent, leaf, (uint)entry.Mode & 0xfff, 0), "chmod");
            ApplyXattrs(entry, rec, parent, leaf);
            SetTimes(parent, leaf, entry.ModificationTime);
        }

        private void ApplyXattrs(TarEntry entry, TarHeaderRecord rec, int fd, string? leaf)
        {
            if (rec.Xattrs is null) return;
            foreach ((string key, byte[] value) in rec.Xattrs)
            {
                // overlayfs interprets trusted.overlay.* / user.overlay.* (opaque, redirect, metacopy); only
                // whiteout entries may produce them, never xattrs carried by the layer.
                if (key.StartsWith("trusted.overlay.", StringComparison.Ordinal) || key.StartsWith("user.overlay.", StringComparison.Ordinal))
                {
                    _warnings.Add($"entry {LayerException.Quote(entry.Name)}: xattr {key} dropped (reserved for overlayfs)");
                    continue;
                }
                try
                {
                    FsOps.SetXattr(fd, leaf, key, value);
                }
                catch (ErrnoException e) when (e.Errno == Libc.EOPNOTSUPP)
                {
                    _warnings.Add($"entry {LayerException.Quote(entry.Name)}: xattr {key} not supported by the filesystem");
                }
                catch (ErrnoException e)
                {
                    throw Fail(entry.Name, $"has xattr {key} that could not be set: {e.Message}", e);
                }
            }
        }

        private static unsafe void SetTimes(int fd, string? leaf, DateTimeOffset mtime)
        {
            long ticks = mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
            long sec = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem);
            if (rem < 0) { sec--; rem += TimeSpan.TicksPerSecond; }
            Libc.Timespec* ts = stackalloc Libc.Timespec[2];
            ts[0] = new Libc.Timespec { Sec = sec, Nsec = rem * 100 }; // atime = mtime (tar keeps no atime for ustar)
            ts[1] = ts[0];
            int r = leaf is null ? Libc.futimens(fd, ts) : Libc.utimensat(fd, leaf, ts, Libc.AT_SYMLINK_NOFOLLOW);
            if (r != 0) throw new ErrnoException("set times", Libc.Errno);
        }

        // Directory mtimes last: creating children changes them.
        private void ApplyDirTimes()
        {
            foreach ((string[] comps, DateTimeOffset mtime) in _dirTimes)
            {
                _current = comps.Length == 0 ? "./" : string.Join('/', comps);
                if (comps.Length == 0)
                {
                    int fd = FsOps.Check(Libc.openat(rootFd, ".", Libc.O_RDONLY | Libc.O_DIRECTORY), "open layer root");
                    try { SetTimes(fd, null, mtime); } finally { Libc.close(fd); }
                    continue;
                }
                TrimDirs();
                int parent = Dir(comps, comps.Length - 1, create: false);
                if (parent < 0) continue; // removed by a later entry
                if (FsOps.TryStat(parent, comps[^1], out Libc.Statx st) && st.IsDirectory)
                    SetTimes(parent, comps[^1], mtime);
            }
        }
    }
}
