using Microsoft.Win32.SafeHandles;
using Vessel.Linux.Interop;

namespace Vessel.Linux;

/// <summary>An owned file descriptor. No raw ints travel through the code.</summary>
public sealed class SafeFd : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeFd(int fd, bool ownsHandle = true) : base(ownsHandle) => SetHandle(fd);

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;

    public static SafeFd Open(string path, int flags, int mode = 0) =>
        new(Errno.Check(Libc.Open(path, flags | Libc.O_CLOEXEC, mode), "open", path));

    /// <summary>An O_PATH descriptor: names a file without opening it for I/O (fifos, rootfs dirs).</summary>
    public static SafeFd OpenPath(string path) => Open(path, Libc.O_PATH);

    public static SafeFd OpenReadOnly(string path, bool nonBlocking = false) =>
        Open(path, Libc.O_RDONLY | (nonBlocking ? Libc.O_NONBLOCK : 0));

    /// <summary>An anonymous in-memory file holding <paramref name="content"/>, rewound for reading.</summary>
    public static unsafe SafeFd MemoryFile(string name, ReadOnlySpan<byte> content)
    {
        var fd = new SafeFd(Errno.Check(Libc.MemfdCreate(name, Libc.MFD_CLOEXEC), "memfd_create"));
        fd.WriteAll(content);
        return fd;
    }

    public unsafe void WriteAll(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Libc.Write(Fd, p + done, data.Length - done);
                if (n < 0 && Errno.Last == Errno.EINTR) continue;
                Errno.Check(n, "write");
                done += (int)n;
            }
        }
    }

    public unsafe int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Read(Fd, p, buffer.Length);
                if (n < 0 && Errno.Last == Errno.EINTR) continue;
                return (int)Errno.Check(n, "read");
            }
        }
    }

    /// <summary>Waits until the fd is readable or <paramref name="timeoutMs"/> passes (-1: forever).</summary>
    public unsafe bool WaitReadable(int timeoutMs)
    {
        var p = new Libc.PollFd { Fd = Fd, Events = Libc.POLLIN };
        while (true)
        {
            var r = Libc.Poll(&p, 1, timeoutMs);
            if (r < 0 && Errno.Last == Errno.EINTR) continue;
            Errno.Check(r, "poll");
            return r > 0;
        }
    }

    public static unsafe (SafeFd Read, SafeFd Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Errno.Check(Libc.Pipe2(fds, Libc.O_CLOEXEC), "pipe2");
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    public static void MakeFifo(string path, int mode)
    {
        Errno.Check(Libc.MkFifo(path, mode), "mkfifo", path);
        Errno.Check(Libc.Chmod(path, mode), "chmod", path); // mkfifo is subject to the umask
    }
}
