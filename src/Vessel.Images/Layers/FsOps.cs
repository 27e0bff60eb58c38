using System.Runtime.InteropServices;
using Vessel.Images.Interop;

namespace Vessel.Images.Layers;

/// <summary>An errno from a filesystem call during extraction (turned into a <see cref="LayerException"/>).</summary>
internal sealed class ErrnoException(string op, int errno) : IOException($"{op}: {Libc.StrError(errno)}")
{
    public int Errno { get; } = errno;
}

/// <summary>Thrown by the path walk: the reason is phrased to follow an entry name.</summary>
internal sealed class UnsafePathException(string reason) : Exception(reason);

/// <summary>fd-relative filesystem operations. Paths are given as already-normalised components (no "",
/// ".", ".." or "/"), and every directory is reached from the root fd one component at a time with
/// O_NOFOLLOW (or one openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS call), so nothing is ever resolved
/// through a symlink, whatever the layer planted.</summary>
internal static partial class FsOps
{
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static unsafe partial nint Write(int fd, byte* buf, nuint count);

    private static bool s_noOpenat2;

    /// <summary>Opens (O_PATH) the directory at <paramref name="comps"/>[0..count) under <paramref name="rootFd"/>.
    /// With <paramref name="create"/>, missing directories are made (0755, root-owned) and reported through
    /// <paramref name="onCreated"/>. Returns -1 when a directory is missing and create is false.</summary>
    public static int OpenDir(int rootFd, IReadOnlyList<string> comps, int count, bool create, Action<string>? onCreated = null)
    {
        if (count == 0) return Check(Libc.openat(rootFd, ".", Libc.O_PATH | Libc.O_DIRECTORY), "open layer root");
        if (!s_noOpenat2)
        {
            string rel = string.Join('/', comps.Take(count));
            int fd = Libc.openat2(rootFd, rel, (ulong)(Libc.O_PATH | Libc.O_DIRECTORY),
                Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS);
            if (fd >= 0) return fd;
            int e = Libc.Errno;
            if (e is Libc.ENOSYS or Libc.EPERM) s_noOpenat2 = true;
            // Anything else (missing, symlink, not a directory, EAGAIN): the walk below creates what is
            // missing and explains precisely what is wrong.
        }
        return Walk(rootFd, comps, count, create, onCreated);
    }

    private static int Walk(int rootFd, IReadOnlyList<string> comps, int count, bool create, Action<string>? onCreated)
    {
        int fd = Check(Libc.openat(rootFd, ".", Libc.O_PATH | Libc.O_DIRECTORY), "open layer root");
        try
        {
            for (int i = 0; i < count; i++)
            {
                string c = comps[i];
                int next = Libc.openat(fd, c, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
                if (next < 0 && Libc.Errno == Libc.ENOENT)
                {
                    if (!create) { Libc.close(fd); fd = -1; return -1; }
                    if (Libc.mkdirat(fd, c, 0x1ed /* 0755 */) != 0 && Libc.Errno != Libc.EEXIST)
                        throw new ErrnoException($"mkdir {string.Join('/', comps.Take(i + 1))}", Libc.Errno);
                    Libc.fchmodat(fd, c, 0x1ed, 0);
                    onCreated?.Invoke(string.Join('/', comps.Take(i + 1)));
                    next = Libc.openat(fd, c, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
                }
                if (next < 0)
                {
                    int e = Libc.Errno;
                    string prefix = string.Join('/', comps.Take(i + 1));
                    if (e is Libc.ELOOP or Libc.ENOTDIR)
                    {
                        if (TryStat(fd, c, out Libc.Statx st) && st.IsSymlink)
                            throw new UnsafePathException($"would be written through the symbolic link \"{prefix}\" (refused: links are never followed during extraction)");
                        throw new UnsafePathException($"has a parent \"{prefix}\" that is not a directory");
                    }
                    throw new ErrnoException($"open {prefix}", e);
                }
                Libc.close(fd);
                fd = next;
            }
            int result = fd;
            fd = -1;
            return result;
        }
        finally
        {
            if (fd >= 0) Libc.close(fd);
        }
    }

    public static bool TryStat(int dirFd, string name, out Libc.Statx st)
    {
        if (Libc.statx(dirFd, name, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out st) == 0) return true;
        int e = Libc.Errno;
        if (e is Libc.ENOENT or Libc.ENOTDIR) return false;
        throw new ErrnoException($"stat {name}", e);
    }

    /// <summary>Removes <paramref name="name"/> in <paramref name="dirFd"/> and, for a directory, everything under
    /// it, without following any symlink.</summary>
    public static void RemoveAll(int dirFd, string name)
    {
        if (!TryStat(dirFd, name, out Libc.Statx st)) return;
        if (st.IsDirectory)
        {
            int fd = Check(Libc.openat(dirFd, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW), $"open {name}");
            try
            {
                foreach (string child in ListNames(fd)) RemoveAll(fd, child);
            }
            finally { Libc.close(fd); }
            if (Libc.unlinkat(dirFd, name, Libc.AT_REMOVEDIR) != 0) throw new ErrnoException($"rmdir {name}", Libc.Errno);
        }
        else if (Libc.unlinkat(dirFd, name, 0) != 0 && Libc.Errno != Libc.ENOENT)
        {
            throw new ErrnoException($"unlink {name}", Libc.Errno);
        }
    }

    /// <summary>Names in the directory open as <paramref name="fd"/> (read through /proc/self/fd, which names
    /// exactly that directory).</summary>
    public static List<string> ListNames(int fd) =>
        Directory.EnumerateFileSystemEntries($"/proc/self/fd/{fd}").Select(p => Path.GetFileName(p)).ToList();

    /// <summary>Removes a whole tree given by absolute path without following symlinks inside it.</summary>
    public static void RemoveTree(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        string parent = Path.GetDirectoryName(full)!;
        int fd = Libc.openat(Libc.AT_FDCWD, parent, Libc.O_PATH | Libc.O_DIRECTORY);
        if (fd < 0) { if (Libc.Errno == Libc.ENOENT) return; throw new ErrnoException($"open {parent}", Libc.Errno); }
        try { RemoveAll(fd, Path.GetFileName(full)); }
        finally { Libc.close(fd); }
    }

    public static unsafe void SetXattr(int fd, string? nameAtFd, string key, byte[] value)
    {
        fixed (byte* v = value)
        {
            int r = nameAtFd is null
                ? Libc.fsetxattr(fd, key, v, (nuint)value.Length, 0)
                : Libc.lsetxattr($"/proc/self/fd/{fd}/{nameAtFd}", key, v, (nuint)value.Length, 0);
            if (r != 0) throw new ErrnoException($"setxattr {key}", Libc.Errno);
        }
    }

    public static int Check(int r, string op) => r >= 0 ? r : throw new ErrnoException(op, Libc.Errno);

    public static void CheckZero(int r, string op)
    {
        if (r != 0) throw new ErrnoException(op, Marshal.GetLastPInvokeError());
    }
}
