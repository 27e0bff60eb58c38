using System.Net.Sockets;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>What containerd's console socket does: listen on a Unix socket, accept the runtime's connection
/// and receive the pty master it sends with SCM_RIGHTS.</summary>
public sealed class ConsoleSocket : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly Task<int> _master;

    public string Path { get; }

    public ConsoleSocket(string path)
    {
        Path = path;
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(1);
        _master = Task.Run(() =>
        {
            using var connection = _listener.Accept();
            return Native.ReceiveFd((int)connection.Handle);
        });
    }

    /// <summary>The received master as a stream; fails if the runtime did not send one in time.</summary>
    public FileStream Master(TimeSpan timeout)
    {
        if (!_master.Wait(timeout)) throw new TimeoutException("no pty master arrived on the console socket");
        return new FileStream(new SafeFileHandle(_master.Result, ownsHandle: true), FileAccess.ReadWrite, 1, false);
    }

    /// <summary>Reads the master until EOF or EIO (every slave closed). A read still blocked after
    /// <paramref name="timeout"/> means the container never let go of the pty: that fails.</summary>
    public static string ReadToEnd(FileStream master, TimeSpan timeout)
    {
        var read = Task.Run(() => ReadAll(master));
        if (!read.Wait(timeout)) throw new TimeoutException("the pty was never closed by the container");
        return read.Result;
    }

    private static string ReadAll(FileStream master)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = master.Read(buffer)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }
        catch (IOException) { } // EIO: the container side is gone
        return text.ToString();
    }

    public void Dispose()
    {
        _listener.Dispose();
        File.Delete(Path);
    }
}
