using System.Net;
using System.Net.Sockets;

namespace Vessel.Network;

/// <summary>Holds published host ports: a socket bound to the port (TCP: never listening) keeps any other program
/// from taking it while the container runs, and makes a port that is already taken a clear error before the
/// container starts. The traffic itself never reaches these sockets: nftables DNATs it before local delivery.</summary>
public sealed class PortReservations : IDisposable
{
    private readonly Dictionary<(string Ip, int Port, string Proto), Socket> _held = new();
    private readonly Lock _lock = new();

    /// <summary>Binds <paramref name="req"/> (a random or range port: the first free one) and returns the port held.</summary>
    public PublishedPort Reserve(PortRequest req)
    {
        var ip = req.HostIp.Length == 0 ? IPAddress.Any : IPAddress.Parse(req.HostIp);
        if (req.RandomHostPort) return Hold(req, ip, 0);
        SocketException? last = null;
        for (int p = req.HostPortFirst; p <= req.HostPortLast; p++)
        {
            try { return Hold(req, ip, p); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse) { last = e; }
        }
        string where = req.HostPortFirst == req.HostPortLast ? $"{ip}:{req.HostPortFirst}" : $"{ip}:{req.HostPortFirst}-{req.HostPortLast}";
        throw new InvalidOperationException($"Bind for {where}/{req.Proto} failed: port is already allocated ({last?.Message})");
    }

    private PublishedPort Hold(PortRequest req, IPAddress ip, int port)
    {
        var s = req.Proto == "udp" ? new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.Bind(new IPEndPoint(ip, port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            s.Dispose();
            throw new InvalidOperationException($"cannot publish on {ip}: no interface of this host has that address");
        }
        catch { s.Dispose(); throw; }
        int actual = ((IPEndPoint)s.LocalEndPoint!).Port;
        var key = (req.HostIp, actual, req.Proto);
        lock (_lock)
        {
            if (_held.Remove(key, out var old)) old.Dispose();
            _held[key] = s;
        }
        return new PublishedPort(req.HostIp, actual, req.ContainerPort, req.Proto);
    }

    /// <summary>Takes a known mapping back after a daemon restart (best effort: false if something else took it meanwhile).</summary>
    public bool Readopt(PublishedPort p)
    {
        try
        {
            Hold(new PortRequest(p.HostIp, p.HostPort, p.HostPort, p.ContainerPort, p.Proto), p.HostIp.Length == 0 ? IPAddress.Any : IPAddress.Parse(p.HostIp), p.HostPort);
            return true;
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException) { return false; }
    }

    public void Release(PublishedPort p)
    {
        lock (_lock)
            if (_held.Remove((p.HostIp, p.HostPort, p.Proto), out var s)) s.Dispose();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var s in _held.Values) s.Dispose();
            _held.Clear();
        }
    }
}
