using System.Runtime.InteropServices;
using System.Text;

namespace Vessel.Runtime.Cgroups;

/// <summary>A cgroup operation failed on the host (a write the kernel refused, a missing controller, a timeout).
/// <see cref="Errno"/> is the raw errno when a system call failed, else 0.</summary>
public sealed class CgroupException : IOException
{
    public int Errno { get; }
    public string? FilePath { get; }

    public CgroupException(string message, string? path = null, int errno = 0) : base(message)
    {
        FilePath = path;
        Errno = errno;
    }
}

/// <summary>Raw file access for cgroup files: one open(O_WRONLY|O_TRUNC) + one write(2) per value (the kernel parses
/// each write separately), exact errno on failure. Works the same on regular files, which is what the unit tests use.</summary>
internal static partial class CgroupFs
{
    internal const int ENOENT = 2, EINTR = 4, EBUSY = 16, EINVAL = 22, ENOTEMPTY = 39, EAGAIN = 11;
    const int O_WRONLY = 0x1, O_TRUNC = 0x200, O_CLOEXEC = 0x80000;

    /// <summary>Test hook: sees every write (path, value) before it is made, in order.</summary>
    [ThreadStatic] internal static Action<string, string>? OnWrite;

    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    public static void Write(string path, string value)
    {
        OnWrite?.Invoke(path, value);
        int err = TryWrite(path, value);
        if (err != 0)
            throw new CgroupException($"write \"{value}\" to {path}: {Describe(err)}", path, err);
    }

    /// <summary>Like <see cref="TryWrite"/>, but seen by <see cref="OnWrite"/>.</summary>
    public static int TryWriteObserved(string path, string value)
    {
        OnWrite?.Invoke(path, value);
        return TryWrite(path, value);
    }

    /// <summary>Writes; returns 0 or the errno.</summary>
    public static unsafe int TryWrite(string path, string value)
    {
        int fd;
        do fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        try
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            fixed (byte* p = bytes)
            {
                nint n;
                do n = write(fd, p, bytes.Length);
                while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
                if (n < 0) return Marshal.GetLastPInvokeError();
                if (n != bytes.Length) return EINVAL;
            }
            return 0;
        }
        finally { close(fd); }
    }

    public static string Read(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CgroupException($"read {path}: {e.Message}", path, e is FileNotFoundException or DirectoryNotFoundException ? ENOENT : 0);
        }
    }

    public static string? TryRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static ulong? TryReadUInt64(string path)
    {
        var s = TryRead(path)?.Trim();
        if (string.IsNullOrEmpty(s)) return null;
        return ParseUInt64(s);
    }

    /// <summary>"max" → ulong.MaxValue; negative (v1 "-1") → ulong.MaxValue.</summary>
    public static ulong? ParseUInt64(string s)
    {
        s = s.Trim();
        if (s == "max") return ulong.MaxValue;
        if (ulong.TryParse(s, out var v)) return v;
        if (long.TryParse(s, out var l) && l < 0) return ulong.MaxValue;
        return null;
    }

    /// <summary>rmdir(2); returns 0 or the errno.</summary>
    public static int Rmdir(string path)
    {
        int r;
        do r = rmdir(path);
        while (r < 0 && Marshal.GetLastPInvokeError() == EINTR);
        return r == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int close(int fd);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rmdir(string path);
}
