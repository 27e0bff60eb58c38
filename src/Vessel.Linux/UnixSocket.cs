using System.Text;
using Vessel.Linux.Interop;

namespace Vessel.Linux;

/// <summary>Unix-domain sockets as Vessel uses them: a SOCK_SEQPACKET pair for the executor's sync
/// messages, and console sockets that carry one pty master by SCM_RIGHTS.</summary>
public static unsafe class UnixSocket
{
    public static (SafeFd Ours, SafeFd Theirs) SeqPacketPair() => Pair(Libc.SOCK_SEQPACKET);

    public static (SafeFd Ours, SafeFd Theirs) StreamPair() => Pair(Libc.SOCK_STREAM);

    private static (SafeFd, SafeFd) Pair(int type)
    {
        int* fds = stackalloc int[2];
        Errno.Check(Libc.SocketPair(Libc.AF_UNIX, type | Libc.SOCK_CLOEXEC, 0, fds), "socketpair");
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    /// <summary>Connects to a SOCK_STREAM socket at <paramref name="path"/> (a console socket).</summary>
    public static SafeFd Connect(string path)
    {
        var fd = new SafeFd(Errno.Check(Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0), "socket"));
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) throw Errno.Exception(36, "connect", path); // sun_path is 108 bytes
        byte* addr = stackalloc byte[110];
        new Span<byte>(addr, 110).Clear();
        *(ushort*)addr = Libc.AF_UNIX;
        bytes.CopyTo(new Span<byte>(addr + 2, 108));
        Errno.Check(Libc.Connect(fd.Fd, addr, 2 + bytes.Length + 1), "connect", path);
        return fd;
    }

    public static void Send(SafeFd socket, string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        fixed (byte* p = bytes)
            Errno.Check(Libc.Send(socket.Fd, p, bytes.Length, Libc.MSG_NOSIGNAL), "send");
    }

    /// <summary>One message, or null at end of stream (the peer closed or exec'd). Throws
    /// <see cref="TimeoutException"/> after <paramref name="timeoutMs"/> (-1: wait forever).</summary>
    public static string? Receive(SafeFd socket, int timeoutMs = -1)
    {
        if (!socket.WaitReadable(timeoutMs)) throw new TimeoutException("no answer from the executor");
        var buffer = new byte[1 << 16];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Recv(socket.Fd, p, buffer.Length, 0);
                if (n < 0 && Errno.Last == Errno.EINTR) continue;
                if (n < 0 && Errno.Last == 104) return null; // ECONNRESET: the peer died
                Errno.Check(n, "recv");
                return n == 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n);
            }
        }
    }

    /// <summary>Receives one fd sent with SCM_RIGHTS (a pty master) and the message body (its name).</summary>
    public static (SafeFd Fd, string Body) ReceiveFd(SafeFd socket)
    {
        byte* data = stackalloc byte[4096];
        byte* control = stackalloc byte[64];
        var iov = new Libc.IoVec { Base = data, Length = 4096 };
        var msg = new Libc.MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 64 };
        nint n;
        while ((n = Libc.RecvMsg(socket.Fd, &msg, Libc.MSG_CMSG_CLOEXEC)) < 0 && Errno.Last == Errno.EINTR) { }
        Errno.Check(n, "recvmsg");
        var cmsg = (Libc.CmsgHdr*)control;
        if (msg.ControlLen < (nuint)sizeof(Libc.CmsgHdr) || cmsg->Level != Libc.SOL_SOCKET || cmsg->Type != Libc.SCM_RIGHTS)
            throw new IOException("the console socket received no file descriptor");
        var fd = *(int*)(control + sizeof(Libc.CmsgHdr));
        return (new SafeFd(fd), Encoding.UTF8.GetString(data, (int)n).TrimEnd('\0'));
    }
}
