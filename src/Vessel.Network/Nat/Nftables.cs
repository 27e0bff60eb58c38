using System.Diagnostics;
using System.Net;
using System.Text;

namespace Vessel.Network.Nat;

/// <summary>A bridge network as the firewall sees it.</summary>
public sealed record FirewallNetwork(string Bridge, Cidr Subnet, IPAddress Gateway, bool Internal);

/// <summary>A published port: host side → container address.</summary>
public sealed record FirewallPort(string Bridge, IPAddress ContainerIp, PublishedPort Port);

/// <summary>Vessel's rules live in one nftables table of their own (<c>inet vessel</c> by default; one per daemon),
/// rebuilt whole from the engine's state on every change: one `nft -f -` transaction that deletes and recreates the
/// table, so the kernel never sees a half-written rule set, other tables are never touched, and after a crash
/// the next daemon simply writes it again. Established connections keep their NAT state (conntrack, not rules).</summary>
public sealed class Nftables
{
    public string Table { get; }
    public string NftPath { get; }

    public Nftables(string table, string? nftPath = null)
    {
        if (string.IsNullOrEmpty(table) || table.Length > 64 || !table.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            throw new ArgumentException($"invalid nftables table name \"{table}\": letters, digits, _ and - only");
        Table = table;
        NftPath = nftPath ?? Find() ?? "nft";
    }

    private static string? Find() =>
        new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft" }.FirstOrDefault(File.Exists);

    public bool Available => File.Exists(NftPath);

    /// <summary>The whole table. Chains:
    /// prerouting/output (nat): published ports DNAT'd when addressed to this host (also 127.0.0.1: the bridges
    /// have route_localnet, and postrouting masquerades loopback sources onto them);
    /// postrouting (nat): outbound masquerade for non-internal networks, loopback and hairpin sources;
    /// forward (filter): same-bridge traffic, replies, published ports and non-internal networks going out pass;
    /// anything else from or to a Vessel bridge is dropped (isolation; --internal has no way out);
    /// input (filter): nothing from a bridge to 127.0.0.0/8 (the guard route_localnet needs), internal networks
    /// reach only the DNS server on their gateway and the DHCP server.</summary>
    public string Render(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPort> ports)
    {
        var sb = new StringBuilder();
        sb.Append($"table inet {Table} {{}}\ndelete table inet {Table}\n");
        if (networks.Count == 0) return sb.ToString();
        static string Q(string s) => "\"" + s + "\"";
        string all = "{ " + string.Join(", ", networks.Select(n => Q(n.Bridge))) + " }";
        sb.Append($"table inet {Table} {{\n");

        sb.Append("  chain ports {\n");
        foreach (var p in ports)
        {
            string daddr = p.Port.HostIp.Length == 0 ? "" : $"ip daddr {p.Port.HostIp} ";
            sb.Append($"    {daddr}{p.Port.Proto} dport {p.Port.HostPort} dnat ip to {p.ContainerIp}:{p.Port.ContainerPort}\n");
        }
        sb.Append("  }\n");
        sb.Append("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
        sb.Append("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");

        sb.Append("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        foreach (var n in networks)
        {
            sb.Append($"    oifname {Q(n.Bridge)} ip saddr 127.0.0.0/8 masquerade\n");
            sb.Append($"    oifname {Q(n.Bridge)} iifname {Q(n.Bridge)} ct status dnat masquerade\n");
            if (!n.Internal) sb.Append($"    ip saddr {n.Subnet} oifname != {Q(n.Bridge)} masquerade\n");
        }
        sb.Append("  }\n");

        sb.Append("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
        foreach (var n in networks) sb.Append($"    iifname {Q(n.Bridge)} oifname {Q(n.Bridge)} accept\n");
        var open = networks.Where(n => !n.Internal).ToList();
        if (open.Count > 0)
        {
            string openSet = "{ " + string.Join(", ", open.Select(n => Q(n.Bridge))) + " }";
            sb.Append($"    oifname {openSet} ct state established,related accept\n");
            sb.Append($"    oifname {openSet} ct status dnat accept\n");
            sb.Append($"    iifname {openSet} oifname != {all} accept\n");
        }
        sb.Append($"    iifname {all} drop\n    oifname {all} drop\n  }}\n");

        sb.Append("  chain input {\n    type filter hook input priority filter; policy accept;\n");
        sb.Append($"    iifname {all} ip daddr 127.0.0.0/8 ct direction original drop\n");
        foreach (var n in networks.Where(n => n.Internal))
        {
            sb.Append($"    iifname {Q(n.Bridge)} ip daddr {n.Gateway} udp dport 53 accept\n");
            sb.Append($"    iifname {Q(n.Bridge)} ip daddr {n.Gateway} tcp dport 53 accept\n");
            // DHCP (docs/network.md#dhcp): a client without an address broadcasts to the server on the host.
            sb.Append($"    iifname {Q(n.Bridge)} udp sport 68 udp dport 67 accept\n");
            sb.Append($"    iifname {Q(n.Bridge)} ct state established,related accept\n");
            sb.Append($"    iifname {Q(n.Bridge)} drop\n");
        }
        sb.Append("  }\n}\n");
        return sb.ToString();
    }

    public void Apply(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPort> ports) => Run(Render(networks, ports));

    /// <summary>Removes the table (nothing if there is none).</summary>
    public void Delete() => Run($"table inet {Table} {{}}\ndelete table inet {Table}\n");

    /// <summary>Does the table exist? (`nft -j list tables`.)</summary>
    public bool Exists()
    {
        string output = Run(null, "-j", "list", "tables");
        return output.Contains($"\"name\": \"{Table}\"", StringComparison.Ordinal) || output.Contains($"\"name\":\"{Table}\"", StringComparison.Ordinal);
    }

    private string Run(string? script, params string[] args)
    {
        if (!Available)
            throw new InvalidOperationException("nftables is not installed (no nft command): Vessel needs it for bridge networks (NAT, published ports, isolation); install it with `apt-get install nftables`, or use --network none|host");
        var psi = new ProcessStartInfo(NftPath)
        {
            RedirectStandardInput = script is not null, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (script is not null) { psi.ArgumentList.Add("-f"); psi.ArgumentList.Add("-"); }
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start nft");
        if (script is not null)
        {
            p.StandardInput.Write(script);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000)) { try { p.Kill(); } catch (InvalidOperationException) { } throw new InvalidOperationException("nft did not finish within 30 s"); }
        if (p.ExitCode != 0)
        {
            string err = stderr.Result.Split('\n').FirstOrDefault(l => l.Contains("Error", StringComparison.Ordinal))?.Trim() ?? stderr.Result.Trim();
            throw new InvalidOperationException($"nft (table inet {Table}) failed: {err}");
        }
        return stdout.Result;
    }
}
