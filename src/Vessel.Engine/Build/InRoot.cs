using System.Runtime.InteropServices;

namespace Vessel.Engine.Build;

/// <summary>Paths inside a root file system that is not running anything (a build step's rootfs): symlinks
/// are resolved as if the root were <c>/</c> (an absolute link target or <c>..</c> never leaves it), the way
/// Docker resolves COPY destinations. Writes go to the resolved host path; the final component is never
/// followed when it is replaced.</summary>
internal static partial class InRoot
{
    private const int MaxLinks = 255;

    /// <summary>The host path of <paramref name="path"/> (absolute inside the root) with every symlink among its
    /// directories resolved inside the root; the last component is resolved too when <paramref name="followLast"/>.</summary>
    public static string Resolve(string root, string path, bool followLast)
    {
        root = Path.GetFullPath(root).TrimEnd('/');
        var parts = new Queue<string>(Split(path));
        var resolved = new List<string>();
        int links = 0;
        while (parts.Count > 0)
        {
            string part = parts.Dequeue();
            if (part == "..") { if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1); continue; }
            string host = root + "/" + string.Join('/', resolved.Append(part));
            bool last = parts.Count == 0;
            var fi = new FileInfo(host);
            if (fi.LinkTarget is string target && (!last || followLast))
            {
                if (++links > MaxLinks) throw new BuildException($"too many levels of symbolic links in {path}");
                var rest = parts.ToList();
                parts = new Queue<string>(Split(target).Concat(rest));
                if (target.StartsWith('/')) resolved.Clear();
                continue;
            }
            resolved.Add(part);
        }
        return resolved.Count == 0 ? root : root + "/" + string.Join('/', resolved);
    }

    private static IEnumerable<string> Split(string p) => p.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(x => x != ".");

    /// <summary>mkdir -p inside the root; new directories get <paramref name="mode"/> and the owner. Returns the host path.</summary>
    public static string MkdirAll(string root, string path, uint uid, uint gid, UnixFileMode mode = (UnixFileMode)0x1ed)
    {
        string cur = "/";
        foreach (string part in Split(path))
        {
            cur = cur == "/" ? "/" + part : cur + "/" + part;
            string host = Resolve(root, cur, followLast: true);
            if (Directory.Exists(host)) continue;
            if (File.Exists(host) || new FileInfo(host).LinkTarget is not null)
                throw new BuildException($"cannot create directory {cur}: a file of that name exists");
            Directory.CreateDirectory(host);
            File.SetUnixFileMode(host, mode);
            Chown(host, uid, gid);
        }
        return Resolve(root, path, followLast: true);
    }

    public static void Chown(string hostPath, uint uid, uint gid)
    {
        if (lchown(hostPath, uid, gid) != 0)
            throw new BuildException($"chown {hostPath}: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Whether overlayfs marked this upper directory opaque (what the lower layers had there is hidden).</summary>
    public static bool IsOpaque(string upperDir)
    {
        byte[] v = new byte[1];
        return lgetxattr(upperDir, "trusted.overlay.opaque", v, 1) == 1 && v[0] == (byte)'y';
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint uid, uint gid);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint lgetxattr(string path, string name, [Out] byte[] value, nuint size);
}
