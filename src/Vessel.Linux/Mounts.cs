using System.Runtime.InteropServices;

namespace Vessel.Linux;

/// <summary>mount(2) and umount2(2) in the caller's mount namespace, and what /proc/self/mountinfo says is mounted.</summary>
public static partial class Mounts
{
    public const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_BIND = 0x1000, MS_REC = 0x4000, MS_PRIVATE = 1 << 18;
    public const int MNT_DETACH = 2;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MountNative(string source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);

    public static void Mount(string source, string target, string? fstype, ulong flags, string? data) =>
        Errno.Check(MountNative(source, target, fstype, flags, data), "mount", target);

    /// <summary>Unmounts <paramref name="target"/> (lazily with <paramref name="detach"/>); false if it was not mounted.</summary>
    public static bool Unmount(string target, bool detach = false)
    {
        if (Umount2(target, detach ? MNT_DETACH : 0) == 0) return true;
        var err = Errno.Last;
        if (err is Errno.EINVAL or Errno.ENOENT) return false;
        throw Errno.Exception(err, "umount", target);
    }

    /// <summary>Mount points (field 5 of /proc/self/mountinfo, octal escapes decoded).</summary>
    public static IReadOnlyList<string> MountPoints()
    {
        var result = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4) result.Add(Unescape(fields[4]));
        }
        return result;
    }

    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
