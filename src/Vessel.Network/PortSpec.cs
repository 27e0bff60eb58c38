using System.Net;

namespace Vessel.Network;

/// <summary>One published port as asked for: host address ("" = every address), host port or range (0 = any
/// free port), container port, protocol.</summary>
public sealed record PortRequest(string HostIp, int HostPortFirst, int HostPortLast, int ContainerPort, string Proto)
{
    public bool RandomHostPort => HostPortFirst == 0;
}

/// <summary>A published port as mapped: what nftables forwards and what `vessel port` shows.</summary>
public sealed record PublishedPort(string HostIp, int HostPort, int ContainerPort, string Proto)
{
    public override string ToString() => $"{ContainerPort}/{Proto} -> {(HostIp.Length == 0 ? "0.0.0.0" : HostIp)}:{HostPort}";
}

/// <summary>docker's -p syntax: <c>[IP:][HOST[-END]:]CONTAINER[-END][/tcp|/udp]</c>, and -P's image ExposedPorts keys
/// (<c>80/tcp</c>).</summary>
public static class PortSpec
{
    public static List<PortRequest> Parse(string spec)
    {
        FormatException Bad(string why) => new($"invalid port specification \"{spec}\": {why}");
        if (string.IsNullOrWhiteSpace(spec)) throw Bad("empty");
        string s = spec.Trim(), proto = "tcp";
        int slash = s.LastIndexOf('/');
        if (slash >= 0)
        {
            proto = s[(slash + 1)..].ToLowerInvariant();
            s = s[..slash];
            if (proto is not ("tcp" or "udp")) throw Bad(proto == "sctp" ? "sctp is not supported" : $"unknown protocol \"{proto}\" (tcp or udp)");
        }
        if (s.StartsWith('[')) throw Bad("IPv6 host addresses are not supported");
        var parts = s.Split(':');
        string ip = "", host = "", container;
        switch (parts.Length)
        {
            case 1: container = parts[0]; break;
            case 2: host = parts[0]; container = parts[1]; break;
            case 3: ip = parts[0]; host = parts[1]; container = parts[2]; break;
            default: throw Bad("too many colons (IPv6 host addresses are not supported)");
        }
        if (ip.Length > 0)
        {
            if (!Cidr.TryParseV4(ip, out var a)) throw Bad($"\"{ip}\" is not an IPv4 address");
            ip = a.Equals(IPAddress.Any) ? "" : a.ToString();
        }
        var (cFirst, cLast) = Range(container, "container port", Bad);
        if (host.Length == 0)
            return Enumerable.Range(cFirst, cLast - cFirst + 1).Select(p => new PortRequest(ip, 0, 0, p, proto)).ToList();
        var (hFirst, hLast) = Range(host, "host port", Bad);
        if (cLast - cFirst == hLast - hFirst)
            return Enumerable.Range(0, cLast - cFirst + 1).Select(i => new PortRequest(ip, hFirst + i, hFirst + i, cFirst + i, proto)).ToList();
        if (cFirst == cLast) return [new PortRequest(ip, hFirst, hLast, cFirst, proto)]; // one free port of the host range
        throw Bad("the host and container port ranges differ in size");
    }

    private static (int, int) Range(string s, string what, Func<string, FormatException> bad)
    {
        int dash = s.IndexOf('-');
        string a = dash < 0 ? s : s[..dash], b = dash < 0 ? s : s[(dash + 1)..];
        int first = Port(a), last = Port(b);
        if (last < first) throw bad($"the {what} range {s} ends before it starts");
        return (first, last);

        int Port(string x) => int.TryParse(x, System.Globalization.NumberStyles.None, null, out int p) && p is > 0 and < 65536
            ? p : throw bad($"invalid {what} \"{x}\" (1-65535)");
    }

    /// <summary>An image's ExposedPorts key ("80/tcp", "53/udp", "8000-8001/tcp") for -P: random host ports.</summary>
    public static List<PortRequest> Exposed(string key) => Parse(key).Select(p => p with { HostIp = "", HostPortFirst = 0, HostPortLast = 0 }).ToList();
}
