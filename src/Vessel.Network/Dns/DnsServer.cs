using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vessel.Network.Dns;

/// <summary>The DNS server of one user network, run by the daemon on the network's gateway address (UDP and TCP,
/// port 53): names and aliases of the containers on that network are answered from <c>lookup</c> (A records;
/// an empty answer for other types of a known name), everything else is forwarded to the host's resolvers (the
/// daemon lives in the host's network namespace, so even 127.0.0.53 works), or refused on internal networks.</summary>
public sealed class DnsServer : IDisposable
{
    private readonly IPEndPoint _bind;
    private readonly Func<string, IReadOnlyList<IPAddress>?> _lookup;
    private readonly IReadOnlyList<IPEndPoint> _upstream;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private Socket? _udp;
    private Socket? _tcp;

    public IPEndPoint EndPoint => _bind;

    /// <param name="upstream">Resolvers to forward to; empty: other names are refused.</param>
    public DnsServer(IPEndPoint bind, Func<string, IReadOnlyList<IPAddress>?> lookup, IReadOnlyList<IPEndPoint> upstream, Action<string>? log = null)
    {
        _bind = bind;
        _lookup = lookup;
        _upstream = upstream;
        _log = log ?? (_ => { });
    }

    /// <summary>Binds both sockets (throws if the address or port is taken) and starts serving.</summary>
    public void Start()
    {
        _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // FREEBIND: the gateway address may not be configured yet (the bridge is being recreated after a reboot).
            _udp.SetRawSocketOption(0 /* SOL_IP */, 15 /* IP_FREEBIND */, BitConverter.GetBytes(1));
            _tcp.SetRawSocketOption(0, 15, BitConverter.GetBytes(1));
            _tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _udp.Bind(_bind);
            _tcp.Bind(_bind);
            _tcp.Listen(64);
        }
        catch
        {
            Dispose();
            throw;
        }
        _ = Task.Run(UdpLoop);
        _ = Task.Run(TcpLoop);
    }

    private async Task UdpLoop()
    {
        var buf = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await _udp!.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            var query = buf.AsSpan(0, r.ReceivedBytes).ToArray();
            var from = r.RemoteEndPoint;
            _ = Task.Run(async () =>
            {
                try
                {
                    byte[]? answer = await Handle(query, tcp: false);
                    if (answer is not null) await _udp!.SendToAsync(answer, SocketFlags.None, from, _stop.Token);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
            });
        }
    }

    private async Task TcpLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try { conn = await _tcp!.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(async () =>
            {
                using (conn)
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    cts.CancelAfter(TimeSpan.FromSeconds(30));
                    try
                    {
                        var len = new byte[2];
                        while (true)
                        {
                            if (!await ReadExactly(conn, len, cts.Token)) return;
                            var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
                            if (!await ReadExactly(conn, query, cts.Token)) return;
                            byte[]? answer = await Handle(query, tcp: true);
                            if (answer is null) return;
                            var framed = new byte[answer.Length + 2];
                            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                            answer.CopyTo(framed, 2);
                            await conn.SendAsync(framed, SocketFlags.None, cts.Token);
                        }
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
                }
            });
        }
    }

    private static async Task<bool> ReadExactly(Socket s, byte[] buf, CancellationToken ct)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, ct);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    /// <summary>The answer to one query, or null to drop it (not a query at all).</summary>
    internal async Task<byte[]?> Handle(byte[] query, bool tcp)
    {
        var q = DnsMessage.ParseQuery(query);
        if (q is null) return null;
        if (q.Class == DnsMessage.ClassIN)
        {
            var known = _lookup(q.Name.TrimEnd('.').ToLowerInvariant());
            if (known is not null)
                return DnsMessage.Answer(query, q, q.Type is DnsMessage.TypeA or DnsMessage.TypeANY ? known : []);
        }
        if (_upstream.Count == 0) return DnsMessage.Answer(query, q, [], DnsMessage.Refused);
        foreach (var up in _upstream)
        {
            try { return tcp ? await ForwardTcp(up, query) : await ForwardUdp(up, query); }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException) { _log($"dns: forwarding to {up}: {e.Message}"); }
        }
        return DnsMessage.Answer(query, q, [], DnsMessage.ServFail);
    }

    private async Task<byte[]> ForwardUdp(IPEndPoint up, byte[] query)
    {
        using var s = new Socket(up.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(TimeSpan.FromSeconds(3));
        await s.ConnectAsync(up, cts.Token);
        await s.SendAsync(query, SocketFlags.None, cts.Token);
        var buf = new byte[65535];
        while (true)
        {
            int n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
            if (n >= 2 && buf[0] == query[0] && buf[1] == query[1]) return buf.AsSpan(0, n).ToArray();
        }
    }

    private async Task<byte[]> ForwardTcp(IPEndPoint up, byte[] query)
    {
        using var s = new Socket(up.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(TimeSpan.FromSeconds(5));
        await s.ConnectAsync(up, cts.Token);
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await s.SendAsync(framed, SocketFlags.None, cts.Token);
        var len = new byte[2];
        if (!await ReadExactly(s, len, cts.Token)) throw new IOException("the upstream resolver closed the connection");
        var answer = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
        if (!await ReadExactly(s, answer, cts.Token)) throw new IOException("the upstream resolver closed the connection");
        return answer;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp?.Dispose();
        _tcp?.Dispose();
    }
}
