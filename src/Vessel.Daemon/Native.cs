using System.Runtime.InteropServices;

namespace Vessel.Daemon;

internal static partial class Native
{
    private const string Lib = "libc";
    public const int LOCK_EX = 2, LOCK_NB = 4;

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Lib, EntryPoint = "umask")]
    public static partial uint Umask(uint mask);

    [LibraryImport(Lib, EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport(Lib, EntryPoint = "getgrnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetGrNam(string name);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    /// <summary>The gid of a group (via NSS, like chgrp), or null if there is no such group.</summary>
    public static uint? GroupId(string name)
    {
        if (uint.TryParse(name, out uint gid)) return gid;
        nint gr = GetGrNam(name);
        // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; char **gr_mem; }
        return gr == 0 ? null : (uint)Marshal.ReadInt32(gr, 2 * IntPtr.Size);
    }
}
