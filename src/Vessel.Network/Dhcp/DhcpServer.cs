using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Vessel.Network.Dhcp;

/// <summary>What the server hands to one client: the address IPAM reserved for its MAC, and its name.</summary>
public sealed record DhcpLease(IPAddress Address, string? Hostname);

/// <summary>One network's DHCP parameters: the server's own address (the gateway), the subnet's prefix, the
/// router (null on internal networks: no way out), the resolvers and the lease time.</summary>
public sealed record DhcpConfig(IPAddress Server, int Prefix, IPAddress? Router, IReadOnlyList<IPAddress> Dns, uint LeaseSeconds = 3600);

/// <summary>A DHCPv4 server for one bridge (docs/network.md#dhcp): static leases only. Every answer comes from
/// <c>lookup</c> (MAC → the address IPAM already reserved for that tap), so the server never allocates anything
/// and a MAC it does not know gets no offer. UDP port 67 bound to the bridge with SO_BINDTODEVICE (so one daemon
/// can serve many bridges and other daemons theirs), every reply broadcast on that bridge (the client has no address
/// yet, and the broadcast avoids injecting ARP entries).</summary>
public sealed class DhcpServer : IDisposable
{
    private readonly string _device;
    private readonly Func<string, DhcpLease?> _lookup;
    private readonly Func<DhcpConfig> _config;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private Socket? _socket;

    public DhcpServer(string device, Func<string, DhcpLease?> lookup, Func<DhcpConfig> config, Action<string>? log = null)
    {
        _device = device;
        _lookup = lookup;
        _config = config;
        _log = log ?? (_ => { });
    }

    /// <summary>Binds 0.0.0.0:67 on the device (throws if that is impossible) and starts serving.</summary>
    public void Start()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Broadcast, true);
            s.SetRawSocketOption(1 /* SOL_SOCKET */, 25 /* SO_BINDTODEVICE */, Encoding.ASCII.GetBytes(_device + "\0"));
            s.Bind(new IPEndPoint(IPAddress.Any, 67));
        }
        catch
        {
            s.Dispose();
            throw;
        }
        _socket = s;
        _ = Task.Run(Loop);
    }

    private async Task Loop()
    {
        var buf = new byte[1500];
        var broadcast = new IPEndPoint(IPAddress.Broadcast, 68);
        while (!_stop.IsCancellationRequested)
        {
            int n;
            try { n = (await _socket!.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token)).ReceivedBytes; }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            DhcpMessage? req = DhcpMessage.Parse(buf.AsSpan(0, n));
            if (req is null) continue;
            DhcpMessage? reply;
            try { reply = Respond(req, _lookup, _config()); }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException) { _log($"dhcp on {_device}: {e.Message}"); continue; }
            if (reply is null) continue;
            _log($"dhcp on {_device}: {req.Type} from {req.Mac} → {reply.Type} {reply.YourAddress}");
            try { await _socket.SendToAsync(reply.ToBytes(), SocketFlags.None, broadcast, _stop.Token); }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    /// <summary>The answer to one client message, or null for none (unknown MAC, another server chosen, a release,
    /// a relayed or malformed request). Pure: the unit tests drive it directly.</summary>
    public static DhcpMessage? Respond(DhcpMessage req, Func<string, DhcpLease?> lookup, DhcpConfig cfg)
    {
        if (req.Op != DhcpMessage.BootRequest || req.HType != 1 || req.HLen != 6) return null;
        if (!req.RelayAddress.Equals(IPAddress.Any)) return null; // no relays: the server lives on the client's bridge
        DhcpLease? lease = lookup(req.Mac);
        switch (req.Type)
        {
            case DhcpType.Discover:
                return lease is null ? null : Reply(req, DhcpType.Offer, lease, cfg);
            case DhcpType.Request:
            {
                IPAddress? server = req.AddressOption(DhcpMessage.OptServerId);
                if (server is not null && !server.Equals(cfg.Server)) return null; // the client chose another server
                if (lease is null) return null;
                // SELECTING/INIT-REBOOT name the address in option 50; RENEWING/REBINDING in ciaddr.
                IPAddress? wanted = req.AddressOption(DhcpMessage.OptRequestedIp) ?? (req.ClientAddress.Equals(IPAddress.Any) ? null : req.ClientAddress);
                if (wanted is null || !wanted.Equals(lease.Address)) return Nak(req, cfg);
                return Reply(req, DhcpType.Ack, lease, cfg);
            }
            case DhcpType.Inform:
                // A client with an address configured by hand asks only for the parameters.
                return lease is null ? null : Reply(req, DhcpType.Ack, lease with { Address = IPAddress.Any }, cfg);
            default:
                // RELEASE and DECLINE change nothing: the address is IPAM's, reserved for the tap until the VM is removed.
                return null;
        }
    }

    private static DhcpMessage Reply(DhcpMessage req, DhcpType type, DhcpLease lease, DhcpConfig cfg)
    {
        var r = Base(req, type, cfg);
        r.YourAddress = lease.Address;
        r.ClientAddress = type == DhcpType.Ack && req.Type == DhcpType.Inform ? req.ClientAddress : IPAddress.Any;
        if (req.Type != DhcpType.Inform)
        {
            r.SetOption(DhcpMessage.OptLeaseTime, cfg.LeaseSeconds);
            r.SetOption(DhcpMessage.OptRenewal, cfg.LeaseSeconds / 2);
            r.SetOption(DhcpMessage.OptRebinding, cfg.LeaseSeconds / 8 * 7);
        }
        r.SetOption(DhcpMessage.OptSubnetMask, Mask(cfg.Prefix));
        if (cfg.Router is not null) r.SetOption(DhcpMessage.OptRouter, cfg.Router);
        if (cfg.Dns.Count > 0) r.SetOption(DhcpMessage.OptDns, [.. cfg.Dns]);
        if (lease.Hostname is { Length: > 0 } h) r.SetOption(DhcpMessage.OptHostname, Encoding.ASCII.GetBytes(h));
        return r;
    }

    private static DhcpMessage Nak(DhcpMessage req, DhcpConfig cfg) => Base(req, DhcpType.Nak, cfg);

    private static DhcpMessage Base(DhcpMessage req, DhcpType type, DhcpConfig cfg)
    {
        var r = new DhcpMessage
        {
            Op = DhcpMessage.BootReply, HType = req.HType, HLen = req.HLen, Xid = req.Xid, Flags = req.Flags,
            HardwareAddress = req.HardwareAddress, ServerAddress = type == DhcpType.Nak ? IPAddress.Any : cfg.Server,
        };
        r.Type = type;
        r.SetOption(DhcpMessage.OptServerId, cfg.Server);
        if (req.Option(DhcpMessage.OptClientId) is { } cid) r.SetOption(DhcpMessage.OptClientId, cid);
        return r;
    }

    public static IPAddress Mask(int prefix)
    {
        var b = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, prefix == 0 ? 0 : uint.MaxValue << (32 - prefix));
        return new IPAddress(b);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket?.Dispose();
    }
}
