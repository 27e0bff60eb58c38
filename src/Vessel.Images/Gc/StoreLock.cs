using Vessel.Images.Content;
using Vessel.Images.Interop;

namespace Vessel.Images.Gc;

/// <summary>The store-wide lock, an flock on <c>&lt;root&gt;/store.lock</c>. Everything that adds content a
/// reference or lease does not protect yet (pull, load, import, unpack, commit/build writing blobs, lease
/// creation) holds it <b>shared</b> for the whole operation; garbage collection takes it <b>exclusive</b> for
/// the mark phase and the sweep decision only. So GC never sees a half-written image, and nothing that a
/// running operation wrote can be swept under it. flock locks belong to the open file description, so two
/// holders in one process exclude each other exactly like two processes, and the kernel drops the lock
/// when a process dies (no stale lock after a crash).</summary>
public sealed class StoreLock : IDisposable
{
    public const string FileName = "store.lock";
    private const int O_RDWR = 2;
    private const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    private int _fd;

    public bool IsExclusive { get; }

    private StoreLock(int fd, bool exclusive)
    {
        _fd = fd;
        IsExclusive = exclusive;
    }

    /// <summary>Takes the lock shared (blocks while a GC sweep decision is being made).</summary>
    public static StoreLock Shared(string root) => Take(root, exclusive: false, timeout: null)!;

    /// <summary>Takes the lock exclusively, waiting at most <paramref name="timeout"/> (forever when null);
    /// throws <see cref="ContentException"/> when the store stays busy.</summary>
    public static StoreLock Exclusive(string root, TimeSpan? timeout = null) =>
        Take(root, exclusive: true, timeout) ?? throw new ContentException(
            $"store {Path.GetFullPath(root)} is busy (a pull, load, unpack or build holds it) for more than {timeout?.TotalSeconds:0.#}s; try again later");

    private static StoreLock? Take(string root, bool exclusive, TimeSpan? timeout)
    {
        string path = Path.Combine(Path.GetFullPath(root), FileName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // A raw fd, not a FileStream: .NET takes its own flock for FileShare emulation on some opens, which
        // would collide with ours.
        int fd = OpenLockFile(path);
        try
        {
            int op = exclusive ? LOCK_EX : LOCK_SH;
            if (timeout is null)
            {
                while (Libc.flock(fd, op) != 0)
                    if (Libc.Errno != Libc.EINTR) throw new IOException($"flock {path}: {Libc.StrError(Libc.Errno)}");
            }
            else
            {
                DateTime deadline = DateTime.UtcNow + timeout.Value;
                int sleep = 5;
                while (Libc.flock(fd, op | LOCK_NB) != 0)
                {
                    int e = Libc.Errno;
                    if (e != Libc.EAGAIN && e != Libc.EINTR) throw new IOException($"flock {path}: {Libc.StrError(e)}");
                    if (DateTime.UtcNow >= deadline) { Libc.close(fd); return null; }
                    Thread.Sleep(sleep);
                    sleep = Math.Min(sleep * 2, 100);
                }
            }
            return new StoreLock(fd, exclusive);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    /// <summary>Opens (creating) a lock file as a raw fd for flock. FileStream is avoided on purpose: .NET takes
    /// its own non-blocking flock on some opens to emulate FileShare, which fails ("used by another process")
    /// as soon as another holder has an exclusive flock on the file.</summary>
    internal static int OpenLockFile(string path)
    {
        int fd = Libc.openat(Libc.AT_FDCWD, path, O_RDWR | Libc.O_CREAT, 0x1a4);
        if (fd < 0) throw new IOException($"open {path}: {Libc.StrError(Libc.Errno)}");
        return fd;
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        Libc.flock(fd, LOCK_UN);
        Libc.close(fd);
    }
}
