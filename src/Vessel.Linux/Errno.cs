using System.Runtime.InteropServices;

namespace Vessel.Linux;

/// <summary>A failed system call: the operation, the path it was about (if any) and the raw errno.</summary>
public sealed class LinuxException : IOException
{
    internal LinuxException(string operation, int errno, string? path)
        : base(path is null ? $"{operation}: {Linux.Errno.Describe(errno)}" : $"{operation} {path}: {Linux.Errno.Describe(errno)}")
    {
        Operation = operation;
        ErrorNumber = errno;
        Path = path;
    }

    public string Operation { get; }
    public int ErrorNumber { get; }
    public string? Path { get; }
}

/// <summary>errno is turned into exceptions here and nowhere else.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ECHILD = 10, EAGAIN = 11,
        ENOMEM = 12, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EPIPE = 32,
        ENOSYS = 38, ELOOP = 40, ENOTSUP = 95, EBUSY = 16;

    private static readonly string[] Names =
    [
        "0", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD", "EAGAIN",
        "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR", "EISDIR", "EINVAL",
        "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE", "EDOM",
        "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP",
    ];

    public static int Last => Marshal.GetLastPInvokeError();

    /// <summary>The symbolic name (ENOENT) of an errno, or its number.</summary>
    public static string Name(int errno) => errno >= 0 && errno < Names.Length ? Names[errno] : errno switch
    {
        95 => "ENOTSUP", 110 => "ETIMEDOUT", 111 => "ECONNREFUSED", _ => errno.ToString(),
    };

    /// <summary>Parses a symbolic errno name as the executor reports it.</summary>
    public static int Parse(string name)
    {
        var i = Array.IndexOf(Names, name);
        if (i > 0) return i;
        return name switch { "ENOTSUP" or "EOPNOTSUPP" => 95, "ETIMEDOUT" => 110, _ => int.TryParse(name, out var n) ? n : 0 };
    }

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno).ToLowerInvariant();

    public static int Check(int result, string operation, string? path = null) =>
        result < 0 ? throw new LinuxException(operation, Last, path) : result;

    public static nint Check(nint result, string operation, string? path = null) =>
        result < 0 ? throw new LinuxException(operation, Last, path) : result;

    public static LinuxException Exception(int errno, string operation, string? path = null) => new(operation, errno, path);
}
