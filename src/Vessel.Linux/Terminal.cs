using Vessel.Linux.Interop;

namespace Vessel.Linux;

/// <summary>Terminal settings of the caller's tty: raw mode while proxying a container's pty, window size.</summary>
public static unsafe class Terminal
{
    public static bool IsTerminal(int fd) => Libc.IsATty(fd) == 1;

    /// <summary>Puts <paramref name="fd"/> in raw mode; returns the old settings to restore.</summary>
    public static byte[] MakeRaw(int fd)
    {
        var old = new byte[Libc.SizeOfTermios];
        fixed (byte* p = old) Errno.Check(Libc.TcGetAttr(fd, p), "tcgetattr");
        var raw = (byte[])old.Clone();
        fixed (byte* p = raw)
        {
            Libc.CfMakeRaw(p);
            Errno.Check(Libc.TcSetAttr(fd, Libc.TCSANOW, p), "tcsetattr");
        }
        return old;
    }

    public static void Restore(int fd, byte[] settings)
    {
        fixed (byte* p = settings) Libc.TcSetAttr(fd, Libc.TCSANOW, p);
    }

    /// <summary>Copies the window size of <paramref name="from"/> to <paramref name="to"/> (a pty master).</summary>
    public static void CopySize(int from, int to)
    {
        ulong size; // struct winsize: 4 × u16
        if (Libc.Ioctl(from, Libc.TIOCGWINSZ, &size) == 0) Libc.Ioctl(to, Libc.TIOCSWINSZ, &size);
    }

    /// <summary>The window size of a terminal, or null if <paramref name="fd"/> is not one.</summary>
    public static (ushort Rows, ushort Columns)? GetSize(int fd)
    {
        ulong size;
        if (Libc.Ioctl(fd, Libc.TIOCGWINSZ, &size) != 0) return null;
        return ((ushort)(size & 0xffff), (ushort)((size >> 16) & 0xffff));
    }

    public static void SetSize(int fd, ushort rows, ushort columns)
    {
        ulong size = rows | ((ulong)columns << 16);
        Libc.Ioctl(fd, Libc.TIOCSWINSZ, &size);
    }
}
