using System.Net;

namespace Vessel.Network;

/// <summary>Address management, the pure part: which subnet a new network gets, which address a new endpoint
/// gets. The engine keeps the allocations in its database (one row per address, unique per network) and passes
/// the addresses in use here, so an address is never handed out twice while it is in use.</summary>
public static class Ipam
{
    /// <summary>Docker's default pools: 172.17–31.0.0/16, then 192.168.0–240.0/20.</summary>
    public static IEnumerable<Cidr> DefaultPool()
    {
        for (int i = 17; i <= 31; i++) yield return new Cidr(IPAddress.Parse($"172.{i}.0.0"), 16);
        for (int i = 0; i <= 240; i += 16) yield return new Cidr(IPAddress.Parse($"192.168.{i}.0"), 20);
    }

    /// <summary>The first candidate that overlaps nothing in <paramref name="taken"/> (the host's routes, other networks).
    /// The default route (0.0.0.0/0) is not a clash.</summary>
    public static Cidr ChooseSubnet(IEnumerable<Cidr> taken, IEnumerable<Cidr>? candidates = null)
    {
        var busy = taken.Where(t => t.Prefix > 0).ToList();
        foreach (var c in candidates ?? DefaultPool())
            if (!busy.Any(b => b.Overlaps(c))) return c;
        throw new InvalidOperationException("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
    }

    /// <summary>The gateway by convention: the first usable address.</summary>
    public static IPAddress DefaultGateway(Cidr subnet) => Cidr.FromUInt(subnet.First);

    /// <summary>An address for a new endpoint: <paramref name="requested"/> when it is usable and free, else the
    /// lowest free one (never the network, broadcast or gateway address).</summary>
    public static IPAddress Allocate(Cidr subnet, IPAddress gateway, IReadOnlySet<uint> used, IPAddress? requested = null)
    {
        uint gw = Cidr.ToUInt(gateway);
        if (requested is not null)
        {
            uint r = Cidr.ToUInt(requested);
            if (!subnet.Contains(r)) throw new ArgumentException($"the address {requested} is not in the network's subnet {subnet}");
            if (r < subnet.First || r > subnet.Last) throw new ArgumentException($"the address {requested} is the network or broadcast address of {subnet}");
            if (r == gw) throw new ArgumentException($"the address {requested} is the network's gateway");
            if (used.Contains(r)) throw new InvalidOperationException($"the address {requested} is already in use on this network");
            return requested;
        }
        for (ulong a = subnet.First; a <= subnet.Last; a++)
            if ((uint)a != gw && !used.Contains((uint)a)) return Cidr.FromUInt((uint)a);
        throw new InvalidOperationException($"no address left in {subnet}");
    }

    /// <summary>A locally administered MAC derived from the address (docker's 02:42:a.b.c.d): stable across restarts.</summary>
    public static byte[] MacFor(IPAddress address)
    {
        var a = address.GetAddressBytes();
        return [0x02, 0x42, a[0], a[1], a[2], a[3]];
    }

    public static string MacString(byte[] mac) => string.Join(':', mac.Select(b => b.ToString("x2")));

    public static byte[] ParseMac(string mac)
    {
        var parts = mac.Split(':', '-');
        if (parts.Length != 6) throw new FormatException($"invalid MAC address \"{mac}\"");
        var b = parts.Select(p => p.Length == 2 && byte.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out var x) ? x
            : throw new FormatException($"invalid MAC address \"{mac}\"")).ToArray();
        if ((b[0] & 1) != 0) throw new FormatException($"invalid MAC address \"{mac}\": a multicast address");
        return b;
    }
}
