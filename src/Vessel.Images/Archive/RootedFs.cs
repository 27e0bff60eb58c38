using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Vessel.Images.Interop;
using Vessel.Images.Layers;

namespace Vessel.Images.Archive;

/// <summary>What `cp` learns of a path inside a container before copying (docker's container path stat).</summary>
public sealed record RootedPathInfo(string Name, long Size, uint Mode, DateTimeOffset MTime, string? LinkTarget)
{
    public bool IsDirectory => (Mode & Libc.S_IFMT) == Libc.S_IFDIR;
}

/// <summary>A path inside a container that cannot be used: <see cref="NotFound"/> for a missing one.</summary>
public sealed class RootedPathException(string message, bool notFound = false) : IOException(message)
{
    public bool NotFound { get; } = notFound;
}

/// <summary>Paths inside a container's root filesystem, used from the host (the daemon) without ever leaving that
/// root, whatever the container planted: a path's directories are resolved with openat2 RESOLVE_IN_ROOT (a symlink
/// is followed as if the root were "/", so "/etc/x -> /etc/passwd" names the container's passwd, never the host's;
/// ".." stops at the root), its last component is never followed, and a tree is walked one directory fd at a time
/// with O_NOFOLLOW. Extraction into a directory goes through <see cref="LayerExtractor"/>, which never writes
/// through a symlink either.</summary>
public static partial class RootedFs
{
    /// <summary>Opens <paramref name="root"/> (a mounted rootfs or /proc/PID/root) as the anchor for the other calls.</summary>
    public static SafeFileHandle OpenRoot(string root)
    {
        int fd = Libc.openat(Libc.AT_FDCWD, root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) throw new RootedPathException($"cannot open the container's root filesystem {root}: {Libc.StrError(Libc.Errno)}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>"/a/./b//c/" → ["a","b","c"]; ".." is kept (RESOLVE_IN_ROOT clamps it at the root).</summary>
    private static List<string> Components(string path) =>
        path.Split('/').Where(c => c.Length > 0 && c != ".").ToList();

    /// <summary>docker: a path ending in "/" or "/." means the directory itself (a symlink there is followed).</summary>
    private static bool FollowsLeaf(string path) => path.EndsWith('/') || path.EndsWith("/.", StringComparison.Ordinal) || path == ".";

    private static int OpenDirInRoot(SafeFileHandle root, IReadOnlyList<string> comps, string shown)
    {
        string rel = comps.Count == 0 ? "." : string.Join('/', comps);
        int fd = Libc.openat2((int)root.DangerousGetHandle(), rel, (ulong)(Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC),
            Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS);
        if (fd >= 0) return fd;
        int e = Libc.Errno;
        if (e is Libc.ENOENT) throw new RootedPathException($"could not find the file {shown} in container", notFound: true);
        if (e is Libc.ENOTDIR) throw new RootedPathException($"{shown}: not a directory");
        if (e is Libc.ENOSYS) throw new RootedPathException("this kernel lacks openat2(2) (Linux 5.6+), which cp needs to stay inside the container");
        throw new RootedPathException($"{shown}: {Libc.StrError(e)}");
    }

    /// <summary>The parent directory (resolved in the root) and the last component; for "/" or a path ending in "/."
    /// or "/", the directory itself and a null leaf.</summary>
    private static (int ParentFd, string? Leaf) Locate(SafeFileHandle root, string path)
    {
        var comps = Components(path);
        if (comps.Count == 0 || FollowsLeaf(path) || comps[^1] == "..") return (OpenDirInRoot(root, comps, Shown(path)), null);
        return (OpenDirInRoot(root, comps.Take(comps.Count - 1).ToList(), Shown(path)), comps[^1]);
    }

    private static string Shown(string path) => path.StartsWith('/') ? path : "/" + path;

    /// <summary>Stat of a path (its last component not followed, unless the path ends in "/").</summary>
    public static RootedPathInfo Stat(SafeFileHandle root, string path)
    {
        var (parent, leaf) = Locate(root, path);
        try { return StatAt(parent, leaf, path); }
        finally { Libc.close(parent); }
    }

    private static RootedPathInfo StatAt(int parent, string? leaf, string path)
    {
        if (Libc.statx(parent, leaf ?? "", leaf is null ? Libc.AT_EMPTY_PATH : Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0)
        {
            int e = Libc.Errno;
            if (e == Libc.ENOENT) throw new RootedPathException($"could not find the file {Shown(path)} in container", notFound: true);
            throw new RootedPathException($"stat {Shown(path)}: {Libc.StrError(e)}");
        }
        string name = leaf ?? (Components(path).LastOrDefault(c => c != "..") ?? "/");
        return new RootedPathInfo(name, (long)st.Size, st.Mode, DateTimeOffset.FromUnixTimeSeconds(st.MTime.Sec),
            st.IsSymlink && leaf is not null ? ReadLink(parent, leaf) : null);
    }

    /// <summary>Writes a tar of <paramref name="path"/> to <paramref name="output"/>: entries are named after the path's
    /// last component ("hosts", "etc/", "etc/passwd" …), as docker's GET archive does. A symlink is archived as a
    /// symlink; pseudo filesystems (proc, sysfs, cgroup, devpts, mqueue) met inside a tree are not descended into.</summary>
    public static RootedPathInfo WriteTar(SafeFileHandle root, string path, Stream output)
    {
        var (parent, leaf) = Locate(root, path);
        try
        {
            RootedPathInfo info = StatAt(parent, leaf, path);
            var w = new RawTarWriter(output);
            var walker = new TarWalker(w);
            string baseName = leaf ?? (info.Name == "/" ? "." : info.Name);
            walker.Entry(parent, leaf, baseName, topLevel: true);
            w.Finish();
            return info;
        }
        finally { Libc.close(parent); }
    }

    /// <summary>Extracts a tar into the directory <paramref name="path"/> (resolved in the root; it must exist).
    /// Ownership, modes and times come from the tar; existing entries are replaced; nothing is written through a symlink.</summary>
    public static LayerExtractResult Extract(SafeFileHandle root, string path, Stream tar)
    {
        var comps = Components(path);
        int dir = OpenDirInRoot(root, comps, Shown(path));
        try
        {
            // /proc/self/fd/N names exactly the directory resolved above; the extractor re-opens it and works beneath it.
            return LayerExtractor.Extract(tar, $"/proc/self/fd/{dir}", "container", Shown(path), new ExtractionOptions { Whiteouts = WhiteoutMode.Literal });
        }
        finally { Libc.close(dir); }
    }

    private static unsafe string ReadLink(int dirFd, string name)
    {
        byte[] buf = new byte[4096];
        nint n;
        fixed (byte* p = buf) n = readlinkat(dirFd, name, p, (nuint)buf.Length);
        if (n < 0) throw new RootedPathException($"readlink {name}: {Libc.StrError(Libc.Errno)}");
        return Encoding.UTF8.GetString(buf, 0, (int)n);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint readlinkat(int dirfd, string path, byte* buf, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int fstatfs(int fd, byte* buf);

    /// <summary>Filesystems whose files are not data: never archived when met inside a tree.</summary>
    private static readonly HashSet<long> PseudoFs =
    [
        0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */, 0x1cd1 /* devpts */,
        0x19800202 /* mqueue */, 0x73636673 /* securityfs */, 0x64626720 /* debugfs */, 0x74726163 /* tracefs */, 0xcafe4a11 /* bpf */,
    ];

    private static unsafe bool IsPseudoFs(int fd)
    {
        byte* buf = stackalloc byte[120];
        if (fstatfs(fd, buf) != 0) return false;
        return PseudoFs.Contains(*(long*)buf);
    }

    private sealed class TarWalker(RawTarWriter w)
    {
        private readonly Dictionary<(uint, uint, ulong), string> _inodes = [];
        private uint _rootDevMajor, _rootDevMinor;
        private bool _haveRootDev;

        /// <summary>Archives <paramref name="leaf"/> of the directory <paramref name="parent"/> (null: the directory itself) as <paramref name="name"/>.</summary>
        public void Entry(int parent, string? leaf, string name, bool topLevel)
        {
            if (Libc.statx(parent, leaf ?? "", leaf is null ? Libc.AT_EMPTY_PATH : Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0)
            {
                if (Libc.Errno == Libc.ENOENT && !topLevel) return; // removed meanwhile (a running container)
                throw new RootedPathException($"stat {name}: {Libc.StrError(Libc.Errno)}");
            }
            var h = new TarHeader { Name = name, TypeFlag = TarHeader.Regular, Mode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid, MTime = st.MTime.Sec };
            switch (st.FileType)
            {
                case Libc.S_IFDIR:
                    int dfd = leaf is null
                        ? Libc.openat(parent, ".", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC)
                        : Libc.openat(parent, leaf, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC);
                    if (dfd < 0)
                    {
                        if (!topLevel && Libc.Errno is Libc.ENOENT or Libc.ENOTDIR or Libc.ELOOP) return;
                        throw new RootedPathException($"open {name}: {Libc.StrError(Libc.Errno)}");
                    }
                    try
                    {
                        if (!_haveRootDev) { (_rootDevMajor, _rootDevMinor, _haveRootDev) = (st.DevMajor, st.DevMinor, true); }
                        else if ((st.DevMajor, st.DevMinor) != (_rootDevMajor, _rootDevMinor) && IsPseudoFs(dfd)) return;
                        string dirName = name == "." ? "./" : name.TrimEnd('/') + "/";
                        w.WriteEntry(h with { Name = dirName, TypeFlag = TarHeader.Directory });
                        foreach (string child in FsOps.ListNames(dfd).Order(StringComparer.Ordinal))
                            Entry(dfd, child, (dirName == "./" ? "" : dirName) + child, topLevel: false);
                    }
                    finally { Libc.close(dfd); }
                    break;
                case Libc.S_IFREG:
                    var key = (st.DevMajor, st.DevMinor, st.Ino);
                    if (st.NLink > 1 && _inodes.TryGetValue(key, out string? first))
                    {
                        w.WriteEntry(h with { TypeFlag = TarHeader.HardLink, LinkName = first });
                        break;
                    }
                    // O_NONBLOCK: a fifo swapped in after the stat must not block the daemon; the fstat below checks.
                    int fd = Libc.openat(parent, leaf ?? ".", Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_NOCTTY | Libc.O_CLOEXEC);
                    if (fd < 0)
                    {
                        if (!topLevel && Libc.Errno is Libc.ENOENT or Libc.ELOOP) return;
                        throw new RootedPathException($"open {name}: {Libc.StrError(Libc.Errno)}");
                    }
                    using (var fs = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1))
                    {
                        if (Libc.statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, out Libc.Statx now) != 0 || !now.IsRegular) return;
                        if (st.NLink > 1) _inodes[key] = name;
                        // The size as stat saw it: a file that grows or shrinks meanwhile (a log) is cut or padded, not an error.
                        w.WriteEntry(h with { Size = (long)now.Size }, new ExactLengthStream(fs, (long)now.Size));
                    }
                    break;
                case Libc.S_IFLNK:
                    w.WriteEntry(h with { TypeFlag = TarHeader.Symlink, LinkName = ReadLink(parent, leaf!) });
                    break;
                case Libc.S_IFCHR or Libc.S_IFBLK:
                    w.WriteEntry(h with { TypeFlag = st.FileType == Libc.S_IFCHR ? TarHeader.CharDevice : TarHeader.BlockDevice, DevMajor = (int)st.RdevMajor, DevMinor = (int)st.RdevMinor });
                    break;
                case Libc.S_IFIFO:
                    w.WriteEntry(h with { TypeFlag = TarHeader.Fifo });
                    break;
                default:
                    break; // sockets
            }
        }
    }

    /// <summary>Exactly <c>length</c> bytes: the file's, cut at length, then zeros if it ended early.</summary>
    private sealed class ExactLengthStream(Stream inner, long length) : Stream
    {
        private readonly long _length = length;
        private long _left = length;
        private bool _eof;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_left <= 0) return 0;
            var span = buffer[..(int)Math.Min(buffer.Length, _left)];
            int n = _eof ? 0 : inner.Read(span);
            if (n == 0)
            {
                _eof = true;
                span.Clear();
                n = span.Length;
            }
            _left -= n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _length;
        public override long Position { get => Length - _left; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
