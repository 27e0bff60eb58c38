using System.Text;
using Vessel.Images.Interop;

namespace Vessel.Images.Diff;

/// <summary>One change of a container's file system: <see cref="Kind"/> 'A' added, 'C' changed, 'D' deleted.</summary>
public sealed record FsChange(string Path, char Kind);

/// <summary>`diff`: what a container changed, read from its overlayfs upper dir (docker's overlay2 way). An entry of
/// the upper dir is 'C' when the lower layers have that path, else 'A'; a whiteout (0:0 character device, or a file with
/// the overlay whiteout xattr) is 'D'. The lower layers are looked up top first, each beneath its own root without
/// following symlinks (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a whiteout or an opaque directory on the way hides
/// what is below. Sorted by path, each directory before its contents.</summary>
public static class UpperChanges
{
    public static List<FsChange> List(string upperDir, IReadOnlyList<string> lowerDirsBottomFirst)
    {
        var lowers = new List<(int Fd, string Path)>();
        try
        {
            foreach (string d in lowerDirsBottomFirst.Reverse())
            {
                int fd = Libc.openat(Libc.AT_FDCWD, d, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
                if (fd >= 0) lowers.Add((fd, d));
            }
            var result = new List<FsChange>();
            Walk(upperDir, "", lowers, result);
            return result;
        }
        finally
        {
            foreach (var l in lowers) Libc.close(l.Fd);
        }
    }

    private static void Walk(string dir, string rel, List<(int Fd, string Path)> lowers, List<FsChange> into)
    {
        IEnumerable<string> names;
        try { names = Directory.EnumerateFileSystemEntries(dir).Select(p => Path.GetFileName(p)).ToList(); }
        catch (DirectoryNotFoundException) { return; }
        foreach (string name in names.OrderBy(n => Encoding.UTF8.GetBytes(n), ByteOrder.Instance))
        {
            string path = Path.Combine(dir, name), relPath = rel + "/" + name;
            if (Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0) continue;
            if (IsWhiteout(path, st))
            {
                into.Add(new FsChange(relPath, 'D'));
                continue;
            }
            into.Add(new FsChange(relPath, InLower(lowers, relPath[1..]) ? 'C' : 'A'));
            if (st.IsDirectory) Walk(path, relPath, lowers, into);
        }
    }

    private static unsafe bool IsWhiteout(string path, Libc.Statx st)
    {
        if (st.FileType == Libc.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0) return true;
        if (!st.IsRegular || st.Size != 0) return false;
        byte b;
        return Libc.lgetxattr(path, "trusted.overlay.whiteout", &b, 0) >= 0 || Libc.lgetxattr(path, "user.overlay.whiteout", &b, 0) >= 0;
    }

    /// <summary>Whether the merged lower layers have <paramref name="rel"/> ("a/b/c").</summary>
    private static bool InLower(List<(int Fd, string Path)> lowersTopFirst, string rel)
    {
        string[] comps = rel.Split('/');
        foreach (var (root, rootPath) in lowersTopFirst)
        {
            int fd = Libc.openat2(root, rel, (ulong)(Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC),
                Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS);
            if (fd >= 0)
            {
                bool whiteout = Libc.statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, out Libc.Statx st) == 0
                    && st.FileType == Libc.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0;
                Libc.close(fd);
                return !whiteout;
            }
            // Not in this layer: a whiteout or an opaque directory on the way hides the layers below.
            if (HiddenBelow(root, rootPath, comps)) return false;
        }
        return false;
    }

    private static unsafe bool HiddenBelow(int root, string rootPath, string[] comps)
    {
        for (int i = 1; i <= comps.Length; i++)
        {
            string prefix = string.Join('/', comps, 0, i);
            int fd = Libc.openat2(root, prefix, (ulong)(Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC),
                Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS);
            if (fd < 0) return false;
            try
            {
                if (Libc.statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, out Libc.Statx st) != 0) return false;
                if (st.FileType == Libc.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0) return true;
                if (!st.IsDirectory) return true; // a file where a directory of the path would be
                if (i < comps.Length)
                {
                    // Every component was just opened without following a symlink (snapshots never change).
                    byte v;
                    if (Libc.lgetxattr(rootPath + "/" + prefix, "trusted.overlay.opaque", &v, 1) == 1 && v == (byte)'y') return true;
                }
            }
            finally { Libc.close(fd); }
        }
        return false;
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();
        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
