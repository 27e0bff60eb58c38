using System.Net;
using Vessel.Api;
using Vessel.Network;
using Vessel.Network.Dhcp;

namespace Vessel.Engine.Networks;

/// <summary>The VM side of networks (docs/machines.md#networking): a VM's NIC is a tap device on the network's
/// bridge with an address from the same IPAM as containers (owner "tap:NAME", reserved from the VM's create to its
/// rm), handed to the guest by the network's DHCP server (static leases only: the server answers a MAC with the
/// address reserved for it and never allocates), and its name served by the network's DNS while the tap is up.</summary>
public sealed partial class NetworkService
{
    private readonly Dictionary<string, DhcpServer> _dhcp = new(StringComparer.Ordinal);
    /// <summary>Taps whose VM runs: their names resolve.</summary>
    private readonly HashSet<string> _upTaps = new(StringComparer.Ordinal);

    /// <summary>Uptime is not enough for the lease time to matter: leases are static, the guest renews against the
    /// same reservation. An hour keeps renewals rare and a changed configuration (DNS) picked up within the hour.</summary>
    private const uint LeaseSeconds = 3600;

    private void StartDhcp(NetworkRow n)
    {
        if (_dhcp.ContainsKey(n.Id)) return;
        var server = new DhcpServer(n.Bridge, mac => LeaseFor(n.Id, mac), () => DhcpConfigOf(n), m => _log($"network {n.Name}: {m}"));
        try
        {
            server.Start();
            _dhcp[n.Id] = server;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            // Not fatal: containers are configured without DHCP; only VMs on this network go without an address.
            server.Dispose();
            _log($"network {n.Name}: no DHCP server on {n.Bridge} (UDP port 67: {e.Message}); VMs on it need static addresses");
        }
    }

    private DhcpLease? LeaseFor(string networkId, string mac)
    {
        lock (_lock)
        {
            var ep = _endpoints.FirstOrDefault(e => e.NetworkId == networkId && e.Kind == "tap" && string.Equals(e.Mac, mac, StringComparison.OrdinalIgnoreCase));
            return ep is null ? null : new DhcpLease(ep.Address, ep.Name);
        }
    }

    private DhcpConfig DhcpConfigOf(NetworkRow n)
    {
        IReadOnlyList<IPAddress> dns = n.IsDefault
            ? [.. HostResolv.Nameservers.Where(s => !s.StartsWith("127.", StringComparison.Ordinal)).Select(IPAddress.Parse).DefaultIfEmpty(IPAddress.Parse("8.8.8.8"))]
            : [n.Gateway];
        return new DhcpConfig(n.Gateway, n.Subnet.Prefix, n.Internal ? null : n.Gateway, dns, LeaseSeconds);
    }

    /// <summary>At VM create: records the tap's address on the network (IPAM) without touching the kernel; the name
    /// is what the network's DNS and DHCP (hostname option) give out. Idempotent for the same tap.</summary>
    public TapAttachment ReserveTap(string network, string tap, string name, string? mac = null, string? ip = null)
    {
        IPAddress? requested = null;
        if (ip is { Length: > 0 } && !Cidr.TryParseV4(ip, out requested)) throw EngineException.Invalid($"invalid IPv4 address: {ip}");
        lock (_lock)
        {
            var n = NetworkOf(network);
            var ep = _endpoints.FirstOrDefault(e => e.Owner == "tap:" + tap && e.NetworkId == n.Id)
                ?? AddEndpoint(n, "tap:" + tap, name, requested, [], kind: "tap", link: tap, mac: mac is null ? null : Ipam.MacString(Ipam.ParseMac(mac)));
            return Attachment(n, ep);
        }
    }

    private NetworkRow NetworkOf(string network) =>
        string.IsNullOrEmpty(network) || network is DefaultName or "default" ? DefaultNetwork() : Find(network);

    private TapAttachment Attachment(NetworkRow n, EndpointRow ep)
    {
        var upstream = HostResolv.Nameservers.Where(s => !s.StartsWith("127.", StringComparison.Ordinal)).ToList();
        return new TapAttachment(n.IsDefault ? DefaultName : n.Name, ep.Address, n.Subnet.Prefix, n.Gateway, n.IsDefault ? null : n.Gateway,
            n.IsDefault ? (upstream.Count > 0 ? upstream : ["8.8.8.8"]) : [n.Gateway.ToString()], ep.Mac) { Tap = ep.Link, Internal = n.Internal };
    }

    /// <summary>Puts an existing tap device on a network's bridge (reserving its address first if
    /// <see cref="ReserveTap"/> was not called) and serves its name until <see cref="TapDown"/> or <see cref="DetachTap"/>.</summary>
    public TapAttachment AttachTap(string network, string tap, string? mac = null, string? ip = null, string? name = null)
    {
        lock (_lock)
        {
            var n = NetworkOf(network);
            bool existed = _endpoints.Any(e => e.Owner == "tap:" + tap && e.NetworkId == n.Id);
            TapAttachment a = ReserveTap(network, tap, name ?? tap, mac, ip);
            try
            {
                _driver.AttachTap(tap, n.Bridge);
                StartDhcp(n); // the default network may have been made just now
                ApplyFirewall();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                if (!existed) foreach (var ep in _endpoints.Where(x => x.Owner == "tap:" + tap && x.NetworkId == n.Id).ToList()) RemoveEndpoint(ep);
                throw new EngineException(ErrorCodes.Internal, $"attaching {tap} to {n.Name}: {e.Message}");
            }
            _upTaps.Add(tap);
            return a;
        }
    }

    /// <summary>The VM stopped (its tap is gone): its name is no longer served; the address stays reserved.</summary>
    public void TapDown(string tap)
    {
        lock (_lock) _upTaps.Remove(tap);
    }

    /// <summary>Gives a tap's addresses back (VM rm; the VM driver deletes the device itself).</summary>
    public void DetachTap(string tap)
    {
        lock (_lock)
        {
            _upTaps.Remove(tap);
            foreach (var ep in _endpoints.Where(e => e.Owner == "tap:" + tap).ToList()) RemoveEndpoint(ep);
        }
    }

    /// <summary>What a tap has on its networks (for vm inspect); empty when nothing is reserved.</summary>
    public IReadOnlyList<TapAttachment> TapInfo(string tap)
    {
        lock (_lock)
            return _endpoints.Where(e => e.Owner == "tap:" + tap && _networks.ContainsKey(e.NetworkId)).Select(e => Attachment(_networks[e.NetworkId], e)).ToList();
    }
}
