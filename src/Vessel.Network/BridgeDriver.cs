using System.Net;
using Vessel.Linux;
using Vessel.Network.Netlink;

namespace Vessel.Network;

/// <summary>What an endpoint inside a namespace gets: interface name, address, MAC, and the default route when it
/// is the container's primary network.</summary>
public sealed record EndpointConfig(string HostLink, string IfName, IPAddress Address, int Prefix, IPAddress Gateway, byte[] Mac, bool DefaultRoute);

/// <summary>Bridges and veth pairs through rtnetlink, in the host's namespace and in containers' namespaces. The
/// container side of a veth is created directly inside the container's namespace (IFLA_NET_NS_FD), then
/// configured through a netlink socket opened in that namespace (<see cref="RtNetlink.OpenIn"/>). When the
/// container's namespace goes away the kernel removes both ends, so a crash leaves no veth behind.</summary>
public sealed class BridgeDriver
{
    private readonly Lock _lock = new();

    /// <summary>Creates the bridge if missing (with the gateway address, a fixed MAC, up, route_localnet for published ports on
    /// 127.0.0.1). Idempotent: a bridge recreated after a reboot gets the same configuration.</summary>
    public void EnsureBridge(string name, IPAddress gateway, int prefix)
    {
        lock (_lock)
        {
            using var nl = RtNetlink.Open();
            var link = nl.Link(name);
            if (link is null)
            {
                nl.CreateBridge(name);
                link = nl.Link(name) ?? throw Errno.Exception(RtNetlink.ENODEV, "create bridge", name);
            }
            else if (link.Kind != "bridge")
                throw new InvalidOperationException($"a network interface named {name} exists and is not a bridge");
            // A fixed MAC (02:42 + the gateway address, as containers' are 02:42 + theirs): a bridge without one takes
            // the lowest MAC of its ports and changes it whenever a port (a VM's tap, a veth) comes or goes, leaving
            // every neighbour's ARP entry for the gateway stale (DNS and the way out lost until it expires).
            nl.SetMac(link.Index, Ipam.MacFor(gateway));
            if (!nl.Addresses().Any(a => a.Index == link.Index && a.Address.Equals(gateway) && a.Prefix == prefix))
                nl.AddAddress(link.Index, gateway, prefix);
            nl.SetUp(link.Index);
            Sysctl($"net/ipv4/conf/{name}/route_localnet", "1");
        }
    }

    public bool DeleteLink(string name)
    {
        lock (_lock)
        {
            using var nl = RtNetlink.Open();
            return nl.Delete(name);
        }
    }

    /// <summary>Links of the host namespace whose name starts with <paramref name="prefix"/>.</summary>
    public IReadOnlyList<LinkInfo> Links(string prefix)
    {
        using var nl = RtNetlink.Open();
        return nl.Links().Where(l => l.Name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    public IReadOnlyList<Cidr> HostRoutes()
    {
        using var nl = RtNetlink.Open();
        return nl.Routes().Select(r => r.Destination).ToList();
    }

    /// <summary>Connects the namespace of <paramref name="pid"/> to <paramref name="bridge"/>: a veth whose host end
    /// joins the bridge and whose other end is configured inside (address, MAC, up, default route). Loopback is
    /// brought up too.</summary>
    public void Attach(int pid, string bridge, EndpointConfig ep)
    {
        lock (_lock)
        {
            using SafeFd netns = SafeFd.OpenReadOnly($"/proc/{pid}/ns/net");
            using var host = RtNetlink.Open();
            int br = host.Index(bridge);
            host.Delete(ep.HostLink); // a stale end from an earlier life of this endpoint
            host.CreateVeth(ep.HostLink, ep.IfName, netns, ep.Mac);
            try
            {
                int hostIndex = host.Index(ep.HostLink);
                host.SetMaster(hostIndex, br);
                host.SetHairpin(hostIndex, true);
                host.SetUp(hostIndex);
                using var inside = RtNetlink.OpenIn(netns);
                int lo = inside.Index("lo");
                inside.SetUp(lo);
                int eth = inside.Index(ep.IfName);
                inside.AddAddress(eth, ep.Address, ep.Prefix);
                inside.SetUp(eth);
                if (ep.DefaultRoute) inside.AddRoute(null, ep.Gateway, eth);
            }
            catch
            {
                host.Delete(ep.HostLink);
                throw;
            }
        }
    }

    /// <summary>Brings loopback up in the namespace of <paramref name="pid"/> (--network none and every container).</summary>
    public void LoopbackUp(int pid)
    {
        lock (_lock)
        {
            using SafeFd netns = SafeFd.OpenReadOnly($"/proc/{pid}/ns/net");
            using var inside = RtNetlink.OpenIn(netns);
            inside.SetUp(inside.Index("lo"));
        }
    }

    /// <summary>Attaches an existing tap device (made by the VM driver) to a bridge.</summary>
    public void AttachTap(string tap, string bridge)
    {
        lock (_lock)
        {
            using var nl = RtNetlink.Open();
            int idx = nl.Index(tap);
            nl.SetMaster(idx, nl.Index(bridge));
            nl.SetUp(idx);
        }
    }

    /// <summary>Writes /proc/sys/NAME (in the daemon's, i.e. the host's, network namespace).</summary>
    public static void Sysctl(string name, string value) => File.WriteAllText("/proc/sys/" + name, value);

    public static string? ReadSysctl(string name)
    {
        try { return File.ReadAllText("/proc/sys/" + name).Trim(); }
        catch (IOException) { return null; }
    }

    /// <summary>Turns IPv4 forwarding on if it is off (needed once a network has a way out). Never turned off again:
    /// it is host-wide and other software may rely on it once on.</summary>
    public static bool EnableForwarding()
    {
        if (ReadSysctl("net/ipv4/ip_forward") == "1") return false;
        Sysctl("net/ipv4/ip_forward", "1");
        return true;
    }
}
