using System.Runtime.InteropServices;

namespace Vessel.Engine.Volumes;

/// <summary>docker's copy-up: a volume that is still empty when a container mounts it over a directory of the
/// image gets that directory's content (files, directories, symlinks with their modes and owners) and the
/// directory's own owner and mode. Nothing is followed through a symlink: the source lives in a container's
/// rootfs, whose links may point anywhere on the host.</summary>
internal static partial class CopyUp
{
    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Lchown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Lstat(string path, out Stat st);

    /// <summary>struct stat on x86_64 and arm64 differ; only st_mode/st_uid/st_gid are read, through the x86_64 layout
    /// (arm64 is handled by the offsets below).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct Stat
    {
        public fixed byte Raw[256];
    }

    private static (uint Mode, uint Uid, uint Gid) Owner(string path)
    {
        if (Lstat(path, out Stat st) != 0) throw new IOException($"lstat {path}: errno {Marshal.GetLastPInvokeError()}");
        unsafe
        {
            byte* p = st.Raw;
            // x86_64: dev 8, ino 8, nlink 8, mode 4, uid 4, gid 4. arm64 (generic): dev 8, ino 8, mode 4, nlink 4, uid 4, gid 4.
            return RuntimeInformation.OSArchitecture == Architecture.X64
                ? (*(uint*)(p + 24), *(uint*)(p + 28), *(uint*)(p + 32))
                : (*(uint*)(p + 16), *(uint*)(p + 24), *(uint*)(p + 28));
        }
    }

    /// <summary>The image directory at <paramref name="target"/> under <paramref name="rootfs"/>, or null when it is
    /// missing, not a directory, or reached through a symlink.</summary>
    public static string? ImageDir(string rootfs, string target)
    {
        string path = rootfs;
        foreach (string part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path = Path.Combine(path, part);
            var info = new DirectoryInfo(path);
            if (info.LinkTarget is not null || !info.Exists) return null;
        }
        return path;
    }

    /// <summary>Copies <paramref name="from"/> into <paramref name="to"/> if <paramref name="to"/> is empty. True if it copied.</summary>
    public static bool IfEmpty(string from, string to)
    {
        if (Directory.EnumerateFileSystemEntries(to).Any()) return false;
        var (mode, uid, gid) = Owner(from);
        Copy(from, to);
        Lchown(to, uid, gid);
        File.SetUnixFileMode(to, (UnixFileMode)(mode & 0xfff));
        return true;
    }

    private static void Copy(string from, string to)
    {
        foreach (string src in Directory.EnumerateFileSystemEntries(from))
        {
            string dst = Path.Combine(to, Path.GetFileName(src));
            var (mode, uid, gid) = Owner(src);
            switch (mode & 0xf000)
            {
                case 0xa000: // symlink: recreated as is, never followed
                    File.CreateSymbolicLink(dst, new FileInfo(src).LinkTarget!);
                    Lchown(dst, uid, gid);
                    continue;
                case 0x4000:
                    Directory.CreateDirectory(dst);
                    Copy(src, dst);
                    break;
                case 0x8000:
                    File.Copy(src, dst);
                    break;
                default: continue; // devices, fifos, sockets: not worth a mknod in a volume
            }
            Lchown(dst, uid, gid);
            File.SetUnixFileMode(dst, (UnixFileMode)(mode & 0xfff));
        }
    }
}
