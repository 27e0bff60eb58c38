using System.Runtime.InteropServices;

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>The few libc calls the tests need that .NET does not expose.</summary>
#pragma warning disable IDE1006, CA1401
public static unsafe partial class Native
{
    public const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    public const int F_GETFD = 1, F_SETFD = 2;
    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1;

    [LibraryImport("libc")] public static partial uint geteuid();
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int open(string path, int flags);
    [LibraryImport("libc", SetLastError = true)] public static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)] public static partial int fcntl(int fd, int cmd, int arg);
    [LibraryImport("libc", SetLastError = true)] public static partial int kill(int pid, int sig);
    [LibraryImport("libc", SetLastError = true)] public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public void* Base; public nuint Len; }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name; public uint NameLen; public IoVec* Iov; public nuint IovLen;
        public void* Control; public nuint ControlLen; public int Flags;
    }

    /// <summary>Opens <paramref name="path"/> as a directory fd that child processes inherit (no O_CLOEXEC).</summary>
    public static int OpenInheritableDirectory(string path)
    {
        var fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd < 0) throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    /// <summary>Receives one file descriptor sent with SCM_RIGHTS over a connected Unix socket.</summary>
    public static int ReceiveFd(int socket)
    {
        byte* data = stackalloc byte[256];
        byte* control = stackalloc byte[64];
        var iov = new IoVec { Base = data, Len = 256 };
        var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 64 };
        nint n;
        do n = recvmsg(socket, &msg, 0);
        while (n < 0 && Marshal.GetLastPInvokeError() == 4); // EINTR
        if (n < 0) throw new IOException($"recvmsg: errno {Marshal.GetLastPInvokeError()}");
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the fds.
        if (msg.ControlLen < 20) throw new IOException($"recvmsg: no file descriptor came with the message ({n} bytes)");
        var level = *(int*)(control + 8);
        var type = *(int*)(control + 12);
        if (level != SOL_SOCKET || type != SCM_RIGHTS) throw new IOException($"recvmsg: unexpected control message {level}/{type}");
        return *(int*)(control + 16);
    }
}
