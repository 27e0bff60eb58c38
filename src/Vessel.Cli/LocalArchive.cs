using System.Formats.Tar;
using System.Runtime.InteropServices;

namespace Vessel.Cli;

/// <summary>The client's own file system calls for `cp` (owner ids, which .NET does not expose).</summary>
internal static partial class LocalFs
{
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct Statx
    {
        public uint Mask, BlkSize;
        public ulong Attributes;
        public uint NLink, Uid, Gid;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, out Statx buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int uid, int gid);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldpath, string newpath);

    public static (int Uid, int Gid) Owner(string path) =>
        statx(-100, path, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0x18 /* STATX_UID|STATX_GID */, out Statx st) == 0 ? ((int)st.Uid, (int)st.Gid) : (0, 0);

    public static void Chown(string path, int uid, int gid) => lchown(path, uid, gid);

    public static bool HardLink(string existing, string path) => link(existing, path) == 0;
}

/// <summary>Writes a local file or tree as the tar `PUT /archive` wants: the top entry named <c>top</c> ("" with
/// <c>contents</c>: the directory's children at the top), symlinks stored as symlinks, owners 0:0 unless
/// <c>archive</c> (docker's -a).</summary>
internal static class LocalTar
{
    public static long Write(string src, string top, bool contents, bool archive, Stream output)
    {
        long bytes = 0;
        using (var w = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            void Add(string path, string name)
            {
                var fi = new FileInfo(path);
                UnixFileMode mode = fi.UnixFileMode;
                TarEntry entry;
                if (fi.LinkTarget is { } target) entry = new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target };
                else if (Directory.Exists(path)) entry = new PaxTarEntry(TarEntryType.Directory, name.TrimEnd('/') + "/");
                else if (fi.Exists)
                {
                    var f = new PaxTarEntry(TarEntryType.RegularFile, name);
                    var data = File.OpenRead(path);
                    f.DataStream = data;
                    bytes += fi.Length;
                    entry = f;
                }
                else return; // a socket or something that went away
                entry.Mode = mode;
                entry.ModificationTime = fi.LastWriteTimeUtc;
                if (archive) { var (u, g) = LocalFs.Owner(path); entry.Uid = u; entry.Gid = g; }
                w.WriteEntry(entry);
                entry.DataStream?.Dispose();
                if (entry.EntryType == TarEntryType.Directory)
                    foreach (string child in Directory.EnumerateFileSystemEntries(path).Order(StringComparer.Ordinal))
                        Add(child, name.TrimEnd('/') + "/" + Path.GetFileName(child));
            }
            if (contents)
            {
                foreach (string child in Directory.EnumerateFileSystemEntries(src).Order(StringComparer.Ordinal))
                    Add(child, Path.GetFileName(child));
            }
            else Add(src, top);
        }
        return bytes;
    }
}

/// <summary>Unpacks the tar of `GET /archive` under a local directory. The entries' first component (the source's
/// name) becomes <c>rename</c> when given ("" drops it: the contents land in the directory). Names are confined to the
/// directory: "..", absolute names and any parent that is a symlink are refused, so a hostile container cannot make
/// cp write elsewhere.</summary>
internal static class LocalExtract
{
    public static long Run(Stream tar, string dir, string srcBase, string? rename, bool archive)
    {
        long bytes = 0;
        string root = Path.GetFullPath(dir);
        var dirTimes = new List<(string, DateTime)>();
        using var r = new TarReader(tar);
        TarEntry? e;
        while ((e = r.GetNextEntry()) is not null)
        {
            if (e.EntryType is TarEntryType.GlobalExtendedAttributes) continue;
            string[]? comps = Rebase(e.Name, srcBase, rename);
            if (comps is null) continue;
            string path = comps.Length == 0 ? root : Path.Combine(root, Path.Combine(comps));
            if (comps.Length > 0) CheckParents(root, comps);
            switch (e.EntryType)
            {
                case TarEntryType.Directory:
                    if (comps.Length > 0 && (File.Exists(path) || new FileInfo(path).LinkTarget is not null) && !Directory.Exists(path)) File.Delete(path);
                    if (comps.Length > 0 && new FileInfo(path).LinkTarget is not null) File.Delete(path);
                    Directory.CreateDirectory(path);
                    if (comps.Length > 0) File.SetUnixFileMode(path, e.Mode);
                    dirTimes.Add((path, e.ModificationTime.UtcDateTime));
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    Remove(path);
                    using (var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                        if (e.DataStream is { } data) { data.CopyTo(f); bytes += e.Length; }
                    File.SetUnixFileMode(path, e.Mode);
                    File.SetLastWriteTimeUtc(path, e.ModificationTime.UtcDateTime);
                    break;
                case TarEntryType.SymbolicLink:
                    Remove(path);
                    File.CreateSymbolicLink(path, e.LinkName);
                    break;
                case TarEntryType.HardLink:
                    string[]? to = Rebase(e.LinkName, srcBase, rename);
                    if (to is null || to.Length == 0) continue;
                    CheckParents(root, to);
                    string existing = Path.Combine(root, Path.Combine(to));
                    Remove(path);
                    if (!LocalFs.HardLink(existing, path)) File.Copy(existing, path);
                    break;
                default:
                    continue; // devices and fifos are not made on the client
            }
            if (archive) LocalFs.Chown(path, e.Uid, e.Gid);
        }
        dirTimes.Reverse();
        foreach (var (d, t) in dirTimes)
            try { Directory.SetLastWriteTimeUtc(d, t); } catch (IOException) { }
        return bytes;
    }

    private static string[]? Rebase(string name, string srcBase, string? rename)
    {
        var comps = name.Split('/').Where(c => c.Length > 0 && c != ".").ToList();
        if (comps.Contains("..")) throw new CliException($"refusing to extract \"{name}\": it climbs out of the destination");
        if (rename is null || srcBase == ".") return [.. comps];
        if (comps.Count == 0 || comps[0] != srcBase) return [.. comps];
        comps.RemoveAt(0);
        if (rename.Length > 0) comps.Insert(0, rename);
        return [.. comps];
    }

    private static void CheckParents(string root, string[] comps)
    {
        string p = root;
        for (int i = 0; i < comps.Length - 1; i++)
        {
            p = Path.Combine(p, comps[i]);
            var fi = new FileInfo(p);
            if (fi.LinkTarget is not null) throw new CliException($"refusing to write through the symbolic link {p}");
        }
    }

    private static void Remove(string path)
    {
        var fi = new FileInfo(path);
        if (fi.LinkTarget is not null || fi.Exists) File.Delete(path);
        else if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }
}
